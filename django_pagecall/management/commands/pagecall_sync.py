"""``manage.py pagecall_sync``: send to Pagecall every room and member that has not reached it.

Runs inline, without Celery, so it also works while the broker is down. Safe
to run at any time, beside workers: each row is claimed before it is sent.
"""

from __future__ import annotations

from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS

from ... import sync
from ...progress import Progress


class Command(BaseCommand):
    help = "Send pending and stuck rooms and members to Pagecall, and pending changes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database alias to sweep.")
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be sent, send nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        using: str = options["database"]
        work = sync.pending_work(using)
        if options["dry_run"]:
            for name, pk in work:
                self.stdout.write(f"{name} {pk}")
            self.stdout.write(f"{len(work)} to send")
            return
        if not work:
            self.stdout.write("Nothing to send: every room and member is on Pagecall.")
            return
        progress = Progress(len(work), cast(TextIO, self.stderr._out), label="pagecall_sync")
        result = sync.SweepResult()
        for name, pk in work:
            if sync.run(name, pk, using):
                result.done += 1
            else:
                result.retry += 1
            progress.advance()
        self.stdout.write(
            self.style.SUCCESS(f"{result.done} sent")
            + (self.style.WARNING(f", {result.retry} to retry") if result.retry else "")
        )
