"""The room changelist's query count and time as the table grows, each size against the
smallest in the same run (the count should stay the same; the time should grow slowly).

    python benchmarks/admin_changelist.py [--sizes 10,1000,10000]

Uses the benchmark PostgreSQL database (``pagecall_bench``, created if missing); rooms are
inserted with ``bulk_create`` (no dispatch) and deleted at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._setup import setup_django


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    setup_django()
    from django.contrib.auth.models import User
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections, connection
    from django.test import Client
    from django.urls import reverse

    from django_pagecall.models import Member, Room

    # As Django's test runner does: keep the connection across requests, so its log is counted.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    Room.objects.all().delete()
    User.objects.filter(username="bench-admin").delete()
    admin = User.objects.create_superuser("bench-admin", password="x")  # noqa: S106
    client = Client()
    client.force_login(admin)
    url = reverse("admin:django_pagecall_room_changelist")
    results: list[tuple[int, int, float]] = []
    try:
        made = 0
        for size in sizes:
            rooms = Room.objects.bulk_create(
                [Room(name=f"room {i}", pagecall_id=f"{i:024x}") for i in range(made, size)],
                batch_size=2000,
            )
            Member.objects.bulk_create(
                [Member(room=r, user_id=f"u{r.pk}-{j}") for r in rooms for j in range(2)],
                batch_size=4000,
            )
            made = size
            client.get(url)  # warm
            statements: list[str] = []

            def count(
                execute: Any, sql: str, *rest: Any, statements: list[str] = statements
            ) -> Any:
                statements.append(sql)
                return execute(sql, *rest)

            with connection.execute_wrapper(count):
                response = client.get(url)
            assert response.status_code == 200, response.status_code
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                client.get(url)
                times.append(time.perf_counter() - started)
            results.append((size, len(statements), statistics.median(times)))
    finally:
        Room.objects.all().delete()
        admin.delete()
    base_size, base_queries, base_time = results[0]
    for size, count, seconds in results:
        print(
            f"{size:>6} rooms: {count} queries ({count / base_queries:.2f} x {base_size} rooms), "
            f"median {seconds * 1e3:.1f} ms ({seconds / base_time:.2f} x)"
        )


if __name__ == "__main__":
    main()
