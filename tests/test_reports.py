"""The admin's reports: a room's meetings and attendance with CSV exports, and the monthly usage
report; their queries do not grow with the number of sessions."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_pagecall.admin.reports import add_months
from django_pagecall.emulator import Emulator
from django_pagecall.models import MonthlyUsage, Room, Session
from tests.test_webhook_support import make_room, post

pytestmark = pytest.mark.django_db

ROOMS = "/admin/django_pagecall/room/"
USAGE = "/admin/django_pagecall/session/usage/"


def stay(room: Room, user: str, joined: datetime, minutes: int | None, n: int) -> Session:
    left = None if minutes is None else joined + timedelta(minutes=minutes)
    return Session(
        room=room, session_id=f"{room.pk}-{n}", user_id=user, joined_at=joined, left_at=left
    )


def room_with(sessions: int, start: datetime) -> Room:
    """A room whose sessions are ``sessions`` meetings of alice and bob, an hour apart."""
    (room,) = Room.objects.bulk_create([Room(name=f"Room of {sessions}")])
    rows = []
    for i in range(sessions):
        at = start + timedelta(hours=i)
        rows.append(stay(room, "alice" if i % 2 else "bob", at, 30, i))
    Session.objects.bulk_create(rows)
    return room


def read_csv(response: Any) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.content.decode())))


def queries(client: Client, url: str, **params: Any) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_a_room_page_shows_its_meetings_and_attendance_with_exports(
    admin_client: Client,
) -> None:
    start = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    (room,) = Room.objects.bulk_create([Room(name="Seminar")])
    Session.objects.bulk_create(
        [
            stay(room, "alice", start, 60, 1),
            stay(room, "alice", start + timedelta(minutes=30), 60, 2),  # her second tab
            stay(room, "bob", start + timedelta(minutes=10), 20, 3),
            stay(room, "carol", start + timedelta(hours=3), None, 4),  # still in
        ]
    )
    page = admin_client.get(f"{ROOMS}{room.pk}/change/").content.decode()
    assert "Meetings, latest first" in page
    assert "2 in all." in page and "3 in all." in page
    assert "still in" in page and "going on" in page
    assert f"{ROOMS}{room.pk}/meetings.csv" in page
    assert f"{ROOMS}{room.pk}/attendance.csv" in page

    meetings = read_csv(admin_client.get(f"{ROOMS}{room.pk}/meetings.csv"))
    assert meetings[0] == ["started_at", "ended_at", "seconds"]
    assert [(datetime.fromisoformat(r[0]), r[1], r[2]) for r in meetings[1:2]] == [
        (start, timezone.localtime(start + timedelta(minutes=90)).isoformat(), "5400")
    ]
    assert meetings[2][1] == ""  # carol's meeting goes on

    rows = read_csv(admin_client.get(f"{ROOMS}{room.pk}/attendance.csv"))
    assert rows[0] == ["user_id", "sessions", "first_joined_at", "last_left_at", "seconds"]
    by_user = {r[0]: r for r in rows[1:]}
    assert by_user["alice"][1:2] == ["2"]
    assert by_user["alice"][4] == str(90 * 60)  # 9:00 to 10:30, the overlap counted once
    assert by_user["bob"][4] == str(20 * 60)
    assert by_user["carol"][3] == ""


def test_the_room_page_and_exports_read_the_same_queries_for_3_or_60_sessions(
    admin_client: Client,
) -> None:
    start = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    small, large = room_with(3, start), room_with(60, start)
    for suffix in ("change/", "meetings.csv", "attendance.csv"):
        assert queries(admin_client, f"{ROOMS}{small.pk}/{suffix}") == queries(
            admin_client, f"{ROOMS}{large.pk}/{suffix}"
        )
    page = admin_client.get(f"{ROOMS}{large.pk}/change/").content.decode()
    assert "50 of 60 shown." in page


def test_the_usage_report_reads_the_same_queries_for_1_or_24_rows(
    admin_client: Client,
) -> None:
    this_month = timezone.localdate().replace(day=1)
    MonthlyUsage.objects.create(workspace="default", month=this_month, sessions=1)
    small = queries(admin_client, USAGE), queries(admin_client, USAGE, format="csv")
    MonthlyUsage.objects.bulk_create(
        MonthlyUsage(workspace=workspace, month=add_months(this_month, -n), sessions=n)
        for n in range(1, 12)
        for workspace in ("default", "school")
    )
    assert (queries(admin_client, USAGE), queries(admin_client, USAGE, format="csv")) == small


def test_reports_need_the_view_permission(client: Client) -> None:
    staff = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    (room,) = Room.objects.bulk_create([Room(name="Private")])
    assert client.get(USAGE).status_code == 403
    assert client.get(f"{ROOMS}{room.pk}/attendance.csv").status_code == 403
    assert client.get(f"{ROOMS}999999/meetings.csv").status_code in (403, 404)


@pytest.mark.django_db(transaction=True)
def test_reports_of_sessions_made_by_the_emulator(
    pagecall_emulator: Emulator, admin_client: Client
) -> None:
    room = make_room(pagecall_emulator)
    alice = room.join("alice")
    bob = room.join("bob")
    for body in (alice, bob, room.leave(alice["payload"]["sessionId"])):
        assert post(admin_client, body, room.headers).status_code == 200
    rows = read_csv(admin_client.get(f"{ROOMS}{room.room.pk}/attendance.csv"))
    assert sorted(r[0] for r in rows[1:]) == ["alice", "bob"]
    usage = read_csv(admin_client.get(USAGE, {"format": "csv"}))
    assert usage[-1][1:3] == ["default", "1"]  # bob is still in: the meeting goes on
    assert usage[-1][4:] == ["0", "0"]  # its sessions count once it has ended
    assert (
        post(admin_client, room.leave(bob["payload"]["sessionId"]), room.headers).status_code == 200
    )
    usage = read_csv(admin_client.get(USAGE, {"format": "csv"}))
    assert usage[-1][1:3] == ["default", "1"]
    assert usage[-1][4:] == ["2", "2"]


def plan_of(run: Any) -> str:
    """The plans (as JSON text) of the statements ``run()`` makes, with sequential scans
    priced out: what shows is an index the query can use, or a sequential scan if none can."""
    with CaptureQueriesContext(connection) as captured:
        run()
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            for query in captured.captured_queries:
                cursor.execute(f"EXPLAIN (FORMAT JSON) {query['sql']}")
                plans.append(str(cursor.fetchone()[0]))
        finally:
            cursor.execute("RESET enable_seqscan")
    return "\n".join(plans)


def test_the_reports_and_pruning_read_through_indexes() -> None:
    from django_pagecall.meetings import attendance_of, meetings_of
    from django_pagecall.usage import month_of, monthly_usage
    from django_pagecall.webhooks.retention import prune_deliveries
    from tests.test_webhook_support import requires_postgres

    requires_postgres("query plans")
    start = timezone.now() - timedelta(days=40)
    room = room_with(5, start)
    for plan in (plan_of(lambda: meetings_of(room)), plan_of(lambda: attendance_of(room))):
        assert "pagecall_session_online_idx" in plan and "Seq Scan" not in plan, plan
    first = month_of(start)
    usage = plan_of(lambda: monthly_usage(first, add_months(first, 3)))
    assert "pagecall_usage_month" in usage and "pagecall_room_meeting_idx" in usage, usage
    assert "Seq Scan" not in usage, usage
    prune = plan_of(lambda: prune_deliveries(days=30))
    assert "pagecall_delivery_state_idx" in prune and "Seq Scan" not in prune, prune
