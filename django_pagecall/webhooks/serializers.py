"""What a valid webhook body is: the Create Room page's ``{action, payload}``, checked with DRF serializers.

Owns: the serializers, :func:`parse_body` (raw bytes to a :class:`WebhookEvent`
or an :class:`InvalidBody` naming the fields at fault) and the shape of a
400's ``fields`` (``{"payload.timestamp": ["..."]}``). No database access, no
HTTP: the view and the replay both use it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeGuard

from django.utils.dateparse import parse_datetime
from rest_framework import ISO_8601, serializers

SESSION_JOINED: Final = "sessionJoined"
SESSION_LEFT: Final = "sessionLeft"
ACTIONS: Final = (SESSION_JOINED, SESSION_LEFT)


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One validated webhook: a participant joined or left a room."""

    action: str
    room_id: str  # Pagecall's room id
    session_id: str
    member_id: str
    user_id: str  # "" for an anonymous participant
    sessions_count: int
    members_count: int
    timestamp: datetime  # aware, UTC


class InvalidBody(Exception):
    """The body is not JSON, or not a valid webhook; ``fields`` maps dotted field paths to messages."""

    def __init__(self, code: str, detail: str, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.fields = fields or {}

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"error": self.code, "detail": self.detail}
        if self.fields:
            data["fields"] = self.fields
        return data

    def __str__(self) -> str:
        if not self.fields:
            return self.detail
        problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in self.fields.items())
        return f"{self.detail} {problems}"


# DRF's CharField and IntegerField turn 123 into "123" and "5" into 5; Pagecall's types are
# fixed, so a value of the wrong JSON type is an error rather than something to guess at.
class StrictCharField(serializers.CharField):
    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "Must be an integer."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class PayloadSerializer(serializers.Serializer[dict[str, Any]]):
    roomId = StrictCharField(max_length=64, trim_whitespace=False)
    userId = StrictCharField(
        max_length=255, required=False, allow_null=True, allow_blank=True, trim_whitespace=False
    )
    memberId = StrictCharField(max_length=64, trim_whitespace=False)
    sessionId = StrictCharField(max_length=64, trim_whitespace=False)
    sessionsCount = StrictIntegerField(min_value=0, max_value=2**31 - 1)
    membersCount = StrictIntegerField(min_value=0, max_value=2**31 - 1)
    # A time without a zone is read as UTC, which is what Pagecall writes ("...Z").
    timestamp = serializers.DateTimeField(input_formats=[ISO_8601], default_timezone=UTC)


class WebhookSerializer(serializers.Serializer[dict[str, Any]]):
    action = serializers.ChoiceField(choices=ACTIONS)
    payload = PayloadSerializer()


def flatten_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested ``serializer.errors`` as ``{"payload.timestamp": ["..."]}``."""
    if isinstance(errors, dict):
        flat: dict[str, list[str]] = {}
        for key, value in errors.items():
            flat.update(flatten_errors(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(errors, list) and errors and all(isinstance(e, dict) for e in errors):
        flat = {}
        for i, value in enumerate(errors):
            flat.update(flatten_errors(value, f"{prefix}[{i}]"))
        return flat
    messages = errors if isinstance(errors, list) else [errors]
    return {prefix or "non_field_errors": [str(m) for m in messages]}


def load_json(raw: bytes) -> Any:
    """The decoded body, or :class:`InvalidBody` (``invalid_json``)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidBody("invalid_json", f"The body is not JSON: {exc}") from None


_INT32_MAX: Final = 2**31 - 1


#: What DRF's CharField refuses in any string (ProhibitNullCharactersValidator,
#: ProhibitSurrogateCharactersValidator).
_PROHIBITED: Final = re.compile("[\x00\ud800-\udfff]")


def _plain_id(value: object, max_length: int) -> TypeGuard[str]:
    # What the Strict char fields accept.
    return type(value) is str and 0 < len(value) <= max_length and not _PROHIBITED.search(value)


def _plain_count(value: object) -> TypeGuard[int]:
    return type(value) is int and 0 <= value <= _INT32_MAX  # type() excludes bool


def plainly_valid(data: Any) -> WebhookEvent | None:
    """The event, when ``data`` is the ordinary shape of a valid webhook; otherwise ``None``.

    The serializer above is the definition of a valid body, and :func:`validate` asks it
    about everything this returns ``None`` for, so its verdicts and error messages are the
    only ones anybody sees. This only saves running eight DRF fields on the bodies
    Pagecall sends every time: plain types, ids, an ISO 8601 timestamp. It accepts
    nothing the serializer refuses and builds the same event (``tests/test_fuzz_webhook.py``
    holds it to that on generated and mutated bodies).
    """
    if type(data) is not dict:
        return None
    action, payload = data.get("action"), data.get("payload")
    if type(action) is not str or action not in ACTIONS or type(payload) is not dict:
        return None
    room_id, member_id, session_id = (
        payload.get("roomId"),
        payload.get("memberId"),
        payload.get("sessionId"),
    )
    user_id = payload.get("userId")
    sessions_count, members_count = payload.get("sessionsCount"), payload.get("membersCount")
    timestamp = payload.get("timestamp")
    if not (
        _plain_id(room_id, 64)
        and _plain_id(member_id, 64)
        and _plain_id(session_id, 64)
        and (user_id is None or user_id == "" or _plain_id(user_id, 255))
        and _plain_count(sessions_count)
        and _plain_count(members_count)
        and type(timestamp) is str
    ):
        return None
    try:
        moment = parse_datetime(timestamp)
        if moment is None:
            return None
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return WebhookEvent(
        action=action,
        room_id=room_id,
        session_id=session_id,
        member_id=member_id,
        user_id=user_id or "",
        sessions_count=sessions_count,
        members_count=members_count,
        timestamp=moment,
    )


def validate(data: Any) -> WebhookEvent:
    """A :class:`WebhookEvent` from decoded JSON, or :class:`InvalidBody` naming the fields."""
    plain = plainly_valid(data)
    return plain if plain is not None else validate_with_serializer(data)


def validate_with_serializer(data: Any) -> WebhookEvent:
    """:func:`validate`, always asking the serializer."""
    serializer = WebhookSerializer(data=data)
    if not serializer.is_valid():
        raise InvalidBody(
            "invalid",
            "The body is not a valid Pagecall webhook.",
            flatten_errors(serializer.errors),
        )
    action: str = serializer.validated_data["action"]
    p: dict[str, Any] = serializer.validated_data["payload"]
    return WebhookEvent(
        action=action,
        room_id=p["roomId"],
        session_id=p["sessionId"],
        member_id=p["memberId"],
        user_id=p.get("userId") or "",
        sessions_count=p["sessionsCount"],
        members_count=p["membersCount"],
        timestamp=p["timestamp"].astimezone(UTC),
    )


def parse_body(raw: bytes) -> WebhookEvent:
    return validate(load_json(raw))


def claimed_room_id(data: Any) -> str | None:
    """``payload.roomId`` when it is a string, read before (and whatever) validation says."""
    payload = data.get("payload") if isinstance(data, dict) else None
    room_id = payload.get("roomId") if isinstance(payload, dict) else None
    return room_id if isinstance(room_id, str) else None
