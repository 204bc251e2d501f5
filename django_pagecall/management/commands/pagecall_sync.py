"""``manage.py pagecall_sync``: send to Pagecall every room and member that has not reached it.

Runs inline, without Celery, so it also works while the broker is down. Safe
to run at any time, beside workers: each row is claimed before it is sent. Prints
``N sent, M failed, K to retry`` and exits with status 1 when anything failed or is left to
retry (the message says where to look).
``--sessions`` then fills in the sessions webhooks missed, from Pagecall's
list of each open room's sessions (:mod:`django_pagecall.webhooks.reconcile`).
"""

from __future__ import annotations

from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS

from ... import sync
from ...progress import Progress
from ...sync.sweep import SweepStep
from ...webhooks import reconcile


class Command(BaseCommand):
    help = "Send pending and stuck rooms and members to Pagecall, and pending changes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database alias to sweep.")
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be sent, send nothing."
        )
        parser.add_argument(
            "--sessions",
            action="store_true",
            help="Then reconcile the sessions of every open room with Pagecall's list "
            "(GET /rooms/{id}/sessions), filling in what webhooks missed.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = self._sweep(options["database"], options["dry_run"])
        if options["sessions"]:
            self._reconcile(options["database"], options["dry_run"])
        if result.failed or result.retry:
            raise CommandError(self._unsettled(result), returncode=1)

    def _sweep(self, using: str, dry_run: bool) -> sync.SweepResult:
        if dry_run:
            work = sync.pending_work(using)
            for name, pk in work:
                self.stdout.write(f"{name} {pk}")
            self.stdout.write(f"{len(work)} to send")
            return sync.SweepResult()
        bar: Progress | None = None

        def advance(step: SweepStep) -> None:
            nonlocal bar
            if bar is None:
                bar = Progress(step.total, cast(TextIO, self.stderr._out), label="pagecall_sync")
            bar.advance(total=step.total)

        result = sync.sweep(using, progress=advance)
        for error in result.errors:
            self.stderr.write(error)
        if not result.total:
            self.stdout.write("Nothing to send: every room and member is on Pagecall.")
            return result
        failed, retry = f"{result.failed} failed", f"{result.retry} to retry"
        self.stdout.write(
            f"{self.style.SUCCESS(f'{result.done} sent')}, "
            f"{self.style.ERROR(failed) if result.failed else failed}, "
            f"{self.style.WARNING(retry) if result.retry else retry}"
        )
        return result

    @staticmethod
    def _unsettled(result: sync.SweepResult) -> str:
        """What the exit status 1 is about, and where to look."""
        parts = []
        if result.failed:
            parts.append(
                f"{result.failed} failed: Pagecall refused them or the app gave up. Each row "
                "keeps the error in sync_error (failed rooms and members; rooms and members "
                "whose update was refused); the admin lists them, and a failed room can be "
                "sent again with its retry action."
            )
        if result.retry:
            parts.append(
                f"{result.retry} to retry: Pagecall did not answer or is still busy with them; "
                "the log says why. Run pagecall_sync again later (the periodic task "
                "django_pagecall.tasks.sync also will)."
            )
        return " ".join(parts)

    def _reconcile(self, using: str, dry_run: bool) -> None:
        rooms = list(reconcile.rooms_to_reconcile(using))
        if dry_run:
            for room in rooms:
                self.stdout.write(f"reconcile_sessions {room.pk}")
            self.stdout.write(f"{len(rooms)} room(s) to reconcile")
            return
        progress = Progress(len(rooms), cast(TextIO, self.stderr._out), label="sessions")
        result = reconcile.reconcile_sessions(
            rooms, using, progress=lambda room: progress.advance()
        )
        for error in result.errors:
            self.stderr.write(error)
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.rooms} room(s) reconciled: {result.created} session(s) added, "
                f"{result.updated} completed"
            )
            + (self.style.WARNING(f", {len(result.errors)} failed") if result.errors else "")
        )
