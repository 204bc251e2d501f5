"""``manage.py pagecall_sync``: send to Pagecall every room and member that has not reached it.

Runs inline, without Celery, so it also works while the broker is down. Safe
to run at any time, beside workers: each row is claimed before it is sent.
``--sessions`` then fills in the sessions webhooks missed, from Pagecall's
list of each open room's sessions (:mod:`django_pagecall.webhooks.reconcile`).
"""

from __future__ import annotations

from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS

from ... import sync
from ...progress import Progress
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
        self._sweep(options["database"], options["dry_run"])
        if options["sessions"]:
            self._reconcile(options["database"], options["dry_run"])

    def _sweep(self, using: str, dry_run: bool) -> None:
        work = sync.pending_work(using)
        if dry_run:
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
