"""The client's transport: headers, the per-process pooled session, ``get_client()``, settings,
and the API key kept out of everything a person reads (reprs, errors, logs)."""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_pagecall import __version__
from django_pagecall import client as client_module
from django_pagecall.client import PagecallClient, get_client, reset_client
from django_pagecall.emulator import Emulator
from django_pagecall.emulator.api import UNAUTHENTICATED
from django_pagecall.exceptions import (
    PagecallAmbiguousError,
    PagecallError,
    PagecallRefused,
    PagecallTransientError,
)

SECRET_KEY = "pc-live-7f3a9c1e5b2d4f60-do-not-log"


@pytest.fixture
def pagecall(pagecall_emulator: Emulator) -> Iterator[PagecallClient]:
    client = PagecallClient.from_settings()
    yield client
    client.close()


def header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


# -- headers -------------------------------------------------------------------------------------


def test_every_request_carries_the_bearer_key_and_names_the_client(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    room = pagecall.create_room(name="Headers", type="open")
    pagecall.get_room(room.id)
    list(pagecall.list_rooms())
    pagecall.delete_room(room.id)

    records = pagecall_emulator.requests
    assert [r["method"] for r in records] == ["POST", "GET", "GET", "DELETE"]
    for record in records:
        assert header(record["headers"], "Authorization") == "Bearer test-api-key"
        assert header(record["headers"], "User-Agent") == f"django-pagecall/{__version__}"
        assert header(record["headers"], "Accept") == "application/json"
    assert header(records[0]["headers"], "Content-Type") == "application/json"


def test_a_wrong_key_is_refused(settings: Any, pagecall_emulator: Emulator) -> None:
    settings.PAGECALL = {**settings.PAGECALL, "API_KEY": "not-the-key"}
    client = get_client()

    with pytest.raises(PagecallRefused) as caught:
        client.create_room(name="x", type="open")

    assert caught.value.status == 400
    assert json.loads(caught.value.body) == {"message": UNAUTHENTICATED}
    assert header(pagecall_emulator.requests[0]["headers"], "Authorization") == "Bearer not-the-key"
    assert pagecall_emulator.rooms == {}


# -- the session ---------------------------------------------------------------------------------


def test_one_session_per_process_is_reused_across_calls(
    pagecall: PagecallClient, pagecall_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="urllib3")
    session = pagecall.session
    assert pagecall.session is session

    room = pagecall.create_room(name="Pooled", type="open")
    pagecall.get_room(room.id)
    pagecall.send_room_message(room.id, "hi")
    list(pagecall.list_rooms())
    pagecall.delete_room(room.id)

    assert pagecall.session is session
    assert len(pagecall_emulator.requests) == 5
    # urllib3 logs each TCP connection it opens: the five calls shared one.
    opened = [
        r for r in caplog.records if r.getMessage().startswith("Starting new HTTP connection")
    ]
    assert len(opened) == 1


def test_close_forgets_the_session_and_the_next_call_makes_one(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    before = pagecall.session
    pagecall.close()

    assert pagecall.create_room(name="After close", type="open").name == "After close"
    assert pagecall.session is not before


def test_the_environment_is_read_once_when_the_session_is_made(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))
    proxied = PagecallClient("key", "https://api.pagecall.com/v1")
    assert proxied.session.proxies["https"] == "http://proxy.example:3128"
    assert proxied.session.verify == str(tmp_path / "ca.pem")
    # requests no longer scans the environment on every call (that cost more than the call).
    assert proxied.session.trust_env is False

    monkeypatch.setenv("NO_PROXY", "api.pagecall.com")
    bypassed = PagecallClient("key", "https://api.pagecall.com/v1")
    assert "https" not in bypassed.session.proxies


def test_a_netrc_entry_does_not_replace_the_api_key(
    pagecall: PagecallClient,
    pagecall_emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {pagecall_emulator.host} login someone password elsewhere\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    pagecall.create_room(name="Bearer only", type="open")
    (record,) = pagecall_emulator.requests
    assert header(record["headers"], "Authorization") == "Bearer test-api-key"


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_makes_its_own_session(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    room = pagecall.create_room(name="Before fork", type="open")
    parent_session = pagecall.session
    read_end, write_end = os.pipe()

    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        try:
            os.close(read_end)
            try:
                child_session = pagecall.session
                fetched = pagecall.get_room(room.id)
                report: dict[str, Any] = {
                    "pid": os.getpid(),
                    "parent_session_id": id(parent_session),
                    "child_session_id": id(child_session),
                    "same_object": child_session is parent_session,
                    "stable": pagecall.session is child_session,
                    "name": fetched.name,
                }
            except BaseException as exc:
                report = {"error": repr(exc)}
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)

    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 10)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            pytest.fail("the forked child did not report within 10 s")
        data = b""
        while chunk := os.read(read_end, 65536):
            data += chunk
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)

    report = json.loads(data)
    assert "error" not in report, report["error"]
    assert report["pid"] != os.getpid()
    assert report["same_object"] is False
    assert report["child_session_id"] != report["parent_session_id"] == id(parent_session)
    assert report["stable"] is True  # one session in the child too, reused
    assert report["name"] == "Before fork"
    # The child's request reached the emulator; the parent keeps its own session.
    assert [r["method"] for r in pagecall_emulator.requests] == ["POST", "GET"]
    assert pagecall.session is parent_session
    assert pagecall.get_room(room.id).id == room.id


