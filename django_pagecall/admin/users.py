"""Admin for Pagecall users: the workspace users the app registered, read-only, tokens masked.

Rows are made by :func:`django_pagecall.sync.register_user`; deleting one is allowed, and the
user is registered again when next needed (docs/admin.md).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..models import PagecallUser
from .rooms import WorkspaceFilter, several_workspaces, with_workspace

#: A token shorter than this is masked whole: its last four characters would be most of it.
MIN_LENGTH_TO_HINT = 16


def mask_token(token: str) -> str:
    """``••••••••wxyz`` for a token, ``-`` for none."""
    if not token:
        return "-"
    if len(token) < MIN_LENGTH_TO_HINT:
        return "••••••••"
    return "••••••••" + token[-4:]


@admin.register(PagecallUser)
class PagecallUserAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["user_id", "name", "masked_token", "registered_at", "updated_at"]
    search_fields = ["user_id", "name"]
    date_hierarchy = "registered_at"
    ordering = ["user_id"]
    # Listed explicitly: access_token must never be among them.
    fields = ("user_id", "workspace", "name", "masked_token", "registered_at", "updated_at")
    readonly_fields = fields

    def get_list_display(self, request: HttpRequest) -> Any:
        return with_workspace(super().get_list_display(request), after="user_id")

    def get_list_filter(self, request: HttpRequest) -> Any:
        return [WorkspaceFilter] if several_workspaces() else []

    @admin.display(description=_("access token"))
    def masked_token(self, user: PagecallUser) -> str:
        masked = mask_token(user.access_token)
        return masked if masked == "-" else gettext("%(masked)s (hidden)") % {"masked": masked}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


__all__ = ["PagecallUserAdmin", "mask_token"]
