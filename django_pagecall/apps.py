"""App configuration: registers the system checks and nothing else at import time."""

from django.apps import AppConfig


class PagecallConfig(AppConfig):
    name = "django_pagecall"
    label = "django_pagecall"
    verbose_name = "Pagecall"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the checks)
