"""Typed views of the objects Pagecall answers with (Room, Member, User, Session, Page).

Forgiving: a field of the wrong type, or Pagecall's ``"#DEPRECATED#"``, reads as ``None``, and
``raw`` keeps the whole JSON; only a missing identifier is an error. Error messages name JSON
types and keys, never values (an answer may hold an access token). See docs/client.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from .exceptions import PagecallResponseError

DEPRECATED = "#DEPRECATED#"

JSON = Mapping[str, Any]

_MAX_KEYS = 20
_MAX_KEY_LENGTH = 64


def describe(value: object) -> str:
    """What ``value`` is, for an error message: its JSON type and, for an object, its keys
    (sorted, at most :data:`_MAX_KEYS`). Never a value: it may be a secret (``access_token``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string" if value else "empty string"
    if isinstance(value, list | tuple):
        return f"array of {len(value)} item(s)"
    if isinstance(value, Mapping):
        if not value:
            return "empty object"
        keys = sorted(str(k)[:_MAX_KEY_LENGTH] for k in value)
        shown = ", ".join(repr(k) for k in keys[:_MAX_KEYS])
        more = f", ... {len(keys) - _MAX_KEYS} more" if len(keys) > _MAX_KEYS else ""
        return f"object with keys [{shown}{more}]"
    return type(value).__name__


def describe_missing(data: object, key: str) -> str:
    """Why ``data`` has no usable ``key``: what is there instead, without a value."""
    if isinstance(data, Mapping) and key in data:
        return f"{key!r} is {describe(data[key])} in {describe(data)}"
    return describe(data)


def _str(data: JSON, key: str) -> str | None:
    value = data.get(key)
    if not isinstance(value, str) or value == DEPRECATED:
        return None
    return value


def _required_str(data: JSON, key: str, kind: str) -> str:
    value = _str(data, key)
    if not value:
        raise PagecallResponseError(f"{kind} object without {key!r}: {describe_missing(data, key)}")
    return value


def _bool(data: JSON, key: str) -> bool | None:
    value = data.get(key)
    return value if isinstance(value, bool) else None


def _int(data: JSON, key: str) -> int | None:
    value = data.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def parse_datetime(value: object) -> datetime | None:
    """An aware datetime from Pagecall's ``2023-01-01T01:00:00.000Z``; ``None`` if absent or unreadable."""
    if not isinstance(value, str) or not value or value == DEPRECATED:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _dt(data: JSON, key: str) -> datetime | None:
    return parse_datetime(data.get(key))


def _mapping(value: object, kind: str) -> JSON:
    if not isinstance(value, Mapping):
        raise PagecallResponseError(f"expected a {kind} object, got {describe(value)}")
    return value


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    name: str | None
    type: str | None
    application_id: str | None = None
    layout: str | None = None
    thumbnail_url: str | None = None
    record: bool | None = None
    meeting_time: int | None = None
    started_at: datetime | None = None
    terminated_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, value: object) -> Self:
        data = _mapping(value, "room")
        return cls(
            id=_required_str(data, "id", "room"),
            name=_str(data, "name"),
            type=_str(data, "type"),
            application_id=_str(data, "application_id"),
            layout=_str(data, "layout"),
            thumbnail_url=_str(data, "thumbnail_url"),
            record=_bool(data, "record"),
            meeting_time=_int(data, "meeting_time"),
            started_at=_dt(data, "started_at"),
            terminated_at=_dt(data, "terminated_at"),
            created_at=_dt(data, "created_at"),
            updated_at=_dt(data, "updated_at"),
            raw=dict(data),
        )

    @property
    def is_terminated(self) -> bool:
        """Pagecall's ``is_terminated`` is deprecated; ``terminated_at`` is the truth."""
        return self.terminated_at is not None


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    user_id: str | None
    room_id: str | None
    type: str | None
    name: str | None = None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, value: object) -> Self:
        data = _mapping(value, "member")
        return cls(
            id=_required_str(data, "id", "member"),
            user_id=_str(data, "user_id"),
            room_id=_str(data, "room_id"),
            type=_str(data, "type"),
            name=_str(data, "name"),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    name: str | None = None
    profile_url: str | None = None
    default_member_type: str | None = None
    access_token: str | None = field(default=None, repr=False)
    id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, value: object) -> Self:
        data = _mapping(value, "user")
        return cls(
            user_id=_required_str(data, "user_id", "user"),
            name=_str(data, "name"),
            profile_url=_str(data, "profile_url"),
            default_member_type=_str(data, "default_member_type"),
            access_token=_str(data, "access_token"),
            id=_str(data, "id"),
            created_at=_dt(data, "created_at"),
            updated_at=_dt(data, "updated_at"),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    member_id: str | None
    user_id: str | None = None
    connected_at: datetime | None = None
    disconnected_at: datetime | None = None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, value: object) -> Self:
        data = _mapping(value, "session")
        return cls(
            id=_required_str(data, "id", "session"),
            member_id=_str(data, "member_id"),
            user_id=_str(data, "user_id"),
            connected_at=_dt(data, "connected_at"),
            disconnected_at=_dt(data, "disconnected_at"),
            raw=dict(data),
        )

    @property
    def is_connecting(self) -> bool:
        return self.disconnected_at is None


@dataclass(frozen=True, slots=True)
class Page:
    id: str
    entities: tuple[JSON, ...] = ()
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, value: object) -> Self:
        data = _mapping(value, "page")
        entities = data.get("entities")
        return cls(
            id=_required_str(data, "id", "page"),
            entities=tuple(e for e in entities if isinstance(e, Mapping))
            if isinstance(entities, list)
            else (),
            raw=dict(data),
        )
