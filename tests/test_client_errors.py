"""How the client classifies failures, over real sockets: ``PagecallRefused`` (Pagecall said
no), ``PagecallTransientError`` (not carried out: safe to retry), ``PagecallAmbiguousError``
(outcome unknown: look before retrying) and ``PagecallResponseError`` (a 2xx it cannot read).
docs/client.md lists what raises each.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from django_pagecall.client import MAX_ERROR_BODY, PagecallClient
from django_pagecall.emulator import Emulator
from django_pagecall.exceptions import (
    PagecallAmbiguousError,
    PagecallError,
    PagecallRefused,
    PagecallResponseError,
    PagecallTransientError,
)


@pytest.fixture
def pagecall(pagecall_emulator: Emulator) -> Iterator[PagecallClient]:
    client = PagecallClient.from_settings()
    yield client
    client.close()


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.01)
    return value


def unused_port() -> int:
    """A loopback port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- statuses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, PagecallRefused),
        (401, PagecallRefused),
        (403, PagecallRefused),
        (404, PagecallRefused),
        (409, PagecallRefused),
        (422, PagecallRefused),
        (408, PagecallTransientError),
        (429, PagecallTransientError),
        (500, PagecallTransientError),
        (503, PagecallTransientError),
        (502, PagecallAmbiguousError),
        (504, PagecallAmbiguousError),
    ],
)
def test_status_is_classified(
    pagecall: PagecallClient,
    pagecall_emulator: Emulator,
    status: int,
    error_class: type[PagecallError],
) -> None:
    pagecall_emulator.inject("POST", "/rooms", status=status, body={"message": f"no {status}"})

    with pytest.raises(PagecallError) as caught:
        pagecall.create_room(name="x", type="open")

    error = caught.value
    assert type(error) is error_class
    assert (error.method, error.path, error.status) == ("POST", "/rooms", status)
    assert json.loads(error.body) == {"message": f"no {status}"}
    assert str(error) == f"POST /rooms [{status}]: Pagecall answered {status}"
    assert pagecall_emulator.rooms == {}
    assert len(pagecall_emulator.requests) == 1  # the client never retries a status itself


