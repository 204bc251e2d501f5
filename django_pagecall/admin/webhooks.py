"""Admin for webhook deliveries: what Pagecall sent, with filters, and the replay action.

Read-only and deletable. Replaying runs :func:`django_pagecall.webhooks.replay` and needs the
``change_webhookdelivery`` permission (docs/admin.md).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from ..models import WebhookDelivery
from ..webhooks import replay, replayable_q
from ..webhooks.serializers import ACTIONS


def _pretty_json(text: str) -> str:
    try:
        pretty = json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False)
    except ValueError:
        return text
    # A lone surrogate ("\udc00" in the body) has no UTF-8 form: shown escaped, as it came.
    return pretty.encode("utf-8", "backslashreplace").decode("utf-8")


class ToReplayFilter(admin.SimpleListFilter):
    """What ``manage.py pagecall_replay`` runs by default (:func:`~..webhooks.replayable`)."""

    title = _("to replay")
    parameter_name = "to_replay"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("yes (pagecall_replay's default)")), ("no", _("no"))]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]
    ) -> QuerySet[WebhookDelivery]:
        if self.value() == "yes":
            return queryset.filter(replayable_q())
        if self.value() == "no":
            return queryset.exclude(replayable_q())
        return queryset


class ActionFilter(admin.SimpleListFilter):
    """Pagecall's actions, the actions the app does not know (stored and announced only), and
    "other" for everything else, refused bodies included.

    A fixed list: Django's own filter for a plain field would read every row for its
    distinct values on every page of the list."""

    title = _("action")
    parameter_name = "action"
    OTHER = "(other)"
    UNKNOWN = "(unknown)"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            *((action, action) for action in ACTIONS),
            (self.UNKNOWN, _("actions the app does not know")),
            (self.OTHER, _("other or none")),
        ]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]
    ) -> QuerySet[WebhookDelivery]:
        value = self.value()
        if value == self.OTHER:
            return queryset.exclude(action__in=ACTIONS)
        if value == self.UNKNOWN:
            return queryset.exclude(action__in=[*ACTIONS, ""])
        return queryset.filter(action=value) if value else queryset


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "received_at",
        "room",
        "action",
        "session_id",
        "event_at",
        "state",
        "result",
        "attempts",
        "remote_addr",
    ]
    list_filter = ["state", "result", ToReplayFilter, ActionFilter]
    list_select_related = ["room"]
    search_fields = ["session_id", "room__name", "room__pagecall_id", "error"]
    date_hierarchy = "received_at"
    ordering = ["-received_at", "-pk"]  # pagecall_delivery_received_idx
    # The table grows without bound: one count of the filtered rows per page, not a second
    # one of the whole table.
    show_full_result_count = False
    actions = ["replay_selected"]
    readonly_fields = [
        "room",
        "action",
        "session_id",
        "event_at",
        "state",
        "result",
        "attempts",
        "received_at",
        "processed_at",
        "remote_addr",
        "pretty_headers",
        "pretty_body",
        "error",
        "traceback",
    ]
    fieldsets = [
        (None, {"fields": ["room", "action", "session_id", "event_at"]}),
        (_("outcome"), {"fields": ["state", "result", "attempts", "processed_at", "error"]}),
        (_("request"), {"fields": ["received_at", "remote_addr", "pretty_headers", "pretty_body"]}),
        (_("traceback"), {"fields": ["traceback"], "classes": ["collapse"]}),
    ]

    @admin.display(description=_("headers"))
    def pretty_headers(self, delivery: WebhookDelivery) -> SafeString:
        text = json.dumps(delivery.headers, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html("<pre>{}</pre>", text)

    @admin.display(description=_("body"))
    def pretty_body(self, delivery: WebhookDelivery) -> SafeString:
        return format_html("<pre>{}</pre>", _pretty_json(delivery.body))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.action(description=_("Replay selected deliveries"), permissions=["replay"])
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        result = replay(queryset.order_by("received_at", "pk"), using=queryset.db)
        level = messages.WARNING if result.failed else messages.SUCCESS
        text = _("Replayed: %(processed)s processed, %(waiting)s waiting, %(failed)s failed.") % {
            "processed": result.processed,
            "waiting": result.waiting,
            "failed": result.failed,
        }
        if result.unprocessable:
            text += " " + _(
                "Of the failed, %(count)s were refused for an invalid or too large body: "
                "replaying cannot process them."
            ) % {"count": result.unprocessable}
        self.message_user(request, text, level)
