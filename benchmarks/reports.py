"""The usage report and a room's attendance and meetings as the sessions table grows, each size
against the smallest in the same run: statements per call (should stay the same) and time.

    BENCH_DATABASE=pagecall_bench python benchmarks/reports.py [--sizes 10000,100000] [--repeat 5]

Sessions are spread over 90 days and 100 rooms (benchmarks/admin_changelist.py's rows), so the
room measured holds a hundredth of them."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._setup import each_table, setup_django


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    setup_django()
    from django.utils import timezone

    from benchmarks.admin_changelist import SPREAD, _rooms_for_records, empty_tables, grow_sessions
    from django_pagecall.meetings import attendance_of, meetings_of, monthly_usage

    empty_tables()
    room = _rooms_for_records()[0]
    reports: dict[str, Callable[[], Any]] = {
        "usage report": lambda: monthly_usage(timezone.now() - SPREAD, timezone.now()),
        "attendance": lambda: attendance_of(room),
        "meetings": lambda: meetings_of(room),
    }
    results: dict[int, dict[str, tuple[int, float]]] = {}
    made = 0
    for size in sizes:
        grow_sessions(made, size)
        made = size
        each_table("ANALYZE")
        results[size] = {name: timed(run, args.repeat) for name, run in reports.items()}
        print(f"  {size} sessions measured", file=sys.stderr, flush=True)

    base = results[sizes[0]]
    header = ["sessions"]
    for name in reports:
        header += [f"{name} ms", "ratio", "statements"]
    print(" | ".join(header))
    for size in sizes:
        row = [str(size)]
        for name in reports:
            statements, seconds = results[size][name]
            row += [
                f"{seconds * 1e3:.1f}",
                f"{seconds / base[name][1]:.2f}",
                f"{statements} ({statements / base[name][0]:.2f})",
            ]
        print(" | ".join(row))
    empty_tables()


if __name__ == "__main__":
    main()
