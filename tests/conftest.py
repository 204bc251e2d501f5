"""Fixtures shared by the whole suite (the emulator fixtures come from the package's pytest plugin).

Two layers:

* the fast layer (no marker): tasks run eagerly, in the test's thread, so a
  test can follow a save to Pagecall (the emulator) and back without a broker;
* ``@pytest.mark.integration``: a database server (PostgreSQL or MariaDB), a real Redis broker
  and a real Celery worker (a thread, or a process where a test must kill it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection

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


@pytest.fixture(params=["statements", "orm"])
def creation_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a room-creation test on both paths: PostgreSQL's hand-written statements
    (``django_pagecall.sync.queries``) and the ORM's, which every other database uses."""
    from django_pagecall.sync import queries

    if request.param == "statements":
        if connection.vendor != "postgresql":
            pytest.skip("the hand-written statements are PostgreSQL's")
    else:
        monkeypatch.setattr(queries, "supported", lambda using: False)
    return str(request.param)


@pytest.fixture(autouse=True)
def _eager_unless_integration(request: pytest.FixtureRequest) -> Iterator[None]:
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

    def make(api_url: str, **extra_env: str) -> WorkerProcess:
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
            env, tmp_path / f"worker-{len(made)}.log", celery_app.conf.task_default_queue
        )
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.stop()
