"""The emulator's own control API under ``/_emulator/`` (no API key needed): the test helpers of
:class:`~.server.Emulator` over HTTP, for an emulator run as a separate process
(``python -m django_pagecall.emulator``). The routes are listed in docs/testing.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .api import Outcome, parse_body
from .model import EmulatorError

if TYPE_CHECKING:
    from .server import Emulator

PREFIX = "/_emulator"
INJECT_ARGS = ("method", "path", "status", "delay", "drop", "times", "body")

#: The control routes: method, path under PREFIX, and what each does (``GET /_emulator/``).
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/", "this list"),
    ("GET", "/state", "everything: rooms, members, users, sessions, webhooks"),
    ("POST", "/reset", "forget everything, faults and records included"),
    ("POST", "/rooms/{room_id}/join", "connect a participant {user_id?, member_id?, deliver?}"),
    ("POST", "/rooms/{room_id}/sessions/{session_id}/leave", "disconnect a session {deliver?}"),
    ("POST", "/rooms/{room_id}/webhook", "send any JSON body to the room's webhook"),
    ("POST", "/faults", "inject a fault {method, path, status?, delay?, drop?, times?, body?}"),
    ("GET", "/faults", "the faults still pending"),
    ("DELETE", "/faults", "clear the faults"),
    ("GET", "/requests", "the REST API requests received"),
    ("DELETE", "/requests", "forget them"),
    ("GET", "/webhooks", "the webhook deliveries made"),
)


def route_list() -> str:
    """The routes as lines of text, for ``--help``."""
    return "\n".join(f"  {m:<6} {PREFIX}{p:<44} {what}" for m, p, what in ROUTES)


def _json_object(raw: bytes) -> dict[str, Any]:
    body, ok = parse_body(raw)
    if body is None:
        return {}
    if not ok or not isinstance(body, dict):
        raise EmulatorError("body must be a JSON object")
    return body


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise EmulatorError(f"{name} must be a boolean")
    return value


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise EmulatorError(f"{name} must be a string")
    return value


def _dispatch(emu: Emulator, method: str, parts: list[str], raw: bytes) -> tuple[int, Any]:
    if parts == []:
        if method == "GET":
            routes = [{"method": m, "path": PREFIX + p, "does": what} for m, p, what in ROUTES]
            return 200, {"routes": routes}
    elif parts == ["faults"]:
        if method == "POST":
            body = _json_object(raw)
            unknown = sorted(set(body) - set(INJECT_ARGS))
            if unknown:
                raise EmulatorError(f"unknown fault arguments: {', '.join(unknown)}")
            if "method" not in body or "path" not in body:
                raise EmulatorError("method and path are required")
            args = {k: v for k, v in body.items() if k not in ("method", "path")}
            return 200, {"fault": emu.inject(body["method"], body["path"], **args)}
        if method == "GET":
            return 200, {"faults": emu.faults}
        if method == "DELETE":
            return 200, {"cleared": emu.clear_faults()}
    elif parts == ["requests"]:
        if method == "GET":
            return 200, {"requests": emu.requests}
        if method == "DELETE":
            return 200, {"cleared": emu.clear_requests()}
    elif parts == ["webhooks"]:
        if method == "GET":
            return 200, {"webhooks": emu.webhooks}
    elif parts == ["reset"]:
        if method == "POST":
            emu.reset()
            return 200, {"reset": True}
    elif parts == ["state"]:
        if method == "GET":
            return 200, emu.snapshot()
    elif len(parts) == 3 and parts[0] == "rooms" and parts[2] in ("join", "webhook"):
        if method == "POST":
            body = _json_object(raw)
            if parts[2] == "webhook":
                return 200, {"delivery": emu.send_webhook(parts[1], body)}
            return 200, emu.join(
                parts[1],
                user_id=_optional_str(body, "user_id"),
                member_id=_optional_str(body, "member_id"),
                deliver=_flag(body, "deliver", True),
            )
    elif len(parts) == 5 and parts[0] == "rooms" and parts[2] == "sessions" and parts[4] == "leave":
        if method == "POST":
            body = _json_object(raw)
            return 200, emu.leave(parts[1], parts[3], deliver=_flag(body, "deliver", True))
    else:
        return 404, {
            "message": f"No control route /_emulator/{'/'.join(parts)}; GET /_emulator/ lists them"
        }
    return 405, {"message": f"Method {method} not allowed"}


def handle(emu: Emulator, method: str, path: str, raw_body: bytes) -> Outcome:
    """Answer one request under ``/_emulator`` (not recorded, never faulted)."""
    parts = [unquote(p) for p in path[len(PREFIX) :].split("/") if p]
    try:
        status, payload = _dispatch(emu, method, parts, raw_body)
    except (EmulatorError, ValueError, TypeError) as exc:
        return Outcome(400, {"message": str(exc)})
    return Outcome(status, payload)
