"""``celery worker`` (solo pool, or prefork) in a process of its own, so that a test or the soak
script can SIGKILL it, or its pool process, mid-task; used by ``tests/conftest.py`` and
``benchmarks/soak.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class WorkerProcess:
    def __init__(self, env: dict[str, str], logfile: Path, queue: str, pool: str = "solo") -> None:
        self.env = env
        self.logfile = logfile
        self.queue = queue
        self.pool = pool  # "prefork" runs tasks in a child process (concurrency 1)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.logfile.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker",
                 f"--pool={self.pool}", "--concurrency=1", "--loglevel=INFO",
                 "--without-mingle", "--without-gossip",
                 "-Q", self.queue],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no shutdown, no ack
        self.process.wait(timeout=10)
        self.process = None

    def pool_processes(self) -> list[int]:
        """The pids of the prefork pool's children."""
        assert self.process is not None
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
            self.process = None

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")
