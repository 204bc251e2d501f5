"""Webhook ingestion under gunicorn, against a bare Django view that inserts one row (the ceiling).

    python -m benchmarks.webhooks [--duration 10] [--rounds 3] [--workers N] [--connections N]

Needs PostgreSQL (``BENCH_WEBHOOKS_DATABASE_URL``, default a database of its
own on 127.0.0.1), ``wrk`` (Debian: ``apt-get install wrk``) and gunicorn
importable by the Python that runs the server (``--python``, default this
one; ``--pythonpath`` adds a directory holding it).

What it does: makes a fresh database, migrates, creates 100 rooms with
Pagecall ids, then starts gunicorn serving ``/pagecall/webhook/``,
``/bench/ceiling/`` and ``/bench/floor/``. wrk (loopback) sends webhook bodies
shaped like Pagecall's: each session joins then leaves, rooms round-robin, one
request in ten a duplicate of the one before, each room's own headers. The
ceiling gets the same bodies and does one ``INSERT`` through Django's
connection. The writes floor (:func:`writes_floor_view`) runs the app's own
statement with nothing around it, to tell what the writes every webhook needs
cost from what the view around them costs. The three run side by side,
rotating, ``--rounds`` times; medians are reported, with webhook/ceiling
ratios for requests per second and p99 latency, and the floor's. Then it
checks that every answered webhook was stored and processed.

This module is also the benchmark site: its settings (the test settings with
this module as URLconf), ``urlpatterns`` and ``application`` (gunicorn's
entry point), the last two made on first use, after Django is set up.
Nothing here asserts timings; it prints them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.settings import *  # noqa: F403  (the benchmark site is the test site, tuned below)
from tests.settings import database_from_url

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE_URL = os.environ.get(
    "BENCH_WEBHOOKS_DATABASE_URL", "postgres://root@127.0.0.1:5432/pagecall_bench_webhooks"
)

# -- settings of the benchmark site ------------------------------------------------------------

ROOT_URLCONF = "benchmarks.webhooks"
DEBUG = False
DATABASES = {"default": {**database_from_url(BENCH_DATABASE_URL), "CONN_MAX_AGE": 60}}
if os.environ.get("BENCH_SERVER_SIDE_BINDING") == "1":
    # Parameters bound on the server; not prepared (Django keeps prepare_threshold at None).
    DATABASES["default"]["OPTIONS"] = {"server_side_binding": True}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
CEILING_TABLE = "bench_ceiling"


def ceiling_view(request: Any) -> Any:
    """The ceiling: read the body, one INSERT, a small JSON answer. No auth, no validation."""
    from django.db import connection
    from django.http import JsonResponse

    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {CEILING_TABLE} (body, received_at) VALUES (%s, now())",  # noqa: S608
            [request.body.decode()],
        )
    return JsonResponse({"status": "ok"})


def writes_floor_view(request: Any) -> Any:
    """The writes floor: what every webhook costs the database, alone. The body decoded and
    checked for the plain shape only, the room's pk taken from its header unchecked, then the
    app's own statement (``django_pagecall_receive_webhook``: the delivery with its headers
    masked as the app masks them, the session, the counters) and a small JSON answer; no DRF,
    no authentication, nothing for errors or signals."""
    from django.http import JsonResponse
    from django.utils import timezone

    from django_pagecall.webhook_auth import ROOM_HEADER
    from django_pagecall.webhooks import queries
    from django_pagecall.webhooks.processing import masked_headers
    from django_pagecall.webhooks.serializers import plainly_valid

    raw = request.body
    event = plainly_valid(json.loads(raw))
    if event is None:
        return JsonResponse({"error": "invalid"}, status=400)
    received = queries.receive_postgresql(
        int(request.headers[ROOM_HEADER]), event, masked_headers(request.headers), raw.decode(),
        request.META.get("REMOTE_ADDR"), timezone.now(), "default", rows=False,
    )  # fmt: skip
    return JsonResponse({"status": received.outcome})


def __getattr__(name: str) -> Any:
    # The URLconf and the WSGI app import models, so they can only be made once Django is set
    # up; this module is imported earlier, as the settings.
    if name == "urlpatterns":
        from django.urls import include, path
        from django.views.decorators.csrf import csrf_exempt

        return [
            path("pagecall/", include("django_pagecall.urls")),
            path("bench/ceiling/", csrf_exempt(ceiling_view)),
            path("bench/floor/", csrf_exempt(writes_floor_view)),
        ]
    if name == "application":
        from django.core.wsgi import get_wsgi_application

        return get_wsgi_application()
    raise AttributeError(name)


# -- the run -----------------------------------------------------------------------------------

LUA = r"""
-- Generated by benchmarks/webhooks.py: Pagecall-shaped webhook bodies, each session joining
-- then leaving, one request in ten a duplicate of the one before.
local rooms = %(rooms)s
local path = "%(path)s"
local with_auth = %(with_auth)s
local base = %(base)d
local run = %(run)d  -- a new one per wrk run, so that every run's sessions are new
local threads = {}
local counter, previous = 0, nil

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local function stamp(ms)
  return os.date("!%%Y-%%m-%%dT%%H:%%M:%%S", math.floor(ms / 1000)) .. string.format(".%%03dZ", ms %% 1000)
