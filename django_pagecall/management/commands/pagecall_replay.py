"""``manage.py pagecall_replay``: process stored webhook deliveries again.

Failed and waiting deliveries by default, or those named with ``--id``; safe to run any number
of times. Options and exit status: docs/commands.md.
"""

from __future__ import annotations

from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS
from django.utils.translation import gettext

from ...models import WebhookDelivery
from ...progress import Progress
from ...webhooks import processing
from .pagecall_sync import workspace_option


class Command(BaseCommand):
    # A property, translated when read: argparse's formatter takes no lazy string.
    @property
    def help(self) -> str:  # type: ignore[override]
        return gettext("Replay failed and waiting Pagecall webhook deliveries.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help=gettext("Database alias to use.")
        )
        parser.add_argument(
            "--id",
            dest="ids",
            type=int,
            action="append",
            default=[],
            help=gettext(
                "Replay this delivery (repeatable), whatever its state, even one refused for "
                "an invalid or too large body."
            ),
        )
        parser.add_argument(
            "--workspace",
            default=None,
            help=gettext(
                "Deliveries for the rooms of this Pagecall workspace only (default: every one)."
            ),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=gettext("List what would be replayed, change nothing."),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        using: str = options["database"]
        workspace = workspace_option(options["workspace"])
        if options["ids"]:
            selected = (
                WebhookDelivery.objects.using(using)
                .filter(pk__in=options["ids"])
                .order_by("received_at", "pk")
            )
        else:
            selected = processing.replayable(using)
        if workspace is not None:
            selected = selected.filter(room__workspace=workspace)
        deliveries = list(selected)
        if options["dry_run"]:
            for delivery in deliveries:
                state = (
                    f"{delivery.state} ({delivery.result})" if delivery.result else delivery.state
                )
                self.stdout.write(f"{delivery.pk} {state} {delivery}")
            self.stdout.write(gettext("%(count)d to replay") % {"count": len(deliveries)})
            return
        if not deliveries:
            self.stdout.write(gettext("Nothing to replay."))
            return
        progress = Progress(
            len(deliveries), cast(TextIO, self.stderr._out), label="pagecall_replay"
        )
        result = processing.ReplayResult()
        for delivery in deliveries:
            result.add(processing.process_stored(delivery, using), delivery.result)
            progress.advance()
        summary = str(result)
        if result.failed:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))
