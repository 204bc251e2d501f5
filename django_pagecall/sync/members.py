"""Adding members to rooms that are on Pagecall, and sending their changes."""

from __future__ import annotations

import logging

from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from .. import remote
from ..client import PagecallClient, get_client
from ..conf import pagecall_settings
from ..exceptions import PagecallError, PagecallRefused
from ..models import Member, RoomType, SyncState
from . import outcomes
from .deletion import schedule_member_block
from .outcomes import (
    RetryLater,
    error_text,
    may_have_happened,
    new_lease,
    seconds_until,
    settled_at,
)
from .scheduling import enqueue
from .updates import send_update
from .users import ensure_registered

logger = logging.getLogger("django_pagecall.sync")


def create_member(member_pk: int, using: str = "default") -> None:
    """Add a member to a room that already exists on Pagecall (``POST /rooms/{id}/members``)."""
    from .. import tasks

    members = Member.objects.using(using)
    member = members.select_related("room").filter(pk=member_pk).first()
    if member is None or member.room.pagecall_id is None:
        return  # gone, or its room is not created yet: the room's creation sends it
    now = timezone.now()
    if member.sync_state == SyncState.CREATING and member.lease_until and member.lease_until > now:
        raise RetryLater(
            f"member {member_pk} is claimed until {member.lease_until}",
            countdown=seconds_until(member.lease_until),
        )
    if member.sync_state not in (SyncState.PENDING, SyncState.CREATING):
        return
    if member.is_blocked and member.sync_state == SyncState.PENDING:
        # Removed before it was ever sent: Pagecall has nothing to add or to block.
        members.filter(pk=member.pk, sync_state=SyncState.PENDING).update(
            sync_state=SyncState.SYNCED, needs_update=False, synced_at=now, sync_error=""
        )
        logger.info("Member %s was removed before it was sent; not added", member.pk)
        return
    if member.sync_attempts >= pagecall_settings.MAX_ATTEMPTS:
        members.filter(pk=member.pk).update(sync_state=SyncState.FAILED, lease_until=None)
        logger.error("Member %s: gave up after %s attempts", member.pk, member.sync_attempts)
        return
    outcomes.wait_for_configuration(members, member.pk, member.room.workspace)
    lease = new_lease()
    was = {"sync_state": member.sync_state, "lease_until": member.lease_until}
    if not members.claim(member.pk, lease, now, was=was):
        raise RetryLater(f"member {member_pk} changed under us")
    room_id = member.room.pagecall_id
    try:
        added = None
        client = get_client(member.room.workspace)
        if member.sync_state == SyncState.CREATING:  # an expired claim: it may be there already
            added = find_member(client, room_id, member.user_id)
        if added is None:
            if member.room.type == RoomType.PRIVATE:
                ensure_registered([member], member.room.workspace, using)
            added = client.create_member(room_id, user_id=member.user_id, type=member.type)
    except PagecallRefused as exc:
        members.settle(member.pk, lease, SyncState.FAILED, sync_error=error_text(exc))
        logger.error("Pagecall refused member %s of room %s: %s", member.pk, member.room_id, exc)
        return
    except PagecallError as exc:
        if may_have_happened(exc):
            until, grace = settled_at()
            members.hold(member.pk, lease, until, sync_error=error_text(exc))
            raise RetryLater(str(exc), countdown=grace) from exc
        members.settle(member.pk, lease, SyncState.PENDING, sync_error=error_text(exc))
        raise RetryLater(str(exc)) from exc
    # Stored as soon as it exists; the display name (not part of the create) and any change
    # made meanwhile follow as an update, which is idempotent.
    stored = members.settle(
        member.pk,
        lease,
        SyncState.SYNCED,
        pagecall_id=added.id,
        synced_at=timezone.now(),
        sync_error="",
        needs_update=Case(When(~Q(name=""), then=Value(True)), default=F("needs_update")),
    )
    logger.info("Member %s added to room %s on Pagecall", member.user_id, room_id)
    if not stored and not members.filter(pk=member.pk).exists():
        # Deleted while being added: the block owed at its deletion may have reached Pagecall
        # before the add did, so it is owed again, now that the add has landed.
        if member.room.type == RoomType.PRIVATE:
            schedule_member_block(
                room_id, member.user_id, workspace=member.room.workspace, using=using
            )
        return
    if members.filter(pk=member.pk, needs_update=True).exists():
        enqueue(tasks.update_member, member.pk, using)


def find_member(client: PagecallClient, room_id: str, user_id: str) -> remote.Member | None:
    try:
        return client.get_member(room_id, user_id)
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

    def put() -> remote.Member | None:
        client = get_client(room.workspace)
        if not member.is_blocked:
            return client.update_member(
                room_id, member.user_id, name=member.name or None, type=member.type
            )
        if room.type == RoomType.PRIVATE:
            return client.update_member(room_id, member.user_id, is_blocked=True)
        logger.warning(
            "Member %s removed from %s room %s: Pagecall blocks members of private rooms only",
            member.user_id,
            room.type,
            room.pk,
        )
        return None

    sent = {"name": member.name, "type": member.type, "is_blocked": member.is_blocked}
    send_update(Member, member.pk, using, sent, put, lambda _: {})
