"""Webhook latency under gunicorn while ``pagecall_prune`` deletes old deliveries, against none:
windows with the prune running and paused (SIGSTOP) alternate; docs/performance.md.

    python -m benchmarks.prune [--deliveries 1000000] [--window 10] [--clients 2]
           [--batch-size 500] [--pause 1] [--database-url mysql://root@127.0.0.1:3306/NAME]"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 5000
KEEP_DAYS = 30


def ensure_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if parts.scheme.startswith("postgres"):
        import psycopg

        admin = parts._replace(scheme="postgresql", path="/postgres").geturl()
        with psycopg.connect(admin, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
        return
    import MySQLdb

    conn = MySQLdb.connect(host=parts.hostname, port=parts.port or 3306, user=parts.username)
    conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
    conn.close()


def fill(count: int, rooms: list[Any]) -> None:
    """``count`` processed deliveries received 40 to 90 days ago, oldest first."""
    from django.utils import timezone

    from django_pagecall.models import DeliveryResult, DeliveryState, WebhookDelivery

    start, spread = timezone.now() - timedelta(days=90), timedelta(days=50)
    for first in range(0, count, CHUNK):
        rows = []
        for i in range(first, min(first + CHUNK, count)):
            at = start + spread * (i / count)
            action = "sessionLeft" if i % 2 else "sessionJoined"
            rows.append(
                WebhookDelivery(
                    room=rooms[i % len(rooms)],
                    action=action,
                    session_id=f"old{i // 2:021x}",
                    event_at=at,
                    headers={"Content-Type": "application/json", "X-Pagecall-Secret": "********"},
                    body=f'{{"action":"{action}","payload":{{"sessionId":"old{i // 2:021x}"}}}}',
                    remote_addr="127.0.0.1",
                    received_at=at,
                    state=DeliveryState.PROCESSED,
                    result=DeliveryResult.APPLIED,
                    processed_at=at,
                )
            )
        WebhookDelivery.objects.bulk_create(rows)


def send(port: int, rooms: list[tuple[str, str, str]], client: int, state: dict[str, Any]) -> None:
    """Post joins and leaves, one at a time, until told to stop; each latency goes to the phase
    it started and ended in (one that spans a switch is dropped)."""
    base = datetime.now(UTC) - timedelta(hours=1)
    n = 0
    while not state["stop"]:
        n += 1
        k = (n + 1) // 2  # session k joins, then leaves
        pk, secret, pagecall_id = rooms[(k * 7 + client) % len(rooms)]
        stamp = (base + timedelta(milliseconds=n)).isoformat(timespec="milliseconds")
        body = json.dumps(
            {
                "action": "sessionJoined" if n % 2 else "sessionLeft",
                "payload": {
                    "roomId": pagecall_id,
                    "userId": f"u{client}-{k}",
                    "memberId": f"{client:04x}{k:020x}",
                    "sessionId": f"{client:04x}{k:020x}",
                    "sessionsCount": n % 2,
                    "membersCount": n % 2,
                    "timestamp": stamp.replace("+00:00", "Z"),
                },
            }
        )
        headers = {
            "Content-Type": "application/json",
            "X-Pagecall-Room": pk,
            "X-Pagecall-Secret": secret,
        }
        phase, started = state["phase"], time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", "/pagecall/webhook/", body, headers)
        response = conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        conn.close()
        if response.status != 200:
            state["errors"] += 1
        if phase == state["phase"] and phase in ("A", "B"):
            state[phase][-1].append(elapsed)


def pct(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1] * 1000 if len(samples) > 1 else 0.0


def main() -> int:
    cpus = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=1_000_000, help="Old rows to prune.")
    parser.add_argument("--window", type=float, default=10.0, help="Seconds per window.")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=2, help="Concurrent webhook senders.")
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=None, help="pagecall_prune's.")
    parser.add_argument("--pause", type=float, default=None, help="pagecall_prune's.")
    parser.add_argument("--workers", type=int, default=2 * cpus, help="gunicorn workers.")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_PRUNE_DATABASE_URL", "postgres://root@127.0.0.1:5432/pagecall_bench_prune"
        ),
    )
    parser.set_defaults(python=sys.executable, pythonpath=[], worker_class="sync")
    args = parser.parse_args()

    # The site's settings read the database from the environment, in every process.
    os.environ["BENCH_WEBHOOKS_DATABASE_URL"] = args.database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.webhooks"
    sys.path.insert(0, str(ROOT))
    ensure_database(args.database_url)
    import django
    from django.core.management import call_command

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from benchmarks._setup import each_table
    from benchmarks.webhooks import free_port, make_rooms, start_gunicorn
    from django_pagecall.models import Room, WebhookDelivery

    call_command("migrate", verbosity=0, skip_checks=True)
    call_command("flush", interactive=False, verbosity=0)
    rooms = make_rooms(args.rooms)
    started = time.monotonic()
    fill(args.deliveries, list(Room.objects.order_by("pk")))
    each_table("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE TABLE")
    print(f"filled {args.deliveries} old deliveries in {time.monotonic() - started:.0f} s")
    connection.close()

    workdir = Path(tempfile.mkdtemp(prefix="bench-prune-"))
    port = free_port()
    server = start_gunicorn(args, port, workdir / "gunicorn.log")
    state: dict[str, Any] = {"phase": "warm-up", "stop": False, "errors": 0, "A": [], "B": []}
    clients = [
        threading.Thread(target=send, args=(port, rooms, i, state)) for i in range(args.clients)
    ]
    command = [sys.executable, "-m", "django", "pagecall_prune", f"--days={KEEP_DAYS}"]
    if args.batch_size:
        command.append(f"--batch-size={args.batch_size}")
    if args.pause is not None:
        command.append(f"--pause={args.pause}")
    prune: subprocess.Popen[bytes] | None = None
    out = (workdir / "prune.out").open("wb")
    pruning = 0.0
    try:
        for thread in clients:
            thread.start()
        time.sleep(args.warmup)

        def window(phase: str) -> None:
            state[phase].append([])
            state["phase"] = phase

        # A and B alternate until the prune is done, then a last A: drift hits both alike.
        while prune is None or prune.poll() is None:
            window("A")
            time.sleep(args.window)
            window("B")
            began = time.monotonic()
            if prune is None:
                prune = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=out)
            else:
                prune.send_signal(signal.SIGCONT)
            try:
                prune.wait(timeout=args.window)
            except subprocess.TimeoutExpired:
                prune.send_signal(signal.SIGSTOP)
            pruning += time.monotonic() - began
        window("A")
        time.sleep(args.window)
    finally:
        state["stop"] = True
        if prune is not None and prune.poll() is None:
            prune.send_signal(signal.SIGCONT)
            prune.kill()
        for thread in clients:
            thread.join(timeout=60)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        out.close()

    a, b = (list(itertools.chain.from_iterable(state[p])) for p in ("A", "B"))
    p99_a, p99_b = pct(a, 99), pct(b, 99)
    seconds = len(state["A"]) * args.window, pruning
    for name, samples, spent in (("no prune", a, seconds[0]), ("pruning", b, seconds[1])):
        print(
            f"{name:9} {len(samples):6} webhooks  {len(samples) / spent:6.1f} req/s  "
            f"p50 {pct(samples, 50):7.1f} ms  p99 {pct(samples, 99):7.1f} ms"
        )
    # Each B window against the A window before it; a window cut short by the prune's end is left out.
    pairs = [
        pct(wb, 99) / pct(wa, 99)
        for wa, wb in zip(state["A"], state["B"], strict=False)
        if min(len(wa), len(wb)) >= 100
    ]
    print(
        f"p99 pruning / no prune: {p99_b / p99_a:.2f}  (median of {len(pairs)} window pairs "
        f"{statistics.median(pairs) if pairs else 0:.2f})  target <= 2"
    )
    old = WebhookDelivery.objects.filter(received_at__lt=timezone.now() - timedelta(days=KEEP_DAYS))
    said = (workdir / "prune.out").read_text().strip().splitlines()
    print(
        f"pagecall_prune: {said[-1] if said else '?'} (exit {prune.returncode if prune else '?'}) "
        f"in {pruning:.0f} s running; {old.count()} old left; non-200 answers {state['errors']}"
    )
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
