"""Fixtures shared by the whole suite; the emulator fixtures come from the package's plugin.

Tests without a marker run Celery tasks eagerly; ``integration`` tests get a redis-server and a
Celery worker of their own (docs/contributing.md, "Test markers").
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.celery_app import app as celery_app
from tests.redis_server import RedisServer, RedisUnavailable
from tests.worker_process import WorkerProcess

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy and return it; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s: {predicate}")
        time.sleep(interval)


#: Django's ``connection.vendor`` -> (``DATABASE_URL`` scheme, default port) of the server
#: databases that tests.settings reads; SQLite is not one (a worker cannot share ``:memory:``).
SERVER_DATABASES = {"postgresql": ("postgres", 5432), "mysql": ("mysql", 3306)}


def requires_server_database() -> None:
    if connection.vendor not in SERVER_DATABASES:
        pytest.skip(
            "needs PostgreSQL or MariaDB: a worker in another thread or process shares the database"
        )


def database_url(settings_dict: dict[str, Any]) -> str:
    """The ``DATABASE_URL`` (as tests.settings reads it) of a connection's settings: how a worker
    process reaches the test database."""
    scheme, default_port = SERVER_DATABASES[settings_dict["ENGINE"].rsplit(".", 1)[-1]]
    user = quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    if password:
        user += ":" + quote(password, safe="")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or default_port
    return f"{scheme}://{user}@{host}:{port}/{quote(settings_dict['NAME'], safe='')}"


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


@contextmanager
def at_most(statements: int, *, transactions: int) -> Iterator[list[str]]:
    """Hold a block to a budget: at most ``statements`` statements besides transaction control
    (which some backends log and others don't), and at most ``transactions`` commits."""
    commits: list[None] = []
    commit = connection.commit

    def counting_commit() -> None:
        commits.append(None)
        commit()

    connection.commit = counting_commit  # type: ignore[method-assign]
    try:
        with CaptureQueriesContext(connection) as captured:
            sql: list[str] = []
            yield sql
    finally:
        del connection.commit  # type: ignore[method-assign]
    sql += [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].split(maxsplit=1)[0].upper() not in TRANSACTION_CONTROL
    ]
    assert len(sql) <= statements, "\n".join(sql)
    assert len(commits) <= transactions


@pytest.fixture(autouse=True, scope="session")
def _shorter_waits() -> None:
    from tests.timing import shorten_waits

    shorten_waits()


@pytest.fixture(autouse=True)
def _eager_unless_integration(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tasks run in the test's thread, so a test follows a save to the emulator and back without
    a broker; ``integration`` tests publish to a real broker for a real worker."""
    eager = request.node.get_closest_marker("integration") is None
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = eager
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _publishing_not_paused() -> Iterator[None]:
    """A publish that failed pauses publishing in the process (``PUBLISH_TIMEOUT``): not past
    the test that made it fail."""
    from django_pagecall.sync import publishing

    publishing.resume()
    yield
    publishing.resume()


def use_broker(url: str) -> str:
    """Point the test app at another broker and drop its pools; returns the previous URL."""
    previous = str(celery_app.conf.broker_url)
    celery_app.conf.broker_url = url
    # Forget the pools without closing them: kombu keeps them in a global registry per URL,
    # and a closed one would be handed back the next time that URL is used.
    celery_app._after_fork()
    return previous


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    try:
        server.start()
    except RedisUnavailable as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture
def broker(settings: Any, redis_server: RedisServer) -> Iterator[RedisServer]:
    """The Celery app pointed at a private redis-server for the test."""
    previous = use_broker(redis_server.url)
    yield redis_server
    use_broker(previous)


@pytest.fixture
def celery_worker_thread(broker: RedisServer, transactional_db: None) -> Iterator[Any]:
    """A real Celery worker (solo pool) consuming from the test's broker, in a thread."""
    requires_server_database()
    from celery.contrib.testing.worker import start_worker

    with start_worker(
        celery_app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        shutdown_timeout=15,
        loglevel="WARNING",
    ) as worker:
        yield worker


@pytest.fixture
def worker_process_factory(
    broker: RedisServer, transactional_db: None, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Make worker processes on the test's broker, the test database and the given emulator URL."""
    requires_server_database()
    made: list[WorkerProcess] = []
    url = database_url(connection.settings_dict)

    def make(api_url: str, pool: str = "solo", **extra_env: str) -> WorkerProcess:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": url,
            "CELERY_BROKER_URL": broker.url,
            "PAGECALL_API_URL": api_url,
            "PYTHONPATH": str(ROOT),
            **extra_env,
        }
        worker = WorkerProcess(
            env, tmp_path / f"worker-{len(made)}.log", celery_app.conf.task_default_queue, pool
        )
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.stop()
