"""Session records: one row per Pagecall session (one person's stay in a room), kept from webhooks.

Only the webhook processing and the reconciliation in :mod:`django_pagecall.webhooks`
write these rows; the admin shows them read-only.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Count, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .rooms import Member, Room


class SessionQuerySet(models.QuerySet["Session"]):
    def online(self) -> SessionQuerySet:
        """Sessions that have joined and not left (as far as the webhooks and reconciliation know)."""
        return self.filter(joined_at__isnull=False, left_at__isnull=True)


class Session(models.Model):
    class Source(models.TextChoices):
        WEBHOOK = "webhook", _("webhook")
        RECONCILED = "reconciled", _("reconciled from GET /rooms/{id}/sessions")

    # No index of its own: the "online" index below starts with the room, and serves every
    # look-up by room (each index is written on every webhook).
    room = models.ForeignKey(
        Room,
        on_delete=models.CASCADE,
        related_name="sessions",
        db_index=False,
        verbose_name=_("room"),
    )
    # Unique by a constraint (pagecall_session_unique_id) rather than unique=True, which on
    # PostgreSQL also builds a second, LIKE-pattern index that nothing here queries.
    session_id = models.CharField(_("Pagecall session id"), max_length=64)
    member_id = models.CharField(_("Pagecall member id"), max_length=64, blank=True, default="")
    user_id = models.CharField(_("Pagecall user id"), max_length=255, blank=True, default="")
    # Not called `member`: Django would give it the attribute `member_id`, Pagecall's id here.
    room_member = models.ForeignKey(
        Member,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sessions",
        verbose_name=_("member"),
    )
    joined_at = models.DateTimeField(_("joined at"), null=True, blank=True)
    left_at = models.DateTimeField(_("left at"), null=True, blank=True)
    source = models.CharField(
        _("source"), max_length=16, choices=Source.choices, default=Source.WEBHOOK
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = SessionQuerySet.as_manager()

    class Meta:
        verbose_name = _("session")
        # A context of its own: django.contrib.sessions's catalogue words "sessions" otherwise.
        verbose_name_plural = pgettext_lazy("model", "sessions")
        ordering = ["-joined_at", "-pk"]
        indexes = [
            models.Index(fields=["room", "left_at"], name="pagecall_session_online_idx"),
            # The admin's list, newest first, its date hierarchy's first and last dates and
            # its user filter (the users of the latest sessions): without it, each page sorted
            # the whole table.
            models.Index(fields=["joined_at", "id"], name="pagecall_session_joined_idx"),
        ]
        constraints = [
            # The webhook's INSERT ... ON CONFLICT (session_id) relies on it.
            models.UniqueConstraint(fields=["session_id"], name="pagecall_session_unique_id"),
        ]

    def __str__(self) -> str:
        return _("%(user)s in %(room)s") % {
            "user": self.user_id or _("anonymous"),
            "room": self.room,
        }

    @property
    def is_online(self) -> bool:
        return self.joined_at is not None and self.left_at is None

    @property
    def duration(self) -> timedelta | None:
        """Time between joining and leaving; until now for a session still online."""
        if self.joined_at is None:
            return None
        return (self.left_at or timezone.now()) - self.joined_at


def online_count() -> Coalesce:
    """An annotation for a queryset of rooms: how many of each room's sessions are online.

    A subquery rather than a join, so it adds no duplicate rows whatever else the queryset
    annotates or filters on.
    """
    online = (
        Session.objects.online()
        .filter(room=OuterRef("pk"))
        .order_by()
        .values("room")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(online, output_field=models.IntegerField()), Value(0))
