"""Reports in the admin: a room's meetings and attendance on its change page, read from its
sessions through the room's index, and the monthly usage report beside the sessions list, read
from the usage counters; each with a CSV export (docs/meetings.md).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import router
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import localize
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..meetings import attendance_of, meetings_of
from ..models import Room, Session
from ..usage import month_of, monthly_usage

if TYPE_CHECKING:
    ModelAdminBase = admin.ModelAdmin[Any]
else:
    ModelAdminBase = object  # mixins: the ModelAdmin comes after them

#: Meetings and attendance rows shown on a room's page; the CSV exports have all of them.
SHOWN_ROWS = 50
#: Months the usage report covers by default, this one included, and at most.
DEFAULT_MONTHS = 12
MAX_MONTHS = 120


def csv_response(
    filename: str, header: Sequence[Any], rows: Iterable[Sequence[Any]]
) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow([str(cell) for cell in header])
    writer.writerows(rows)
    return response


def iso(moment: datetime | None) -> str:
    return timezone.localtime(moment).isoformat() if moment is not None else ""


def shown(moment: datetime | None) -> str:
    return localize(timezone.localtime(moment)) if moment is not None else "-"


def duration(seconds: int) -> str:
    from .sessions import format_duration  # that module imports this one

    return format_duration(timedelta(seconds=seconds))


def table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> SafeString:
    head = format_html_join("", "<th>{}</th>", ((h,) for h in header))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
    )
    return format_html('<table class="pagecall-report"><tr>{}</tr>{}</table>', head, body)


MEETING_HEADER = (_("started at"), _("ended at"), _("duration"))
ATTENDANCE_HEADER = (
    _("Pagecall user id"),
    _("number of sessions"),
    _("first joined at"),
    _("last left at"),
    _("time in the room"),
)


class RoomReports(ModelAdminBase):
    """Read-only fields and CSV views for :class:`~.rooms.RoomAdmin`."""

    def report_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/meetings.csv",
                self.admin_site.admin_view(self.meetings_csv),
                name="django_pagecall_room_meetings_csv",
            ),
            path(
                "<path:object_id>/attendance.csv",
                self.admin_site.admin_view(self.attendance_csv),
                name="django_pagecall_room_attendance_csv",
            ),
        ]

    def _room(self, request: HttpRequest, object_id: str) -> Room:
        room = self.get_object(request, object_id)
        if not isinstance(room, Room):
            raise Http404
        if not self.has_view_permission(request, room):
            raise PermissionDenied
        return room

    def meetings_csv(self, request: HttpRequest, object_id: str) -> HttpResponse:
        room = self._room(request, object_id)
        now = timezone.now()
        rows = [(iso(m.started_at), iso(m.ended_at), m.seconds(now)) for m in meetings_of(room)]
        header = ("started_at", "ended_at", "seconds")
        return csv_response(f"room-{room.pk}-meetings.csv", header, rows)

    def attendance_csv(self, request: HttpRequest, object_id: str) -> HttpResponse:
        room = self._room(request, object_id)
        rows = [
            (r.user_id, r.sessions, iso(r.first_joined_at), iso(r.last_left_at), r.seconds)
            for r in attendance_of(room)
        ]
        header = (
            "user_id",
            "sessions",
            "first_joined_at",
            "last_left_at",
            "seconds",
        )
        return csv_response(f"room-{room.pk}-attendance.csv", header, rows)

    @admin.display(description=_("meetings, latest first"))
    def meetings_report(self, room: Room) -> SafeString | str:
        if room.pk is None:
            return "-"
        meetings = meetings_of(room)
        now = timezone.now()
        latest = list(reversed(meetings))[:SHOWN_ROWS]
        rows = [
            (
                shown(m.started_at),
                shown(m.ended_at) if m.ended_at else gettext("going on"),
                duration(m.seconds(now)),
            )
            for m in latest
        ]
        return self._report(room, "meetings", len(meetings), MEETING_HEADER, rows)

    @admin.display(description=_("attendance"))
    def attendance_report(self, room: Room) -> SafeString | str:
        if room.pk is None:
            return "-"
        attendance = attendance_of(room)
        rows = [
            (
                r.user_id,
                r.sessions,
                shown(r.first_joined_at),
                shown(r.last_left_at) if r.last_left_at else gettext("still in"),
                duration(r.seconds),
            )
            for r in attendance[:SHOWN_ROWS]
        ]
        return self._report(room, "attendance", len(attendance), ATTENDANCE_HEADER, rows)

    def _report(
        self, room: Room, name: str, total: int, header: Sequence[Any], rows: list[Any]
    ) -> SafeString:
        url = reverse(f"admin:django_pagecall_room_{name}_csv", args=[room.pk])
        if total > len(rows):
            summary = gettext("%(shown)s of %(total)s shown.") % {
                "shown": len(rows),
                "total": total,
            }
        else:
            summary = gettext("%(total)s in all.") % {"total": total}
        return format_html(
            '{}<p>{} <a href="{}" download>{}</a></p>',
            table(header, rows) if rows else "",
            summary,
            url,
            gettext("Export CSV"),
        )


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


class UsageReport(ModelAdminBase):
    """The monthly usage view for :class:`~.sessions.SessionAdmin`."""

    def report_urls(self) -> list[URLPattern]:
        return [
            path(
                "usage/",
                self.admin_site.admin_view(self.usage_view),
                name="django_pagecall_session_usage",
            )
        ]

    def usage_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            months = int(request.GET.get("months", DEFAULT_MONTHS))
        except ValueError:
            months = DEFAULT_MONTHS
        months = min(max(months, 1), MAX_MONTHS)
        this_month = month_of(timezone.now())
        first = add_months(this_month, -(months - 1))
        usage = monthly_usage(first, add_months(this_month, 1), using=router.db_for_read(Session))
        if request.GET.get("format") == "csv":
            header = (
                "month",
                "workspace",
                "meetings",
                "meeting_minutes",
                "sessions",
                "active_users",
            )
            rows = [
                (
                    u.month.strftime("%Y-%m"),
                    u.workspace,
                    u.meetings,
                    u.meeting_minutes,
                    u.sessions,
                    u.active_users,
                )
                for u in usage
            ]
            return csv_response("pagecall-usage.csv", header, rows)
        from .rooms import several_workspaces  # that module imports this one

        context = {
            **self.admin_site.each_context(request),
            "title": _("Usage report"),
            "opts": self.opts,
            "usage": usage,
            "months": months,
            "first": first,
            "several_workspaces": several_workspaces(),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/django_pagecall/session/usage.html", context)
