"""Monthly usage counters: written as webhooks and reconciliation store sessions and as meetings
end, right under shuffled and duplicated events and concurrent first counts of a month, kept
when sessions are pruned, and read by the admin's usage report.

The property test compares with a plain reference computed from the stays themselves.
"""

from __future__ import annotations

import csv
import io
import itertools
import random
import threading
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from django_pagecall.emulator import Emulator
from django_pagecall.models import ActiveUser, MonthlyUsage, Room, Session
from django_pagecall.usage import count_stale, month_of, monthly_usage
from django_pagecall.webhooks import reconcile_sessions
from tests.test_meetings import PROPERTY, Stay, reference_meetings, stays_strategy
from tests.test_webhook_support import PagecallRoom, make_room, post, requires_server

pytestmark = pytest.mark.django_db(transaction=True)

USAGE = "/admin/django_pagecall/session/usage/"
FEBRUARY, MARCH, APRIL = date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1)
#: A minute before March in the site's time zone (UTC in the tests): stays cross the month.
EDGE = datetime(2026, 2, 28, 23, 59, tzinfo=UTC)
counter = itertools.count()


def event(room: PagecallRoom, action: str, session_id: str, user: str, moment: datetime) -> Any:
    return {
        "action": action,
        "payload": {
            "roomId": room.pagecall_id,
            "userId": user,
            "memberId": f"m-{user}",
            "sessionId": session_id,
            "sessionsCount": 1,
            "membersCount": 1,
            "timestamp": moment.isoformat().replace("+00:00", "Z"),
        },
    }


def events_of(room: PagecallRoom, stays: list[Stay], base: datetime) -> list[Any]:
    prefix = next(counter)
    events = []
    for i, stay in enumerate(stays):
        session_id = f"u-{prefix}-{i}"
        joined = base + timedelta(seconds=stay.joined)
        events.append(event(room, "sessionJoined", session_id, stay.user, joined))
        if stay.left is not None:
            left = base + timedelta(seconds=stay.left)
            events.append(event(room, "sessionLeft", session_id, stay.user, left))
    return events


def counters() -> dict[date, tuple[int, int, int, int]]:
    """The default workspace's stored figures: sessions, users, meetings and their seconds."""
    rows = {r.month: r for r in MonthlyUsage.objects.filter(workspace="default")}
    for month, row in rows.items():  # the counter is the number of users recorded
        assert row.active_users == ActiveUser.objects.filter(month=month).count()
    return {
        month: (row.sessions, row.active_users, row.meetings, row.meeting_seconds)
        for month, row in rows.items()
    }


def start_afresh() -> None:
    """Each example of a property test starts from empty tables (they are not rolled back)."""
    Room.objects.all().delete()
    MonthlyUsage.objects.all().delete()
    ActiveUser.objects.all().delete()


def reference(stays: list[Stay]) -> dict[date, tuple[int, ...]]:
    """Sessions and distinct users by the month of each join, and the meetings of the plain
    reference by the month of their start (every stay has left)."""
    sessions: dict[date, int] = defaultdict(int)
    users: dict[date, set[str]] = defaultdict(set)
    for stay in stays:
        month = month_of(EDGE + timedelta(seconds=stay.joined))
        sessions[month] += 1
        users[month].add(stay.user)
    meetings: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for start, end in reference_meetings(stays):
        assert end is not None
        figures = meetings[month_of(EDGE + timedelta(seconds=start))]
        figures[0] += 1
        figures[1] += end - start
    return {
        month: (sessions[month], len(users[month]), *meetings.get(month, [0, 0]))
        for month in sessions.keys() | meetings.keys()
    }


@PROPERTY
@given(stays=stays_strategy, seed=st.integers(0, 2**32 - 1), duplicates=st.integers(0, 4))
def test_counts_match_a_reference_whatever_the_order(
    pagecall_emulator: Emulator,
    client: Client,
    stays: list[Stay],
    seed: int,
    duplicates: int,
) -> None:
    start_afresh()
    room = make_room(pagecall_emulator, name=f"Room {next(counter)}")
    shuffler = random.Random(seed)
    # The stays still open leave last, after everything else has arrived in any order.
    ended = [Stay(s.user, s.joined, s.joined + 200 if s.left is None else s.left) for s in stays]
    bodies = events_of(room, ended, EDGE)
    last = [b for b, s in zip(bodies[1::2], stays, strict=False) if s.left is None]
    bodies = [b for b in bodies if b not in last]
    bodies += [shuffler.choice(bodies) for _ in range(duplicates)]
    shuffler.shuffle(bodies)
    for sent in bodies + last:
        assert post(client, sent, room.headers).status_code == 200

    count_stale()  # the periodic sweep: late events after the last meeting ended
    assert counters() == reference(ended)
    assert not Room.objects.get(pk=room.room.pk).usage_stale