# -- get_client() and settings -------------------------------------------------------------------


def test_get_client_is_cached(pagecall_emulator: Emulator) -> None:
    client = get_client()

    assert get_client() is client
    assert client.api_url == pagecall_emulator.url
    assert client.create_room(name="Via get_client", type="open").name == "Via get_client"


def test_get_client_is_rebuilt_when_the_setting_changes(
    settings: Any, pagecall_emulator: Emulator
) -> None:
    first = get_client()
    settings.DEBUG = not settings.DEBUG  # another setting: the client stays
    assert get_client() is first

    settings.PAGECALL = {**settings.PAGECALL, "READ_TIMEOUT": 7}
    second = get_client()

    assert second is not first
    assert second.timeout[1] == 7
    assert get_client() is second


def test_reset_client_makes_the_next_get_client_read_the_settings_again(
    pagecall_emulator: Emulator,
) -> None:
    first = get_client()
    reset_client()
    assert get_client() is not first


def test_get_client_from_many_threads_builds_one_client(pagecall_emulator: Emulator) -> None:
    reset_client()
    barrier = threading.Barrier(8)
    seen: list[PagecallClient] = []

    def grab() -> None:
        barrier.wait()
        seen.append(get_client())

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    assert len(seen) == 8
    assert {id(c) for c in seen} == {id(get_client())}


def test_client_values_come_from_settings(settings: Any) -> None:
    settings.PAGECALL = {
        "API_KEY": "k",
        "API_URL": "http://127.0.0.1:9/v1/",
        "CONNECT_TIMEOUT": 0.5,
        "READ_TIMEOUT": 2.5,
    }

    client = get_client()

    assert client.timeout == (0.5, 2.5)
    assert client.api_url == "http://127.0.0.1:9/v1"  # no trailing slash


def test_client_defaults_when_settings_leave_them_out(settings: Any) -> None:
    settings.PAGECALL = {"API_KEY": "k"}

    client = get_client()

    assert client.api_url == "https://api.pagecall.com/v1"
    assert client.timeout == (3.05, 10.0)
    assert client.page_size == 100
    assert client.connect_retries == client_module.CONNECT_RETRIES  # tests.timing shortens it


def test_the_test_settings_timeouts_reach_the_client(pagecall_emulator: Emulator) -> None:
    assert get_client().timeout == (1, 3)  # tests/settings.py: CONNECT_TIMEOUT 1, READ_TIMEOUT 3