def test_a_real_400_keeps_pagecalls_raw_body(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    with pytest.raises(PagecallRefused) as caught:
        pagecall.create_room(name="x", type="no-such-type")

    assert caught.value.status == 400
    message = json.loads(caught.value.body)["message"]
    assert "body.type must be one of" in message
    assert caught.value.body == json.dumps({"message": message})


def test_a_non_json_error_body_is_kept_as_text(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    pagecall_emulator.inject("GET", "/rooms/{id}", status=502, body="<html>Bad Gateway</html>")

    with pytest.raises(PagecallAmbiguousError) as caught:
        pagecall.get_room("0" * 24)

    assert caught.value.body == "<html>Bad Gateway</html>"


def test_a_huge_error_body_is_cut(pagecall: PagecallClient, pagecall_emulator: Emulator) -> None:
    pagecall_emulator.inject("GET", "/rooms/{id}", status=500, body="x" * (MAX_ERROR_BODY * 2))

    with pytest.raises(PagecallTransientError) as caught:
        pagecall.get_room("0" * 24)

    assert caught.value.body == "x" * MAX_ERROR_BODY


# -- dropped connections and timeouts ------------------------------------------------------------


def test_read_timeout_is_ambiguous(
    settings: Any, pagecall_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    settings.PAGECALL = {**settings.PAGECALL, "READ_TIMEOUT": 0.2}
    client = PagecallClient.from_settings()
    client.connect_retries = 2
    pagecall_emulator.inject("POST", "/rooms", delay=0.6)

    started = time.monotonic()
    with pytest.raises(PagecallAmbiguousError) as caught:
        client.create_room(name="Slow", type="open")
    elapsed = time.monotonic() - started

    assert elapsed < 0.55  # gave up at the read timeout, and did not send it again
    assert str(caught.value) == "POST /rooms: no answer within 0.2s"
    assert caught.value.status is None
    # The emulator carries the request out after its delay: the outcome really was unknown.
    wait_for(lambda: pagecall_emulator.requests)
    assert [r["fault"] for r in pagecall_emulator.requests] == ["delay"]
    assert [r["name"] for r in pagecall_emulator.rooms.values()] == ["Slow"]
    client.close()


def test_drop_before_answering_is_ambiguous(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    pagecall_emulator.inject("POST", "/rooms", drop="before")

    with pytest.raises(PagecallAmbiguousError, match="connection lost after sending"):
        pagecall.create_room(name="Dropped", type="open")

    assert pagecall_emulator.rooms == {}  # this time it was not done...
    assert [r["fault"] for r in pagecall_emulator.requests] == ["drop-before"]  # ...nor resent
    # The pool threw the dead connection away: the next call works.
    assert pagecall.create_room(name="Again", type="open").name == "Again"


def test_drop_after_doing_the_work_is_ambiguous_and_the_room_exists(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    assert list(pagecall.list_rooms()) == []  # a kept-alive connection: the drop hits it
    pagecall_emulator.clear_requests()
    pagecall_emulator.inject("POST", "/rooms", drop="after")

    with pytest.raises(PagecallAmbiguousError) as caught:
        pagecall.create_room(name="Half done", type="open")

    assert (caught.value.method, caught.value.path, caught.value.status) == ("POST", "/rooms", None)
    assert [r["fault"] for r in pagecall_emulator.requests] == ["drop-after"]
    (room,) = pagecall_emulator.rooms.values()
    assert room["name"] == "Half done"
    # What the caller does after an ambiguous create: look the room up by name.
    assert [r.id for r in pagecall.list_rooms(name="Half done")] == [room["id"]]


def test_drop_of_a_read_is_ambiguous_too(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    pagecall_emulator.inject("GET", "/rooms", drop="before")

    with pytest.raises(PagecallAmbiguousError):
        list(pagecall.list_rooms())

    assert len(pagecall_emulator.requests) == 1  # reads are not retried by the transport either


def count_retries(caplog: pytest.LogCaptureFixture) -> int:
    """urllib3 logs one warning per transport-level retry it makes."""
    return sum(
        r.name == "urllib3.connectionpool" and r.getMessage().startswith("Retrying")
        for r in caplog.records
    )


@pytest.mark.parametrize("retries", [0, 2])
def test_connection_refused_is_transient_after_the_configured_retries(
    settings: Any, caplog: pytest.LogCaptureFixture, retries: int
) -> None:
    port = unused_port()
    settings.PAGECALL = {
        **settings.PAGECALL,
        "API_URL": f"http://127.0.0.1:{port}/v1",
    }
    client = PagecallClient.from_settings()
    client.connect_retries = retries
    caplog.set_level(logging.WARNING, logger="urllib3")

    with pytest.raises(PagecallTransientError) as caught:
        client.create_room(name="Nobody home", type="open")

    error = caught.value
    assert str(error).startswith("POST /rooms: could not connect: ")
    assert error.status is None
    assert isinstance(error.__cause__, requests.ConnectionError)
    # Connections refused cannot be counted at a server; urllib3 reports each retry.
    assert count_retries(caplog) == retries
    client.close()


@contextmanager
def unresponsive_listener() -> Iterator[int]:
    """A port whose accept queue is full, so a new connection is never established.

    Linux lets one connection into the queue of a ``listen(0)`` socket that never
    accepts; further SYNs are dropped, and the client's connect times out.
    """
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        for _ in range(2):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))  # EINPROGRESS: left to complete or hang
            fillers.append(filler)
        time.sleep(0.01)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_connect_timeout_is_transient(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    with unresponsive_listener() as port:
        settings.PAGECALL = {
            **settings.PAGECALL,
            "API_URL": f"http://127.0.0.1:{port}/v1",
            "CONNECT_TIMEOUT": 0.1,
        }
        client = PagecallClient.from_settings()
        client.connect_retries = 1
        caplog.set_level(logging.WARNING, logger="urllib3")
        started = time.monotonic()
        with pytest.raises(PagecallTransientError, match="could not connect") as caught:
            client.create_room(name="Nobody answers", type="open")
        elapsed = time.monotonic() - started

    assert isinstance(caught.value.__cause__, requests.ConnectTimeout)
    assert count_retries(caplog) == 1
    assert 0.2 <= elapsed < 1.5  # two attempts of 0.1 s, no backoff before the first retry
    client.close()


# -- answers the client cannot read --------------------------------------------------------------


class _Answer(BaseHTTPRequestHandler):
    """Answers every request with the server's canned status, content type and body."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        server: Any = self.server
        status, content_type, body = server.answer
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def canned_server(status: int, content_type: str, body: bytes) -> Iterator[str]:
    """A tiny HTTP server of our own; yields its API base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    server.daemon_threads = True
    server.answer = (status, content_type, body)  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html", b"<html><body>Welcome to nginx!</body></html>"),
        ("application/json", b'{"room": {"id": "truncated'),
        ("application/json", b""),
    ],
)
def test_a_2xx_answer_that_is_not_json_is_a_response_error(content_type: str, body: bytes) -> None:
    with canned_server(200, content_type, body) as url:
        client = PagecallClient("test-api-key", url, connect_retries=0)
        with pytest.raises(PagecallResponseError) as caught:
            client.get_room("000585f36eed9e8fb6b655b4")
        client.close()

    error = caught.value
    assert (error.method, error.path, error.status) == (
        "GET",
        "/rooms/000585f36eed9e8fb6b655b4",
        200,
    )
    assert error.message == "answer is not JSON"
    assert error.body == body.decode()


def test_a_non_json_answer_from_the_emulator_is_a_response_error(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    pagecall_emulator.inject("POST", "/users", status=200, body="OK")

    with pytest.raises(PagecallResponseError, match="answer is not JSON") as caught:
        pagecall.create_user(user_id="ext-1")

    assert caught.value.body == "OK"
