"""Room creation: rooms/s through a real Celery worker against a plain requests loop; save cost.

    python benchmarks/rooms.py [--rooms 1000] [--repeat 5] [--latency 0.05] [--concurrency 4]

Needs PostgreSQL and Redis locally; docs/performance.md tells the method and the figures."""

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

from benchmarks._setup import DATABASE_URL, ROOT, each_table, setup_django
from benchmarks.celery_floor import NAME as FLOOR_TASK
from benchmarks.celery_floor import body

BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
QUEUE = "pagecall-bench"


def inject_latency(emu: Any, seconds: float) -> None:
    """Delay every answer of ``emu`` by ``seconds``: a delay fault on each route of the spec,
    any method, forever (``times=None``). ``emu.reset()`` clears faults: call it again after."""
    from django_pagecall.emulator import spec

    if seconds > 0:
        for route in spec.routes():
            emu.inject("*", route.template, delay=seconds, times=None)


PARTS = ("worker main", "worker pool", "PostgreSQL", "Redis", "this process")


class CpuMeter:
    """CPU seconds spent by each part of the machine's work, read from ``/proc`` (Linux; elsewhere
    nothing is reported): the worker's main process and its pool processes, PostgreSQL's
    processes, Redis, and this process (the plain loop's threads and the emulator). Per room, it tells where a
    side's time went; on a machine of two cores, the sum is what bounds the rate."""

    def __init__(self, worker_pid: int = -1) -> None:
        self.worker_pid = worker_pid
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def snapshot(self) -> dict[int, tuple[str, float]]:
        """Each process's part and its CPU seconds so far."""
        procs: dict[int, tuple[int, str, float]] = {}  # pid: (parent, command, cpu seconds)
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            command = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            procs[int(entry.name)] = (
                int(fields[1]),
                command,
                (int(fields[11]) + int(fields[12])) / self.tick,
            )
        worker = {self.worker_pid}
        for pid, (parent, _, _) in sorted(procs.items()):
            if parent in worker:
                worker.add(pid)
        parts: dict[int, tuple[str, float]] = {}
        for pid, (_, command, cpu) in procs.items():
            if pid == self.worker_pid:
                parts[pid] = ("worker main", cpu)
            elif pid in worker:
                parts[pid] = ("worker pool", cpu)
            elif command.startswith("postgres"):
                parts[pid] = ("PostgreSQL", cpu)
            elif command.startswith("redis-server"):
                parts[pid] = ("Redis", cpu)
            elif pid == os.getpid():
                parts[pid] = ("this process", cpu)
        return parts

    def per_room(self, before: dict[int, tuple[str, float]], n: int) -> str:
        """CPU milliseconds per room since ``before``, by part (a process that ended meanwhile
        is left out, as its last figures are gone with it)."""
        totals = dict.fromkeys(PARTS, 0.0)
        for pid, (part, cpu) in self.snapshot().items():
            totals[part] += cpu - before.get(pid, (part, 0.0))[1]
        if not any(totals.values()):
            return "not measured (no /proc)"
        return f"{sum(totals.values()) / n * 1e3:.2f} ms: " + ", ".join(
            f"{part} {cpu / n * 1e3:.2f}" for part, cpu in totals.items()
        )


class Ceiling:
    """A bare requests loop: ``concurrency`` threads, one ``requests.Session`` each, posting the
    same bodies to the same emulator. Its threads and connections are kept from run to run, as
    the worker keeps its processes and connections."""

    def __init__(self, emu_url: str, api_key: str, concurrency: int) -> None:
        import threading

        import requests

        self.emu_url = emu_url
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(concurrency)
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.make_session = requests.Session

    def post(self, i: int) -> None:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = self.make_session()
            session.headers.update(self.headers)
        response = session.post(f"{self.emu_url}/rooms", json=body(i), timeout=(3, 10))
        response.raise_for_status()

    def run(self, n: int, meter: CpuMeter) -> tuple[float, str]:
        """Rooms per second for ``n`` rooms, and the CPU they took (:class:`CpuMeter`)."""
        before = meter.snapshot()
        started = time.perf_counter()
        list(self.pool.map(self.post, range(n)))
        return n / (time.perf_counter() - started), meter.per_room(before, n)


