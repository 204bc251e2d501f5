"""Admin for rooms and their members: add a room with its members on one page, watch it reach
Pagecall, see who is online, and retry, refresh or terminate it. ``type``, ``record`` and
``max_meeting_seconds`` only go with ``POST /rooms``, so they are editable when adding and on a
failed room, read-only otherwise. Links, tokens and the list's queries: docs/admin.md.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import model_ngettext
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .. import sync, tasks
from ..client import DOT_SEGMENTS
from ..conf import DEFAULT_WORKSPACE, pagecall_settings
from ..exceptions import PagecallError
from ..models import Member, Room, Session, SyncState
from ..models.rooms import MIRRORED_FIELDS
from ..sync import publishing
from ..sync.scheduling import enqueue
from .reports import RoomReports
from .sessions import SessionInline, online_now, with_online

#: Badge colours (background) per sync state; the text is always white, for contrast.
BADGE_COLOURS = {
    SyncState.PENDING: "#8a6d00",
    SyncState.CREATING: "#205493",
    SyncState.SYNCED: "#2e7d32",
    SyncState.FAILED: "#ba2121",
}

#: Rooms "Refresh from Pagecall" reads in the request; beyond that it queues a task per room.
REFRESH_INLINE = 20
#: Primary keys read at a time when queueing.
REFRESH_PAGE = 500

#: Fields only ``POST /rooms`` carries (see the module docstring), and the workspace it goes to.
CREATION_ONLY_FIELDS = ("workspace", "type", "record", "max_meeting_seconds")


def several_workspaces() -> bool:
    """Whether ``PAGECALL["WORKSPACES"]`` adds any: the lists then show and filter by them."""
    return len(pagecall_settings.workspace_names()) > 1


class WorkspaceFilter(admin.SimpleListFilter):
    title = _("workspace")
    parameter_name = "workspace"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(name, name) for name in pagecall_settings.workspace_names()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(workspace=self.value()) if self.value() else queryset


def with_workspace(columns: Any, after: str) -> list[Any]:
    """A list's columns or filters, with the workspace after ``after`` when there are several."""
    shown: list[Any] = list(columns)
    if several_workspaces():
        shown.insert(shown.index(after) + 1 if after in shown else 0, "workspace")
    return shown


def sync_badge(obj: Room | Member) -> SafeString:
    """The sync state as a coloured label; a change still on its way is said so too."""
    state = SyncState(obj.sync_state)
    label = str(state.label)
    if state == SyncState.SYNCED and obj.needs_update:
        label = str(_("synced, update pending"))
    return format_html(
        '<span class="pagecall-badge pagecall-{}" title="{}" style="display:inline-block;'
        "padding:1px 8px;border-radius:9px;color:#fff;background:{};font-weight:bold;"
        'white-space:nowrap">{}</span>',
        state.value,
        obj.sync_error,
        BADGE_COLOURS[state],
        label,
    )


def _link(url: str, text: Any) -> SafeString:
    return format_html('<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>', url, text)


def _post_button(url: str, text: Any) -> SafeString:
    """A button that POSTs the page's form, with its CSRF token, to ``url`` in a new tab: the
    member links register users and write history, so a link from elsewhere must not."""
    return format_html(
        '<button type="submit" class="button pagecall-member-link" formaction="{}" formmethod="post" '
        'formtarget="_blank" formnovalidate>{}</button>',
        url,
        text,
    )


