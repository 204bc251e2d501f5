"""Monthly usage: counted as sessions join and meetings end, read a row per workspace and month
(docs/meetings.md#usage). :func:`count_session` and :func:`recount_meetings` run in the
transaction that stores what they count, under the room's lock."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

if TYPE_CHECKING:
    from .models import Room


class Counted(NamedTuple):
    """What usage counts of a session: its join, and its Pagecall user id."""

    joined_at: datetime | None
    user_id: str


NOT_STORED = Counted(None, "")
#: A room's sessions written this long before its meetings were last counted are counted again:
#: the clocks of the site's servers may differ.
CLOCK_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class MonthUsage:
    """What a workspace used in one month of the site's time zone."""

    month: date
    workspace: str
    meetings: int  # meetings that started in the month: ended, or going on
    meeting_minutes: int  # their length, rounded; one going on counts up to now
    sessions: int  # sessions that joined in the month
    active_users: int  # distinct Pagecall user ids among them


def month_of(moment: datetime) -> date:
    """The month ``moment`` falls in, in the site's time zone (``TIME_ZONE``)."""
    local = timezone.localtime(moment, timezone.get_default_timezone())
    return date(local.year, local.month, 1)


def count_session(workspace: str, before: Counted, after: Counted, using: str) -> None:
    """Count a session in the month of the first join stored for it, and its user among that
    month's active users once both are known; ``before`` and ``after`` are its stored values."""
    if after.joined_at is None:
        return
    month = month_of(before.joined_at or after.joined_at)
    first_join = before.joined_at is None
    new_user = bool(after.user_id) and (first_join or not before.user_id)
    users = int(new_user and first_active(workspace, month, after.user_id, using))
    add(workspace, month, using, sessions=int(first_join), active_users=users)


def recount_meetings(room: Room, using: str) -> None:
    """Bring the months of the room's meetings that changed since it was last counted in line
    with ``room.meetings()``, unless a meeting goes on: it is counted once it has ended.

    Months whose sessions did not change are left alone, so pruned sessions keep their count."""
    from .meetings import merge
    from .models import Session

    rows = (
        Session.objects.using(using)
        .filter(room_id=room.pk, joined_at__isnull=False)
        .order_by()
        .values_list("joined_at", "left_at", "updated_at")
    )
    spans = [(joined, left, updated) for joined, left, updated in rows if joined is not None]
    meetings = merge((joined, left) for joined, left, _ in spans)
    if any(meeting.ended_at is None for meeting in meetings):
        return
    since = room.meetings_counted_at and room.meetings_counted_at - CLOCK_MARGIN
    starts = [meeting.started_at for meeting in meetings]
    months: set[date] = set()
    for joined, left, updated in spans:
        if since is None or updated >= since:
            # It lies in the last meeting that started at or before its join.
            index = bisect_right(starts, joined)
            months.update(months_between(starts[index - 1], max(left or joined, joined)))
    counted = dict(room.meetings_counted or {})
    for month in months:
        held = [meeting for meeting in meetings if month_of(meeting.started_at) == month]
        now = [len(held), sum(meeting.seconds() for meeting in held)]
        before = counted.get(month.isoformat(), [0, 0])
        if now != before:
            add(
                room.workspace,
                month,
                using,
                meetings=now[0] - before[0],
                meeting_seconds=now[1] - before[1],
            )
            counted[month.isoformat()] = now
    room.meetings_counted, room.meetings_counted_at = counted, timezone.now()
    type(room).objects.using(using).filter(pk=room.pk).update(
        meetings_counted=counted, meetings_counted_at=room.meetings_counted_at
    )


def months_between(first: datetime, last: datetime) -> list[date]:
    """The months from the one of ``first`` to the one of ``last``, both included."""
    month, end = month_of(first), month_of(last)
    months = [month]
    while month < end:
        month = (month + timedelta(days=31)).replace(day=1)
        months.append(month)
    return months


def first_active(workspace: str, month: date, user_id: str, using: str) -> bool:
    """Record ``user_id`` as active in the month; whether it was not yet."""
    from .models import ActiveUser

    users = ActiveUser.objects.using(using)
    if users.filter(workspace=workspace, month=month, user_id=user_id).exists():
        return False
    try:
        with transaction.atomic(using=using):  # a savepoint: a concurrent insert wins cleanly
            users.create(workspace=workspace, month=month, user_id=user_id)
    except IntegrityError:
        return False
    return True


def add(workspace: str, month: date, using: str, **increments: int) -> None:
    """Add ``increments`` to the month's counters, creating its row the first time."""
    from .models import MonthlyUsage

    changes = {name: F(name) + value for name, value in increments.items() if value}
    if not changes:
        return
    row = MonthlyUsage.objects.using(using).filter(workspace=workspace, month=month)
    if not row.update(**changes):
        # ignore_conflicts: a concurrent first count of the month inserts the same row.
        MonthlyUsage.objects.using(using).bulk_create(
            [MonthlyUsage(workspace=workspace, month=month)], ignore_conflicts=True
        )
        row.update(**changes)


def monthly_usage(
    first: date, end: date, using: str = "default", now: datetime | None = None
) -> list[MonthUsage]:
    """Usage of the months from ``first`` up to ``end`` (excluded), by month then workspace.

    The meetings going on are added to the month they started in, up to now."""
    from .models import MonthlyUsage, Room

    now = now or timezone.now()
    rows = {
        (row.month, row.workspace): row
        for row in MonthlyUsage.objects.using(using).filter(month__gte=first, month__lt=end)
    }
    ongoing: dict[tuple[date, str], list[int]] = {}
    going_on = (
        Room.objects.using(using)
        .filter(meeting_started_at__isnull=False, meeting_started_at__lt=now)
        .order_by()
        .values_list("workspace", "meeting_started_at")
    )
    for workspace, started_at in going_on:
        assert started_at is not None  # filtered on it
        key = (month_of(started_at), workspace)
        if first <= key[0] < end:
            figures = ongoing.setdefault(key, [0, 0])
            figures[0] += 1
            figures[1] += int((now - started_at).total_seconds())
    usage = []
    for key in sorted(rows.keys() | ongoing.keys()):
        row = rows.get(key)
        meetings, seconds = ongoing.get(key, [0, 0])
        usage.append(
            MonthUsage(
                month=key[0],
                workspace=key[1],
                meetings=meetings + (row.meetings if row else 0),
                meeting_minutes=round((seconds + (row.meeting_seconds if row else 0)) / 60),
                sessions=row.sessions if row else 0,
                active_users=row.active_users if row else 0,
            )
        )
    return usage
