"""Settings for the test suite.

The database comes from ``DATABASE_URL`` (default: the local PostgreSQL
``test`` database); ``mysql://root@127.0.0.1:3306/NAME`` runs the suite on MariaDB (or MySQL),
and ``DATABASE_URL=sqlite://`` the fast layer on SQLite.
"""

from __future__ import annotations

import json
import os
from urllib.parse import unquote, urlsplit

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ALLOWED_HOSTS = ["*"]


def database_from_url(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        name = parts.path.lstrip("/") or ":memory:"
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            "TEST": {"NAME": name if name != ":memory:" else None},
        }
    if parts.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")) or "test",
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
        }
    if parts.scheme in ("mysql", "mariadb"):
        return {
            "ENGINE": "django.db.backends.mysql",
            "NAME": unquote(parts.path.lstrip("/")) or "test",
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
        }
    raise ValueError(f"DATABASE_URL: unsupported scheme {parts.scheme!r}")


DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://root@127.0.0.1:5432/test")
DATABASES = {
    "default": {
        **database_from_url(DATABASE_URL),
        # Workers keep their connection between tasks, as a production site's should.
        "CONN_MAX_AGE": int(os.environ.get("CONN_MAX_AGE", "0")),
    }
}
if os.environ.get("PG_PREPARE_THRESHOLD") and DATABASE_URL.startswith("postgres"):
    # psycopg prepares a server-side-bound statement after this many runs (Django: None, never).
    DATABASES["default"]["OPTIONS"] = {"prepare_threshold": int(os.environ["PG_PREPARE_THRESHOLD"])}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_pagecall",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

STATIC_URL = "/static/"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")

# Celery, as docs/celery.md tells hosts to configure it. Integration tests start a real worker on
# this broker (or on a redis-server of their own); the fast layer runs tasks eagerly.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_timeout": 2,
    "socket_connect_timeout": 2,
    "visibility_timeout": float(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
    # Look for unacknowledged messages of dead workers every second (kombu's default is ~100 s).
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# Celery closes the database connection after every task unless told to reuse it.
CELERY_DB_REUSE_MAX = int(os.environ.get("CELERY_DB_REUSE_MAX", "0")) or None
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "pagecall-tests")

PAGECALL = {
    "API_KEY": "test-api-key",
    # Nothing listens on port 9: tests point API_URL at their emulator (the pagecall_emulator
    # fixture, or PAGECALL_API_URL for a worker started as a separate process).
    "API_URL": os.environ.get("PAGECALL_API_URL", "http://127.0.0.1:9/v1"),
    "WEBHOOK_URL": os.environ.get("PAGECALL_WEBHOOK_URL", "http://testserver/pagecall/webhook/"),
    "CONNECT_TIMEOUT": 1,
    "READ_TIMEOUT": 3,
    "RETRY_BACKOFF": 0.1,
    "RETRY_BACKOFF_MAX": 0.5,
}
if os.environ.get("PAGECALL_WORKSPACES"):
    # More workspaces, as JSON, for a worker started as a separate process.
    PAGECALL["WORKSPACES"] = json.loads(os.environ["PAGECALL_WORKSPACES"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_pagecall": {"handlers": ["console"], "level": "INFO"}},
}
