"""Development sessions: lint, type checks and the test matrix.

``nox`` runs them all; ``nox -s tests-3.11`` runs one. ``bash scripts/test.sh`` installs nox
and puts the interpreters on PATH first. Each tests session uses its own PostgreSQL database
(pytest-django creates ``test_<name>``) and its own Redis database, unless ``DATABASE_URL`` /
``REDIS_URL`` are set in the environment, in which case those are used as they are.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import nox
from packaging.requirements import Requirement

ROOT = Path(__file__).parent
ARTIFACTS = ROOT / "test-artifacts"

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = True  # a missing Python fails, never skips
nox.options.error_on_external_run = True
nox.options.download_python = "never"  # only PyPI is reachable; use the machine's interpreters
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")

LINT_PATHS = ["django_pagecall", "tests", "example_project", "benchmarks", "scripts", "noxfile.py"]

#: Python version -> Django requirement of the tests matrix.
DJANGO_FOR_PYTHON = {"3.11": "Django>=5.2,<5.3", "3.13": "Django>=6.0,<7"}

POSTGRES_URL = "postgres://root@127.0.0.1:5432/{name}"


def dev_requirement(name: str) -> str:
    """The requirement for ``name`` in the ``dev`` extra, so lint uses the version developers use."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["optional-dependencies"]["dev"]:
        if Requirement(requirement).name.lower() == name:
            return str(requirement)
    return name


def existing(paths: list[str]) -> list[str]:
    return [p for p in paths if (ROOT / p).exists()]


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(dev_requirement("ruff"))
    paths = existing(LINT_PATHS)
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy (strict, with django-stubs) over the package."""
    session.install("-e", ".[dev]", DJANGO_FOR_PYTHON["3.11"])
    session.run("mypy", "django_pagecall", *session.posargs)


def run_pytest(session: nox.Session, env: dict[str, str], *args: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    junit = ARTIFACTS / f"junit-{session.name}.xml"
    # pytest's exit status 5 (no tests collected) fails the session like any non-zero status.
    session.run("python", "-m", "pytest", f"--junitxml={junit}", *args, *session.posargs, env=env)
    if not session.posargs:
        # The tests that need more database aliases than tests.settings has; skipped above.
        junit = ARTIFACTS / f"junit-{session.name}-databases.xml"
        session.run(
            "python",
            "-m",
            "pytest",
            f"--junitxml={junit}",
            "--ds=tests.settings_databases",
            "tests/test_sweep_databases.py",
            env=env,
        )


@nox.session(python=list(DJANGO_FOR_PYTHON))
def tests(session: nox.Session) -> None:
    """The whole suite on PostgreSQL and Redis, Django 5.2 on Python 3.11 and 6.x on 3.13."""
    assert session.python in DJANGO_FOR_PYTHON
    session.install("-e", ".[test]", DJANGO_FOR_PYTHON[str(session.python)])
    slug = "py" + str(session.python).replace(".", "")
    redis_db = {"3.11": 15, "3.13": 14}[str(session.python)]
    database_url = POSTGRES_URL.format(name=f"pagecall_{slug}")
    env = {
        "DATABASE_URL": os.environ.get("DATABASE_URL") or database_url,
        "REDIS_URL": os.environ.get("REDIS_URL") or f"redis://127.0.0.1:6379/{redis_db}",
    }
    # The browser tests (chromium) run once, here on 3.11: they test pages, not the matrix.
    args = [] if session.python == "3.11" else ["-m", "not browser"]
    run_pytest(session, env, *args)


@nox.session(python="3.11")
def tests_sqlite(session: nox.Session) -> None:
    """The fast layer on SQLite: no integration or packaging tests."""
    session.install("-e", ".[test]", DJANGO_FOR_PYTHON["3.11"])
    env = {
        "DATABASE_URL": "sqlite://",
        "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/13",
    }
    run_pytest(session, env, "-m", "not integration and not packaging and not browser")
