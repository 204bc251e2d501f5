"""Development sessions: lint, type checks, the test matrix, the docs and the release checks.

``nox`` runs them all, ``nox -s tests-3.11`` one, ``nox -t side`` and ``nox -t main`` the two
lanes that ``scripts/test.sh`` runs side by side. The sessions: docs/contributing.md.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import nox
from packaging.requirements import Requirement

ROOT = Path(__file__).parent
ARTIFACTS = ROOT / "test-artifacts"
DOCS_BUILD = ROOT / "docs" / "_build" / "html"

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = True  # a missing Python fails, never skips
nox.options.error_on_external_run = True
nox.options.download_python = "never"  # only PyPI is reachable; use the machine's interpreters
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")

LINT_PATHS = ["django_pagecall", "tests", "example_project", "benchmarks", "scripts", "noxfile.py"]

#: Python version -> Django requirement of the tests matrix.
DJANGO_FOR_PYTHON = {"3.11": "Django>=5.2,<5.3", "3.13": "Django>=6.0,<7"}

POSTGRES_URL = "postgres://root@127.0.0.1:5432/{name}"
MARIADB_URL = "mysql://root@127.0.0.1:3306/{name}"

#: The Redis database number of each tests session: one each, never shared.
REDIS_DB = {"tests-3.11": 15, "tests-3.13": 14, "tests_sqlite": 13, "tests_mariadb": 12}


def dev_requirement(name: str) -> str:
    """The requirement for ``name`` in the ``dev`` extra, so lint uses the version developers use."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["optional-dependencies"]["dev"]:
        if Requirement(requirement).name.lower() == name:
            return str(requirement)
    return name


def existing(paths: list[str]) -> list[str]:
    return [p for p in paths if (ROOT / p).exists()]


@nox.session(python="3.11", tags=["main"])
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(dev_requirement("ruff"))
    paths = existing(LINT_PATHS)
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session(python="3.11", tags=["main"])
def typecheck(session: nox.Session) -> None:
    """mypy (strict, with django-stubs) over the package."""
    session.install("-e", ".[dev]", DJANGO_FOR_PYTHON["3.11"])
    session.run("mypy", "django_pagecall", *session.posargs)


def redis_url(session: nox.Session) -> str:
    return os.environ.get("REDIS_URL") or f"redis://127.0.0.1:6379/{REDIS_DB[session.name]}"


def run_pytest(session: nox.Session, env: dict[str, str], *args: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    junit = ARTIFACTS / f"junit-{session.name}.xml"
    # pytest's exit status 5 (no tests collected) fails the session like any non-zero status:
    # session.run accepts 0 only.
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


@nox.session(python=list(DJANGO_FOR_PYTHON), tags=["side"])
def tests(session: nox.Session) -> None:
    """The whole suite on PostgreSQL and Redis, Django 5.2 on Python 3.11 and 6.x on 3.13."""
    assert session.python in DJANGO_FOR_PYTHON
    session.install("-e", ".[test]", DJANGO_FOR_PYTHON[str(session.python)])
    slug = "py" + str(session.python).replace(".", "")
    env = {
        "DATABASE_URL": os.environ.get("DATABASE_URL")
        or POSTGRES_URL.format(name=f"pagecall_{slug}"),
        "REDIS_URL": redis_url(session),
    }
    # The browser tests (chromium) run once, here on 3.11: they test pages, not the matrix.
    args = [] if session.python == "3.11" else ["-m", "not browser"]
    run_pytest(session, env, *args)


@nox.session(python="3.11", tags=["main"])
def tests_mariadb(session: nox.Session) -> None:
    """The whole suite but the browser tests on MariaDB and Redis, Django 5.2 on Python 3.11.

    mysqlclient builds against Debian's libmariadb-dev with pkg-config (scripts/test.sh installs
    both)."""
    session.install("-e", ".[test]", DJANGO_FOR_PYTHON["3.11"])
    env = {
        "DATABASE_URL": os.environ.get("MARIADB_DATABASE_URL")
        or MARIADB_URL.format(name="pagecall_mariadb"),
        "REDIS_URL": redis_url(session),
    }
    run_pytest(session, env, "-m", "not browser")


@nox.session(python="3.11", tags=["main"])
def tests_sqlite(session: nox.Session) -> None:
    """The fast layer on SQLite: no integration or packaging tests."""
    session.install("-e", ".[test]", DJANGO_FOR_PYTHON["3.11"])
    env = {"DATABASE_URL": "sqlite://", "REDIS_URL": redis_url(session)}
    run_pytest(session, env, "-m", "not integration and not packaging and not browser")


@nox.session(python="3.11", tags=["main"])
def docs(session: nox.Session) -> None:
    """The documentation site from docs/, warnings as errors, into docs/_build/html."""
    session.install("-e", ".[docs]")
    session.run(
        "sphinx-build",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "docs",
        str(DOCS_BUILD),
        *session.posargs,
    )


@nox.session(python="3.11", tags=["main"])
def release(session: nox.Session) -> None:
    """Build the sdist and the wheel (from the sdist) and check them before any upload."""
    session.install("build[uv]", "twine", "trove-classifiers")
    dist = Path(session.create_tmp()) / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("python", "-m", "build", "--installer", "uv", "--outdir", str(dist), str(ROOT))
    built = sorted(str(path) for path in dist.iterdir())
    # --strict: the long description (the README) must render, with no warning.
    session.run("twine", "check", "--strict", *built)
    session.run("python", str(ROOT / "scripts" / "check_dist.py"), str(dist))
