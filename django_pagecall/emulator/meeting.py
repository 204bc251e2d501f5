"""Pagecall's meeting app at the emulator's root: ``/meet`` (entering and leaving through
:meth:`~.server.Emulator.join` and :meth:`~.server.Emulator.leave`, so the webhooks go out) and
``/replay``. Small HTML pages with forms, embeddable in an iframe; not recorded, never faulted,
and tokens are kept out of logs (docs/testing.md).
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote_plus, urlencode

from .api import Outcome
from .model import EmulatorError, Json, NotFound, Refused

if TYPE_CHECKING:
    from .server import Emulator

MEET, REPLAY = "/meet", "/replay"
PAGES = (MEET, REPLAY)
HTML = "text/html; charset=utf-8"
# No frame-ancestors and no X-Frame-Options: sites show these pages in an iframe.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "form-action 'self'; base-uri 'none'"
    ),
}
STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;padding:1.5rem;color:#1a1a1a;"
    "background:#f4f5f7}main{max-width:36rem;margin:auto;background:#fff;padding:1.5rem;"
    "border-radius:8px;box-shadow:0 1px 3px #0003}h1{margin:.25rem 0 1rem;font-size:1.5rem}"
    ".note{color:#555;font-size:.875rem;margin:0}button{font:inherit;padding:.5rem 1.25rem;"
    "border:0;border-radius:6px;background:#1f4fc4;color:#fff;cursor:pointer}"
    "button.leave{background:#b42318}"
)
TITLES = {
    400: "This link is not valid",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
}
_QUERY_PAIR = re.compile(r"(?<=[?&;])([^=&;\s\"]*)=([^&;\s\"]*)")


class PageError(Exception):
    def __init__(self, status: int, message: str, allow: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.allow = allow


def redact_tokens(text: str) -> str:
    """``text`` (a logged request line) with every ``access_token`` query value as ``***``."""

    def hide(match: re.Match[str]) -> str:
        return f"{match[1]}=***" if unquote_plus(match[1]) == "access_token" else match[0]

    return _QUERY_PAIR.sub(hide, text)


def _page(status: int, title: str, attributes: dict[str, str], body: str) -> Outcome:
    attrs = "".join(f' {name}="{html.escape(value)}"' for name, value in attributes.items())
    document = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)} · Pagecall emulator</title>\n"
        f'<link rel="icon" href="data:,">\n<style>{STYLE}</style>\n</head>\n<body>\n'
        f"<main{attrs}>\n{body}</main>\n</body>\n</html>\n"
    )
    return Outcome(status, document, dict(HEADERS), content_type=HTML)


def _error_page(status: int, message: str, allow: str | None = None) -> Outcome:
    title = TITLES.get(status, "Error")
    body = (
        '<p class="note">Pagecall emulator</p>\n'
        f'<h1 id="error-title">{html.escape(title)}</h1>\n'
        f'<p id="error" role="alert">{html.escape(message)}</p>\n'
    )
    outcome = _page(status, title, {"data-pagecall-emulator": "error"}, body)
    if allow is not None:
        outcome.headers["Allow"] = allow
    return outcome


def _visitor(emu: Emulator, query: dict[str, str]) -> tuple[Json, Json | None]:
    """The link's room, and the user its access token belongs to (None: no token, anonymous)."""
    room_id = query.get("room_id")
    if not room_id:
        raise PageError(400, "The link has no room_id.")
    room = emu.state.get_room(room_id)
    if "access_token" not in query:
        return room, None
    user = emu.state.user_by_token(query["access_token"])
    if user is None:
        raise PageError(403, "The link's access_token belongs to no Pagecall user.")
    return room, user


def _who(user: Json | None) -> str:
    if user is None:
        return '<p id="who">You are <strong>an anonymous guest</strong>.</p>\n'
    name = html.escape(user.get("name") or user["user_id"])
    user_id = html.escape(user["user_id"])
    return (
        f'<p id="who">You are <strong id="user-name">{name}</strong> '
        f'(user id <code id="user-id">{user_id}</code>).</p>\n'
    )


def _room_attributes(kind: str, room: Json, user: Json | None) -> dict[str, str]:
    attributes = {"data-pagecall-emulator": kind, "data-room-id": room["id"]}
    if user is not None:
        attributes["data-user-id"] = user["user_id"]
    return attributes


def _open_session(
    emu: Emulator, room_id: str, user_id: str | None, session_id: str | None
) -> Json | None:
    """The visitor's connected session: a user's (the one named, else the latest); an
    anonymous visitor's only by the session id their page carries."""
    connected = emu.state.list_sessions(room_id, user_id=user_id, is_connecting=True)
    if user_id is None:
        connected = [s for s in connected if "user_id" not in s]
    named = [s for s in connected if s["id"] == session_id]
    if named or user_id is None:
        return named[0] if named else None
    return connected[-1] if connected else None