class TerminatedFilter(admin.SimpleListFilter):
    title = _("terminated")
    parameter_name = "terminated"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("yes", _("Yes")),
            ("requested", _("Requested, not confirmed yet")),
            ("no", _("No")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(terminated_at__isnull=False)
        if self.value() == "requested":
            return queryset.filter(terminate_requested=True, terminated_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(terminate_requested=False, terminated_at__isnull=True)
        return queryset


class OnlineRoomFilter(admin.SimpleListFilter):
    title = _("online now")
    parameter_name = "online"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Someone")), ("no", _("Nobody"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        busy = Session.objects.online().values("room_id")
        if self.value() == "yes":
            return queryset.filter(pk__in=busy)
        if self.value() == "no":
            return queryset.exclude(pk__in=busy)
        return queryset


class MemberInlineForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Member
        fields = ["user_id", "name", "type", "site_user"]
        # Narrower than the admin's default, so the row fits beside its sync state and links.
        widgets = {
            "user_id": forms.TextInput(attrs={"size": 14}),
            "name": forms.TextInput(attrs={"size": 14}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            # Pagecall knows a member by user id: a changed id would never reach it.
            for name in ("user_id", "site_user"):
                self.fields[name].disabled = True

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.instance.pk is None and not data.get("user_id"):
            site_user = data.get("site_user")
            if site_user is None:
                raise ValidationError(_("Give a Pagecall user id or a site user."))
            # Filled in here rather than by Member.save(), so the formset's uniqueness check
            # sees the real id (two rows for the same person are caught before saving).
            data["user_id"] = sync.user_id_for(site_user)
            self.instance.user_id = data["user_id"]
        if data.get("user_id") in DOT_SEGMENTS:
            raise ValidationError(
                _("A Pagecall user id cannot be “.” or “..”: it would not survive in a URL.")
            )
        return data


class MemberInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Member
    form = MemberInlineForm
    fields = ["user_id", "name", "type", "site_user", "member_sync", "links"]
    readonly_fields = ["member_sync", "links"]
    raw_id_fields = ["site_user"]
    verbose_name_plural = _("members")

    def get_extra(self, request: HttpRequest, obj: Room | None = None, **kwargs: Any) -> int:
        return 2 if obj is None else 1  # a new room usually has two people in it

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_fields(request, obj))
        if obj is None:  # nothing is on Pagecall yet
            return [f for f in fields if f not in self.readonly_fields]
        opts = Room._meta
        if not request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}"):
            fields.remove("links")  # the view behind them needs the room's change permission
        return fields

    @admin.display(description=_("sync"))
    def member_sync(self, member: Member) -> SafeString | str:
        return sync_badge(member) if member.pk is not None else "-"

    @admin.display(description=_("as this member"))
    def links(self, member: Member) -> SafeString | str:
        room = member.room
        if member.pk is None or not room.pagecall_id:
            return "-"

        def url(page: str) -> str:
            return reverse(
                "admin:django_pagecall_room_member_link", args=[room.pk, member.pk, page]
            )

        replay = _post_button(url("replay"), _("replay"))
        if room.is_terminated or member.is_blocked:
            return replay
        return format_html("{} · {}", _post_button(url("meet"), _("join")), replay)


@admin.register(Room)
class RoomAdmin(RoomReports, admin.ModelAdmin):  # type: ignore[type-arg]
    inlines = [MemberInline, SessionInline]
    # What staff look for at a glance, in 1280 px beside the filters; the Pagecall id and whether
    # the room is terminated are on the change page (and in the search and the filters).
    list_display = [
        "name",
        "room_type",
        "state_and_error",
        "member_count",
        online_now,
    ]  # newest first; the date hierarchy above the list is by creation
    list_filter = ["type", "sync_state", "record", TerminatedFilter, OnlineRoomFilter]
    search_fields = ["name", "pagecall_id", "members__user_id"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-pk"]
    actions = ["retry_sync", "refresh_from_pagecall", "terminate_rooms"]
    readonly_fields = [
        "state",
        "pagecall_id",
        "sync_error_text",
        "sync_attempts",
        "synced_at",
        "room_links",
        "terminated",
        *MIRRORED_FIELDS,
        "meeting_started_at",
        "created_at",
        "updated_at",
        "meetings_report",
        "attendance_report",
    ]
    fieldsets = [
        (None, {"fields": ["name", "workspace", "type", "record", "max_meeting_seconds"]}),
        (
            _("on Pagecall"),
            {
                "fields": [
                    "state",
                    "sync_error_text",
                    "pagecall_id",
                    "room_links",
                    "terminated",
                    "sync_attempts",
                    "synced_at",
                ]
            },
        ),
        (
            _("meetings and attendance"),
            {"fields": ["meeting_started_at", "meetings_report", "attendance_report"]},
        ),
        (
            _("mirrored from Pagecall (read-only)"),
            {"fields": list(MIRRORED_FIELDS), "classes": ["collapse"]},
        ),
        (_("timestamps"), {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    def get_inlines(self, request: HttpRequest, obj: Room | None) -> list[Any]:
        # A room being added has no sessions: no empty table.
        return [MemberInline] if obj is None else [MemberInline, SessionInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Room]:
        members = (
            Member.objects.filter(room=OuterRef("pk"))
            .order_by()
            .values("room")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return with_online(super().get_queryset(request)).annotate(
            member_total=Coalesce(Subquery(members, output_field=IntegerField()), Value(0))
        )

    def get_list_display(self, request: HttpRequest) -> Any:
        return with_workspace(super().get_list_display(request), after="name")

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = list(super().get_list_filter(request))
        return [WorkspaceFilter, *filters] if several_workspaces() else filters

    def get_form(
        self, request: HttpRequest, obj: Room | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        field = form.base_fields.get("workspace")
        if field is not None:
            # The configured workspaces, and the room's own even if it is not one of them (the
            # model's validator then says so).
            names = pagecall_settings.workspace_names()
            if obj is not None and obj.workspace not in names:
                names.append(obj.workspace)
            field.widget = forms.Select(choices=[(name, name) for name in names])
        return form

    def get_fieldsets(self, request: HttpRequest, obj: Room | None = None) -> Any:
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None:  # nothing is on Pagecall yet
            fieldsets = fieldsets[:1]
        if not several_workspaces() and (obj is None or obj.workspace == DEFAULT_WORKSPACE):
            # A site of one workspace sees the room's form as it was before there were several.
            name, options = fieldsets[0]
            fields = [f for f in options["fields"] if f != "workspace"]
            fieldsets[0] = (name, {**options, "fields": fields})
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Room | None = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.sync_state != SyncState.FAILED:
            fields += CREATION_ONLY_FIELDS
        return fields

    # -- columns and read-only fields -------------------------------------------------------

    @admin.display(description=_("type"), ordering="type")
    def room_type(self, room: Room) -> str:
        return room.type  # the short word: the choice labels would crowd the list

    @admin.display(description=_("sync state"), ordering="sync_state")
    def state(self, room: Room) -> SafeString:
        return sync_badge(room)

    @admin.display(description=_("sync state"), ordering="sync_state")
    def state_and_error(self, room: Room) -> SafeString:
        """The badge, and for a failed room the start of its error (the whole of it on hover)."""
        if room.sync_state != SyncState.FAILED or not room.sync_error:
            return sync_badge(room)
        first_line = room.sync_error.splitlines()[0]
        short = first_line if len(first_line) <= 60 else first_line[:59] + "…"
        return format_html(
            '{}<br><small class="pagecall-error">{}</small>', sync_badge(room), short
        )

    @admin.display(description=_("last error"))
    def sync_error_text(self, room: Room) -> SafeString | str:
        if not room.sync_error:
            return "-"
        return format_html('<pre style="white-space:pre-wrap;margin:0">{}</pre>', room.sync_error)

    @admin.display(description=_("members"), ordering="member_total")
    def member_count(self, room: Room) -> int:
        return int(getattr(room, "member_total", 0))

    @admin.display(description=_("terminated"), boolean=True, ordering="terminated_at")
    def terminated(self, room: Room) -> bool | None:
        if room.is_terminated:
            return True
        return None if room.terminate_requested else False  # None: requested, not confirmed

    @admin.display(description=_("links"))
    def room_links(self, room: Room) -> SafeString | str:
        if not room.pagecall_id:
            return gettext("once the room is on Pagecall")
        if room.type != "open":
            return gettext("none without a token in a %(type)s room: see each member's links") % {
                "type": room.type
            }
        links = [] if room.is_terminated else [(room.join_url(), _("join (anonymous)"))]
        links.append((room.replay_url(), _("replay")))
        return format_html_join(
            " · ", '<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>', links
        )

    # -- actions ----------------------------------------------------------------------------

    @admin.action(description=_("Retry sync of selected rooms"), permissions=["change"])
    def retry_sync(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        sent = skipped = 0
        for room in queryset:
            if room.sync_state == SyncState.SYNCED:
                skipped += 1
                continue
            # Failed rooms go back to pending; pending ones (say the broker was down) are queued.
            sync.retry_room(room)
            self.log_change(request, room, gettext("Retried the sync with Pagecall."))
            sent += 1
        self.message_user(
            request,
            gettext("%(sent)s queued for Pagecall; %(skipped)s already synced, left alone.")
            % {"sent": sent, "skipped": skipped},
            messages.SUCCESS if sent else messages.WARNING,
        )

    @admin.action(description=_("Refresh selected rooms from Pagecall"), permissions=["change"])
    def refresh_from_pagecall(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        """A few rooms are read inline, with an error per room; more are queued, one task per
        room, their primary keys read a page at a time, so the request stays short."""
        queryset = queryset.prefetch_related(None)  # the list's online sessions: not needed
        on_pagecall = queryset.filter(pagecall_id__isnull=False).order_by()
        not_yet = queryset.filter(pagecall_id__isnull=True).order_by().count()
        if on_pagecall[: REFRESH_INLINE + 1].count() > REFRESH_INLINE:
            queued = 0
            pks = on_pagecall.order_by("pk").values_list("pk", flat=True)
            for pk in pks.iterator(chunk_size=REFRESH_PAGE):
                enqueue(tasks.refresh_room, pk, queryset.db)
                queued += 1
            self.message_user(
                request,
                gettext("%(queued)s queued for a refresh; %(not_yet)s not on Pagecall yet.")
                % {"queued": queued, "not_yet": not_yet},
                messages.SUCCESS,
            )
            return
        refreshed, errors = 0, []
        for room in on_pagecall.order_by("pk"):
            try:
                sync.refresh_room(room)
            except PagecallError as exc:
                errors.append(f"{room}: {exc}")
                continue
            refreshed += 1
        self.message_user(
            request,
            gettext("%(refreshed)s refreshed; %(not_yet)s not on Pagecall yet.")
            % {"refreshed": refreshed, "not_yet": not_yet},
            messages.SUCCESS,
        )
        for error in errors:
            self.message_user(request, gettext("Refresh failed: %s") % error, messages.ERROR)

    @admin.action(description=_("Terminate selected rooms…"), permissions=["change"])
    def terminate_rooms(
        self, request: HttpRequest, queryset: QuerySet[Room]
    ) -> TemplateResponse | None:
        rooms = list(queryset)
        open_rooms = [r for r in rooms if not r.terminate_requested and not r.is_terminated]
        if request.POST.get("post") == "yes":
            for room in open_rooms:
                room.terminate()
                self.log_change(request, room, gettext("Terminated the room on Pagecall."))
            self.message_user(
                request,
                ngettext(
                    "%(count)d room is being terminated.",
                    "%(count)d rooms are being terminated.",
                    len(open_rooms),
                )
                % {"count": len(open_rooms)},
                messages.SUCCESS,
            )
            return None  # back to the changelist, as Django's delete action does
        context = {
            **self.admin_site.each_context(request),
            "title": _("Terminate rooms: are you sure?"),
            "opts": self.opts,
            "rooms": open_rooms,
            "already": [r for r in rooms if r not in open_rooms],
            "objects_name": model_ngettext(self.opts, len(open_rooms)),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/django_pagecall/room/terminate_confirmation.html", context
        )

    # -- saving ----------------------------------------------------------------------------

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # The tasks are published when the admin's transaction commits, after the response is
        # built: say so before it leaves if the broker could not take them.
        with publishing.unsent_tasks() as unsent:
            response = super().changeform_view(request, object_id, form_url, extra_context)
        if unsent:
            self.message_user(
                request,
                gettext(
                    "The room was saved, but it could not be sent to Pagecall: Celery's broker "
                    "is unreachable. It stays pending and will be sent when the broker is back "
                    "(or by `manage.py pagecall_sync`)."
                ),
                messages.WARNING,
            )
        return response

    # -- join and replay as a member --------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        urls: list[URLPattern] = [
            path(
                "<path:object_id>/members/<int:member_pk>/<str:page>/",
                self.admin_site.admin_view(self.member_link_view),
                name="django_pagecall_room_member_link",
            ),
            *self.report_urls(),
        ]
        return urls + super().get_urls()

    def member_link_view(
        self, request: HttpRequest, object_id: str, member_pk: int, page: str
    ) -> HttpResponse:
        """Register the member if needed and send the staff member to Pagecall as them."""
        if page not in ("meet", "replay"):
            raise PermissionDenied
        room = self.get_object(request, object_id)
        if room is None or not self.has_change_permission(request, room):
            raise PermissionDenied
        if request.method != "POST":  # admin_view checks the CSRF token of a POST
            return HttpResponseNotAllowed(["POST"])
        member = get_object_or_404(Member, pk=member_pk, room=room)
        if not room.pagecall_id:
            self.message_user(request, _("The room is not on Pagecall yet."), messages.WARNING)
            return HttpResponseRedirect(
                reverse("admin:django_pagecall_room_change", args=[room.pk])
            )
        try:
            url = room.join_url(member) if page == "meet" else room.replay_url(member)
        except PagecallError as exc:
            message = gettext("Pagecall did not register %(member)s: %(error)s")
            self.message_user(request, message % {"member": member, "error": exc}, messages.ERROR)
            return HttpResponseRedirect(
                reverse("admin:django_pagecall_room_change", args=[room.pk])
            )
        if page == "meet":
            entry = gettext("Opened the meeting as member %(user)s.")
        else:
            entry = gettext("Opened the replay as member %(user)s.")
        self.log_change(request, room, entry % {"user": member.user_id})
        return HttpResponseRedirect(url)


__all__ = ["MemberInline", "RoomAdmin", "sync_badge"]