@pytest.mark.parametrize(
    "pagecall_setting",
    [
        {"API_URL": "http://127.0.0.1:9/v1"},
        {"API_KEY": None},
        {"API_KEY": ""},
    ],
)
def test_a_missing_api_key_is_named(settings: Any, pagecall_setting: dict[str, Any]) -> None:
    settings.PAGECALL = pagecall_setting

    with pytest.raises(ImproperlyConfigured, match=r'PAGECALL\["API_KEY"\] is not set'):
        get_client()


def test_no_pagecall_setting_at_all_names_the_api_key(settings: Any) -> None:
    del settings.PAGECALL

    with pytest.raises(ImproperlyConfigured, match=r'PAGECALL\["API_KEY"\]'):
        get_client()


def test_a_malformed_api_key_is_named_but_not_repeated(settings: Any) -> None:
    settings.PAGECALL = {"API_KEY": ["pc-live-secret-in-a-list"]}

    with pytest.raises(ImproperlyConfigured, match=r'PAGECALL\["API_KEY"\] must be') as caught:
        get_client()

    assert "pc-live-secret-in-a-list" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("API_URL", "api.pagecall.com/v1"),
        ("CONNECT_TIMEOUT", 0),
        ("READ_TIMEOUT", "10"),
        ("API_KEY", "  "),
    ],
)
def test_a_malformed_setting_is_named(settings: Any, name: str, value: object) -> None:
    settings.PAGECALL = {"API_KEY": "k", name: value}

    with pytest.raises(ImproperlyConfigured, match=rf'PAGECALL\["{name}"\] must be'):
        get_client()


# -- the key stays secret ------------------------------------------------------------------------


def test_the_key_is_not_in_the_repr(settings: Any) -> None:
    settings.PAGECALL = {"API_KEY": SECRET_KEY}

    client = get_client()

    assert repr(client) == "<PagecallClient https://api.pagecall.com/v1>"
    assert SECRET_KEY not in str(client)


def test_the_key_is_in_no_error_message_nor_log_record(
    settings: Any, pagecall_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django_pagecall")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        unused = sock.getsockname()[1]
    settings.PAGECALL = {**settings.PAGECALL, "API_KEY": SECRET_KEY}
    client = get_client()
    client.connect_retries = 1
    errors: list[PagecallError] = []

    with pytest.raises(PagecallRefused) as refused:  # the emulator does not know this key
        client.create_room(name="x", type="open")
    errors.append(refused.value)
    pagecall_emulator.inject("GET", "/rooms", drop="after")
    with pytest.raises(PagecallAmbiguousError) as dropped:
        list(client.list_rooms())
    errors.append(dropped.value)
    pagecall_emulator.inject("GET", "/rooms/{id}", status=500)
    with pytest.raises(PagecallTransientError) as failed:
        client.get_room("0" * 24)
    errors.append(failed.value)
    settings.PAGECALL = {**settings.PAGECALL, "API_URL": f"http://127.0.0.1:{unused}/v1"}
    with pytest.raises(PagecallTransientError) as unreachable:
        get_client().get_room("0" * 24)
    errors.append(unreachable.value)

    # The key was sent (so it could have leaked)...
    assert (
        header(pagecall_emulator.requests[0]["headers"], "Authorization") == f"Bearer {SECRET_KEY}"
    )
    # ...but no message carries it: not the errors, their causes, nor any log record.
    for error in errors:
        texts = [str(error), repr(error), error.body, str(error.__cause__), repr(error.__cause__)]
        assert not [t for t in texts if SECRET_KEY in t], type(error).__name__
    client_records = [r for r in caplog.records if r.name == "django_pagecall.client"]
    assert {r.levelname for r in client_records} >= {"DEBUG", "WARNING"}
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    assert not [r for r in caplog.records if SECRET_KEY in r.getMessage()]
    assert SECRET_KEY not in caplog.text
