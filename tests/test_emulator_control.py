"""The Pagecall emulator as a process and a fixture: control API, command, pytest plugin, binding."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import requests

from django_pagecall.emulator import Emulator
from tests.test_emulator import Api, WebhookReceiver, api, receiver

__all__ = ["api", "receiver"]  # fixtures, imported to be registered here

ROOT = Path(__file__).resolve().parent.parent
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - what the emulator must refuse


@pytest.fixture
def control(pagecall_emulator: Emulator) -> Iterator[Any]:
    """Call ``/_emulator/...`` without any API key."""
    session = requests.Session()
    session.trust_env = False

    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return session.request(method, pagecall_emulator.base_url + "/_emulator" + path, **kwargs)

    yield call
    session.close()


# -- control API ------------------------------------------------------------------------------


def test_control_faults(control: Any, api: Api, pagecall_emulator: Emulator) -> None:
    created = control("POST", "/faults", json={"method": "POST", "path": "/rooms", "status": 503})
    assert created.status_code == 200
    assert created.json()["fault"]["status"] == 503
    assert [f["path"] for f in control("GET", "/faults").json()["faults"]] == ["/rooms"]
    assert api.post("/rooms", json={"name": "x", "type": "open"}, check=False).status_code == 503

    control(
        "POST", "/faults", json={"method": "GET", "path": "/rooms", "drop": "before", "times": None}
    )
    assert control("DELETE", "/faults").json() == {"cleared": 1}
    assert api.get("/rooms").status_code == 200
    assert pagecall_emulator.faults == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"path": "/rooms", "status": 500}, "method and path are required"),
        ({"method": "GET", "path": "/rooms", "status": 500, "when": 1}, "unknown fault arguments"),
        ({"method": "GET", "path": "/rooms", "drop": "sideways"}, "drop"),
        ([1, 2], "JSON object"),
    ],
)
def test_control_rejects_bad_faults(control: Any, body: Any, message: str) -> None:
    response = control("POST", "/faults", json=body)
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_control_requests(control: Any, api: Api) -> None:
    api.create_room(name="seen")
    control("GET", "/state")  # control calls are not recorded
    recorded = control("GET", "/requests").json()["requests"]
    assert [(r["method"], r["path"], r["status"]) for r in recorded] == [("POST", "/v1/rooms", 200)]
    assert recorded[0]["body"] == {"name": "seen", "type": "open"}
    assert control("DELETE", "/requests").json() == {"cleared": 1}
    assert control("GET", "/requests").json() == {"requests": []}


def test_control_participants(
    control: Any, api: Api, pagecall_emulator: Emulator, receiver: WebhookReceiver
) -> None:
    room = api.create_room(webhook={"url": receiver.url + "/hook", "headers": {"X-Key": "k"}})
    joined = control("POST", f"/rooms/{room['id']}/join", json={"user_id": "u1"})
    assert joined.status_code == 200
    result = joined.json()
    assert set(result) == {"session", "member", "body", "delivery"}
    assert result["delivery"]["status"] == 200
    assert receiver.calls[0]["body"] == result["body"]
    assert receiver.calls[0]["headers"]["x-key"] == "k"

    session_id = result["session"]["id"]
    left = control("POST", f"/rooms/{room['id']}/sessions/{session_id}/leave")
    assert left.status_code == 200 and left.json()["body"]["action"] == "sessionLeft"
    assert receiver.calls[1]["body"] == left.json()["body"]
    again = control("POST", f"/rooms/{room['id']}/sessions/{session_id}/leave")
    assert again.status_code == 400 and "already left" in again.json()["message"]

    quiet = control("POST", f"/rooms/{room['id']}/join", json={"user_id": "u2", "deliver": False})
    assert quiet.json()["delivery"] is None and len(receiver.calls) == 2
    custom = control("POST", f"/rooms/{room['id']}/webhook", json={"action": "sessionJoined"})
    assert custom.json()["delivery"]["status"] == 200
    assert receiver.calls[2]["body"] == {"action": "sessionJoined"}
    assert len(control("GET", "/webhooks").json()["webhooks"]) == 3
    connected = api.get(f"/rooms/{room['id']}/sessions", params={"is_connecting": "true"}).json()
    assert [s["user_id"] for s in connected["sessions"]] == ["u2"]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/rooms/0123456789abcdef01234567/join", {}, "not found"),
        ("/rooms/{room}/join", {"user_id": 5}, "user_id must be a string"),
        ("/rooms/{room}/join", {"deliver": "no"}, "deliver must be a boolean"),
        ("/rooms/{room}/sessions/nope/leave", {}, "not found"),
    ],
)
def test_control_participant_errors(
    control: Any, api: Api, path: str, body: dict[str, Any], message: str
) -> None:
    room = api.create_room()
    response = control("POST", path.format(room=room["id"]), json=body)
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_control_state_and_reset(control: Any, api: Api, pagecall_emulator: Emulator) -> None:
    api.post("/users", json={"user_id": "u1", "name": "N"})
    room = api.create_room(
        type="private",
        members=[{"user_id": "u1", "type": "host", "name": "Host"}],
        webhook={"url": "http://127.0.0.1:9/x", "headers": {}},
    )
    pagecall_emulator.join(room["id"], user_id="u1")
    state = control("GET", "/state").json()
    assert [r["id"] for r in state["rooms"]] == [room["id"]]
    assert state["rooms"][0]["webhook"] == {"url": "http://127.0.0.1:9/x", "headers": {}}
    assert [(m["user_id"], m["name"]) for m in state["members"]] == [("u1", "Host")]
    assert [u["user_id"] for u in state["users"]] == ["u1"]
    assert [(s["user_id"], s["room_id"]) for s in state["sessions"]] == [("u1", room["id"])]
    assert state["application_id"] == room["application_id"]

    pagecall_emulator.inject("GET", "/rooms", status=500)
    assert control("POST", "/reset").json() == {"reset": True}
    empty = control("GET", "/state").json()
    assert (empty["rooms"], empty["users"], empty["members"], empty["sessions"]) == ([], [], [], [])
    assert pagecall_emulator.faults == [] and pagecall_emulator.requests == []
    assert pagecall_emulator.webhooks == []


def test_control_unknown_paths_and_methods(control: Any) -> None:
    assert control("GET", "/nothing").status_code == 404
    assert control("POST", "").status_code == 405  # GET lists the routes
    wrong = control("GET", "/reset")
    assert wrong.status_code == 405 and "message" in wrong.json()
    assert control("PUT", "/faults").status_code == 405


# -- lifecycle and binding --------------------------------------------------------------------


@pytest.mark.parametrize("host", [ALL_INTERFACES, "10.1.2.3", "::", "example.com"])
def test_refuses_non_loopback_hosts(host: str) -> None:
    with pytest.raises(ValueError, match="allow_remote=True"):
        Emulator(host=host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_accepts_loopback_hosts(host: str) -> None:
    assert Emulator(host=host).host == host


def test_allow_remote_lifts_the_refusal() -> None:
    assert Emulator(host=ALL_INTERFACES, allow_remote=True).host == ALL_INTERFACES


def test_start_stop_and_restart() -> None:
    emulator = Emulator(api_key="k1")
    with pytest.raises(RuntimeError):
        emulator.url  # noqa: B018
    session = requests.Session()
    session.trust_env = False
    with emulator:
        assert emulator.running
        assert emulator.url == f"http://127.0.0.1:{emulator.port}/v1"
        assert emulator.base_url == f"http://127.0.0.1:{emulator.port}"
        ok = session.get(emulator.url + "/rooms", headers={"Authorization": "Bearer k1"}, timeout=5)
        assert ok.status_code == 200
        with pytest.raises(RuntimeError, match="already started"):
            emulator.start()
    assert not emulator.running
    with pytest.raises(requests.ConnectionError):  # the kept-alive connection was cut too
        session.get(f"http://127.0.0.1:{emulator.port}/v1/rooms", timeout=5)
    emulator.start()  # again, on the same port
    try:
        again = session.get(
            emulator.url + "/rooms", headers={"Authorization": "Bearer k1"}, timeout=5
        )
        assert again.status_code == 200
    finally:
        emulator.stop()
        session.close()


# -- the command ------------------------------------------------------------------------------


def _lines(stream: IO[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_command_runs_until_signalled(stop_signal: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "django_pagecall.emulator", "--port", "0", "--api-key", "cmd-key"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = _lines(process.stdout).get(timeout=30)
        assert line.startswith("Pagecall emulator listening on http://127.0.0.1:")
        url = line.split()[-1]
        assert url.endswith("/v1")
        session = requests.Session()
        session.trust_env = False
        headers = {"Authorization": "Bearer cmd-key"}
        created = session.post(url + "/rooms", json={"name": "p", "type": "open"}, headers=headers)
        assert created.status_code == 200
        listed = session.get(url + "/rooms", headers=headers, timeout=5).json()
        assert [r["name"] for r in listed["rooms"]] == ["p"]
        assert (
            session.get(url + "/rooms", timeout=5)
            .json()["message"]
            .startswith("Unauthenticated (emulator: the Bearer key does not match")
        )
        session.close()
        process.send_signal(stop_signal)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_command_refuses_a_remote_host() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "django_pagecall.emulator", "--host", ALL_INTERFACES, "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "allow_remote=True" in done.stderr
    assert done.stdout == ""


# -- the pytest plugin ------------------------------------------------------------------------


def test_fixture_points_django_settings_at_the_emulator(pagecall_emulator: Emulator) -> None:
    from django.conf import settings

    from django_pagecall.conf import pagecall_settings

    assert settings.PAGECALL["API_URL"] == pagecall_emulator.url
    assert settings.PAGECALL["API_KEY"] == pagecall_emulator.api_key
    assert settings.PAGECALL["WEBHOOK_URL"] == "http://testserver/pagecall/webhook/"  # kept
    api_url = pagecall_settings.API_URL
    assert api_url == pagecall_emulator.url


def _run_pytest(
    tmp_path: Path, source: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_host_site.py").write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_host_site.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_plugin_in_a_host_suite_restores_settings(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": "sqlite://",
        "PYTHONPATH": str(ROOT),
    }
    done = _run_pytest(
        tmp_path,
        """
        import requests
        from django.conf import settings

        def test_uses_the_emulator(pagecall_emulator):
            assert settings.PAGECALL["API_URL"] == pagecall_emulator.url
            pagecall_emulator.inject("GET", "/rooms", status=500, times=None)

        def test_settings_restored_and_emulator_reset(pagecall_emulator_server):
            assert settings.PAGECALL["API_URL"] == "http://127.0.0.1:9/v1"
            assert pagecall_emulator_server.faults  # the server fixture alone does not reset

        def test_reset_between_tests(pagecall_emulator):
            assert pagecall_emulator.faults == []
        """,
        env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_plugin_without_django(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = _run_pytest(
        tmp_path,
        """
        import requests
        from django_pagecall.emulator import pytest_plugin

        def test_plain(pagecall_emulator):
            assert not pytest_plugin._django_configured()
            response = requests.get(
                pagecall_emulator.url + "/rooms",
                headers={"Authorization": "Bearer test-api-key"},
                timeout=5,
            )
            assert response.json()["rooms"] == []
        """,
        env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_the_control_routes_are_listed_and_each_answers(pagecall_emulator: Emulator) -> None:
    import subprocess
    import sys

    from django_pagecall.emulator.control import ROUTES

    base = pagecall_emulator.base_url
    listed = requests.get(f"{base}/_emulator/", timeout=5).json()["routes"]
    assert [(r["method"], r["path"]) for r in listed] == [
        (method, f"/_emulator{path}") for method, path, _ in ROUTES
    ]
    # Each listed GET and DELETE route exists (the POSTs need bodies: tested above).
    for method, path, _ in ROUTES:
        if method in ("GET", "DELETE"):
            assert requests.request(method, f"{base}/_emulator{path}", timeout=5).ok, path
    missing = requests.get(f"{base}/_emulator/nope", timeout=5)
    assert missing.status_code == 404
    assert "GET /_emulator/ lists them" in missing.json()["message"]
    shown = subprocess.run(
        [sys.executable, "-m", "django_pagecall.emulator", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    for method, path, _ in ROUTES:
        assert f"{method:<6} /_emulator{path}" in shown
    assert "/meet" in shown