class Worker:
    """A real Celery worker (prefork unless ``BENCH_POOL`` says otherwise) on the benchmark's
    broker (Redis unless ``BENCH_BROKER_URL`` says otherwise),
    started once and warmed up: every pool process has its database connection, its HTTP
    connection and PostgreSQL's plans of its statements before the first timed run."""

    def __init__(self, emu_url: str, concurrency: int) -> None:
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
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", f"--pool={os.environ.get('BENCH_POOL', 'prefork')}",
             f"--concurrency={concurrency}", f"--loglevel={os.environ.get('BENCH_LOGLEVEL', 'WARNING')}", "--without-mingle",
             "--without-gossip", "-Q", QUEUE, "-I", "benchmarks.celery_floor"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=None if os.environ.get("BENCH_LOGLEVEL") else subprocess.DEVNULL,
        )  # fmt: skip
        self.concurrency = concurrency

    def warm_up(self) -> None:
        """Rooms enough for every pool process to take some, saved at once; wait until synced."""
        from django.db import transaction

        from django_pagecall.models import Room, SyncState

        with transaction.atomic():
            warm = [Room.objects.create(name=f"warm-up {i}") for i in range(4 * self.concurrency)]
        pks = [room.pk for room in warm]
        deadline = time.monotonic() + 60
        while Room.objects.filter(pk__in=pks).exclude(sync_state=SyncState.SYNCED).exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit("the worker did not sync the warm-up rooms within 60 s")
            time.sleep(0.05)

    def run(self, n: int, meter: CpuMeter) -> tuple[float, str]:
        """Rooms per second for ``n`` rooms queued while the worker does not consume, from the
        moment it consumes again to the moment the last one was stored; and the CPU taken."""
        from django.db import transaction
        from django.db.models import Max

        from django_pagecall.models import Member, Room, SyncState
        from tests.celery_app import app

        app.control.cancel_consumer(QUEUE, reply=True, limit=1, timeout=10)
        first = None
        for i in range(n):
            with transaction.atomic():
                room = Room.objects.create(name=f"bench room {i}", type="public")
                Member.objects.bulk_create(
                    [
                        Member(room=room, user_id=f"u{i}", type="host"),
                        Member(room=room, user_id=f"v{i}"),
                    ]
                )
            first = first or room.pk
        analyze()
        before = meter.snapshot()
        started = time.time()
        app.control.add_consumer(QUEUE, reply=True, limit=1, timeout=10)
        timed = Room.objects.filter(pk__gte=first)
        while timed.exclude(sync_state=SyncState.SYNCED).exists():
            if self.process.poll() is not None:
                raise SystemExit(f"the worker exited ({self.process.returncode})")
            time.sleep(0.05)
        # The clock stops when the last room was stored (the worker stamps synced_at then), not
        # at the poll that saw it: that was up to 50 ms late, about 3 % of a 300-room run.
        last = timed.aggregate(last=Max("synced_at"))["last"]
        return float(n / (last.timestamp() - started)), meter.per_room(before, n)

    def run_floor(self, n: int, emu: Any, meter: CpuMeter) -> tuple[float, str]:
        """Rooms per second for ``n`` tasks of the Celery floor (``benchmarks/celery_floor.py``):
        queued while the worker does not consume, timed from the moment it consumes again to the
        moment the emulator holds the last room (polled every millisecond, in this process)."""
        from tests.celery_app import app

        app.control.cancel_consumer(QUEUE, reply=True, limit=1, timeout=10)
        for i in range(n):
            app.send_task(FLOOR_TASK, args=(i,), queue=QUEUE)
        target = emu.state.room_count() + n
        before = meter.snapshot()
        started = time.perf_counter()
        app.control.add_consumer(QUEUE, reply=True, limit=1, timeout=10)
        while emu.state.room_count() < target:
            if self.process.poll() is not None:
                raise SystemExit(f"the worker exited ({self.process.returncode})")
            time.sleep(0.001)
        return n / (time.perf_counter() - started), meter.per_room(before, n)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


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


def empty_broker() -> None:
    """Drop what earlier runs left queued (Redis: the benchmark's database; AMQP: its queue)."""
    if BROKER.startswith("redis"):
        import redis

        redis.Redis.from_url(BROKER).flushdb()
    else:
        from kombu import Connection, Queue

        with Connection(BROKER) as connection:
            Queue(QUEUE).bind(connection.default_channel).delete()


def analyze() -> None:
    """What autovacuum would do after the rooms were queued: table statistics that know the rows
    are there. The worker's connections may keep plans made at the warm-up, when the tables were
    almost empty; new statistics make PostgreSQL plan those statements again."""
    each_table("ANALYZE")


