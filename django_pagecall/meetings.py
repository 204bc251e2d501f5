"""Meetings, attendance and monthly usage, computed in Python from the stored sessions, one query
each: right whatever the order in which the webhooks arrived (docs/meetings.md).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
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


@dataclass(frozen=True, slots=True)
class MonthUsage:
    """What the site used in one month (of the current time zone)."""

    month: date
    meetings: int  # meetings that started in the month
    meeting_minutes: int  # their length, rounded
    sessions: int  # sessions that joined in the month
    active_users: int  # distinct Pagecall user ids among them


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


def month_of(moment: datetime) -> date:
    local = timezone.localtime(moment)
    return date(local.year, local.month, 1)


class Months:
    """The month of the current time zone each moment of ``[since, until)`` falls in, found by
    bisecting the months' first instants rather than converting every moment."""

    def __init__(self, since: datetime, until: datetime) -> None:
        self.months = [month_of(since)]
        self.starts = [since]
        while True:
            following = self.months[-1].replace(day=28) + timedelta(days=4)
            first = following.replace(day=1)
            start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
            if start >= until:
                break
            self.months.append(first)
            self.starts.append(start)

    def of(self, moment: datetime) -> date:
        if moment < self.starts[0]:
            return month_of(moment)
        return self.months[bisect_right(self.starts, moment) - 1]


def monthly_usage(
    since: datetime, until: datetime, using: str = "default", now: datetime | None = None
) -> list[MonthUsage]:
    """Usage per month of the sessions that joined in ``[since, until)``, oldest month first.

    A meeting belongs to the month it started in; one that goes on counts up to now.
    """
    from .models import Session

    now = now or timezone.now()
    rows = (
        Session.objects.using(using)
        .filter(joined_at__gte=since, joined_at__lt=until)
        .order_by()
        .values_list("room_id", "user_id", "joined_at", "left_at")
    )
    months = Months(since, until)
    spans_by_room: dict[int, list[Span]] = defaultdict(list)
    sessions: dict[date, int] = defaultdict(int)
    users: dict[date, set[str]] = defaultdict(set)
    for room_id, user_id, joined, left in rows:
        assert joined is not None  # filtered on it
        month = months.of(joined)
        sessions[month] += 1
        if user_id:
            users[month].add(user_id)
        spans_by_room[room_id].append((joined, left))
    meetings: dict[date, int] = defaultdict(int)
    seconds: dict[date, int] = defaultdict(int)
    for spans in spans_by_room.values():
        for meeting in merge(spans):
            month = months.of(meeting.started_at)
            meetings[month] += 1
            seconds[month] += meeting.seconds(now)
    return [
        MonthUsage(
            month=month,
            meetings=meetings[month],
            meeting_minutes=round(seconds[month] / 60),
            sessions=sessions[month],
            active_users=len(users[month]),
        )
        for month in sorted(sessions)
    ]