end

request = function()
  counter = counter + 1
  if previous ~= nil and counter %% 10 == 0 then
    return previous
  end
  local n = counter - math.floor(counter / 10)
  local k = math.floor((n + 1) / 2)
  local room = rooms[(k %% #rooms) + 1]
  local joined = (n %% 2) == 1
  local body = string.format(
    '{"action":"%%s","payload":{"roomId":"%%s","userId":"u%%d-%%d-%%d","memberId":"%%02x%%02x%%020x","sessionId":"%%02x%%02x%%020x","sessionsCount":%%d,"membersCount":%%d,"timestamp":"%%s"}}',
    joined and "sessionJoined" or "sessionLeft", room[3], run, id, k, run, id, k, run, id, k,
    joined and 1 or 0, joined and 1 or 0, stamp(base + n))
  local headers = {["Content-Type"] = "application/json"}
  if with_auth then
    headers["X-Pagecall-Room"] = room[1]
    headers["X-Pagecall-Secret"] = room[2]
  end
  previous = wrk.format("POST", path, headers, body)
  return previous
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%%d,"duration_us":%%d,"non_2xx":%%d,"socket_errors":%%d,"p50_us":%%d,"p99_us":%%d,"mean_us":%%f}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


def setup_database(rooms: int) -> list[tuple[str, str, str]]:
    """A fresh database, migrated, with ``rooms`` rooms on "Pagecall"; their (pk, secret, id)."""
    import psycopg

    parts = urlsplit(BENCH_DATABASE_URL)
    name = parts.path.lstrip("/")
    admin_url = parts._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.db import connection

    from django_pagecall.models import Room, SyncState
    from django_pagecall.webhook_auth import SECRET_HEADER, headers_for_room

    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {CEILING_TABLE} (id bigserial PRIMARY KEY, body text NOT NULL,"
            " received_at timestamptz NOT NULL)"
        )
    made = Room.objects.bulk_create(
        Room(
            name=f"bench-{i}",
            pagecall_id=f"{i:024x}",
            sync_state=SyncState.SYNCED,
        )
        for i in range(rooms)
    )
    connection.close()  # gunicorn's workers open their own
    return [
        (str(room.pk), headers_for_room(room.pk)[SECRET_HEADER], str(room.pagecall_id))
        for room in made
    ]


def lua_script(rooms: list[tuple[str, str, str]], path: str, with_auth: bool, run: int) -> str:
    table = "{" + ", ".join(f'{{"{pk}", "{secret}", "{pcid}"}}' for pk, secret, pcid in rooms)
    return LUA % {
        "rooms": table + "}",
        "path": path,
        "with_auth": "true" if with_auth else "false",
        "base": int(time.time() * 1000) - 3_600_000,
        "run": run,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gunicorn(args: argparse.Namespace, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.webhooks",
        "PYTHONPATH": os.pathsep.join([str(ROOT), *args.pythonpath]),
    }
    command = [
        args.python,
        "-m",
        "gunicorn",
        "benchmarks.webhooks:application",
        f"--bind=127.0.0.1:{port}",
        f"--workers={args.workers}",
        f"--worker-class={args.worker_class}",
        "--backlog=2048",
        "--log-level=warning",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited ({process.returncode}); see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"gunicorn did not start within 30 s; see {log}")


def run_wrk(
    args: argparse.Namespace, port: int, script: Path, path: str, duration: float
) -> dict[str, Any]:
    command = [
        args.wrk,
        f"--threads={args.threads}",
        f"--connections={args.connections}",
        f"--duration={max(int(duration), 1)}s",
        "--timeout=10s",
        f"--script={script}",
        f"http://127.0.0.1:{port}{path}",
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRK_RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("WRK_RESULT "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def vacuum() -> None:
    """``VACUUM ANALYZE`` the tables the views write, before every run. Each run leaves
    thousands of dead row versions behind (every webhook rewrites its room's counters and its
    session); PostgreSQL's autovacuum would clear them, but it may be off (it is on the machine
    of BENCHMARKS.md), and left there they made each round slower than the one before."""
    from django.db import connection

    from benchmarks._setup import each_table

    each_table("VACUUM ANALYZE", also=[CEILING_TABLE])
    connection.close()


def check_stored(expected_webhooks: int) -> dict[str, int]:
    from django.db import connection
    from django.db.models import Count

    from django_pagecall.models import Session, WebhookDelivery

    states = dict(
        WebhookDelivery.objects.values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    results = dict(
        WebhookDelivery.objects.values_list("result")
        .annotate(n=Count("pk"))
        .values_list("result", "n")
    )
    counts = {
        "answered_2xx": expected_webhooks,
        "deliveries": sum(states.values()),
        **{f"state_{k}": v for k, v in states.items()},
        **{f"result_{k}": v for k, v in results.items() if k},
        "sessions": Session.objects.count(),
    }
    connection.close()
    return counts


def main(argv: list[str] | None = None) -> int:
    cpus = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="Seconds per measured run.")
    parser.add_argument("--warmup", type=float, default=3.0, help="Seconds of warm-up per view.")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating runs of each view.")
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2 * cpus, help="gunicorn workers.")
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--threads", type=int, default=min(cpus, 4), help="wrk threads.")
    parser.add_argument("--connections", type=int, default=4 * cpus, help="wrk connections.")
    parser.add_argument("--python", default=sys.executable, help="Python that runs gunicorn.")
    parser.add_argument("--pythonpath", action="append", default=[], help="Extra sys.path dir.")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    parser.add_argument(
        "--server-side-binding",
        action="store_true",
        help='Run the site with DATABASES OPTIONS {"server_side_binding": True} (both views).',
    )
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args(argv)
    if shutil.which(args.wrk) is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.webhooks"
    if args.server_side_binding:
        os.environ["BENCH_SERVER_SIDE_BINDING"] = "1"
    rooms = setup_database(args.rooms)
    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    scripts = {
        "webhook": (workdir / "webhook.lua", "/pagecall/webhook/"),
        "ceiling": (workdir / "ceiling.lua", "/bench/ceiling/"),
        "floor": (workdir / "floor.lua", "/bench/floor/"),
    }
    run_numbers = itertools.count(1)

    def measure(name: str, duration: float) -> dict[str, Any]:
        vacuum()
        script, path = scripts[name]
        script.write_text(
            lua_script(rooms, path, with_auth=name != "ceiling", run=next(run_numbers))
        )
        return run_wrk(args, port, script, path, duration)

    port = free_port()
    log = workdir / "gunicorn.log"
    server = start_gunicorn(args, port, log)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in scripts}
    answered_webhooks = 0  # by the webhook view and the floor: both store deliveries
    try:
        for name in scripts:
            result = measure(name, args.warmup)
            if name != "ceiling":
                answered_webhooks += result["requests"] - result["non_2xx"]
        names = list(scripts)
        for round_ in range(args.rounds):
            # Rotate which goes first, so that drift on a shared machine hits all alike.
            order = names[round_ % 3 :] + names[: round_ % 3]
            for name in order:
                result = measure(name, args.duration)
                runs[name].append(result)
                if name != "ceiling":
                    answered_webhooks += result["requests"] - result["non_2xx"]
                print(
                    f"round {round_ + 1} {name:8} {result['rps']:8.0f} req/s  "
                    f"p99 {result['p99_us'] / 1000:7.2f} ms  non-2xx {result['non_2xx']}  "
                    f"socket errors {result['socket_errors']}",
                    flush=True,
                )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    def median(name: str, key: str) -> float:
        return float(statistics.median(r[key] for r in runs[name]))

    summary = {
        "server_side_binding": args.server_side_binding,
        "workers": args.workers,
        "worker_class": args.worker_class,
        "wrk_threads": args.threads,
        "wrk_connections": args.connections,
        "cpus": cpus,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "webhook_rps": median("webhook", "rps"),
        "ceiling_rps": median("ceiling", "rps"),
        "webhook_p99_ms": median("webhook", "p99_us") / 1000,
        "ceiling_p99_ms": median("ceiling", "p99_us") / 1000,
        "webhook_non_2xx": sum(r["non_2xx"] for r in runs["webhook"]),
        "floor_rps": median("floor", "rps"),
        "floor_non_2xx": sum(r["non_2xx"] for r in runs["floor"]),
    }
    summary["floor_ratio"] = summary["floor_rps"] / summary["ceiling_rps"]
    summary["rps_ratio"] = summary["webhook_rps"] / summary["ceiling_rps"]
    summary["p99_ratio"] = summary["webhook_p99_ms"] / summary["ceiling_p99_ms"]
    summary["stored"] = check_stored(answered_webhooks)
    print()
    print(f"webhook  {summary['webhook_rps']:8.0f} req/s   p99 {summary['webhook_p99_ms']:7.2f} ms")
    print(f"ceiling  {summary['ceiling_rps']:8.0f} req/s   p99 {summary['ceiling_p99_ms']:7.2f} ms")
    print(
        f"ratio    {summary['rps_ratio']:8.2f} of the ceiling's throughput (target >= 0.70); "
        f"p99 {summary['p99_ratio']:.2f}x the ceiling's"
    )
    print(
        f"floor    {summary['floor_rps']:8.0f} req/s   {summary['floor_ratio']:.2f} of the ceiling's "
        "(the app's statement alone: no DRF, no authentication, no validation but the shape)"
    )
    print(f"stored   {json.dumps(summary['stored'])}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
