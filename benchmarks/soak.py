"""Soak test: the whole app under load and every fault for a bounded time, then a check that
nothing was lost, nothing created twice and every session recorded right; exit status 1 on any
loss (docs/performance.md).

    python -m benchmarks.soak [--duration 120]    # tests/test_soak.py runs it for 20 s"""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.redis_server import RedisServer, RedisUnavailable, free_port  # noqa: E402
from tests.worker_process import WorkerProcess  # noqa: E402

QUEUE = "pagecall-soak"
FAULTS = [
    "pagecall 5xx",
    "pagecall creates then drops",
    "broker restart",
    "pagecall slower than the read timeout",
    "worker SIGKILL",
    "pagecall drops before",
]


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


class Tally:
    """Counters and problems, shared by every thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.problems: list[str] = []
        self.started = time.monotonic()

    def add(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.counts[key] += n

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)


# -- processes and servers ------------------------------------------------------------------------


class Redis(RedisServer):
    """The broker: a redis-server of our own that keeps nothing, so a restart loses every
    queued task."""

    def start(self, timeout: float = 10.0) -> None:
        try:
            super().start(timeout)
        except RedisUnavailable as exc:
            raise SystemExit(f"soak: {exc}") from exc


def start_live_server(port: int) -> Any:
    """The site over HTTP: Django's threaded WSGI server (as runserver and LiveServerTestCase)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class Server(ThreadedWSGIServer):
        request_queue_size = 256  # Django's 10 would reset connections under this load

    server = Server(("127.0.0.1", port), WSGIRequestHandler, allow_reuse_address=True)
    server.set_app(WSGIHandler())
    threading.Thread(target=server.serve_forever, name="live-server", daemon=True).start()
    return server


