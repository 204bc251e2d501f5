"""An example site using django-pagecall: the admin, a "my rooms" page, and ``manage.py
pagecall_demo``, which runs the whole flow (emulator, worker, webhooks) with nothing to install.

The Celery app is imported here, as Celery's Django guide says, so that tasks queued by the site
(``shared_task``) use it and its broker settings.
"""

from .celery import app as celery_app

__all__ = ["celery_app"]
