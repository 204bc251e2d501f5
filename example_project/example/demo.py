"""The moving parts ``manage.py pagecall_demo`` runs: the emulator and a Celery worker as processes,
the site in a thread, and bounded waits that say what did not happen.

Owns their start, readiness and stop, and nothing of the flow itself (that is the command's).
Each process logs to a file whose tail goes into the error when it dies or a wait runs out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application

PROJECT_DIR = Path(__file__).resolve().parent.parent  # example_project/, where manage.py is

T = TypeVar("T")


class DemoError(Exception):
    """A step of the demo did not happen; the message says which and why."""


def wait_until(
    predicate: Callable[[], T], timeout: float, what: str, diagnose: Callable[[], str] | None = None
) -> T:
    """Poll ``predicate`` until it returns something truthy; :class:`DemoError` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = diagnose() if diagnose is not None else ""
            raise DemoError(f"{what} did not happen within {timeout:g} s.{detail}")
        time.sleep(0.1)


class ChildProcess:
    """A process of the demo's, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ChildProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603  (our own interpreter, fixed arguments)
                self.argv, cwd=PROJECT_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 25) -> str:
        text = "\n".join(self.log().splitlines()[-lines:])
        return f"\n--- last lines of the {self.name}'s log ({self.log_path}) ---\n{text}"

    def check_alive(self) -> None:
        if not self.alive():
            code = self.process.returncode if self.process is not None else None
            raise DemoError(f"the {self.name} exited (status {code}).{self.tail()}")

    def wait_for_line(self, needle: str, timeout: float) -> str:
        def seen() -> str | None:
            for line in self.log().splitlines():
                if needle in line:
                    return line
            self.check_alive()
            return None

        return wait_until(seen, timeout, f"the {self.name} saying {needle!r}", self.tail)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()  # a warm shutdown for the worker; the emulator stops too
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


def child_env(**overrides: str) -> dict[str, str]:
    """This process's environment for a child, with the example site on its path."""
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "example.settings"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_DIR), env.get("PYTHONPATH", "")) if p
    )
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


def start_emulator(api_key: str, port: int, log_path: Path, timeout: float) -> tuple[Any, str]:
    """``python -m django_pagecall.emulator``; returns the process and its API URL."""
    emulator = ChildProcess(
        "emulator",
        [
            sys.executable,
            "-m",
            "django_pagecall.emulator",
            "--port",
            str(port),
            "--api-key",
            api_key,
        ],
        child_env(),
        log_path,
    ).start()
    line = emulator.wait_for_line("listening on", timeout)
    return emulator, line.rsplit(" ", 1)[-1]


def start_worker(env: dict[str, str], log_path: Path, timeout: float) -> ChildProcess:
    """``celery -A example worker``: the site's worker, on the site's broker, as its own process."""
    worker = ChildProcess(
        "Celery worker",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "example",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "--loglevel=INFO",
        ],
        env,
        log_path,
    ).start()
    worker.wait_for_line(" ready.", timeout)
    return worker


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the command reports what matters; the request log would drown it


class SiteServer:
    """The example site over HTTP in a thread (each request on its own thread and connection)."""

    def __init__(self, port: int = 0) -> None:
        self.server = ThreadedWSGIServer(("127.0.0.1", port), _QuietHandler)
        self.server.set_app(get_wsgi_application())
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> SiteServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
