"""The usage report and a room's attendance and meetings as the sessions table grows (a year of
sessions in rooms of 50, counted by ``usage.count_room``), each size against the smallest in
the same run: statements per call (should stay the same) and time.

    BENCH_DATABASE=pagecall_bench python benchmarks/reports.py [--sizes 10000,1000000]"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._setup import each_table, setup_django

SPREAD = timedelta(days=365)
ROOM_SIZE = 50  # sessions per room
MEETING_SIZE = 5  # sessions per meeting, overlapping
USERS = 2000  # the site's people: the monthly active users do not grow with history
GOING_ON = 20  # meetings going on when the report is read
BATCH = 5000


def timed(run: Callable[[], Any], repeat: int) -> tuple[int, float]:
    """Statements of one call, and the median time of ``repeat`` calls."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return len(captured.captured_queries), statistics.median(times)


def grow(made: int, size: int) -> float:
    """Sessions ``made`` to ``size``, in new rooms, each room then counted; the median time of
    one room's count, in seconds."""
    from django.utils import timezone

    from django_pagecall.models import Room, Session
    from django_pagecall.usage import count_room

    now = timezone.now()
    counts = []
    for start in range(made, size, BATCH):
        stop = min(start + BATCH, size)
        rooms = Room.objects.bulk_create(
            [
                Room(name=f"room {n}", pagecall_id=f"{n:024x}", usage_stale=True)
                for n in range(start // ROOM_SIZE, (stop - 1) // ROOM_SIZE + 1)
            ]
        )
        sessions = []
        for i in range(start, stop):
            room = rooms[i // ROOM_SIZE - start // ROOM_SIZE]
            # Rooms spread over the year whatever the size (a bigger table is denser); a room's
            # meetings a day apart.
            opened = (
                now - SPREAD + (SPREAD - timedelta(days=11)) * (i // ROOM_SIZE * ROOM_SIZE / size)
            )
            meeting = opened + timedelta(days=i % ROOM_SIZE // MEETING_SIZE)
            joined = meeting + timedelta(minutes=i % MEETING_SIZE)
            sessions.append(
                Session(
                    room=room,
                    session_id=f"s{i:022x}",
                    user_id=f"user-{i % USERS}",
                    joined_at=joined,
                    left_at=joined + timedelta(minutes=30),
                )
            )
        Session.objects.bulk_create(sessions)
        for room in rooms:
            started = time.perf_counter()
            count_room(room.pk)
            counts.append(time.perf_counter() - started)
        print(f"  {stop} sessions made and counted", file=sys.stderr, flush=True)
    return statistics.median(counts)


def going_on() -> None:
    """The latest rooms have a meeting going on."""
    from django.utils import timezone

    from django_pagecall.models import Room

    Room.objects.update(meeting_started_at=None)
    latest = Room.objects.order_by("-pk").values_list("pk", flat=True)[:GOING_ON]
    Room.objects.filter(pk__in=list(latest)).update(
        meeting_started_at=timezone.now() - timedelta(minutes=20)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    setup_django()
    from django.utils import timezone

    from django_pagecall.admin.reports import add_months
    from django_pagecall.meetings import attendance_of, meetings_of
    from django_pagecall.models import ActiveUser, MonthlyUsage, Room, Session
    from django_pagecall.usage import month_of, monthly_usage

    def empty() -> None:
        for model in (Session, Room, MonthlyUsage, ActiveUser):
            model.objects.all().delete()

    empty()
    this_month = month_of(timezone.now())
    first, end = add_months(this_month, -12), add_months(this_month, 1)
    results: dict[int, dict[str, tuple[int, float]]] = {}
    counting: dict[int, float] = {}
    made = 0
    for size in sizes:
        counting[size] = grow(made, size)
        made = size
        going_on()
        each_table("ANALYZE")
        room = Room.objects.order_by("pk").first()
        assert room is not None
        reports: dict[str, Callable[[], Any]] = {
            "usage report": lambda: monthly_usage(first, end),
            "attendance": lambda room=room: attendance_of(room),
            "meetings": lambda room=room: meetings_of(room),
        }
        results[size] = {name: timed(run, args.repeat) for name, run in reports.items()}
        print(f"  {size} sessions measured", file=sys.stderr, flush=True)

    base = results[sizes[0]]
    header = ["sessions", "count a room ms"]
    for name in base:
        header += [f"{name} ms", "ratio", "statements"]
    print(" | ".join(header))
    for size in sizes:
        row = [str(size), f"{counting[size] * 1e3:.1f}"]
        for name in base:
            statements, seconds = results[size][name]
            row += [
                f"{seconds * 1e3:.1f}",
                f"{seconds / base[name][1]:.2f}",
                f"{statements} ({statements / base[name][0]:.2f})",
            ]
        print(" | ".join(row))
    usage = monthly_usage(first, end)
    print(
        f"usage: {len(usage)} months, {sum(u.sessions for u in usage)} sessions, "
        f"{sum(u.meetings for u in usage)} meetings, "
        f"up to {max(u.active_users for u in usage)} active users a month"
    )
    empty()


if __name__ == "__main__":
    main()
