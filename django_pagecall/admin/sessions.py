"""Admin for session records: their own list, the inline under a room, and who is online in a room.

Read-only: sessions mirror Pagecall's data. The room admin uses :class:`SessionInline`,
:func:`with_online` (the queryset annotation) and :func:`online_now` (a column); docs/admin.md.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Prefetch, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import URLPattern
from django.utils.translation import gettext_lazy as _

from ..models import Room, Session
from ..models.rooms import parse_pk
from ..models.sessions import online_count
from .reports import UsageReport

#: Sessions shown under a room; the full list is one click away (Session admin, filtered by room).
INLINE_LIMIT = 50


def format_duration(value: timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = max(int(value.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def with_online(queryset: QuerySet[Room]) -> QuerySet[Room]:
    """Rooms with ``online_count`` and ``online_sessions`` (a list, oldest join first)."""
    return queryset.annotate(online_count=online_count()).prefetch_related(
        Prefetch(
            "sessions",
            queryset=Session.objects.online().order_by("joined_at", "pk"),
            to_attr="online_sessions",
        )
    )


@admin.display(description=_("online now"), ordering="online_count")
def online_now(room: Room) -> str:
    """``2: alice, bob`` for a room from :func:`with_online` (works without it, with queries)."""
    sessions: list[Session] | None = getattr(room, "online_sessions", None)
    if sessions is None:
        sessions = list(room.sessions.online().order_by("joined_at", "pk"))
    if not sessions:
        return "-"
    names = ", ".join(s.user_id or str(_("anonymous")) for s in sessions[:10])
    more = "…" if len(sessions) > 10 else ""
    return f"{len(sessions)}: {names}{more}"


class _SessionDisplay:
    @admin.display(description=_("duration"))
    def duration(self, session: Session) -> str:
        return format_duration(session.duration)

    @admin.display(description=_("online"), boolean=True)
    def online(self, session: Session) -> bool:
        return session.is_online


_INLINE_COLUMNS: tuple[str, ...] = (
    "session_id",
    "user_id",
    "room_member",
    "joined_at",
    "left_at",
    "duration",
    "online",
    "source",
)


class RecentSessionsFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    def get_queryset(self) -> QuerySet[Session]:
        # Sliced: a long-lived room can have thousands of sessions; nothing is edited here.
        # Kept: each form reads its row from it, and a new slice would be a query per row.
        if not hasattr(self, "_recent"):
            self._recent = super().get_queryset()[:INLINE_LIMIT]
        return self._recent


class SessionInline(_SessionDisplay, admin.TabularInline):  # type: ignore[type-arg]
    model = Session
    formset = RecentSessionsFormSet
    fields = readonly_fields = _INLINE_COLUMNS
    ordering = ["-joined_at", "-pk"]
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = _("latest sessions (newest first)")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Session]:
        return super().get_queryset(request).select_related("room", "room_member")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OnlineFilter(admin.SimpleListFilter):
    title = _("online now")
    parameter_name = "online"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        online = Session.objects.online().values("pk")
        if self.value() == "yes":
            return queryset.filter(pk__in=online)
        if self.value() == "no":
            return queryset.exclude(pk__in=online)
        return queryset


#: How many of the latest sessions the room and user filters offer choices from.
RECENT_SESSIONS = 1000


def _latest_sessions(request: HttpRequest, model_admin: Any) -> list[tuple[int, str]]:
    """(room pk, user id) of the latest sessions, newest first (``pagecall_session_joined_idx``):
    what the room and user filters list, so that they read a thousand rows, not the whole table,
    on every page. Read once per request for both filters."""
    cached: list[tuple[int, str]] | None = getattr(request, "_pagecall_latest_sessions", None)
    if cached is None:
        queryset: QuerySet[Session] = model_admin.get_queryset(request)
        latest = queryset.order_by("-joined_at", "-pk")[:RECENT_SESSIONS]
        cached = list(latest.values_list("room_id", "user_id"))
        setattr(request, "_pagecall_latest_sessions", cached)  # noqa: B010
    return cached


class _LatestSessionsFilter(admin.SimpleListFilter):
    """Choices from the latest sessions, at most ``limit``, and the chosen one wherever it is;
    the search box covers the rest."""

    limit = 100

    def choices_from(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        pairs = pairs[: self.limit]
        value = self.value()
        if value and value not in {key for key, _ in pairs}:
            pairs.append((value, value))
        return pairs


class RoomFilter(_LatestSessionsFilter):
    """Rooms of the latest sessions, by name (the parameter of Django's own related filter)."""

    title = _("room")
    parameter_name = "room__id__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        room_ids = {room_id for room_id, _ in _latest_sessions(request, model_admin)}
        chosen = parse_pk(self.value() or "")
        if chosen is not None:
            room_ids.add(chosen)  # listed by its name, wherever its sessions are
        rooms = Room.objects.using(model_admin.get_queryset(request).db).filter(pk__in=room_ids)
        return self.choices_from([(str(r.pk), str(r)) for r in rooms.order_by("name", "pk")])

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        room_pk = parse_pk(value)
        if room_pk is None:  # the changelist answers ?e=1, as for Django's own filters
            raise IncorrectLookupParameters(f"not a room id: {value!r}")
        return queryset.filter(room_id=room_pk)


class UserFilter(_LatestSessionsFilter):
    """Pagecall user ids of the latest sessions, sorted."""

    title = _("user")
    parameter_name = "user_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        seen = {user_id for _, user_id in _latest_sessions(request, model_admin) if user_id}
        return self.choices_from([(u, u) for u in sorted(seen)])

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(user_id=value) if value else queryset


@admin.register(Session)
class SessionAdmin(UsageReport, _SessionDisplay, admin.ModelAdmin):  # type: ignore[type-arg]
    # Who was where, when and for how long, in 1280 px beside the filters; the session id (also
    # searched), the member, the leave time and the source are on the change page.
    list_display = ["joined_at", "room_name", "user", "duration", "online"]
    list_display_links = ["joined_at"]
    list_filter = [RoomFilter, UserFilter, OnlineFilter, "source"]
    list_select_related = ["room", "room_member"]
    search_fields = ["session_id", "user_id", "member_id", "room__name", "room__pagecall_id"]
    date_hierarchy = "joined_at"
    ordering = ["-joined_at", "-pk"]  # pagecall_session_joined_idx
    # The table grows without bound: one count of the filtered rows per page, not a second
    # one of the whole table.
    show_full_result_count = False
    readonly_fields = [
        "room",
        "session_id",
        "member_id",
        "user_id",
        "room_member",
        "joined_at",
        "left_at",
        "duration",
        "online",
        "source",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["room", "session_id", "source"]}),
        (_("who"), {"fields": ["user_id", "member_id", "room_member"]}),
        (_("when"), {"fields": ["joined_at", "left_at", "duration", "online"]}),
        (_("timestamps"), {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("room"), ordering="room__name")
    def room_name(self, session: Session) -> str:
        return str(session.room)  # a column of text, which wraps, unlike a foreign key's

    @admin.display(description=_("user"), ordering="user_id")
    def user(self, session: Session) -> str:
        return session.user_id or "-"  # under a short heading: the column is as wide as the id

    def get_urls(self) -> list[URLPattern]:
        return self.report_urls() + super().get_urls()


__all__ = [
    "OnlineFilter",
    "RoomFilter",
    "SessionAdmin",
    "SessionInline",
    "UserFilter",
    "format_duration",
    "online_now",
    "with_online",
]
