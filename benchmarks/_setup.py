"""Shared set-up for the benchmarks: a PostgreSQL database of their own, Django configured
with the test settings, and helpers to time things. Not a test: nothing here asserts."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = os.environ.get("BENCH_DATABASE", "pagecall_bench")
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", f"postgres://root@127.0.0.1:5432/{BENCH_DB}")


def ensure_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://root@127.0.0.1:5432/postgres", autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


def setup_django(**env: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ.update(env)
    ensure_database()
    import django
    from django.core.management import call_command

    django.setup()
    import tests.celery_app  # noqa: F401  (the site's Celery app, as a host's settings package loads it)

    call_command("migrate", verbosity=0)


def each_table(command: str, also: Sequence[str] = ()) -> None:
    """Run ``command`` (``ANALYZE``, ``VACUUM ANALYZE``) on each of the app's tables, and on the
    tables ``also`` names (a benchmark's own)."""
    from django.apps import apps
    from django.db import connection

    tables = [model._meta.db_table for model in apps.get_app_config("django_pagecall").get_models()]
    with connection.cursor() as cursor:
        for table in [*tables, *also]:
            cursor.execute(f"{command} {connection.ops.quote_name(table)}")
