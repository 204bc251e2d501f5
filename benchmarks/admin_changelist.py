"""The admin changelists' query counts and times as their tables grow, each size against the
smallest in the same run: the count should stay the same, and the time should grow slowly.

    python benchmarks/admin_changelist.py [--lists rooms,deliveries,sessions]
                                          [--sizes 10,1000,10000,100000] [--repeat 5]"""

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

SPREAD = timedelta(days=90)
BATCH = 5000


def grow_rooms(made: int, size: int) -> None:
    from django_pagecall.models import Member, Room

    for start in range(made, size, BATCH):
        stop = min(start + BATCH, size)
        rooms = Room.objects.bulk_create(
            [Room(name=f"room {i}", pagecall_id=f"{i:024x}") for i in range(start, stop)]
        )
        Member.objects.bulk_create(
            [Member(room=r, user_id=f"u{r.pk}-{j}") for r in rooms for j in range(2)]
        )


def _rooms_for_records() -> list[Any]:
    from django_pagecall.models import Room

    rooms = list(Room.objects.filter(name__startswith="records ").order_by("pk"))
    if not rooms:
        rooms = Room.objects.bulk_create(
            [Room(name=f"records {i}", pagecall_id=f"r{i:023x}") for i in range(100)]
        )
    return rooms


def _moment(i: int, size: int) -> Any:
    from django.utils import timezone

    # Newest last; spread over SPREAD whatever the size, so a bigger table is denser.
    return timezone.now() - SPREAD + SPREAD * ((i + 1) / max(size, 1))


def _grow_records(model: Any, made: int, size: int, row: Callable[[int, Any, Any], Any]) -> None:
    """Rows ``made`` to ``size`` of ``model``, each ``row(i, moment, room)``, in batches."""
    rooms = _rooms_for_records()
    for start in range(made, size, BATCH):
        model.objects.bulk_create(
            [
                row(i, _moment(i, size), rooms[i % len(rooms)])
                for i in range(start, min(start + BATCH, size))
            ]
        )


def _delivery(i: int, at: Any, room: Any) -> Any:
    from django_pagecall.models import DeliveryResult, DeliveryState, WebhookDelivery

    action = "sessionJoined" if i % 2 == 0 else "sessionLeft"
    failed = i % 500 == 0
    return WebhookDelivery(
        room=room,
        action=action,
        session_id=f"s{i // 2:022x}",
        event_at=at,
        headers={"Content-Type": "application/json", "X-Pagecall-Secret": "********"},
        body=f'{{"action":"{action}","payload":{{"sessionId":"s{i // 2:022x}"}}}}',
        remote_addr="127.0.0.1",
        received_at=at,
        state=DeliveryState.FAILED if failed else DeliveryState.PROCESSED,
        result="" if failed else DeliveryResult.APPLIED,
        error="boom" if failed else "",
        processed_at=at,
    )


def _session(i: int, at: Any, room: Any) -> Any:
    from django_pagecall.models import Session

    online = i % 200 == 0
    return Session(
        room=room,
        session_id=f"s{i:022x}",
        member_id=f"m{i:022x}",
        user_id=f"user-{i % 5000}",
        joined_at=at,
        left_at=None if online else at + timedelta(minutes=30),
    )


def grow_deliveries(made: int, size: int) -> None:
    from django_pagecall.models import WebhookDelivery

    _grow_records(WebhookDelivery, made, size, _delivery)


def grow_sessions(made: int, size: int) -> None:
    from django_pagecall.models import Session

    _grow_records(Session, made, size, _session)


LISTS: dict[str, tuple[str, Callable[[int, int], None]]] = {
    "rooms": ("admin:django_pagecall_room_changelist", grow_rooms),
    "deliveries": ("admin:django_pagecall_webhookdelivery_changelist", grow_deliveries),
    "sessions": ("admin:django_pagecall_session_changelist", grow_sessions),
}


def empty_tables() -> None:
    from django_pagecall.models import Room, Session, WebhookDelivery

    WebhookDelivery.objects.all().delete()
    Session.objects.all().delete()
    Room.objects.all().delete()


def measure(name: str, sizes: list[int], repeat: int, client: Any) -> list[tuple[int, int, float]]:
    from django.db import connection
    from django.urls import reverse

    url_name, grow = LISTS[name]
    url = reverse(url_name)
    results: list[tuple[int, int, float]] = []
    made = 0
    for size in sizes:
        grow(made, size)
        made = size
        each_table("ANALYZE")
        client.get(url)  # warm
        statements: list[tuple[float, str]] = []

        def timed(
            execute: Any, sql: str, *rest: Any, statements: list[tuple[float, str]] = statements
        ) -> Any:
            started = time.perf_counter()
            try:
                return execute(sql, *rest)
            finally:
                statements.append((time.perf_counter() - started, sql))

        with connection.execute_wrapper(timed):
            response = client.get(url)
        assert response.status_code == 200, response.status_code
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(url)
            times.append(time.perf_counter() - started)
        results.append((size, len(statements), statistics.median(times)))
        slowest, sql = max(statements)
        print(
            f"  {name}, {size} rows: slowest statement {slowest * 1e3:.1f} ms: {sql[:160]}",
            file=sys.stderr,
            flush=True,
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lists", default=",".join(LISTS))
    parser.add_argument("--sizes", default="10,1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    names = [n.strip() for n in args.lists.split(",") if n.strip()]
    unknown = sorted(set(names) - set(LISTS))
    if unknown:
        parser.error(f"unknown list(s): {', '.join(unknown)}; choose from {', '.join(LISTS)}")

    setup_django()
    from django.contrib.auth.models import User
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections
    from django.test import Client

    # As Django's test runner does: keep the connection across requests, so its log is counted.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    empty_tables()
    User.objects.filter(username="bench-admin").delete()
    admin = User.objects.create_superuser("bench-admin", password="x")  # noqa: S106
    client = Client()
    client.force_login(admin)
    report: list[str] = []
    try:
        for name in names:
            results = measure(name, sizes, args.repeat, client)
            empty_tables()
            base_size, base_queries, base_time = results[0]
            for size, count, seconds in results:
                report.append(
                    f"{name:>10} {size:>7} rows: {count} queries "
                    f"({count / base_queries:.2f} x {base_size} rows), "
                    f"median {seconds * 1e3:.1f} ms ({seconds / base_time:.2f} x)"
                )
    finally:
        empty_tables()
        admin.delete()
    print("\n".join(report))


if __name__ == "__main__":
    main()
