"""The :class:`Emulator`: a Pagecall look-alike on a loopback port, and its test helpers.

Owns the lifecycle (bind, serve in a thread, stop), the loopback-only rule, the records of
requests and webhooks, the faults, and the Python API tests use (docs/testing.md). It serves the
REST API under ``/v1``, the control API under ``/_emulator/`` and the meeting pages at its root.
"""

from __future__ import annotations

import copy
import ipaddress
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from . import spec
from .api import RequestRecord
from .faults import Fault, FaultList
from .model import Json
from .state import State
from .transport import EmulatorHTTPServer
from .webhooks import Delivery, WebhookEvent, deliver

DEFAULT_API_KEY = "test-api-key"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Emulator:
    """Pagecall's REST API in memory, served over HTTP on ``host:port``, with its meeting pages.

    ``Emulator(api_key="test-api-key", host="127.0.0.1", port=0)``; ``port=0``
    picks a free port. Use as a context manager, or ``start()`` / ``stop()``.
    Binding anything but a loopback address needs ``allow_remote=True``.
    Webhooks are sent synchronously, before the call that caused them returns.
    """

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_remote: bool = False,
        *,
        webhook_timeout: float = 5.0,
        verbose: bool = False,
    ) -> None:
        if not allow_remote and not is_loopback(host):
            raise ValueError(
                f"Emulator refuses to bind non-loopback host {host!r}: it has no real "
                "authentication; pass allow_remote=True to do it anyway."
            )
        self.api_key = api_key
        self.host = host
        self.port = port
        self.webhook_timeout = webhook_timeout
        self.verbose = verbose
        self.base_path = spec.base_path()
        self.state = State()
        self._faults = FaultList()
        self.generation = 0  # bumped by reset()
        self._requests: list[RequestRecord] = []
        self._webhooks: list[Delivery] = []
        self.page_lock = threading.Lock()  # the meeting page's enters and leaves, one at a time
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._server is not None:
            raise RuntimeError("Emulator already started")
        server = EmulatorHTTPServer((self.host, self.port), self, ipv6=":" in self.host)
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="pagecall-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:54321`` (the control API lives under ``/_emulator/``)."""
        if self._server is None:
            raise RuntimeError("Emulator not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def app_url(self) -> str:
        """Where the meeting pages live (``/meet``, ``/replay``): ``PAGECALL["APP_URL"]``."""
        return self.base_url

    @property
    def url(self) -> str:
        """The API base URL to configure clients with: ``http://127.0.0.1:54321/v1``."""
        return self.base_url + self.base_path

    def reset(self) -> None:
        """Forget rooms, members, users, sessions, recorded requests, webhooks and faults."""
        with self.state.lock:
            self.generation += 1  # requests still waiting out a delay are dropped, not applied
            self.state.reset()
            self._faults.clear()
            self._requests.clear()
            self._webhooks.clear()

    # -- records -----------------------------------------------------------------------------

    def record(self, record: RequestRecord) -> None:
        with self.state.lock:
            self._requests.append(record)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every API request, in the order they were answered (copies; ``time`` is arrival)."""
        with self.state.lock:
            return copy.deepcopy(self._requests)

    def clear_requests(self) -> int:
        with self.state.lock:
            count = len(self._requests)
            self._requests.clear()
            return count

    # -- state -------------------------------------------------------------------------------

    @property
    def rooms(self) -> dict[str, Json]:
        """Room id -> the Room object the API would answer."""
        return {r["id"]: r for r in self.state.list_rooms()}

    @property
    def users(self) -> dict[str, Json]:
        """``user_id`` -> the User object the API would answer."""
        return {u["user_id"]: u for u in self.state.list_users()}

    def members(self, room_id: str) -> list[Json]:
        return self.state.list_members(room_id)

    def sessions(self, room_id: str) -> list[Json]:
        return self.state.list_sessions(room_id)

    def pages(self, room_id: str) -> list[Json]:
        return self.state.pages(room_id)

    def messages(self, room_id: str) -> list[str]:
        return self.state.messages(room_id)

    def webhook_config(self, room_id: str) -> Json | None:
        """The room's ``webhook`` as created (``{"url", "headers"}``), or None."""
        return self.state.webhook_config(room_id)

    def snapshot(self) -> Json:
        """Everything, for ``GET /_emulator/state``."""
        return self.state.snapshot()

    # -- faults ------------------------------------------------------------------------------

    def inject(
        self,
        method: str,
        path: str,
        *,
        status: int | None = None,
        delay: float = 0.0,
        drop: str | None = None,
        times: int | None = 1,
        body: Any = None,
    ) -> dict[str, Any]:
        """Make the next ``times`` matching requests misbehave; see the package docstring."""
        with self.state.lock:
            fault = self._faults.add(
                method, path, status=status, delay=delay, drop=drop, times=times, body=body
            )
            return fault.as_dict()

    def clear_faults(self) -> int:
        with self.state.lock:
            return self._faults.clear()

    @property
    def faults(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return self._faults.pending()

    def take_fault(self, method: str, template: str | None, path: str) -> Fault | None:
        with self.state.lock:
            return self._faults.take(method, template, path)

    # -- participants and webhooks -----------------------------------------------------------

    def deliver_events(self, events: Iterable[WebhookEvent]) -> list[Delivery]:
        """Send webhooks (outside the lock) and record the deliveries."""
        done = []
        for event in events:
            delivery = deliver(event, self.webhook_timeout)
            with self.state.lock:
                self._webhooks.append(delivery)
            done.append(delivery)
        return done

    @property
    def webhooks(self) -> list[Delivery]:
        """Every webhook delivery made, oldest first (copies)."""
        with self.state.lock:
            return copy.deepcopy(self._webhooks)

    def _participant_result(
        self, session: Json, member: Json, body: Json, event: WebhookEvent | None, send: bool
    ) -> dict[str, Any]:
        delivery = self.deliver_events([event])[0] if event is not None and send else None
        return {"session": session, "member": member, "body": body, "delivery": delivery}

    def join(
        self,
        room_id: str,
        user_id: str | None = None,
        member_id: str | None = None,
        *,
        deliver: bool = True,
    ) -> dict[str, Any]:
        """Connect a participant and send ``sessionJoined``.

        Returns ``{"session", "member", "body", "delivery"}``: ``body`` is the
        webhook body, ``delivery`` the :class:`Delivery` (None when the room
        has no webhook or ``deliver=False``, e.g. to simulate a lost webhook).
        Raises :class:`~.state.EmulatorError` (a ValueError) when Pagecall
        would not let them in.
        """
        session, member, body, event = self.state.join(room_id, user_id, member_id)
        return self._participant_result(session, member, body, event, deliver)

    def leave(self, room_id: str, session_id: str, *, deliver: bool = True) -> dict[str, Any]:
        """Disconnect a session and send ``sessionLeft``; returns like :meth:`join`."""
        session, member, body, event = self.state.leave(room_id, session_id)
        return self._participant_result(session, member, body, event, deliver)

    def send_webhook(self, room_id: str, body: Json) -> Delivery | None:
        """Send any ``body`` to the room's webhook with its headers (None: room has none)."""
        event = self.state.custom_event(room_id, body)
        return self.deliver_events([event])[0] if event is not None else None
