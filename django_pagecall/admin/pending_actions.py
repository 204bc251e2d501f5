"""Admin for pending actions (calls owed for deleted rows): read-only, with an action that
sends the selected ones now (the periodic sweep sends them too)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .. import sync
from ..models import PendingAction
from .rooms import WorkspaceFilter, several_workspaces, with_workspace


@admin.register(PendingAction)
class PendingActionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "kind",
        "room_pagecall_id",
        "room_pk",
        "user_id",
        "attempts",
        "last_error",
        "created_at",
    ]
    list_filter = ["kind"]
    search_fields = ["room_pagecall_id", "user_id"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in PendingAction._meta.fields]
    actions = ["send_now"]

    def get_list_display(self, request: HttpRequest) -> Any:
        return with_workspace(super().get_list_display(request), after="kind")

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = list(super().get_list_filter(request))
        return [WorkspaceFilter, *filters] if several_workspaces() else filters

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Send the selected calls to Pagecall now"), permissions=["send"])
    def send_now(self, request: HttpRequest, queryset: QuerySet[PendingAction]) -> None:
        using = queryset.db
        done = sum(sync.run("run_action", action.pk, using) == "sent" for action in queryset)
        left = queryset.count()
        level = messages.SUCCESS if not left else messages.WARNING
        self.message_user(
            request, _("%(done)d sent, %(left)d still owed.") % {"done": done, "left": left}, level
        )

    def has_send_permission(self, request: HttpRequest) -> bool:
        # Sending is a change made on Pagecall's side of a deleted row: the delete permission.
        return request.user.has_perm("django_pagecall.delete_pendingaction")
