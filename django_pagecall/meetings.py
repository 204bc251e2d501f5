"""Meetings and attendance, computed in Python from a room's stored sessions, one query each:
right whatever the order in which the webhooks arrived (docs/meetings.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.utils import timezone

if TYPE_CHECKING:
    from .models import Room

#: A session's span: when it joined, and when it left (None while it is open).
Span = tuple[datetime, datetime | None]


@dataclass(frozen=True, slots=True)
class Meeting:
    """A span of time during which at least one session of the room was open."""

    started_at: datetime
    ended_at: datetime | None  # None while it goes on

    def seconds(self, now: datetime | None = None) -> int:
        """Its length in whole seconds; one that goes on counts up to ``now``."""
        end = self.ended_at or now or timezone.now()
        return max(int((end - self.started_at).total_seconds()), 0)


@dataclass(frozen=True, slots=True)
class Attendance:
    """One person's time in a room, by Pagecall user id."""

    user_id: str
    sessions: int
    first_joined_at: datetime | None
    last_left_at: datetime | None  # None while one of their sessions is open
    seconds: int  # overlapping sessions counted once; an open one up to now


def merge(spans: Iterable[Span]) -> list[Meeting]:
    """The union of ``spans`` as meetings, oldest first. Spans that touch or overlap are one
    meeting; a span that ends before it starts (clocks apart) lasts no time."""
    meetings: list[Meeting] = []
    start: datetime | None = None
    end: datetime | None = None
    for joined, left in sorted(spans, key=lambda span: span[0]):
        if left is not None and left < joined:
            left = joined
        if start is not None and (end is None or joined <= end):
            end = None if end is None or left is None else max(end, left)
            continue
        if start is not None:
            meetings.append(Meeting(start, end))
        start, end = joined, left
    if start is not None:
        meetings.append(Meeting(start, end))
    return meetings


def total_seconds(spans: Iterable[Span], now: datetime) -> int:
    """Time covered by ``spans``, overlaps counted once, open ones up to ``now``."""
    return sum(meeting.seconds(now) for meeting in merge(spans))


def meetings_of(room: Room) -> list[Meeting]:
    """The meetings of ``room``. A session whose ``sessionJoined`` is not stored yet is left out:
    its start is unknown."""
    from .models import Session

    rows = (
        Session.objects.using(room._state.db or "default")
        .filter(room_id=room.pk, joined_at__isnull=False)
        .order_by()
        .values_list("joined_at", "left_at")
    )
    return merge((joined, left) for joined, left in rows if joined is not None)


def attendance_of(room: Room, now: datetime | None = None) -> list[Attendance]:
    """One row per Pagecall user id with a session in ``room``, by first join (anonymous
    participants have no user id and are left out)."""
    from .models import Session

    now = now or timezone.now()
    rows = (
        Session.objects.using(room._state.db or "default")
        .filter(room_id=room.pk)
        .exclude(user_id="")
        .order_by()
        .values_list("user_id", "joined_at", "left_at")
    )
    by_user: dict[str, list[tuple[datetime | None, datetime | None]]] = defaultdict(list)
    for user_id, joined, left in rows:
        by_user[user_id].append((joined, left))
    result = []
    for user_id, sessions in by_user.items():
        joins = [joined for joined, _ in sessions if joined is not None]
        lefts = [left for _, left in sessions if left is not None]
        still_in = any(joined is not None and left is None for joined, left in sessions)
        spans = [(joined, left) for joined, left in sessions if joined is not None]
        result.append(
            Attendance(
                user_id=user_id,
                sessions=len(sessions),
                first_joined_at=min(joins) if joins else None,
                last_left_at=None if still_in or not lefts else max(lefts),
                seconds=total_seconds(spans, now),
            )
        )
    far = timezone.now() + timedelta(days=365 * 1000)
    return sorted(result, key=lambda row: (row.first_joined_at or far, row.user_id))
