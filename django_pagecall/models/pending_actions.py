"""Pending actions: calls owed to Pagecall for rows that no longer exist (a member deleted from
a private room is blocked, a deleted room is deleted with ``DELETE_REMOTE_ROOMS``).

Written in the deleting transaction, so neither a broker outage nor spent retries lose one.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .rooms import workspace_field


class PendingAction(models.Model):
    """A call owed to Pagecall for a deleted row; removed once Pagecall has answered."""

    class Kind(models.TextChoices):
        BLOCK_MEMBER = "block_member", _("block a member (deleted from a private room)")
        DELETE_ROOM = "delete_room", _("delete a room (deleted locally)")

    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    #: The room's workspace, where the call goes (the room's row may be gone).
    workspace = workspace_field()
    room_pagecall_id = models.CharField(
        _("Pagecall room id"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("Blank while the room is being created: the call waits for its id."),
    )
    room_pk = models.BigIntegerField(
        _("room"),
        null=True,
        blank=True,
        help_text=_("The local room (its primary key), for a call that waits for the room's id."),
    )
    user_id = models.CharField(_("Pagecall user id"), max_length=255, blank=True, default="")
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True, default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("pending action")
        verbose_name_plural = _("pending actions")
        ordering = ["pk"]

    def __str__(self) -> str:
        room = self.room_pagecall_id or _("room %(pk)s (being created)") % {"pk": self.room_pk}
        if self.user_id:
            room = _("%(user)s in %(room)s") % {"user": self.user_id, "room": room}
        return f"{self.get_kind_display()}: {room}"
