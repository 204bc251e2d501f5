"""What a valid webhook body is: the Create Room page's ``{action, payload}``, checked with
DRF serializers; an :class:`InvalidBody` names the fields at fault for the 400's body. An
action the app does not know needs only a string ``action`` and an object ``payload``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from django.utils import timezone
from rest_framework import ISO_8601, serializers

SESSION_JOINED: Final = "sessionJoined"
SESSION_LEFT: Final = "sessionLeft"
ACTIONS: Final = (SESSION_JOINED, SESSION_LEFT)
#: The longest ``action`` stored (``WebhookDelivery.action``).
ACTION_MAX_LENGTH: Final = 64
SURROGATE: Final = re.compile("[\ud800-\udfff]")


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


@dataclass(frozen=True, slots=True)
class OtherEvent:
    """A well-formed webhook whose action the app does not know: stored and announced only."""

    action: str
    room_id: str | None  # payload.roomId, when it is a string


Event = WebhookEvent | OtherEvent


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


#: How far ahead of the site's clock an event's timestamp may be (clocks are not in step).
MAX_CLOCK_AHEAD = timedelta(hours=1)


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

    def validate_timestamp(self, value: datetime) -> datetime:
        # The newest timestamp wins the room's counters: one from the far future would freeze them.
        if value > timezone.now() + MAX_CLOCK_AHEAD:
            raise serializers.ValidationError(
                f"Is more than {MAX_CLOCK_AHEAD} ahead of this site's clock."
            )
        return value


class WebhookSerializer(serializers.Serializer[dict[str, Any]]):
    action = serializers.ChoiceField(choices=ACTIONS)
    payload = PayloadSerializer()


class ActionField(StrictCharField):
    """An action's name as the database can store it: no NUL (CharField), no lone surrogate."""

    default_error_messages = {
        "invalid": "Must be a string.",
        "surrogate": "Must be well-formed Unicode.",
    }

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if SURROGATE.search(value):
            self.fail("surrogate")
        return value


class OtherWebhookSerializer(serializers.Serializer[dict[str, Any]]):
    """Webhooks Pagecall may add later: any other action, with an object as its payload."""

    action = ActionField(max_length=ACTION_MAX_LENGTH, trim_whitespace=False)
    payload = serializers.DictField()


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


def validate(data: Any) -> Event:
    """A :class:`WebhookEvent` (or, for another action, an :class:`OtherEvent`) from decoded
    JSON, or :class:`InvalidBody` naming the fields."""
    named = data.get("action") if isinstance(data, dict) else None
    if isinstance(named, str) and named not in ACTIONS:
        return validate_other(data)
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


def validate_other(data: Any) -> OtherEvent:
    serializer = OtherWebhookSerializer(data=data)
    if not serializer.is_valid():
        raise InvalidBody(
            "invalid",
            "The body is not a valid Pagecall webhook.",
            flatten_errors(serializer.errors),
        )
    return OtherEvent(action=serializer.validated_data["action"], room_id=claimed_room_id(data))


def parse_body(raw: bytes) -> Event:
    return validate(load_json(raw))


def claimed_room_id(data: Any) -> str | None:
    """``payload.roomId`` when it is a string, read before (and whatever) validation says."""
    payload = data.get("payload") if isinstance(data, dict) else None
    room_id = payload.get("roomId") if isinstance(payload, dict) else None
    return room_id if isinstance(room_id, str) else None
