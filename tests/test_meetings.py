"""Meetings and attendance: ``room.meetings()`` and ``room.attendance()`` from the stored
sessions, and the ``meeting_started`` / ``meeting_ended`` signals as webhooks arrive, in any
order and with duplicates, and as the emulator sends real joins and leaves.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_pagecall import signals
from django_pagecall.emulator import Emulator
from django_pagecall.meetings import Attendance, Meeting, attendance_of, merge
from django_pagecall.models import Room, Session
from tests.test_webhook_support import WEBHOOK_PATH, PagecallRoom, make_room, post

pytestmark = pytest.mark.django_db(transaction=True)

BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = BASE + timedelta(days=1)
counter = itertools.count()


@dataclass(frozen=True)
class Stay:
    """One session: who, when it joined and when it left (seconds after BASE; None: open)."""

    user: str
    joined: int
    left: int | None


def at(second: int) -> datetime:
    return BASE + timedelta(seconds=second)


def body(room: PagecallRoom, action: str, session_id: str, stay: Stay, second: int) -> Any:
    return {
        "action": action,
        "payload": {
            "roomId": room.pagecall_id,
            "userId": stay.user,
            "memberId": f"m-{stay.user}",
            "sessionId": session_id,
            "sessionsCount": 1,
            "membersCount": 1,
            "timestamp": at(second).isoformat().replace("+00:00", "Z"),
        },
    }


def events_of(room: PagecallRoom, stays: list[Stay]) -> list[tuple[int, int, Any]]:
    """``(second, 0 for a join / 1 for a leave, body)`` for every stay."""
    events = []
    prefix = next(counter)
    for i, stay in enumerate(stays):
        session_id = f"s-{prefix}-{i}"
        events.append((stay.joined, 0, body(room, "sessionJoined", session_id, stay, stay.joined)))
        if stay.left is not None:
            events.append((stay.left, 1, body(room, "sessionLeft", session_id, stay, stay.left)))
    return events


# -- the plain reference -------------------------------------------------------------------------
# The property tests post bodies shaped like the emulator's, with chosen timestamps, shuffled and
# duplicated, and compare with this computation, too plain to be wrong: every covered instant,
# counted one by one.


def reference_meetings(stays: list[Stay]) -> list[tuple[int, int | None]]:
    """Mark every covered half-second (a stay covers [2*joined, 2*left]: touching stays meet),
    then read the runs of marked points."""
    horizon = 2 * (max((s.left or s.joined) for s in stays) + 2)
    covered = [False] * (horizon + 1)
    open_from = min((2 * s.joined for s in stays if s.left is None), default=None)
    for stay in stays:
        end = 2 * stay.left if stay.left is not None else horizon
        for point in range(2 * stay.joined, max(end, 2 * stay.joined) + 1):
            covered[point] = True
    runs: list[tuple[int, int | None]] = []
    point = 0
    while point <= horizon:
        if covered[point]:
            start = point
            while point + 1 <= horizon and covered[point + 1]:
                point += 1
            ongoing = open_from is not None and open_from <= point and point == horizon
            runs.append((start // 2, None if ongoing else point // 2))
        point += 1
    return runs


def reference_attendance(
    stays: list[Stay], now: int
) -> list[tuple[str, int, int, int | None, int]]:
    rows = []
    for user in sorted({s.user for s in stays}):
        mine = [s for s in stays if s.user == user]
        seconds: set[int] = set()
        for stay in mine:
            seconds.update(range(stay.joined, stay.left if stay.left is not None else now))
        still_in = any(s.left is None for s in mine)
        last = None if still_in else max(s.left for s in mine if s.left is not None)
        rows.append((user, len(mine), min(s.joined for s in mine), last, len(seconds)))
    return sorted(rows, key=lambda row: (row[2], row[0]))


def as_seconds(meetings: list[Meeting]) -> list[tuple[int, int | None]]:
    def second(moment: datetime) -> int:
        return int((moment - BASE).total_seconds())

    return [(second(m.started_at), m.ended_at and second(m.ended_at)) for m in meetings]


def attendance_rows(rows: list[Attendance]) -> list[tuple[str, int, int, int | None, int]]:
    def second(moment: datetime | None) -> int | None:
        return None if moment is None else int((moment - BASE).total_seconds())

    return [
        (r.user_id, r.sessions, second(r.first_joined_at) or 0, second(r.last_left_at), r.seconds)
        for r in rows
    ]


# -- meeting signals -------------------------------------------------------------------------------


class MeetingLog:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int, datetime, datetime | None]] = []

    def for_room(self, room: Room) -> list[tuple[str, datetime, datetime | None]]:
        return [(name, start, end) for name, pk, start, end in self.sent if pk == room.pk]


@pytest.fixture
def meeting_signals() -> Iterator[MeetingLog]:
    log = MeetingLog()

    def started(sender: Any, room: Room, started_at: datetime, **kwargs: Any) -> None:
        assert sender is Room
        log.sent.append(("started", room.pk, started_at, None))

    def ended(sender: Any, room: Room, started_at: datetime, ended_at: datetime, **kw: Any) -> None:
        assert sender is Room
        log.sent.append(("ended", room.pk, started_at, ended_at))

    signals.meeting_started.connect(started, weak=False)
    signals.meeting_ended.connect(ended, weak=False)
    yield log
    signals.meeting_started.disconnect(started)
    signals.meeting_ended.disconnect(ended)


def as_meetings(sent: list[tuple[str, datetime, datetime | None]]) -> list[Meeting]:
    """The meetings the signals told of, checking that they pair up: each end closes the start
    before it, with the same ``started_at``."""
    told: list[Meeting] = []
    going: datetime | None = None
    for name, start, end in sent:
        if name == "started":
            assert going is None, sent
            going = start
        else:
            assert going == start, sent
            assert end is not None and end >= start
            told.append(Meeting(start, end))
            going = None
    if going is not None:
        told.append(Meeting(going, None))
    return told


stays_strategy = st.lists(
    st.builds(
        Stay,
        user=st.sampled_from(["alice", "bob", "carol"]),
        joined=st.integers(0, 120),
        left=st.none(),
    ).flatmap(
        lambda s: st.builds(
            Stay,
            user=st.just(s.user),
            joined=st.just(s.joined),
            left=st.one_of(st.none(), st.integers(s.joined, s.joined + 60)),
        )
    ),
    min_size=1,
    max_size=8,
)
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY
@given(stays=stays_strategy, seed=st.integers(0, 2**32 - 1), duplicates=st.integers(0, 4))
def test_meetings_and_attendance_whatever_the_order(
    pagecall_emulator: Emulator,
    client: Client,
    meeting_signals: MeetingLog,
    stays: list[Stay],
    seed: int,
    duplicates: int,
) -> None:
    room = make_room(pagecall_emulator, name=f"Room {next(counter)}")
    shuffler = random.Random(seed)
    bodies = [b for _, _, b in events_of(room, stays)]
    bodies += [shuffler.choice(bodies) for _ in range(duplicates)]
    shuffler.shuffle(bodies)
    for sent in bodies:
        assert post(client, sent, room.headers).status_code == 200

    stored = Room.objects.get(pk=room.room.pk)
    assert as_seconds(stored.meetings()) == reference_meetings(stays)
    assert attendance_rows(attendance_of(stored, now=NOW)) == reference_attendance(
        stays, int((NOW - BASE).total_seconds())
    )
    told = as_meetings(meeting_signals.for_room(stored))
    anyone_in = any(s.left is None for s in stays)
    assert (told[-1].ended_at is None) == anyone_in if told else not anyone_in
    assert (stored.meeting_started_at is None) == (not anyone_in)


@PROPERTY
@given(stays=stays_strategy, seed=st.integers(0, 2**32 - 1), duplicates=st.integers(0, 4))
def test_in_order_the_signals_tell_the_meetings(
    pagecall_emulator: Emulator,
    client: Client,
    meeting_signals: MeetingLog,
    stays: list[Stay],
    seed: int,
    duplicates: int,
) -> None:
    room = make_room(pagecall_emulator, name=f"Room {next(counter)}")
    ordered = [b for _, _, b in sorted(events_of(room, stays), key=lambda e: (e[0], e[1]))]
    shuffler = random.Random(seed)
    for _ in range(duplicates):  # a copy arrives after its original: a duplicate
        index = shuffler.randrange(len(ordered))
        ordered.insert(shuffler.randrange(index + 1, len(ordered) + 1), ordered[index])
    for sent in ordered:
        assert post(client, sent, room.headers).status_code == 200

    stored = Room.objects.get(pk=room.room.pk)
    assert as_meetings(meeting_signals.for_room(stored)) == stored.meetings()


def test_a_leave_before_its_join_starts_no_meeting_but_counts_in_meetings(
    pagecall_emulator: Emulator, client: Client, meeting_signals: MeetingLog
) -> None:
    room = make_room(pagecall_emulator)
    (join, leave) = [b for _, _, b in events_of(room, [Stay("alice", 10, 20)])]
    assert post(client, leave, room.headers).status_code == 200
    assert post(client, join, room.headers).status_code == 200
    assert meeting_signals.sent == []
    assert room.room.meetings() == [Meeting(at(10), at(20))]


def test_a_late_join_does_not_move_the_announced_start(
    pagecall_emulator: Emulator, client: Client, meeting_signals: MeetingLog
) -> None:
    room = make_room(pagecall_emulator)
    alice, bob = events_of(room, [Stay("alice", 30, 60)]), events_of(room, [Stay("bob", 10, 40)])
    for sent in (alice[0], bob[0], bob[1], alice[1]):
        assert post(client, sent[2], room.headers).status_code == 200
    assert meeting_signals.for_room(room.room) == [
        ("started", at(30), None),
        ("ended", at(30), at(60)),
    ]
    assert room.room.meetings() == [Meeting(at(10), at(60))]


def test_the_end_is_the_latest_leave_when_leaves_arrive_out_of_order(
    pagecall_emulator: Emulator, client: Client, meeting_signals: MeetingLog
) -> None:
    room = make_room(pagecall_emulator)
    alice, bob = events_of(room, [Stay("alice", 0, 50)]), events_of(room, [Stay("bob", 5, 30)])
    for sent in (alice[0], bob[0], alice[1], bob[1]):
        assert post(client, sent[2], room.headers).status_code == 200
    assert meeting_signals.for_room(room.room)[-1] == ("ended", at(0), at(50))


def test_meetings_from_the_emulator_over_http(
    pagecall_emulator: Emulator, live_server: Any, meeting_signals: MeetingLog
) -> None:
    room = make_room(pagecall_emulator, webhook_url=live_server.url + WEBHOOK_PATH)
    emu, room_id = pagecall_emulator, room.pagecall_id
    alice = emu.join(room_id, user_id="alice")
    bob = emu.join(room_id, user_id="bob")
    emu.leave(room_id, alice["session"]["id"])
    emu.leave(room_id, bob["session"]["id"])
    carol = emu.join(room_id, user_id="carol")
    assert all(d["status"] == 200 for d in emu.webhooks)

    meetings = room.room.meetings()
    assert len(meetings) in (1, 2)  # two unless carol joined within the same millisecond
    assert meetings[-1].ended_at is None
    sessions = {s.user_id: s for s in Session.objects.all()}
    told = meeting_signals.for_room(room.room)
    assert told[0] == ("started", sessions["alice"].joined_at, None)
    assert told[1] == ("ended", sessions["alice"].joined_at, sessions["bob"].left_at)
    assert told[2] == ("started", sessions["carol"].joined_at, None)
    assert len(told) == 3
    emu.leave(room_id, carol["session"]["id"])
    assert meeting_signals.for_room(room.room)[3][0] == "ended"
    rows = {row.user_id: row for row in room.room.attendance()}
    assert set(rows) == {"alice", "bob", "carol"}
    assert rows["alice"].sessions == 1
    assert rows["alice"].last_left_at == sessions["alice"].left_at
    assert rows["carol"].last_left_at is not None


def test_merge_of_touching_overlapping_and_open_spans() -> None:
    spans = [(at(0), at(10)), (at(10), at(20)), (at(30), None), (at(35), at(40)), (at(5), at(6))]
    assert merge(spans) == [Meeting(at(0), at(20)), Meeting(at(30), None)]
    assert merge([(at(5), at(1))]) == [Meeting(at(5), at(5))]  # clocks apart: no time
    assert merge([]) == []
