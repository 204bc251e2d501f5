"""``manage.py pagecall_sync``: send to Pagecall every room and member that has not reached it.

Runs inline, without Celery, beside workers or while the broker is down; ``--sessions`` also
fills in the sessions webhooks missed. Options and exit status: docs/commands.md.
"""

from __future__ import annotations

from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext, pgettext

from ... import sync
from ...conf import pagecall_settings
from ...exceptions import WorkspaceNotConfigured
from ...progress import Progress
from ...sync.sweep import SweepStep
from ...sync.sweep import aliases as sweep_aliases
from ...webhooks import reconcile


class Command(BaseCommand):
    # A property, translated when read: argparse's formatter takes no lazy string.
    @property
    def help(self) -> str:  # type: ignore[override]
        return gettext("Send pending and stuck rooms and members to Pagecall, and pending changes.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database",
            default=None,
            help=gettext(
                "Database alias to sweep (default: every alias the app's tables are migrated on)."
            ),
        )
        parser.add_argument(
            "--workspace",
            default=None,
            help=gettext("The rooms of this Pagecall workspace only (default: every workspace)."),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=gettext("List what would be sent, send nothing."),
        )
        parser.add_argument(
            "--sessions",
            action="store_true",
            help=gettext(
                "Then reconcile the sessions of every open room with Pagecall's list "
                "(GET /rooms/{id}/sessions), filling in what webhooks missed."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        aliases = sweep_aliases(options["database"])
        workspace = workspace_option(options["workspace"])
        total = sync.SweepResult()
        several = len(aliases) > 1  # then each line names its alias
        for alias in aliases:
            result = self._sweep(alias, options["dry_run"], several, workspace)
            total.add(result)
        if options["sessions"]:
            for alias in aliases:
                self._reconcile(alias, options["dry_run"], several, workspace)
        if total.failed or total.retry:
            raise CommandError(self._unsettled(total), returncode=1)

    def _sweep(
        self, using: str, dry_run: bool, several: bool, workspace: str | None
    ) -> sync.SweepResult:
        prefix = f"{using}: " if several else ""
        if dry_run:
            work = sync.pending_work(using, workspace)
            for name, pk in work:
                self.stdout.write(f"{prefix}{name} {pk}")
            self.stdout.write(prefix + gettext("%(count)d to send") % {"count": len(work)})
            return sync.SweepResult()
        bar: Progress | None = None
        label = f"pagecall_sync {using}" if several else "pagecall_sync"

        def advance(step: SweepStep) -> None:
            nonlocal bar
            if bar is None:
                bar = Progress(step.total, cast(TextIO, self.stderr._out), label=label)
            bar.advance(total=step.total)

        result = sync.sweep(using, progress=advance, workspace=workspace)
        for error in result.errors:
            self.stderr.write(f"{prefix}{error}")
        if not result.total:
            self.stdout.write(
                prefix + gettext("Nothing to send: every room and member is on Pagecall.")
            )
            return result
        sent = gettext("%(count)d sent") % {"count": result.done}
        failed = gettext("%(count)d failed") % {"count": result.failed}
        retry = gettext("%(count)d to retry") % {"count": result.retry}
        self.stdout.write(
            f"{prefix}{self.style.SUCCESS(sent)}, "
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
                gettext(
                    "%(count)d failed: Pagecall refused them or the app gave up. Each row keeps "
                    "the error in sync_error (failed rooms and members; rooms and members whose "
                    "update was refused); the admin lists them, and a failed room can be sent "
                    "again with its retry action."
                )
                % {"count": result.failed}
            )
        if result.retry and result.errors:
            parts.append(
                gettext(
                    "%(count)d to retry: some wait for the configuration the errors above name "
                    "(fix it, then run pagecall_sync again), others for Pagecall. Run "
                    "pagecall_sync again later (the periodic task django_pagecall.tasks.sync "
                    "also will)."
                )
                % {"count": result.retry}
            )
        elif result.retry:
            parts.append(
                gettext(
                    "%(count)d to retry: Pagecall did not answer or is still busy with them; the "
                    "log says why. Run pagecall_sync again later (the periodic task "
                    "django_pagecall.tasks.sync also will)."
                )
                % {"count": result.retry}
            )
        return " ".join(parts)

    def _reconcile(self, using: str, dry_run: bool, several: bool, workspace: str | None) -> None:
        prefix = f"{using}: " if several else ""
        rooms = list(reconcile.rooms_to_reconcile(using, workspace))
        if dry_run:
            for room in rooms:
                self.stdout.write(f"{prefix}reconcile_sessions {room.pk}")
            self.stdout.write(
                prefix + gettext("%(count)d room(s) to reconcile") % {"count": len(rooms)}
            )
            return
        # A context of its own: Django's catalogues have "sessions" too, worded otherwise.
        label = pgettext("progress label", "sessions")
        if several:
            label = f"{label} {using}"
        progress = Progress(len(rooms), cast(TextIO, self.stderr._out), label=label)
        result = reconcile.reconcile_sessions(
            rooms, using, progress=lambda room: progress.advance()
        )
        for error in result.errors:
            self.stderr.write(f"{prefix}{error}")
        self.stdout.write(
            prefix
            + self.style.SUCCESS(
                gettext(
                    "%(rooms)d room(s) reconciled: %(created)d session(s) added, "
                    "%(updated)d completed"
                )
                % {"rooms": result.rooms, "created": result.created, "updated": result.updated}
            )
            + (
                self.style.WARNING(
                    ", " + gettext("%(count)d failed") % {"count": len(result.errors)}
                )
                if result.errors
                else ""
            )
        )


def workspace_option(name: str | None) -> str | None:
    """The value of ``--workspace``: a configured workspace, or ``None`` for every one."""
    if name is not None:
        try:
            pagecall_settings.ensure_workspace(name)
        except WorkspaceNotConfigured as exc:
            raise CommandError(str(exc)) from None
    return name
