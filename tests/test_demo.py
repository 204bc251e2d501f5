"""The example project's demo, end to end: ``manage.py pagecall_demo`` as a user runs it.

It runs in subprocesses with the example site's own settings (SQLite, the filesystem broker, the
emulator and a Celery worker process it starts itself), on a database and a broker folder of the
test's own, so it needs neither PostgreSQL nor Redis. About 10 s.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example_project" / "manage.py"

pytestmark = pytest.mark.demo


def demo_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        # The suite's own settings must not leak in: the demo is the example site, alone.
        if not k.startswith(("PAGECALL_", "CELERY_", "DJANGO_", "EXAMPLE_")) and k != "REDIS_URL"
    }
    env.update(
        DJANGO_SETTINGS_MODULE="example.settings",
        EXAMPLE_DB=str(tmp_path / "db.sqlite3"),
        EXAMPLE_BROKER_DIR=str(tmp_path / "broker"),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def run_demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MANAGE), "pagecall_demo", "--timeout", "20", *args],
        cwd=ROOT,
        env=demo_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_the_demo_runs_every_step_and_prints_the_session(tmp_path: Path) -> None:
    result = run_demo(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "synced by the worker: Pagecall room" in result.stdout
    assert "members alice, bob" in result.stdout
    assert "sessionJoined webhook → http://127.0.0.1:" in result.stdout
    assert "sessionLeft webhook → http://127.0.0.1:" in result.stdout
    session = re.search(
        r"^session ([0-9a-f]{24}): alice in “Demo [0-9:]+” \(Pagecall room ([0-9a-f]{24})\) "
        r"joined \S+ \S+ UTC, left \S+ \S+ UTC, \d+:\d\d:\d\d in the meeting$",
        result.stdout,
        re.MULTILINE,
    )
    assert session, result.stdout
    assert "1 room(s) imported with 1 member(s)" in result.stdout
    assert "“Made elsewhere” (synced), members carol" in result.stdout
    assert re.search(r"attendance: alice, 1 session\(s\), \d+:\d\d:\d\d in the room", result.stdout)
    assert re.search(
        r"usage of \d{4}-\d\d: 1 meeting\(s\), \d+ minute\(s\), 1 session\(s\), 1 active user",
        result.stdout,
    ), result.stdout
    assert result.stdout.rstrip().endswith("demo: every step happened.")
    # The join link is printed with its access token masked.
    assert re.search(r"access_token=•+[^•\s]{4}\n", result.stdout), result.stdout
    # The worker was a real process on the filesystem broker.
    assert "filesystem:// in" in result.stdout
    worker_log = (tmp_path / "broker" / "logs" / "worker.log").read_text()
    assert "django_pagecall.tasks.create_room" in worker_log
    # No access token in what the demo printed or in any of its logs.
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        tokens = [t for (t,) in db.execute("SELECT access_token FROM django_pagecall_pagecalluser")]
    assert tokens and all(tokens)
    logs = [p.read_text() for p in (tmp_path / "broker" / "logs").glob("*.log")]
    assert len(logs) >= 2  # the emulator's and the worker's
    for text in [result.stdout, result.stderr, *logs]:
        assert not any(token in text for token in tokens)


def test_the_demo_fails_clearly_when_pagecall_is_unreachable(tmp_path: Path) -> None:
    # Nothing listens on port 9: the worker cannot create the room, and the demo says so.
    # The timeout bounds every wait, the worker's start too: 3 s was too short for that on a
    # loaded machine (Python 3.13 in CI), so 15.
    result = run_demo(tmp_path, "--api-url", "http://127.0.0.1:9/v1", "--timeout", "15")
    assert result.returncode == 1
    assert "step 4/10 failed: the worker creating the room did not happen within 15 s." in (
        result.stderr
    )
    assert "Celery worker's log" in result.stderr
    assert "demo: every step happened." not in result.stdout


def test_the_example_settings_use_the_emulators_default_key(tmp_path: Path) -> None:
    # So that the emulator and the site started by hand, with no options, agree.
    from django_pagecall.emulator.server import DEFAULT_API_KEY

    shown = subprocess.run(
        [sys.executable, "-c", "from example import settings; print(settings.PAGECALL['API_KEY'])"],
        cwd=ROOT / "example_project",
        env=demo_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert shown.stdout.strip() == DEFAULT_API_KEY


def test_serve_stopped_with_sigterm_stops_its_emulator_and_worker(tmp_path: Path) -> None:
    import os
    import signal

    import requests

    from tests.conftest import wait_for
    from tests.redis_server import free_port

    port = free_port()
    log = tmp_path / "serve.log"
    argv = [sys.executable, str(MANAGE), "pagecall_demo", "--serve", "--port", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*argv, "--emulator-port", "0"],
            cwd=ROOT,
            env=demo_env(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )

        def site_up() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=2).ok
            except requests.RequestException:
                return process.poll() is not None

        try:
            wait_for(site_up, 60)
            assert process.poll() is None, log.read_text()
            process.send_signal(signal.SIGTERM)  # `kill`, not Ctrl-C
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    output = log.read_text()
    assert "using settings 'example.settings'" in output
    found = re.findall(r"\(pid (\d+)\)|^\s+pid (\d+),", output, re.MULTILINE)
    pids = [int(emulator or worker) for emulator, worker in found]
    assert len(pids) == 2, output  # the emulator's and the worker's

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(lambda: all(gone(pid) for pid in pids), 20)


def test_serve_on_a_port_in_use_names_the_port_and_starts_nothing(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, str(MANAGE), "pagecall_demo", "--serve", "--port", str(port)],
            cwd=ROOT,
            env=demo_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port}, for the site, is in use" in result.stderr
    assert "--port" in result.stderr
    assert "[1/" not in result.stdout  # no step began: no emulator, no worker
