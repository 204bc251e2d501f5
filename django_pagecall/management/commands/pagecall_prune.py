"""``manage.py pagecall_prune``: delete old webhook deliveries, and old sessions when asked.

Processed deliveries older than ``DELIVERY_RETENTION_DAYS`` by default, in short batches; safe
to run beside the webhook view. Options: docs/commands.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS
from django.utils.translation import gettext, gettext_lazy, ngettext_lazy

from ...progress import Progress
from ...webhooks import retention


def days(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


#: Whole sentences for each kind of row, so that each is translated as one.
MESSAGES = {
    "sessions": {
        "to delete": ngettext_lazy(
            "%(count)d session to delete", "%(count)d sessions to delete", "count"
        ),
        "none": gettext_lazy("No sessions to delete."),
        "deleted": ngettext_lazy(
            "%(count)d session deleted.", "%(count)d sessions deleted.", "count"
        ),
    },
    "deliveries": {
        "to delete": ngettext_lazy(
            "%(count)d webhook delivery to delete",
            "%(count)d webhook deliveries to delete",
            "count",
        ),
        "none": gettext_lazy("No webhook deliveries to delete."),
        "deleted": ngettext_lazy(
            "%(count)d webhook delivery deleted.", "%(count)d webhook deliveries deleted.", "count"
        ),
    },
}


class Command(BaseCommand):
    # A property, translated when read: argparse's formatter takes no lazy string.
    @property
    def help(self) -> str:  # type: ignore[override]
        return gettext("Delete old Pagecall webhook deliveries (and old sessions with --sessions).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help=gettext("Database alias to use.")
        )
        parser.add_argument(
            "--days",
            type=days,
            default=None,
            help=gettext(
                'Delete deliveries older than this many days (default: PAGECALL["DELIVERY_'
                'RETENTION_DAYS"]; 0 keeps them all).'
            ),
        )
        parser.add_argument(
            "--include-failed",
            action="store_true",
            help=gettext(
                "Delete old failed and waiting deliveries too, which are otherwise kept until "
                "replayed."
            ),
        )
        parser.add_argument(
            "--sessions",
            type=days,
            metavar="DAYS",
            default=None,
            help=gettext(
                "Also delete sessions that joined and left more than DAYS days ago (sessions "
                "are kept otherwise)."
            ),
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=retention.BATCH_SIZE,
            help=gettext("Rows per DELETE."),
        )
        parser.add_argument(
            "--pause",
            type=float,
            default=retention.PAUSE,
            help=gettext(
                "After each batch, rest this many times as long as the batch took (0: never)."
            ),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=gettext("Count what would be deleted, delete nothing."),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        using: str = options["database"]
        if options["batch_size"] < 1:
            raise CommandError(gettext("--batch-size must be at least 1."))
        if not options["pause"] >= 0:  # NaN too
            raise CommandError(gettext("--pause must be 0 or more."))
        keep_days = retention.retention_days() if options["days"] is None else options["days"]
        targets: list[tuple[str, Any]] = []
        if keep_days > 0:
            deliveries = retention.prunable_deliveries(
                using, timedelta(days=keep_days), include_failed=options["include_failed"]
            )
            targets.append(("deliveries", deliveries))
        if options["sessions"]:
            sessions = retention.prunable_sessions(using, timedelta(days=options["sessions"]))
            targets.append(("sessions", sessions))
        if not targets:
            self.stdout.write(
                gettext("Nothing to prune: deliveries are kept (0 days) and sessions too.")
            )
            return
        for kind, queryset in targets:
            count = queryset.count()
            if options["dry_run"]:
                self.stdout.write(MESSAGES[kind]["to delete"] % {"count": count})
                continue
            if not count:
                self.stdout.write(str(MESSAGES[kind]["none"]))
                continue
            progress = Progress(count, cast(TextIO, self.stderr._out), label="pagecall_prune")

            def advance(deleted: int, progress: Progress = progress) -> None:
                # Rows that became old meanwhile make the total grow.
                progress.advance(deleted, total=max(progress.total, progress.count + deleted))

            deleted = retention.delete_in_batches(
                queryset,
                batch_size=options["batch_size"],
                pause=options["pause"],
                on_batch=advance,
            )
            self.stdout.write(self.style.SUCCESS(MESSAGES[kind]["deleted"] % {"count": deleted}))