# -- the soak ---------------------------------------------------------------------------------------


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.rng = random.Random(args.seed)
        self.tally = Tally()
        self.stop = threading.Event()
        self.run_id = f"{int(time.time())}"
        self.redis = Redis(workdir)
        self.workers: list[WorkerProcess] = []
        self.created: list[str] = []
        self.sent: collections.deque[tuple[str, dict[str, str], dict[str, Any]]] = (
            collections.deque(maxlen=2000)
        )
        self.room_ids: list[str] = []

    # -- set-up --------------------------------------------------------------------------------

    def set_up(self) -> None:
        from django_pagecall.emulator import Emulator

        self.redis.start()
        self.emulator = Emulator().start()
        self.port = free_port()
        self.webhook_url = f"http://127.0.0.1:{self.port}/pagecall/webhook/"
        env = {
            "CELERY_BROKER_URL": self.redis.url,
            "CELERY_QUEUE": QUEUE,
            "PAGECALL_API_URL": self.emulator.url,
            "PAGECALL_WEBHOOK_URL": self.webhook_url,
            # A killed worker's unacknowledged task comes back after this many seconds.
            "CELERY_VISIBILITY_TIMEOUT": "10",
        }
        drop_database(self.args.database)
        from benchmarks._setup import DATABASE_URL, setup_django

        setup_django(**env)
        from tests.timing import shorten_waits

        shorten_waits()  # as in the workers, which run tests.celery_app
        self.route_logs()
        self.server = start_live_server(self.port)
        self.worker_env = {
            **os.environ,
            **env,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": DATABASE_URL,
            "PYTHONPATH": str(ROOT),
        }
        for _ in range(self.args.workers):
            self.start_worker()
        # The load starts once every worker consumes: on a busy machine a worker takes seconds.
        deadline = time.monotonic() + 120
        while not all("ready." in worker.log() for worker in self.workers):
            if time.monotonic() > deadline:
                self.tally.problem("the workers were not ready within 120 s")
                break
            time.sleep(0.2)

    def route_logs(self) -> None:
        """The site's log records to a file, counted by logger and level (not to the console)."""
        handler = logging.FileHandler(self.workdir / "site.log")
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s")
        )
        tally = self.tally

        class Count(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                tally.add(f"log {record.name.split('.')[0]} {record.levelname}")

        # django.server: the live server's request lines (Django gives it a console handler).
        for name in ("django_pagecall", "django", "django.server", "celery", "kombu"):
            logger = logging.getLogger(name)
            logger.handlers = [handler, Count(logging.INFO)]
            logger.propagate = False
            logger.setLevel(logging.INFO)

    def start_worker(self) -> WorkerProcess:
        worker = WorkerProcess(
            self.worker_env, self.workdir / f"worker-{len(self.workers)}.log", QUEUE
        )
        worker.start()
        self.workers.append(worker)
        return worker

    def tear_down(self) -> None:
        """Stop whatever was started (set-up may have failed half-way)."""
        for worker in self.workers:
            worker.stop()
        server = getattr(self, "server", None)
        if server is not None:
            server.shutdown()
            server.server_close()
        emulator = getattr(self, "emulator", None)
        if emulator is not None:
            emulator.stop()
        self.redis.stop()

    # -- the load --------------------------------------------------------------------------------

    def creator(self, n: int) -> None:
        from django.db import connection, transaction

        from django_pagecall.models import Member, Room

        rng = random.Random(f"{self.args.seed}-creator-{n}")
        mine: list[int] = []
        i = 0
        while not self.stop.is_set():
            i += 1
            name = f"soak {self.run_id} c{n}-{i}"
            try:
                with transaction.atomic():
                    room = Room.objects.create(
                        name=name, type=rng.choice(["open", "public", "private"])
                    )
                    for k in range(rng.randint(0, 3)):
                        Member.objects.create(
                            room=room, user_id=f"u{n}-{i}-{k}", type=rng.choice(["host", "guest"])
                        )
                        self.tally.add("members saved with their room")
                with self.tally.lock:
                    self.created.append(name)
                if mine and rng.random() < 0.3:
                    Member.objects.create(room_id=rng.choice(mine), user_id=f"late-{n}-{i}")
                    self.tally.add("members added later")
                mine.append(room.pk)
            except Exception as exc:
                self.tally.problem(f"creator {n}: saving {name!r} failed: {exc!r}")
            self.stop.wait(rng.uniform(0.1, 0.5))
        connection.close()

    def refresh_rooms(self) -> None:
        while not self.stop.is_set():
            self.room_ids = [
                r["id"] for r in self.emulator.rooms.values() if not r.get("terminated_at")
            ]
            self.stop.wait(1.0)

    def participant(self, n: int) -> None:
        from django_pagecall.emulator import EmulatorError

        rng = random.Random(f"{self.args.seed}-participant-{n}")
        while not self.stop.is_set():
            self.stop.wait(rng.uniform(0.01, 0.08))
            if not self.room_ids:
                continue
            room_id = rng.choice(self.room_ids)
            try:
                online = [s for s in self.emulator.sessions(room_id) if "disconnected_at" not in s]
                if online and rng.random() < 0.45:
                    result = self.emulator.leave(room_id, rng.choice(online)["id"])
                    self.tally.add("participants left")
                else:
                    result = self.emulator.join(room_id, **self.someone(rng, room_id))
                    self.tally.add("participants joined")
            except EmulatorError:
                self.tally.add("participants turned away (private room, race)")
                continue
            delivery = result["delivery"]
            if delivery is not None:
                self.sent.append((delivery["url"], delivery["headers"], delivery["body"]))

    def someone(self, rng: random.Random, room_id: str) -> dict[str, Any]:
        room_type = self.emulator.state.get_room(room_id)["type"]
        if room_type == "private":
            members = [m["user_id"] for m in self.emulator.members(room_id) if "user_id" in m]
            return {"user_id": rng.choice(members)} if members else {"user_id": "nobody"}
        if room_type == "open" and rng.random() < 0.5:
            return {}
        return {"user_id": f"guest-{rng.randint(1, 30)}"}

    def loader(self, n: int) -> None:
        import requests

        from django_pagecall.webhooks.auth import SECRET_HEADER

        expected = {
            "duplicate": {200, 202},
            "no credentials": {401, 429},
            "wrong secret": {401, 429},
            "invalid body": {400},
            "oversized": {413},
        }
        kinds, weights = list(expected), [6, 2, 2, 1, 0.3]
        rng = random.Random(f"{self.args.seed}-loader-{n}")
        session = requests.Session()
        session.trust_env = False
        while not self.stop.is_set():
            if not self.sent:
                self.stop.wait(0.1)
                continue
            url, headers, body = rng.choice(list(self.sent)[-500:])
            kind = rng.choices(kinds, weights)[0]
            data: Any = body
            if kind == "no credentials":
                headers = {"Content-Type": "application/json"}
            elif kind == "wrong secret":
                headers = {**headers, SECRET_HEADER: "0" * 64}
            elif kind == "invalid body":
                data = {"action": "sessionJoined", "payload": {"roomId": body["payload"]["roomId"]}}
            elif kind == "oversized":
                data = {**body, "padding": "x" * 70_000}
            try:
                status = session.post(url, json=data, headers=headers, timeout=(5, 30)).status_code
            except requests.RequestException as exc:
                self.tally.problem(f"loader {n}: {kind}: no answer: {exc!r}")
                continue
            self.tally.add(f"load {kind} -> {status}")
            if status not in expected[kind]:
                self.tally.problem(f"loader {n}: {kind} answered {status}")
            self.stop.wait(rng.uniform(0.0, 0.02))

    def beat(self) -> None:
        from django_pagecall import tasks

        while not self.stop.wait(10):
            try:
                tasks.sync.apply_async(retry=False)
                self.tally.add("periodic syncs queued")
            except Exception:
                self.tally.add("periodic syncs not queued (broker down)")

    def faults(self) -> None:
        rng = random.Random(f"{self.args.seed}-faults")
        i = 0
        while not self.stop.wait(self.args.fault_interval):
            kind = FAULTS[i % len(FAULTS)]
            i += 1
            self.tally.say(f"fault: {kind}")
            self.tally.add(f"fault: {kind}")
            emu = self.emulator
            if kind == "pagecall 5xx":
                emu.inject("POST", "/rooms", status=503, times=3)
                emu.inject("POST", "/rooms/{room_id}/members", status=500, times=2)
                emu.inject("GET", "/rooms", status=503, times=1)
            elif kind == "pagecall creates then drops":
                emu.inject("POST", "/rooms", drop="after", times=2)
            elif kind == "pagecall drops before":
                emu.inject("POST", "/rooms", drop="before", times=2)
            elif kind == "pagecall slower than the read timeout":
                emu.inject("POST", "/rooms", delay=self.late_by(), times=1)
            elif kind == "broker restart":
                self.redis.stop()
                time.sleep(2)  # not stop.wait: the broker must come back whatever happens
                self.redis.start()
            elif kind == "worker SIGKILL":
                alive = [w for w in self.workers if w.alive]
                if alive:
                    rng.choice(alive).kill()
                    time.sleep(1)
                    self.start_worker()

    @staticmethod
    def late_by() -> float:
        """Past the read timeout, but carried out before the app looks the room up.

        The emulator sleeps, then creates the room. The app, after its read
        timeout, waits ``AMBIGUOUS_GRACE`` and looks the room up by name: a
        room Pagecall creates later than that is created twice, the one window
        an API without idempotency keys leaves open (``AMBIGUOUS_GRACE`` sizes
        it: 30 s by default, 0.3 s in tests.timing, which these processes use).
        """
        from django_pagecall.conf import pagecall_settings as s
        from django_pagecall.sync import outcomes

        return float(s.READ_TIMEOUT) + outcomes.AMBIGUOUS_GRACE / 4

    def run_load(self) -> None:
        threads = [threading.Thread(target=self.refresh_rooms, name="rooms")]
        for n in range(self.args.creators):
            threads.append(threading.Thread(target=self.creator, args=(n,), name=f"creator-{n}"))
        for n in range(self.args.participants):
            threads.append(
                threading.Thread(target=self.participant, args=(n,), name=f"participant-{n}")
            )
        for n in range(self.args.loaders):
            threads.append(threading.Thread(target=self.loader, args=(n,), name=f"loader-{n}"))
        threads += [
            threading.Thread(target=self.beat, name="beat"),
            threading.Thread(target=self.faults, name="faults"),
        ]
        for thread in threads:
            thread.start()
        self.stop.wait(self.args.duration)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=60)
            if thread.is_alive():
                self.tally.problem(f"thread {thread.name} did not stop")

    # -- the end -----------------------------------------------------------------------------------

    def settle(self) -> None:
        """Workers back and draining, then stopped; then the commands, as an operator would."""
        from django.core.management import CommandError, call_command

        from django_pagecall import sync, tasks
        from django_pagecall.models import Member, Room, SyncState

        def unsettled() -> int:
            done = [SyncState.SYNCED, SyncState.FAILED]
            return (
                Room.objects.exclude(sync_state__in=done).count()
                + Member.objects.exclude(sync_state__in=done).count()
            )

        if not self.redis.answers():
            self.redis.start()
        for worker in self.workers:
            if not worker.alive and worker.process is not None:
                worker.process = None
        while sum(w.alive for w in self.workers) < self.args.workers:
            self.start_worker()
        tasks.sync.apply_async(retry=False)
        started = time.monotonic()
        drained = wait_until(lambda: unsettled() == 0, timeout=self.args.drain, interval=0.5)
        self.tally.say(
            f"workers drained in {time.monotonic() - started:.1f}s"
            if drained
            else f"{unsettled()} rooms/members still unsettled after {self.args.drain}s"
        )
        for worker in self.workers:
            worker.stop()
        runs = 0
        for runs in range(1, 7):  # noqa: B007  (printed below)
            # Status 1 (something failed or is left to retry) is what the loop looks at next.
            with contextlib.suppress(CommandError):
                call_command("pagecall_sync", verbosity=0, stdout=Quiet(), stderr=Quiet())
            if unsettled() == 0:
                break
            time.sleep(sync.lease_seconds() / 3)  # claims of killed workers run out
        self.tally.say(f"pagecall_sync done ({runs} run(s)); replaying")
        try:
            call_command("pagecall_replay", stdout=Quiet(), stderr=Quiet())
        except CommandError as exc:  # the load's invalid bodies fail again, as they must
            self.tally.say(f"pagecall_replay: {exc}")

    def check(self) -> list[str]:
        from django_pagecall.models import Member, Room, Session, SyncState, WebhookDelivery
        from django_pagecall.remote import parse_datetime

        failures: list[str] = []
        figures: list[tuple[str, Any]] = []
        rooms = list(Room.objects.all())
        by_pagecall_id = {r.pagecall_id: r for r in rooms if r.pagecall_id}

        # Rooms and members: all synced, all there.
        states = collections.Counter(r.sync_state for r in rooms)
        member_states = collections.Counter(Member.objects.values_list("sync_state", flat=True))
        figures += [("rooms saved", len(self.created)), ("rooms in the database", len(rooms))]
        figures += [("room states", dict(states)), ("member states", dict(member_states))]
        if len(rooms) != len(self.created) or set(self.created) != {r.name for r in rooms}:
            failures.append("rooms saved and rooms stored differ")
        if states.get(SyncState.SYNCED, 0) != len(rooms):
            failures.append(f"rooms not synced: {dict(states)}")
        if set(member_states) - {SyncState.SYNCED}:
            failures.append(f"members not synced: {dict(member_states)}")

        # At the emulator: every room once.
        remote = self.emulator.rooms
        names = collections.Counter(r["name"] for r in remote.values())
        twice = {n: c for n, c in names.items() if c > 1}
        posts = collections.Counter(
            r["status"]
            for r in self.emulator.requests
            if r["method"] == "POST" and r["route"] == "/rooms"
        )
        figures += [("rooms at the emulator", len(remote)), ("POST /rooms answers", dict(posts))]
        figures += [("room names created twice at the emulator", len(twice))]
        if twice:
            failures.append(f"rooms created twice at the emulator: {sorted(twice)[:5]}")
        if set(names) != set(self.created):
            failures.append("rooms at the emulator and rooms saved differ")
        for room in rooms:
            if room.pagecall_id and remote.get(room.pagecall_id, {}).get("name") != room.name:
                failures.append(f"room {room.pk} points at the wrong Pagecall room")

        # Sessions: every one the emulator played, with its times, from the webhooks alone.
        local = {s.session_id: s for s in Session.objects.all()}
        played = missing = wrong = 0
        for room_id, room in by_pagecall_id.items():
            for s in self.emulator.sessions(room_id):
                played += 1
                mine = local.get(s["id"])
                if mine is None:
                    missing += 1
                    continue
                expected = (
                    room.pk,
                    parse_datetime(s["connected_at"]),
                    parse_datetime(s.get("disconnected_at")),
                )
                if (mine.room_id, mine.joined_at, mine.left_at) != expected:
                    wrong += 1
        figures += [("sessions played", played), ("sessions stored", len(local))]
        figures += [("sessions missing", missing), ("sessions with wrong times", wrong)]
        if not played:
            failures.append("no session was played: the load never joined a room")
        if missing or wrong or len(local) != played:
            failures.append(
                f"sessions: {missing} missing, {wrong} wrong, {len(local)} stored of {played}"
            )

        # Usage: what the workers counted, and the sweep after them, adds up and matches the
        # sessions of every room with no meeting going on.
        failures += self.check_usage(figures)

        # Webhooks: every one the emulator sent accepted, stored and processed.
        webhooks = self.emulator.webhooks
        answers = collections.Counter(d["status"] for d in webhooks)
        figures += [
            ("webhooks sent by the emulator", len(webhooks)),
            ("their answers", dict(answers)),
        ]
        if set(answers) - {200, 202}:
            errors = collections.Counter(d["error"] for d in webhooks if d["status"] is None)
            failures.append(f"webhooks not accepted: {dict(answers)} {dict(errors)}")
        deliveries = list(
            WebhookDelivery.objects.values_list("session_id", "action", "state", "result")
        )
        processed = {(s, a) for s, a, state, _ in deliveries if state == "processed"}
        sent_pairs = {(d["body"]["payload"]["sessionId"], d["body"]["action"]) for d in webhooks}
        lost = sent_pairs - processed
        unprocessed = [(s, a, st) for s, a, st, _ in deliveries if s and st != "processed"]
        figures += [("deliveries stored", len(deliveries))]
        figures += [
            (
                "by state and result",
                dict(collections.Counter((st, r) for _, _, st, r in deliveries)),
            )
        ]
        figures += [
            ("deliveries lost", len(lost)),
            ("valid deliveries not processed", len(unprocessed)),
        ]
        if lost:
            failures.append(f"{len(lost)} deliveries lost, e.g. {sorted(lost)[:3]}")
        if unprocessed:
            failures.append(f"{len(unprocessed)} valid deliveries not processed: {unprocessed[:3]}")
        refused = sum(1 for s, _, st, _ in deliveries if not s and st == "failed")
        expected_refused = sum(
            n
            for k, n in self.tally.counts.items()
            if k in ("load invalid body -> 400", "load oversized -> 413")
        )
        if refused != expected_refused:
            failures.append(f"{refused} stored refusals, {expected_refused} expected")

        figures += sorted(self.tally.counts.items())
        figures += [("problems during the run", len(self.tally.problems))]
        failures += self.tally.problems[:20]
        print("\n== figures")
        for name, value in figures:
            print(f"  {name}: {value}")
        return failures

    def check_usage(self, figures: list[tuple[str, Any]]) -> list[str]:
        from django_pagecall.meetings import merge
        from django_pagecall.models import ActiveUser, MonthlyUsage, Room, Session
        from django_pagecall.usage import count_stale, month_of

        swept = count_stale(limit=10**6)
        failures: list[str] = []
        spans: dict[int, list[tuple[Any, Any]]] = collections.defaultdict(list)
        for room_id, joined, left in Session.objects.filter(joined_at__isnull=False).values_list(
            "room_id", "joined_at", "left_at"
        ):
            spans[room_id].append((joined, left))
        totals: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
        quiet = 0
        for room in Room.objects.all():
            for month, figures_of_room in (room.usage_counted or {}).items():
                for i, value in enumerate(figures_of_room):
                    totals[month][i] += value
            meetings = merge(spans[room.pk])
            if any(m.ended_at is None for m in meetings):
                continue  # a meeting goes on: counted once it ends
            quiet += 1
            expected: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
            for joined, _ in spans[room.pk]:
                expected[month_of(joined).isoformat()][0] += 1
            for m in meetings:
                counted = expected[month_of(m.started_at).isoformat()]
                counted[1] += 1
                counted[2] += m.seconds()
            if room.usage_stale or dict(expected) != {
                k: v for k, v in (room.usage_counted or {}).items() if v != [0, 0, 0]
            }:
                failures.append(f"room {room.pk}: usage {room.usage_counted} != {dict(expected)}")
        stored = {
            row.month.isoformat(): [row.sessions, row.meetings, row.meeting_seconds]
            for row in MonthlyUsage.objects.filter(workspace="default")
        }
        if stored != dict(totals):
            failures.append(f"monthly usage {stored} != the rooms' counts {dict(totals)}")
        for row in MonthlyUsage.objects.all():
            users = ActiveUser.objects.filter(workspace=row.workspace, month=row.month).count()
            if users != row.active_users:
                failures.append(f"{row}: {row.active_users} active users, {users} recorded")
        figures += [("rooms counted by the sweep at the end", swept)]
        figures += [("rooms with no meeting going on, usage checked", quiet)]
        figures += [("monthly usage", stored)]
        return failures[:20]


