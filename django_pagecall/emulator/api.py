"""Pagecall's REST API (``/v1``) on top of :class:`~.state.State`: the request pipeline (route,
injected faults, API key, validation against the spec, the operation, the webhooks it causes,
the record) and one handler per ``operationId``. Sockets stay in :mod:`.transport`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict
from urllib.parse import unquote

from . import spec
from .faults import normalize_path
from .model import EmulatorError, Json
from .state import State
from .webhooks import WebhookEvent

if TYPE_CHECKING:
    from .server import Emulator

DEFAULT_LIMIT = 30
#: Lists Pagecall pages like rooms although the spec declares no offset/limit for them.
PAGED = {"listRooms", "ListMembers", "ListUsers"}
PAGING_PARAMS: dict[str, spec.Schema] = {
    "offset": {"type": "integer"},
    "limit": {"type": "integer"},
}


class RequestRecord(TypedDict):
    """One request the emulator received under the API base path."""

    method: str
    path: str  # as requested, without the query string: "/v1/rooms/abc"
    route: str | None  # spec template relative to /v1: "/rooms/{id}"; None for unknown paths
    operation: str | None  # spec operationId, e.g. "createRoom"
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # parsed JSON; the raw text when it was not JSON; None when empty
    status: int | None  # status answered; None when the connection was dropped unanswered
    fault: str | None  # "status", "delay", "drop-before", "drop-after" or None
    time: float  # epoch seconds when it arrived


@dataclass
class Outcome:
    """What the transport must do: answer ``status`` with ``payload``, or drop (status None).

    A ``str`` payload goes out as ``content_type``; anything else as JSON.
    """

    status: int | None
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/plain; charset=utf-8"


@dataclass
class Call:
    params: dict[str, str]
    query: dict[str, Any]
    body: Any


Result = tuple[Json, list[WebhookEvent]]
OperationHandler = Callable[[State, Call], Result]


def _paged(items: list[Json], key: str, query: dict[str, Any]) -> Json:
    offset = query.get("offset", 0)
    limit = query.get("limit", DEFAULT_LIMIT)
    if offset < 0 or limit < 0:
        raise spec.SpecError("offset and limit must be >= 0")
    paging = {"limit": limit, "offset": offset, "total": len(items)}
    return {key: items[offset : offset + limit], "paging": paging}


def _list_rooms(state: State, c: Call) -> Result:
    rooms = state.list_rooms(
        name=c.query.get("name"),
        layout=c.query.get("layout"),
        is_terminated=c.query.get("is_terminated"),
    )
    return _paged(rooms, "rooms", c.query), []


def _create_room(state: State, c: Call) -> Result:
    room = state.create_room(c.body)
    total = state.room_count()
    return {"room": room, "paging": {"limit": DEFAULT_LIMIT, "offset": 0, "total": total}}, []


def _update_room(state: State, c: Call) -> Result:
    room, events = state.update_room(c.params["id"], c.body)
    return {"room": room}, events


def _delete_room(state: State, c: Call) -> Result:
    room, events = state.delete_room(c.params["id"])
    return {"room": room}, events


def _sessions(state: State, c: Call) -> Result:
    sessions = state.list_sessions(
        c.params["room_id"],
        user_id=c.query.get("user_id"),
        is_connecting=c.query.get("is_connecting"),
    )
    return {"sessions": sessions}, []


def _message(state: State, c: Call) -> Result:
    state.send_message(c.params["room_id"], c.body["message"])
    return {"message": "sent"}, []


def _update_member(state: State, c: Call) -> Result:
    member, events = state.update_member(c.params["room_id"], c.params["member_id"], c.body)
    return {"member": member}, events


OPERATIONS: dict[str, OperationHandler] = {
    "listRooms": _list_rooms,
    "createRoom": _create_room,
    "getRoom": lambda s, c: ({"room": s.get_room(c.params["id"])}, []),
    "updateRoom": _update_room,
    "deleteRoom": _delete_room,
    "GetRoomSessions": _sessions,
    "CreateRoomsPage": lambda s, c: ({"pages": s.create_pages(c.params["room_id"], c.body)}, []),
    "roomsSendMessage": _message,
    "ListMembers": lambda s, c: (
        _paged(s.list_members(c.params["room_id"]), "members", c.query),
        [],
    ),
    "CreateMember": lambda s, c: ({"member": s.create_member(c.params["room_id"], c.body)}, []),
    "GetMember": lambda s, c: (
        {"member": s.get_member(c.params["room_id"], c.params["member_id"])},
        [],
    ),
    "UpdateMember": _update_member,
    "ListUsers": lambda s, c: (
        _paged(s.list_users(c.query.get("email_search_query")), "users", c.query),
        [],
    ),
    "createUser": lambda s, c: ({"user": s.upsert_user(c.body)}, []),
    "GetUser": lambda s, c: ({"user": s.get_user(c.params["user_id"])}, []),
    "UpdateUser": lambda s, c: ({"user": s.update_user(c.params["user_id"], c.body)}, []),
    "DeleteUser": lambda s, c: ({"user": s.delete_user(c.params["user_id"])}, []),
}


def parse_body(raw: bytes) -> tuple[Any, bool]:
    """(parsed JSON or raw text or None, whether it was valid JSON or empty)."""
    if not raw.strip():
        return None, True
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text), True
    except ValueError:
        return text, False


#: Pagecall's own word, then what the emulator knows that Pagecall would not say.
UNAUTHENTICATED = (
    "Unauthenticated (emulator: the Bearer key does not match this emulator's API key, set by "
    "--api-key, default test-api-key; set PAGECALL['API_KEY'] to it)"
)


def _error(status: int, message: str) -> Outcome:
    return Outcome(status, {"message": message})


def _authenticated(headers: dict[str, str], api_key: str) -> bool:
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, token = value.strip().partition(" ")
    return scheme.lower() == "bearer" and token.strip() == api_key


def _run(
    emu: Emulator,
    op: spec.Operation,
    params: dict[str, str],
    query: dict[str, str],
    body: Any,
    body_ok: bool,
    headers: dict[str, str],
) -> Outcome:
    if not _authenticated(headers, emu.api_key):
        return _error(400, UNAUTHENTICATED)
    declared = op.query_parameters()
    if op.operation_id in PAGED:
        declared = {**PAGING_PARAMS, **declared}
    try:
        coerced = {n: spec.coerce_query(n, query[n], s) for n, s in declared.items() if n in query}
        if op.request_schema is not None:
            if not body_ok:
                return _error(400, "Request body is not valid JSON")
            body = {} if body is None else body
            spec.validate(body, op.request_schema)
        result, events = OPERATIONS[op.operation_id](emu.state, Call(params, coerced, body))
    except (spec.SpecError, EmulatorError) as exc:
        return _error(400, str(exc))
    emu.deliver_events(events)
    return Outcome(200, result)


def handle(
    emu: Emulator,
    method: str,
    raw_path: str,
    query: dict[str, str],
    headers: dict[str, str],
    raw_body: bytes,
) -> Outcome:
    """Answer one API request (``raw_path`` starts with the base path) and record it."""
    arrived = time.time()
    body, body_ok = parse_body(raw_body)
    relative = normalize_path(raw_path, emu.base_path)
    found = spec.find_route(relative)
    template = found[0].template if found else None
    op = found[0].operations.get(method) if found else None
    fault = emu.take_fault(method, template, relative)
    fault_name: str | None = None
    if fault is not None and fault.delay:
        fault_name = "delay"
        generation = emu.generation
        time.sleep(fault.delay)
        if emu.generation != generation:  # reset while waiting: belongs to a finished test
            return Outcome(None)
    if fault is not None and fault.drop == "before":
        outcome, fault_name = Outcome(None), "drop-before"
    elif fault is not None and fault.status is not None:
        payload = {"message": "injected"} if fault.body is None else fault.body
        outcome, fault_name = Outcome(fault.status, payload), "status"
    elif found is None or not raw_path.startswith(emu.base_path + "/"):
        outcome = _error(404, f"No route for {unquote(raw_path)}")
    elif op is None:
        allow = ", ".join(sorted(found[0].operations))
        outcome = _error(405, f"Method {method} not allowed on {found[0].template}")
        outcome.headers["Allow"] = allow
    else:
        outcome = _run(emu, op, found[1], query, body, body_ok, headers)
    if fault is not None and fault.drop == "after":
        outcome, fault_name = Outcome(None), "drop-after"
    emu.record(
        RequestRecord(
            method=method,
            path=raw_path,
            route=template,
            operation=op.operation_id if op else None,
            query=query,
            headers=headers,
            body=body,
            status=outcome.status,
            fault=fault_name,
            time=arrived,
        )
    )
    return outcome