def test_the_usage_report_per_month_and_workspace(
    pagecall_emulator: Emulator,
    pagecall_workspace: Any,
    admin_client: Client,
    client: Client,
) -> None:
    pagecall_workspace("school")
    one, two = make_room(pagecall_emulator, name="One"), make_room(pagecall_emulator, name="Two")
    Room.objects.filter(pk=two.room.pk).update(workspace="school")
    this_month = month_of(timezone.now())
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    earlier = timezone.now().replace(day=1, hour=0, minute=0) - timedelta(days=20)
    stays = [Stay("alice", 0, 3600), Stay("bob", 900, 1800), Stay("", 60, 120)]
    for sent in events_of(one, stays, earlier) + events_of(two, [Stay("alice", 0, 1800)], earlier):
        assert post(client, sent, headers_for(sent, one, two)).status_code == 200
    now = timezone.now()
    going_on = events_of(one, [Stay("carol", 0, None)], now - timedelta(minutes=10))
    assert post(client, going_on[0], one.headers).status_code == 200

    page = admin_client.get(USAGE).content.decode()
    assert "monthly active users" in page and "school" in page
    rows = list(
        csv.reader(io.StringIO(admin_client.get(USAGE, {"format": "csv"}).content.decode()))
    )
    assert rows == [
        ["month", "workspace", "meetings", "meeting_minutes", "sessions", "active_users"],
        [last_month.strftime("%Y-%m"), "default", "1", "60", "3", "2"],
        [last_month.strftime("%Y-%m"), "school", "1", "30", "1", "1"],
        # carol's meeting goes on: its time so far; its sessions count once it has ended
        [this_month.strftime("%Y-%m"), "default", "1", "10", "0", "0"],
    ]
    only_this = admin_client.get(USAGE, {"format": "csv", "months": "1"}).content.decode()
    assert last_month.strftime("%Y-%m") not in only_this


def headers_for(sent: Any, *rooms: PagecallRoom) -> dict[str, str]:
    (room,) = [r for r in rooms if r.pagecall_id == sent["payload"]["roomId"]]
    return room.headers


def test_pruning_sessions_keeps_the_usage(pagecall_emulator: Emulator, client: Client) -> None:
    room = make_room(pagecall_emulator)
    long_ago = timezone.now() - timedelta(days=90)
    for sent in events_of(room, [Stay("alice", 0, 600), Stay("bob", 60, 300)], long_ago):
        assert post(client, sent, room.headers).status_code == 200
    month = month_of(long_ago)
    before = counters()
    assert before[month] == (2, 2, 1, 600)
    assert monthly_usage(month, APRIL.replace(year=2100))[0].sessions == 2

    call_command("pagecall_prune", "--sessions", "30", stdout=io.StringIO())
    assert not Session.objects.exists()
    assert counters() == before
    # A later meeting of the room counts its own month and leaves the pruned one alone.
    for sent in events_of(room, [Stay("carol", 0, 60)], timezone.now() - timedelta(minutes=5)):
        assert post(client, sent, room.headers).status_code == 200
    assert counters()[month] == before[month]
    assert counters()[month_of(timezone.now())][:3] == (1, 1, 1)


def test_reconciled_sessions_are_counted_once(pagecall_emulator: Emulator, client: Client) -> None:
    room = make_room(pagecall_emulator)
    joined = room.join("alice")  # Pagecall has the session; its webhooks have not arrived
    left = room.leave(joined["payload"]["sessionId"])
    assert reconcile_sessions().created == 1
    month = month_of(timezone.now())
    assert counters()[month][:3] == (1, 1, 1)
    for held in (joined, left):
        assert post(client, held, room.headers).status_code == 200
    count_stale()
    assert counters()[month][:3] == (1, 1, 1)


def test_first_counts_of_a_month_at_once_from_several_rooms(
    pagecall_emulator: Emulator, client: Client
) -> None:
    requires_server("concurrent transactions")
    rooms = [make_room(pagecall_emulator, name=f"Room {i}") for i in range(4)]
    rounds = 3
    for n in range(rounds):
        moment = datetime(2025, 1 + n, 1, 0, 0, tzinfo=UTC)  # a month without a row yet
        leaves = []
        for i, room in enumerate(rooms):
            stay = events_of(room, [Stay("same-user", 0, 60 + i)], moment)
            assert post(client, stay[0], room.headers).status_code == 200
            leaves.append((room, stay[1]))
        ready = threading.Barrier(len(leaves))
        answers: list[int] = []

        def deliver(
            room: PagecallRoom, body: Any, ready: threading.Barrier, answers: list[int]
        ) -> None:
            try:
                ready.wait()  # each leave ends its room's meeting, which counts it
                answers.append(post(Client(), body, room.headers).status_code)
            finally:
                connections.close_all()

        threads = [
            threading.Thread(target=deliver, args=(*pair, ready, answers)) for pair in leaves
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers == [200] * len(leaves)
    months = counters()
    expected = (4, 1, 4, 60 + 61 + 62 + 63)
    assert [months[date(2025, 1 + n, 1)] for n in range(rounds)] == [expected] * rounds
    assert connection.vendor in ("postgresql", "mysql")


def test_a_month_is_a_month_of_the_sites_time_zone(settings: Any) -> None:
    settings.TIME_ZONE = "Asia/Seoul"
    assert month_of(datetime(2026, 2, 28, 16, 0, tzinfo=UTC)) == MARCH
    assert month_of(datetime(2026, 2, 28, 14, 59, tzinfo=UTC)) == FEBRUARY
    with timezone.override("America/New_York"):  # the active time zone does not count
        assert month_of(datetime(2026, 3, 1, 0, 30, tzinfo=UTC)) == MARCH
