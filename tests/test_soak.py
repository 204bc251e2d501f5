"""A short run of the soak test (``benchmarks/soak.py``): load and every kind of fault for 20 s,
then the checks that nothing was lost, nothing created twice and every session recorded right.
The full run is ``python -m benchmarks.soak`` (docs/performance.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.soak, pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[1]
SOAK = ROOT / "benchmarks" / "soak.py"


def test_a_short_soak_loses_nothing() -> None:
    if not SOAK.is_file():
        pytest.skip("benchmarks/ is not in the sdist")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    # A name of this run's own: another run's soak drops its database by force when it starts.
    database = f"pagecall_soak_smoke_{os.getpid()}"
    # Every kind of fault comes round in 20 s at one every 2.5 s, with room for a busy machine.
    command = [sys.executable, "-m", "benchmarks.soak", "--duration", "20"]
    command += ["--fault-interval", "2.5", "--database", database]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=280, check=False
    )
    _drop(database)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]  # the soak's figures, to see what went wrong
    assert "== OK" in done.stdout
    for kind in ("broker restart", "worker SIGKILL", "pagecall creates then drops"):
        assert f"fault: {kind}" in done.stdout, done.stdout[-3000:]


def _drop(database: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://root@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
