"""Monthly usage per workspace: the sessions that joined, their distinct users and the meetings
that started in each month, counted from a room's sessions once its meeting has ended and read a
row per month (docs/meetings.md#usage). :func:`count_room` is the one place that counts."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

if TYPE_CHECKING:
    from .models import Room

#: A room's sessions written this long before it was last counted are looked at again: the
#: clocks of the site's servers may differ.
CLOCK_MARGIN: Final = timedelta(minutes=5)
#: Rooms the periodic sweep counts per pass.
SWEEP_LIMIT: Final = 500


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


def months_between(first: datetime, last: datetime) -> list[date]:
    """The months from the one of ``first`` to the one of ``last``, both included."""
    month, end = month_of(first), month_of(last)
    months = [month]
    while month < end:
        month = (month + timedelta(days=31)).replace(day=1)
        months.append(month)
    return months


def count_room(room_pk: int, using: str = "default") -> bool:
    """Count what changed in the room's sessions since it was last counted; whether it did.

    It runs under the room's lock, which webhooks take too, and only when no meeting of the
    room goes on: a meeting is counted once, when it has ended."""
    from .webhooks.effects import locked_room

    with transaction.atomic(using=using):
        room = locked_room(room_pk, using)
        if room is None or not room.usage_stale or room.meeting_started_at is not None:
            return False
        return recount(room, using)


def recount(room: Room, using: str) -> bool:
    """Bring the months of ``room``'s changed sessions in line with its sessions and with
    ``room.meetings()``. Other months are left alone, so pruned sessions keep their count."""
    from .meetings import merge
    from .models import Session

    rows = [
        (joined, left, user_id, updated)
        for joined, left, user_id, updated in Session.objects.using(using)
        .filter(room_id=room.pk, joined_at__isnull=False)
        .order_by()
        .values_list("joined_at", "left_at", "user_id", "updated_at")
        if joined is not None
    ]
    meetings = merge((joined, left) for joined, left, _, _ in rows)
    if any(meeting.ended_at is None for meeting in meetings):
        return False
    since = room.usage_counted_at and room.usage_counted_at - CLOCK_MARGIN
    starts = [meeting.started_at for meeting in meetings]
    months: set[date] = set()
    for joined, left, _, updated in rows:
        if since is None or updated >= since:
            # It lies in the last meeting that started at or before its join.
            start = starts[bisect_right(starts, joined) - 1]
            months.update(months_between(start, max(left or joined, joined)))
    counted = dict(room.usage_counted or {})
    for month in sorted(months):  # in order: two counts lock the months' rows alike
        joined_in = [user_id for joined, _, user_id, _ in rows if month_of(joined) == month]
        held = [meeting for meeting in meetings if month_of(meeting.started_at) == month]
        now = [len(joined_in), len(held), sum(meeting.seconds() for meeting in held)]
        before = counted.get(month.isoformat(), [0, 0, 0])
        if now == before == [0, 0, 0]:  # a month the room's sessions only run into
            continue
        changes = [after - earlier for after, earlier in zip(now, before, strict=True)]
        count_month(room.workspace, month, changes, {u for u in joined_in if u}, using)
        counted[month.isoformat()] = now
    type(room).objects.using(using).filter(pk=room.pk).update(
        usage_counted=counted, usage_counted_at=timezone.now(), usage_stale=False
    )
    return True


def count_month(
    workspace: str, month: date, changes: list[int], users: set[str], using: str
) -> None:
    """Add ``changes`` (sessions, meetings, meeting seconds) to the month's row, and ``users``
    not yet active in the month to its active users, under the row's lock."""
    from .models import ActiveUser, MonthlyUsage

    row = MonthlyUsage.objects.using(using).filter(workspace=workspace, month=month)
    if not locked(row):
        # ignore_conflicts: another room's first count of the month inserts the same row.
        MonthlyUsage.objects.using(using).bulk_create(
            [MonthlyUsage(workspace=workspace, month=month)], ignore_conflicts=True
        )
        locked(row)
    known = ActiveUser.objects.using(using).filter(
        workspace=workspace, month=month, user_id__in=users
    )
    new_users = sorted(users - set(known.values_list("user_id", flat=True))) if users else []
    ActiveUser.objects.using(using).bulk_create(
        ActiveUser(workspace=workspace, month=month, user_id=user_id) for user_id in new_users
    )
    sessions, meetings, seconds = changes
    if sessions or meetings or seconds or new_users:
        row.update(
            sessions=F("sessions") + sessions,
            meetings=F("meetings") + meetings,
            meeting_seconds=F("meeting_seconds") + seconds,
            active_users=F("active_users") + len(new_users),
        )


def locked(rows: QuerySet[Any]) -> bool:
    """Lock ``rows`` until the transaction ends; whether there were any."""
    return bool(list(rows.select_for_update().values_list("pk", flat=True)))


def count_stale(using: str = "default", limit: int = SWEEP_LIMIT) -> int:
    """Count the rooms whose sessions changed with no meeting going on (a count the webhooks
    did not queue, or whose task was lost); how many were counted."""
    from .models import Room

    stale = (
        Room.objects.using(using)
        .filter(usage_stale=True, meeting_started_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(count_room(pk, using) for pk in list(stale))


def monthly_usage(
    first: date, end: date, using: str = "default", now: datetime | None = None
) -> list[MonthUsage]:
    """Usage of the months from ``first`` up to ``end`` (excluded), by month then workspace.

    The meetings going on are added to the month they started in, up to now."""
    from .models import MonthlyUsage, Room

    now = now or timezone.now()
    figures: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in MonthlyUsage.objects.using(using).filter(month__gte=first, month__lt=end):
        figures[row.month, row.workspace] = [
            row.meetings,
            row.meeting_seconds,
            row.sessions,
            row.active_users,
        ]
    going_on = (
        Room.objects.using(using)
        .filter(meeting_started_at__isnull=False, meeting_started_at__lt=now)
        .order_by()
        .values_list("workspace", "meeting_started_at")
    )
    for workspace, started_at in going_on:
        assert started_at is not None  # filtered on it
        if first <= month_of(started_at) < end:
            ongoing = figures[month_of(started_at), workspace]
            ongoing[0] += 1
            ongoing[1] += int((now - started_at).total_seconds())
    return [
        MonthUsage(
            month=month,
            workspace=workspace,
            meetings=meetings,
            meeting_minutes=round(seconds / 60),
            sessions=sessions,
            active_users=users,
        )
        for (month, workspace), (meetings, seconds, sessions, users) in sorted(figures.items())
    ]
