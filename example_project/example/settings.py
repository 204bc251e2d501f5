"""Settings of the example site: SQLite (``EXAMPLE_DB``) in WAL mode, Celery on kombu's
filesystem transport (``EXAMPLE_BROKER_DIR``, or Redis with ``REDIS_URL``) and the bundled
emulator (``PAGECALL_API_URL``, ``PAGECALL_APP_URL``), so nothing needs a server; docs/demo.md.
Not for production: the secret key and DEBUG are for a local demo only.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "example.urls"
WSGI_APPLICATION = "example.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "my-rooms"
LOGOUT_REDIRECT_URL = "login"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB", str(BASE_DIR / "db.sqlite3")),
        "OPTIONS": {
            # Three processes write here: wait for the lock rather than fail, take it at the
            # start of a transaction (no deadlock on upgrade), and let readers read while one writes.
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "example",  # above django_pagecall: its django_pagecall/base.html overrides the app's
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

PAGECALL = {
    "API_KEY": os.environ.get("PAGECALL_API_KEY", "test-api-key"),  # the emulator's default key
    "API_URL": os.environ.get("PAGECALL_API_URL", "http://127.0.0.1:8790/v1"),
    "WEBHOOK_URL": os.environ.get(
        "PAGECALL_WEBHOOK_URL", "http://127.0.0.1:8000/pagecall/webhook/"
    ),
    "APP_URL": os.environ.get("PAGECALL_APP_URL", "https://app.pagecall.com"),
    "USER_ID_FUNCTION": "example.users.pagecall_user_id",
    # A second Pagecall workspace, for rooms saved with workspace="school" (docs/workspaces.md);
    # run a second emulator for it: python -m django_pagecall.emulator --port 8791 --api-key
    # school-api-key
    # "WORKSPACES": {
    #     "school": {
    #         "API_KEY": os.environ.get("PAGECALL_SCHOOL_API_KEY", "school-api-key"),
    #         "API_URL": os.environ.get("PAGECALL_SCHOOL_API_URL", "http://127.0.0.1:8791/v1"),
    #     },
    # },
}

# -- Celery (read by example/celery.py) --------------------------------------------------------

REDIS_URL = os.environ.get("REDIS_URL", "")
BROKER_DIR = Path(os.environ.get("EXAMPLE_BROKER_DIR", str(BASE_DIR / ".broker")))

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "socket_timeout": 2,
        "socket_connect_timeout": 2,
        "visibility_timeout": 3600,
    }
else:
    CELERY_BROKER_URL = "filesystem://"
    # One folder for messages: producers write where the worker reads.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.2,  # kombu's default is 1 s: the demo would feel slow
    }
    # The filesystem transport has no broadcast worth using: no remote control, mingle or gossip.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
    for _folder in ("queue", "processed", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)

CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_pagecall": {"handlers": ["console"], "level": "WARNING"}},
}
