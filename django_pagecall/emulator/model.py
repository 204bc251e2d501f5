"""The emulated workspace's records (Room, Member, User, Session) and their JSON as the API
answers it, ids and timestamps in Pagecall's formats, :class:`EmulatorError` (a 400, of which
:class:`NotFound` and :class:`Refused` are kinds), and :class:`Store`: the dicts behind one
re-entrant lock, with the lookups every part shares.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DEPRECATED = "#DEPRECATED#"
DEFAULT_LAYOUT = "SixAll"
Json = dict[str, Any]


class EmulatorError(ValueError):
    """Something Pagecall would refuse; the API answers it as 400 ``{"message": ...}``."""


class NotFound(EmulatorError):
    """An unknown room, member, user or session (the meeting page answers it as 404)."""


class Refused(EmulatorError):
    """A participant Pagecall would not let into a meeting (the meeting page answers 403)."""


def new_id() -> str:
    """A 24-character lowercase hex id, like Pagecall's (MongoDB ObjectId-sized)."""
    return secrets.token_hex(12)


def now_iso() -> str:
    """Now as Pagecall writes times: ``2023-01-01T01:00:00.000Z``."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@dataclass
class Room:
    id: str
    type: str
    name: str
    record: bool
    max_meeting_seconds: int | None
    webhook: Json | None
    created_at: str
    updated_at: str
    layout: str = DEFAULT_LAYOUT
    started_at: str | None = None
    terminated_at: str | None = None
    meeting_seconds: float = 0.0
    multi_since: float | None = None  # monotonic time since when >= 2 sessions are connected
    pages: list[Json] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    # The room's members by id, in the order they were added (the same objects as the store's
    # members): a member lookup or addition looks at its room's members only, not at every
    # member of the workspace.
    members: dict[str, Member] = field(default_factory=dict, repr=False)


@dataclass
class Member:
    id: str
    room_id: str
    user_id: str | None  # None: an anonymous participant
    type: str
    name: str | None = None

    def as_api(self) -> Json:
        out: Json = {"id": self.id}
        if self.user_id is not None:
            out["user_id"] = self.user_id
        out.update(room_id=self.room_id, type=self.type)
        return out


@dataclass
class User:
    id: str
    user_id: str
    access_token: str
    default_member_type: str
    created_at: str
    updated_at: str
    name: str | None = None
    profile_url: str | None = None

    def as_api(self) -> Json:
        out: Json = {"id": self.id, "user_id": self.user_id}
        if self.name is not None:
            out["name"] = self.name
        if self.profile_url is not None:
            out["profile_url"] = self.profile_url
        out.update(
            default_member_type=self.default_member_type,
            access_token=self.access_token,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )
        return out


@dataclass
class Session:
    id: str
    room_id: str
    member_id: str
    user_id: str | None
    connected_at: str
    disconnected_at: str | None = None

    def as_api(self) -> Json:
        out: Json = {"id": self.id, "member_id": self.member_id}
        if self.user_id is not None:
            out["user_id"] = self.user_id
        out["connected_at"] = self.connected_at
        if self.disconnected_at is not None:
            out["disconnected_at"] = self.disconnected_at
        return out


class Store:
    """The workspace's records behind one lock, and the lookups that answer 400 when missing."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.application_id = new_id()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self._rooms: dict[str, Room] = {}
            self._members: dict[str, Member] = {}
            self._users: dict[str, User] = {}
            self._sessions: dict[str, Session] = {}

    def room_api(self, room: Room) -> Json:
        """A Room exactly as the spec lists its fields (deprecated ones as Pagecall sends them)."""
        meeting = room.meeting_seconds
        if room.multi_since is not None:
            meeting += time.monotonic() - room.multi_since
        out: Json = {
            "id": room.id,
            "application_id": self.application_id,
            "type": room.type,
            "created_user_id": DEPRECATED,
            "name": room.name,
            "thumbnail_url": f"https://thumbnail.pagecall.invalid/{room.id}.png",
            "last_thumbnail_updated_at": DEPRECATED,
            "room_template_id": DEPRECATED,
            "layout": room.layout,
            "record": room.record,
            "meeting_time": int(meeting),
            "is_terminated": DEPRECATED,
            "is_ephemeral": DEPRECATED,
            "is_recurring": DEPRECATED,
        }
        if room.started_at is not None:
            out["started_at"] = room.started_at
        if room.terminated_at is not None:
            out["terminated_at"] = room.terminated_at
        out["updated_at"] = room.updated_at
        out["created_at"] = room.created_at
        return out

    def _room(self, room_id: str) -> Room:
        room = self._rooms.get(room_id)
        if room is None:
            raise NotFound(f"Room {room_id!r} not found")
        return room

    def _member(self, room: Room, key: str) -> Member:
        """A member of ``room`` by its generated id, else by its ``user_id``."""
        found = room.members.get(key)
        if found is not None:
            return found
        for member in room.members.values():
            if member.user_id == key:
                return member
        raise NotFound(f"Member {key!r} not found in room {room.id!r}")

    def _add_member(self, room: Room, user_id: str | None, type_: str, name: str | None) -> Member:
        """A new member, or the room's existing member for ``user_id`` updated."""
        if user_id is not None:
            for member in room.members.values():
                if member.user_id == user_id:
                    member.type = type_
                    member.name = name if name is not None else member.name
                    return member
        member = Member(new_id(), room.id, user_id, type_, name)
        self._members[member.id] = member
        room.members[member.id] = member
        return member

    def _user(self, user_id: str) -> User:
        user = self._users.get(user_id)
        if user is None:
            raise NotFound(f"User {user_id!r} not found")
        return user
