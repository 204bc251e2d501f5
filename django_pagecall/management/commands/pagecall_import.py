"""``manage.py pagecall_import``: bring the rooms that exist on Pagecall but not in the site into
the models, with their members, already synced: nothing is created on Pagecall, and running it
again changes nothing. Options and exit status: docs/commands.md.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, TextIO, cast

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone
from django.utils.translation import gettext

from ... import remote
from ...conf import pagecall_settings
from ...exceptions import PagecallError
from ...progress import Progress
from ...sync import mirror
from .pagecall_sync import workspace_option


def day(text: str) -> date:
    return date.fromisoformat(text)


def start_of(value: date) -> datetime:
    return timezone.make_aware(datetime.combine(value, time.min))


class Command(BaseCommand):
    # A property, translated when read: argparse's formatter takes no lazy string.
    @property
    def help(self) -> str:  # type: ignore[override]
        return gettext(
            "Import the rooms (and their members) that exist on Pagecall but not in the site."
        )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help=gettext("Database alias to use.")
        )
        parser.add_argument(
            "--workspace",
            help=gettext("The rooms of this Pagecall workspace only (default: every workspace)."),
        )
        parser.add_argument(
            "--since",
            type=day,
            help=gettext("Rooms created at Pagecall on or after this date (YYYY-MM-DD)."),
        )
        parser.add_argument(
            "--until",
            type=day,
            help=gettext("Rooms created at Pagecall on or before this date (YYYY-MM-DD)."),
        )
        parser.add_argument(
            "--include-terminated",
            action="store_true",
            help=gettext("Import terminated rooms too."),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=gettext("List what would be imported, change nothing."),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        using: str = options["database"]
        since = start_of(options["since"]) if options["since"] else None
        until = start_of(options["until"] + timedelta(days=1)) if options["until"] else None
        if since is not None and until is not None and until <= since:
            raise CommandError(gettext("--until is before --since."))
        chosen = workspace_option(options["workspace"])
        workspaces = [chosen] if chosen else pagecall_settings.workspace_names()
        several = len(workspaces) > 1  # then each line and progress bar names its workspace
        found: dict[str, list[remote.Room]] = {}
        for workspace in workspaces:
            try:
                found[workspace] = mirror.rooms_to_import(
                    using,
                    workspace=workspace,
                    since=since,
                    until=until,
                    include_terminated=options["include_terminated"],
                )
            except (PagecallError, ImproperlyConfigured) as exc:
                message = gettext("Listing Pagecall's rooms failed: %(error)s") % {"error": exc}
                raise CommandError(f"{workspace}: {message}" if several else message) from exc
        if options["dry_run"]:
            for workspace, rooms in found.items():
                for room in rooms:
                    self.stdout.write(
                        f"{workspace}: {room.id} {room.name}"
                        if several
                        else f"{room.id} {room.name}"
                    )
            count = sum(len(rooms) for rooms in found.values())
            self.stdout.write(gettext("%(count)d to import") % {"count": count})
            return
        if not any(found.values()):
            self.stdout.write(gettext("Nothing to import: every room on Pagecall is in the site."))
            return
        result = mirror.ImportResult()
        for workspace, rooms in found.items():
            if not rooms:
                continue
            label = f"pagecall_import {workspace}" if several else "pagecall_import"
            progress = Progress(len(rooms), cast(TextIO, self.stderr._out), label=label)
            result.add(mirror.import_rooms(rooms, using, progress.advance, workspace))
        if result.failed:
            raise CommandError(str(result))
        self.stdout.write(self.style.SUCCESS(str(result)))