def _meet_url(query: dict[str, str], session: Json | None) -> str:
    """This page's URL; an anonymous visitor's carries their session, their only identity."""
    keep: dict[str, str] = {k: query[k] for k in ("room_id", "access_token") if k in query}
    if session is not None and "access_token" not in query:
        keep["session_id"] = session["id"]
    return f"{MEET}?{urlencode(keep)}"


def _meeting(emu: Emulator, query: dict[str, str]) -> Outcome:
    room, user = _visitor(emu, query)
    user_id = user["user_id"] if user else None
    session = _open_session(emu, room["id"], user_id, query.get("session_id"))
    action = html.escape(_meet_url(query, session))
    if session is None:
        member_type = emu.state.admission(room["id"], user_id)
        state = (
            '<p id="status" role="status">You are not in the meeting; you would enter as '
            f"{html.escape(member_type)}.</p>\n"
            f'<form method="post" action="{action}">'
            '<button type="submit" id="enter" name="do" value="enter">Enter the meeting</button>'
            "</form>\n"
        )
    else:
        connected = len(emu.state.list_sessions(room["id"], is_connecting=True))
        session_id = html.escape(session["id"])
        state = (
            '<p id="status" role="status">You are in the meeting since '
            f'{html.escape(session["connected_at"])}: session <code id="session-id">'
            f"{session_id}</code>. Sessions connected in this room: {connected}.</p>\n"
            f'<form method="post" action="{action}">'
            f'<input type="hidden" name="session_id" value="{session_id}">'
            '<button type="submit" id="leave" class="leave" name="do" value="leave">Leave</button>'
            "</form>\n"
        )
    attributes = _room_attributes("meeting", room, user)
    attributes["data-state"] = "in" if session else "out"
    body = (
        '<p class="note">Pagecall emulator: the meeting page, without audio or video.</p>\n'
        f'<h1 id="room-name">{html.escape(room["name"])}</h1>\n'
        f"{_who(user)}"
        f'<p>Room <code id="room-id">{html.escape(room["id"])}</code> '
        f"({html.escape(room['type'])}).</p>\n{state}"
    )
    return _page(200, room["name"], attributes, body)


def _act(emu: Emulator, query: dict[str, str], raw_body: bytes) -> Outcome:
    """Enter or leave (``do=enter`` / ``do=leave``), then send the browser back to the page."""
    form = {k: v[-1] for k, v in parse_qs(raw_body.decode("utf-8", "replace")).items()}
    action = form.get("do")
    if action not in ("enter", "leave"):
        raise PageError(400, "The form must send do=enter or do=leave.")
    room, user = _visitor(emu, query)
    user_id = user["user_id"] if user else None
    session_id = form.get("session_id") or query.get("session_id")
    # One enter or leave at a time, so that a double click makes one session, not two.
    with emu.page_lock:
        session = _open_session(emu, room["id"], user_id, session_id)
        if action == "enter" and session is None:
            session = emu.join(room["id"], user_id=user_id)["session"]
        elif action == "leave" and session is not None:
            emu.leave(room["id"], session["id"])
            session = None
    location = _meet_url(query, session)
    return Outcome(303, "", {**HEADERS, "Location": location}, content_type=HTML)


def _replay(emu: Emulator, query: dict[str, str]) -> Outcome:
    room, user = _visitor(emu, query)
    if user is None and room["type"] != "open":
        raise PageError(403, f"The replay of a {room['type']} room needs an access_token.")
    body = (
        '<p class="note">Pagecall emulator: the replay page.</p>\n'
        f'<h1 id="room-name">{html.escape(room["name"])}</h1>\n'
        f"{_who(user)}"
        '<p id="status" role="status">The recording of this meeting would play here.</p>\n'
    )
    return _page(200, room["name"], _room_attributes("replay", room, user), body)


def _dispatch(emu: Emulator, method: str, path: str, query: dict[str, str], raw: bytes) -> Outcome:
    if method in ("GET", "HEAD"):
        return _meeting(emu, query) if path == MEET else _replay(emu, query)
    if method == "POST" and path == MEET:
        return _act(emu, query, raw)
    allow = "GET, HEAD, POST" if path == MEET else "GET, HEAD"
    raise PageError(405, f"{path} does not take {method} requests.", allow)


def handle(emu: Emulator, method: str, path: str, query: dict[str, str], raw: bytes) -> Outcome:
    """Answer one request for a page of :data:`PAGES`: the page, or a 4xx page saying why not."""
    try:
        return _dispatch(emu, method, path, query, raw)
    except PageError as exc:
        return _error_page(exc.status, str(exc), exc.allow)
    except NotFound as exc:
        return _error_page(404, str(exc))
    except Refused as exc:
        return _error_page(403, str(exc))
    except EmulatorError as exc:
        return _error_page(400, str(exc))
