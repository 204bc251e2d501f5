"""The test settings with two more database aliases, for ``tests/test_sweep_databases.py``.

``other`` has the app's tables, like ``default``; a router keeps them off ``reports``. How to
run it: docs/contributing.md, "Services and databases".
"""

from __future__ import annotations

from typing import Any

from tests.settings import *  # noqa: F403
from tests.settings import DATABASE_URL, DATABASES, database_from_url


def _another(suffix: str) -> dict[str, Any]:
    database = database_from_url(DATABASE_URL)
    if database["ENGINE"] != "django.db.backends.sqlite3":
        database["NAME"] = f"{database['NAME']}_{suffix}"
    return {**DATABASES["default"], **database}


# The tests use "default" and "other" only, so "reports" gets no test database: a query the app
# sent there would fail the test.
DATABASES = {**DATABASES, "other": _another("other"), "reports": _another("reports")}


class KeepPagecallOffReports:
    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        if db == "reports":
            return app_label not in ("django_pagecall",)
        return None


DATABASE_ROUTERS = ["tests.settings_databases.KeepPagecallOffReports"]
