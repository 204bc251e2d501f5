"""The example site's Celery app, configured from the ``CELERY_*`` settings.

``app.autodiscover_tasks()`` finds ``django_pagecall.tasks``: that is all a host needs for rooms
to reach Pagecall. Run a worker with ``celery -A example worker`` from ``example_project/``.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")

app = Celery("example")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
