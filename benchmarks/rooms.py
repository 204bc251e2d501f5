"""Room creation benchmarks, each a ratio against a baseline measured in the same run.

1. Throughput: rooms created per second from ``Room.save()`` through a real Celery worker
   (Redis broker, PostgreSQL) to the emulator, against the ceiling: a plain
   ``requests.Session`` loop posting the same bodies to the same emulator at the same
   concurrency. Target: at least 0.5 of the ceiling.
2. Save cost: ``Room.save()`` with its dispatch (on_commit, publishing the task) against
   saving a plain model with the same fields, same database, same run.

    python benchmarks/rooms.py [--rooms 300] [--concurrency 4] [--saves 500]

Needs PostgreSQL and Redis on their default local ports (database ``pagecall_bench`` is
created if missing; Redis database 14 is flushed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._setup import DATABASE_URL, ROOT, setup_django

BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
QUEUE = "pagecall-bench"


def body(i: int) -> dict[str, Any]:
    return {
        "name": f"bench room {i}",
        "type": "public",
        "record": True,
        "members": [{"user_id": f"u{i}", "type": "host"}, {"user_id": f"v{i}", "type": "guest"}],
        "webhook": {
            "url": "http://127.0.0.1:9/pagecall/webhook/",
            "headers": {"X-Pagecall-Room": str(i)},
        },
    }


def ceiling(emu_url: str, api_key: str, n: int, concurrency: int) -> float:
    """Rooms per second for a bare requests loop: the most the worker could reach."""
    import threading

    import requests

    local = threading.local()

    def post(i: int) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers["Authorization"] = f"Bearer {api_key}"
        response = session.post(f"{emu_url}/rooms", json=body(i), timeout=(3, 10))
        response.raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, range(n)))
    return n / (time.perf_counter() - started)


def through_worker(emu_url: str, n: int, concurrency: int) -> float:
    from django.db import transaction
    from django.db.models import Max

    from django_pagecall.models import Member, Room, SyncState

    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "CELERY_BROKER_URL": BROKER,
        "CELERY_QUEUE": QUEUE,
        "PAGECALL_API_URL": emu_url,
        "PAGECALL_WEBHOOK_URL": "http://127.0.0.1:9/pagecall/webhook/",
        "PYTHONPATH": str(ROOT),
        "CONN_MAX_AGE": "600",
        "CELERY_DB_REUSE_MAX": "1000",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", f"--pool={os.environ.get('BENCH_POOL', 'prefork')}",
         f"--concurrency={concurrency}", f"--loglevel={os.environ.get('BENCH_LOGLEVEL', 'WARNING')}", "--without-mingle",
         "--without-gossip", "-Q", QUEUE],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=None if os.environ.get("BENCH_LOGLEVEL") else subprocess.DEVNULL,
    )  # fmt: skip
    try:
        from tests.celery_app import app

        warm = Room.objects.create(name="warm-up")  # wait until the worker consumes
        while Room.objects.get(pk=warm.pk).sync_state != SyncState.SYNCED:
            time.sleep(0.05)
        # Queue the rooms while the worker does not consume, then time the worker alone.
        app.control.cancel_consumer(QUEUE, reply=True, limit=1, timeout=10)
        for i in range(n):
            with transaction.atomic():
                room = Room.objects.create(name=f"bench room {i}", type="public")
                Member.objects.bulk_create(
                    [
                        Member(room=room, user_id=f"u{i}", type="host"),
                        Member(room=room, user_id=f"v{i}"),
                    ]
                )
        started = time.time()
        app.control.add_consumer(QUEUE, reply=True, limit=1, timeout=10)
        while Room.objects.exclude(sync_state=SyncState.SYNCED).exists():
            time.sleep(0.05)
        # The clock stops when the last room was stored (the worker stamps synced_at then), not
        # at the poll that saw it: that was up to 50 ms late, about 3 % of a 300-room run.
        last = Room.objects.aggregate(last=Max("synced_at"))["last"]
        return n / (last.timestamp() - started)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def save_cost(n: int) -> tuple[float, float]:
    """Median seconds per save: Room (with dispatch) and a plain model with the same fields."""
    from django.db import connection, models

    from django_pagecall.models import Room

    fields = {f.name: f.clone() for f in Room._meta.concrete_fields if not f.primary_key}
    plain = type(
        "PlainRoom",
        (models.Model,),
        {**fields, "__module__": __name__, "Meta": type("Meta", (), {"app_label": "bench_plain"})},
    )
    with connection.schema_editor() as editor:
        editor.execute(f'DROP TABLE IF EXISTS "{plain._meta.db_table}"')
        editor.create_model(plain)

    def timed(make: Any) -> float:
        samples = []
        for i in range(n):
            started = time.perf_counter()
            make(i)
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    try:
        # Interleave in blocks so that drift on a shared machine hits both alike.
        room_times, plain_times = [], []
        for _ in range(5):
            room_times.append(timed(lambda i: Room.objects.create(name=f"save {i}")))
            plain_times.append(timed(lambda i: plain.objects.create(name=f"save {i}")))
        return statistics.median(room_times), statistics.median(plain_times)
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(plain)


def vacuum() -> None:
    """Start from clean tables: the rows of earlier runs, deleted, are still in the tables and
    their indexes until a vacuum, and PostgreSQL's autovacuum may be off (it is on the machine
    of BENCHMARKS.md). Left there, they made every later run slower than the one before."""
    from django.apps import apps
    from django.db import connection

    with connection.cursor() as cursor:
        for model in apps.get_app_config("django_pagecall").get_models():
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--saves", type=int, default=200)
    args = parser.parse_args()

    setup_django(CELERY_BROKER_URL=BROKER, CELERY_QUEUE=QUEUE)
    import redis
    from django.conf import settings

    from django_pagecall.emulator import Emulator
    from django_pagecall.models import Room

    redis.Redis.from_url(BROKER).flushdb()
    Room.objects.all().delete()
    vacuum()
    with Emulator() as emu:
        settings.PAGECALL = {**settings.PAGECALL, "API_URL": emu.url, "API_KEY": emu.api_key}
        base = ceiling(emu.url, emu.api_key, args.rooms, args.concurrency)
        emu.reset()
        ours = through_worker(emu.url, args.rooms, args.concurrency)
        duplicates = len(emu.rooms) - Room.objects.count()
    Room.objects.all().delete()
    print(f"rooms/s  plain requests loop (ceiling): {base:8.1f}")
    print(f"rooms/s  Room.save() -> worker -> emulator: {ours:8.1f}")
    print(f"room creation throughput ratio: {ours / base:.2f} (target >= 0.5; "
          f"{args.rooms} rooms, concurrency {args.concurrency}, duplicates at the emulator: {duplicates})")  # fmt: skip

    redis.Redis.from_url(BROKER).flushdb()
    room_save, plain_save = save_cost(args.saves)
    Room.objects.all().delete()
    redis.Redis.from_url(BROKER).flushdb()
    print(f"median save: Room {room_save * 1e3:.3f} ms, plain model {plain_save * 1e3:.3f} ms")
    print(
        f"Room.save() cost ratio (plain / Room, 1.0 = free dispatch): {plain_save / room_save:.2f}"
    )


if __name__ == "__main__":
    main()
