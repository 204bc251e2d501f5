"""Adding members to rooms that exist on Pagecall, their updates, and calls owed for deleted rows."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from ..client import get_client
from ..conf import pagecall_settings
from ..exceptions import (
    PagecallError,
    PagecallRefused,
)
from ..models import Member, PendingAction, Room, RoomType, SyncState
from ..resources import Member as RemoteMember
from .base import (
    RetryLater,
    _enqueue,
    _error_text,
    _send_update,
    _settle,
    _until,
    lease_seconds,
    may_have_happened,
    schedule_member_block,
)
from .users import _ensure_registered

logger = logging.getLogger("django_pagecall.sync")


def create_member(member_pk: int, using: str = "default") -> None:
    """Add a member to a room that already exists on Pagecall (``POST /rooms/{id}/members``)."""
    member = Member.objects.using(using).select_related("room").filter(pk=member_pk).first()
    if member is None or member.room.pagecall_id is None:
        return  # gone, or its room is not created yet: the room's creation sends it
    now = timezone.now()
    if member.sync_state == SyncState.CREATING and member.lease_until and member.lease_until > now:
        raise RetryLater(
            f"member {member_pk} is claimed until {member.lease_until}",
            countdown=_until(member.lease_until),
        )
    if member.sync_state not in (SyncState.PENDING, SyncState.CREATING):
        return
    if member.is_blocked and member.sync_state == SyncState.PENDING:
        # Removed before it was ever sent: Pagecall has nothing to add or to block.
        Member.objects.using(using).filter(pk=member.pk, sync_state=SyncState.PENDING).update(
            sync_state=SyncState.SYNCED, needs_update=False, synced_at=now, sync_error=""
        )
        logger.info("Member %s was removed before it was sent; not added", member.pk)
        return
    if member.sync_attempts >= pagecall_settings.MAX_ATTEMPTS:
        Member.objects.using(using).filter(pk=member.pk).update(
            sync_state=SyncState.FAILED, lease_until=None
        )
        logger.error("Member %s: gave up after %s attempts", member.pk, member.sync_attempts)
        return
    lease = now + timedelta(seconds=lease_seconds())
    claimed = (
        Member.objects.using(using)
        .filter(pk=member.pk, sync_state=member.sync_state, lease_until=member.lease_until)
        .update(
            sync_state=SyncState.CREATING,
            sync_attempts=F("sync_attempts") + 1,
            attempt_started_at=now,
            lease_until=lease,
        )
    )
    if not claimed:
        raise RetryLater(f"member {member_pk} changed under us")
    room_id = member.room.pagecall_id
    client = get_client()
    try:
        if member.sync_state == SyncState.CREATING:  # an expired claim: it may be there already
            remote = _find_member(room_id, member.user_id)
        else:
            remote = None
        if remote is None:
            if member.room.type == RoomType.PRIVATE:
                _ensure_registered([member], using)
            remote = client.create_member(room_id, user_id=member.user_id, type=member.type)
    except PagecallRefused as exc:
        Member.objects.using(using).filter(pk=member.pk, lease_until=lease).update(
            sync_state=SyncState.FAILED, lease_until=None, sync_error=_error_text(exc)
        )
        logger.error("Pagecall refused member %s of room %s: %s", member.pk, member.room_id, exc)
        return
    except PagecallError as exc:
        if may_have_happened(exc):
            settled, grace = _settle()
            Member.objects.using(using).filter(pk=member.pk, lease_until=lease).update(
                lease_until=settled, sync_error=_error_text(exc)
            )
            raise RetryLater(str(exc), countdown=grace) from exc
        Member.objects.using(using).filter(pk=member.pk, lease_until=lease).update(
            sync_state=SyncState.PENDING, lease_until=None, sync_error=_error_text(exc)
        )
        raise RetryLater(str(exc)) from exc
    # Stored as soon as it exists; the display name (not part of the create) and any change
    # made meanwhile follow as an update, which is idempotent.
    stored = (
        Member.objects.using(using)
        .filter(pk=member.pk, lease_until=lease)
        .update(
            sync_state=SyncState.SYNCED,
            pagecall_id=remote.id,
            lease_until=None,
            synced_at=timezone.now(),
            sync_error="",
            needs_update=Case(When(~Q(name=""), then=Value(True)), default=F("needs_update")),
        )
    )
    logger.info("Member %s added to room %s on Pagecall", member.user_id, room_id)
    if not stored and not Member.objects.using(using).filter(pk=member.pk).exists():
        # Deleted while being added: the block owed at its deletion may have reached Pagecall
        # before the add did, so it is owed again, now that the add has landed.
        if member.room.type == RoomType.PRIVATE:
            schedule_member_block(room_id, member.user_id, using=using)
        return
    if Member.objects.using(using).filter(pk=member.pk, needs_update=True).exists():
        _enqueue("update_member", member.pk, using)


def _find_member(room_id: str, user_id: str) -> Any:
    try:
        return get_client().get_member(room_id, user_id)
    except PagecallRefused:  # Pagecall answers 400 for an unknown member
        return None


def update_member(member_pk: int, using: str = "default") -> None:
    """Send a member's new type, name or block (``PUT /rooms/{id}/members/{member_id}``)."""
    member = Member.objects.using(using).select_related("room").filter(pk=member_pk).first()
    if member is None or not member.needs_update or member.sync_state != SyncState.SYNCED:
        return  # a member not yet created is sent whole by its creation
    room = member.room
    room_id = room.pagecall_id
    assert room_id is not None

    def put() -> RemoteMember | None:
        if not member.is_blocked:
            return get_client().update_member(
                room_id, member.user_id, name=member.name or None, type=member.type
            )
        if room.type == RoomType.PRIVATE:
            return get_client().update_member(room_id, member.user_id, is_blocked=True)
        logger.warning(
            "Member %s removed from %s room %s: Pagecall blocks members of private rooms only",
            member.user_id,
            room.type,
            room.pk,
        )
        return None

    sent = {"name": member.name, "type": member.type, "is_blocked": member.is_blocked}
    _send_update(Member, member.pk, using, sent, put, lambda _: {})


