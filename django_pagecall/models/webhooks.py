"""Webhook deliveries: every authenticated call Pagecall made to the webhook view, as received.

A row keeps what came in (headers with secrets masked, body, remote address) and what became of
it, for the admin and for replaying. Only :mod:`django_pagecall.webhooks` writes these rows
(docs/webhooks.md).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .rooms import Room


class DeliveryState(models.TextChoices):
    # Stored, not processed yet; still so later only if the process died on the way.
    RECEIVED = "received", _("received")
    PROCESSED = "processed", _("processed")
    FAILED = "failed", _("failed")
    # The room has no Pagecall id yet, so the payload's roomId cannot be checked.
    WAITING = "waiting", _("waiting for the room's Pagecall id")


class DeliveryResult(models.TextChoices):
    """What a processed delivery did, or why a failed one can never be processed (else blank)."""

    APPLIED = "applied", _("applied")
    DUPLICATE = "duplicate", _("duplicate or older: nothing changed")
    ROOM_GONE = "room_gone", _("room no longer exists")
    # Stored and announced with webhook_received; the app applies nothing for it.
    UNKNOWN_ACTION = "unknown_action", _("action the app does not know: announced only")
    # Failed for good: refused with 400 / 411 / 413 / 415. Replaying it cannot help, so pagecall_replay
    # leaves it out unless it is named with --id.
    INVALID = "invalid", _("invalid body")
    TOO_LARGE = "too_large", _("body too large (not stored)")
    UNREADABLE = "unreadable", _("body not readable: framing or encoding not taken")


class WebhookDelivery(models.Model):
    room = models.ForeignKey(
        Room,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="webhook_deliveries",
        verbose_name=_("room"),
    )
    # Copied out of the body when it parses, for the admin's filters and search.
    action = models.CharField(_("action"), max_length=64, blank=True, default="")
    session_id = models.CharField(_("Pagecall session id"), max_length=64, blank=True, default="")
    event_at = models.DateTimeField(_("event timestamp"), null=True, blank=True)

    headers = models.JSONField(_("headers"), default=dict, help_text=_("Secrets masked."))
    body = models.TextField(_("body"), blank=True, default="")
    remote_addr = models.GenericIPAddressField(_("remote address"), null=True, blank=True)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)

    state = models.CharField(_("state"), max_length=16, choices=DeliveryState.choices)
    result = models.CharField(
        _("result"), max_length=16, choices=DeliveryResult.choices, blank=True, default=""
    )
    error = models.TextField(_("error"), blank=True, default="")
    traceback = models.TextField(_("traceback"), blank=True, default="")
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=1)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-received_at", "-pk"]
        indexes = [
            # The admin's list, newest first, and its date hierarchy's first and last dates:
            # without it, each page sorted the whole table. The room FK has its own index.
            models.Index(fields=["received_at", "id"], name="pagecall_delivery_received_idx"),
            # What the replay command and the "to replay" filter read.
            models.Index(fields=["state", "received_at"], name="pagecall_delivery_state_idx"),
        ]

    def __str__(self) -> str:
        what = self.action or _("webhook")
        return f"{what} {self.session_id} ({self.get_state_display()})".replace("  ", " ")

    def __repr__(self) -> str:
        return f"<WebhookDelivery {self.pk} {self.action or '?'} {self.state}>"
