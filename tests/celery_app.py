"""The Celery app of the test site, configured the way docs/celery.md tells hosts to."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _shorter_waits(**kwargs: object) -> None:
    from tests.timing import shorten_waits

    shorten_waits()
