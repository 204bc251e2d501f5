"""The emulator's HTTP transport: a threading HTTP/1.1 server and its request handler.

Sockets and bytes: reading bodies (Content-Length or chunked), handing paths to :mod:`.api`,
:mod:`.control` or :mod:`.meeting`, answers with a Content-Length so keep-alive works, dropped
connections, logs without access tokens, and cutting open connections when the emulator stops.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, urlsplit

from . import api, control, meeting
from .api import Outcome

if TYPE_CHECKING:
    from .server import Emulator


class EmulatorHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer bound to one :class:`~.server.Emulator`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator, *, ipv6: bool = False) -> None:
        if ipv6:
            self.address_family = socket.AF_INET6
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut every open connection (idle keep-alive ones included)."""
        with self._connections_lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # clients going away are business as usual
        super().handle_error(request, client_address)


class RequestHandler(BaseHTTPRequestHandler):
    """One connection; serves requests until the client or a dropped fault closes it."""

    protocol_version = "HTTP/1.1"
    server_version = "PagecallEmulator/1.0"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every answer on a kept-alive connection.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @property
    def emulator(self) -> Emulator:
        return cast(EmulatorHTTPServer, self.server).emulator

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        try:
            raw = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(Outcome(400, {"message": "Malformed request body framing"}))
            return
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = dict(self.headers.items())
        try:
            if split.path == control.PREFIX or split.path.startswith(control.PREFIX + "/"):
                outcome = control.handle(self.emulator, self.command, split.path, raw)
            elif split.path in meeting.PAGES:
                outcome = meeting.handle(self.emulator, self.command, split.path, query, raw)
            else:
                outcome = api.handle(self.emulator, self.command, split.path, query, headers, raw)
        except Exception as exc:  # a bug in the emulator: say so rather than hang up
            outcome = Outcome(500, {"message": f"emulator error: {type(exc).__name__}: {exc}"})
        if outcome.status is None:
            self.close_connection = True  # dropped: close without a byte of answer
            return
        self._send(outcome)

    def _send(self, outcome: Outcome) -> None:
        assert outcome.status is not None
        if isinstance(outcome.payload, str):
            data, content_type = outcome.payload.encode("utf-8"), outcome.content_type
        else:
            data, content_type = json.dumps(outcome.payload).encode("utf-8"), "application/json"
        self.send_response(outcome.status)
        for name, value in outcome.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def log_message(self, format: str, *args: Any) -> None:
        if self.emulator.verbose:
            super().log_message("%s", meeting.redact_tokens(format % args))