def vacuum() -> None:
    """Start from clean tables: the rows of earlier runs, deleted, are still in the tables and
    their indexes until a vacuum, and PostgreSQL's autovacuum may be off; left there, they
    would make every later run slower than the one before."""
    each_table("VACUUM ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--saves", type=int, default=200)
    parser.add_argument(
        "--repeat", type=int, default=5, help="Runs of each, alternating; the median is the figure."
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="Delay every Pagecall (emulator) answer by this much, for every side (default 0).",
    )
    args = parser.parse_args()
    if args.latency < 0:
        parser.error("--latency must be >= 0")

    setup_django(CELERY_BROKER_URL=BROKER, CELERY_QUEUE=QUEUE)
    from django.conf import settings

    from django_pagecall.emulator import Emulator
    from django_pagecall.models import Room

    empty_broker()
    Room.objects.all().delete()
    vacuum()
    ratios: list[float] = []
    floor_ratios: list[float] = []
    all_rates: dict[str, list[float]] = {"loop": [], "floor": [], "ours": []}
    with Emulator() as emu:
        settings.PAGECALL = {**settings.PAGECALL, "API_URL": emu.url, "API_KEY": emu.api_key}
        inject_latency(emu, args.latency)
        loop = Ceiling(emu.url, emu.api_key, args.concurrency)
        worker = Worker(emu.url, args.concurrency)
        try:
            untimed = CpuMeter()
            loop.run(4 * args.concurrency, untimed)  # the loop's threads and connections
            worker.warm_up()
            worker.run_floor(4 * args.concurrency, emu, untimed)
            meter = CpuMeter(worker.process.pid)
            sides = {
                "loop": lambda: loop.run(args.rooms, meter),
                "floor": lambda: worker.run_floor(args.rooms, emu, meter),
                "ours": lambda: worker.run(args.rooms, meter),
            }
            order = list(sides)
            for repeat in range(args.repeat):
                Room.objects.all().delete()
                vacuum()
                emu.reset()  # clears the faults too
                inject_latency(emu, args.latency)
                # Rotate which goes first, so that drift on a shared machine hits all alike.
                rates, cpu, calls = {}, {}, {}
                for name in order[repeat % 3 :] + order[: repeat % 3]:
                    emu.clear_requests()
                    rates[name], cpu[name] = sides[name]()
                    calls[name] = emu.clear_requests() / args.rooms  # API requests per room
                    all_rates[name].append(rates[name])
                base, floor, ours = rates["loop"], rates["floor"], rates["ours"]
                # The loop's and the floor's rooms are at the emulator too: what is there beyond
                # them and the stored rooms was created twice.
                duplicates = emu.state.room_count() - 2 * args.rooms - Room.objects.count()
                ratios.append(ours / base)
                floor_ratios.append(floor / base)
                print(f"run {repeat + 1}: plain loop {base:6.1f} rooms/s, Celery floor "
                      f"{floor:6.1f} rooms/s ({floor / base:.2f}), through the app's worker "
                      f"{ours:6.1f} rooms/s, ratio {ours / base:.2f}, duplicates {duplicates}",
                      flush=True)  # fmt: skip
                for name, label in (("loop", "plain loop"), ("floor", "Celery floor"),
                                    ("ours", "the app")):  # fmt: skip
                    print(f"    CPU per room, {label}: {cpu[name]}; API requests per room "
                          f"{calls[name]:.2f}", flush=True)  # fmt: skip
        finally:
            worker.stop()
            loop.pool.shutdown()
    Room.objects.all().delete()
    prepare = settings.DATABASES["default"].get("OPTIONS", {}).get("prepare_threshold")
    print(f"room creation throughput ratio: median {statistics.median(ratios):.2f} of "
          f"{len(ratios)} runs (target >= 0.9 with --latency 0.05; latency {args.latency:g} s; "
          f"{args.rooms} rooms each, concurrency {args.concurrency}; each run: "
          f"{', '.join(f'{r:.2f}' for r in ratios)}; prepare_threshold: "
          f"{prepare if prepare is not None else 'None, as Django'})")  # fmt: skip
    print("median rooms/s: " + ", ".join(
        f"{label} {statistics.median(all_rates[name]):.1f}"
        for name, label in (("loop", "plain loop"), ("floor", "Celery floor"), ("ours", "the app"))
    ))  # fmt: skip
    print(f"Celery floor (a task that only posts, no database) ratio: median "
          f"{statistics.median(floor_ratios):.2f} (each run: "
          f"{', '.join(f'{r:.2f}' for r in floor_ratios)}); the app's share of the floor: "
          f"{statistics.median(ratios) / statistics.median(floor_ratios):.2f}")  # fmt: skip

    empty_broker()
    room_save, plain_save = save_cost(args.saves)
    Room.objects.all().delete()
    empty_broker()
    print(f"median save: Room {room_save * 1e3:.3f} ms, plain model {plain_save * 1e3:.3f} ms")
    print(
        f"Room.save() cost ratio (plain / Room, 1.0 = free dispatch): {plain_save / room_save:.2f}"
    )


if __name__ == "__main__":
    main()