def run_action(action_pk: int, using: str = "default") -> None:
    """Make a call owed for a deleted row (:class:`PendingAction`), then forget it."""
    action = PendingAction.objects.using(using).filter(pk=action_pk).first()
    if action is None:
        return  # done already
    if not action.room_pagecall_id and not _room_id_for(action, using):
        return
    PendingAction.objects.using(using).filter(pk=action.pk).update(attempts=F("attempts") + 1)
    client = get_client()
    try:
        if action.kind == PendingAction.Kind.BLOCK_MEMBER:
            client.update_member(action.room_pagecall_id, action.user_id, is_blocked=True)
        else:
            client.delete_room(action.room_pagecall_id)
    except PagecallRefused as exc:  # e.g. gone already: nothing more to do
        logger.warning("Pagecall refused %s: %s", action, exc)
    except PagecallError as exc:
        PendingAction.objects.using(using).filter(pk=action.pk).update(last_error=_error_text(exc))
        raise RetryLater(str(exc)) from exc
    else:
        logger.info("Done on Pagecall: %s", action)
    PendingAction.objects.using(using).filter(pk=action.pk).delete()


def _room_id_for(action: PendingAction, using: str) -> bool:
    """A block that waited for its room's Pagecall id (the member was deleted while the room
    was being created): True once the id is known and set on ``action``; raises
    :class:`RetryLater` while the room is still being created; False, and the action is
    dropped, when the room will not be on Pagecall with that member (sent again without it,
    refused, or deleted)."""
    room = (
        Room.objects.using(using)
        .filter(pk=action.room_pk)
        .values("pagecall_id", "sync_state")
        .first()
        if action.room_pk is not None
        else None
    )
    if room is not None and room["pagecall_id"]:
        action.room_pagecall_id = room["pagecall_id"]
        PendingAction.objects.using(using).filter(pk=action.pk).update(
            room_pagecall_id=action.room_pagecall_id
        )
        return True
    if room is not None and room["sync_state"] == SyncState.CREATING:
        # Usually done within a second: the task's backoff, not the claim's whole lease.
        raise RetryLater(f"{action}: waiting for the room to be created")
    logger.info("%s: the room is not on Pagecall with this member; nothing to do", action)
    PendingAction.objects.using(using).filter(pk=action.pk).delete()
    return False