class Quiet:
    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://root@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def parse_args(argv: Iterable[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load (120)")
    parser.add_argument("--creators", type=int, default=4)
    parser.add_argument("--participants", type=int, default=3)
    parser.add_argument("--loaders", type=int, default=2)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--fault-interval", type=float, default=5.0, help="seconds (5)")
    parser.add_argument("--drain", type=float, default=90.0, help="seconds to wait for workers")
    parser.add_argument("--database", default=os.environ.get("SOAK_DATABASE", "pagecall_soak"))
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--keep-logs", action="store_true")
    return parser.parse_args(list(argv) if argv is not None else None)


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["BENCH_DATABASE"] = args.database  # read by benchmarks._setup when imported
    os.environ.pop("BENCH_DATABASE_URL", None)
    workdir = Path(tempfile.mkdtemp(prefix="pagecall-soak-"))
    soak = Soak(args, workdir)
    soak.tally.say(
        f"soak: {args.duration:.0f}s of load, database {args.database}, logs in {workdir}"
    )
    failures: list[str] = []
    try:
        soak.set_up()
        soak.tally.say(
            f"site on :{soak.port}, emulator at {soak.emulator.url}, broker {soak.redis.url}"
        )
        soak.run_load()
        soak.tally.say("load stopped; settling")
        soak.settle()
        failures = soak.check()
    finally:
        soak.tear_down()
    if failures:
        print("\n== FAILED")
        for failure in failures:
            print(f"  {failure}")
        print(f"  logs kept in {workdir}")
        return 1
    print("\n== OK: nothing lost, nothing created twice, every session recorded right")
    if not args.keep_logs:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
