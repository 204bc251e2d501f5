"""What deleting a room or a member owes Pagecall: pending actions written in the deleting
transaction, sent once it commits, and the Pagecall rooms no namesake may adopt."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db.models import F, Max, Min, Q
from django.utils import timezone

from ..client import get_client
from ..conf import pagecall_settings
from ..exceptions import PagecallError, PagecallRefused, WorkspaceNotConfigured
from ..models import DeletedRoom, Member, PendingAction, Room, RoomType, SyncState
from . import outcomes
from .outcomes import RetryLater, error_text
from .scheduling import enqueue_on_commit

logger = logging.getLogger("django_pagecall.sync")


def room_deleted(room_pk: int, *, using: str) -> None:
    """Called in the transaction that deletes a room, before the delete.

    The row is read and locked (a worker storing its Pagecall id now waits, then finds it
    gone) rather than the instance trusted, which may predate the id.
    """
    row = (
        Room.objects.using(using)
        .select_for_update()
        .filter(pk=room_pk)
        .values(
            "pagecall_id",
            "pagecall_created_at",
            "workspace",
            "sync_state",
            "name_in_flight",
            "lease_until",
        )
        .first()
    )
    if row is not None and row["pagecall_id"]:
        forget_room(row["pagecall_id"], row["pagecall_created_at"], using=using)
        schedule_remote_room_deletion(row["pagecall_id"], workspace=row["workspace"], using=using)
    elif row is not None and row["sync_state"] == SyncState.CREATING and row["name_in_flight"]:
        # Its request may have created a room we cannot name: keep the name taken until the
        # request has surely landed, and no namesake adopts what it created.
        now = timezone.now()
        landed = max(row["lease_until"] or now, now) + timedelta(seconds=outcomes.AMBIGUOUS_GRACE)
        DeletedRoom.objects.using(using).create(
            workspace=row["workspace"], name_in_flight=row["name_in_flight"], in_flight_until=landed
        )


def deleted_in_flight(name: str, workspace: str, using: str) -> Any:
    """The latest time until which a deleted row's attempt under ``name`` may still create a
    room at Pagecall, or None."""
    return (
        DeletedRoom.objects.using(using)
        .filter(name_in_flight=name, workspace=workspace)
        .aggregate(until=Max("in_flight_until"))["until"]
    )


def forget_room(pagecall_id: str, created_at: Any, *, using: str) -> None:
    """Remember a Pagecall room whose row is gone, so that no namesake adopts it after an
    unknown outcome; and drop those no attempt can find any more (older than the earliest
    attempt in flight, less ``ADOPT_WINDOW``)."""
    now = timezone.now()
    DeletedRoom.objects.using(using).get_or_create(
        pagecall_id=pagecall_id, defaults={"pagecall_created_at": created_at or now}
    )
    earliest = (
        Room.objects.using(using)
        .filter(sync_state=SyncState.CREATING)
        .aggregate(started=Min("attempt_started_at"))["started"]
    )
    horizon = min(earliest or now, now) - timedelta(seconds=outcomes.ADOPT_WINDOW)
    DeletedRoom.objects.using(using).filter(
        Q(pagecall_created_at__lt=horizon) | Q(in_flight_until__lt=horizon)
    ).delete()


def schedule_remote_room_deletion(pagecall_id: str, *, workspace: str, using: str) -> None:
    if pagecall_settings.DELETE_REMOTE_ROOMS:
        owe(PendingAction.Kind.DELETE_ROOM, pagecall_id, "", workspace, using)


def schedule_member_block(
    room_pagecall_id: str,
    user_id: str,
    *,
    workspace: str,
    using: str,
    room_pk: int | None = None,
) -> None:
    """Block a member of a private room whose row is gone. Without ``room_pagecall_id`` (the
    room is being created), the block waits for the room ``room_pk`` to have one."""
    owe(PendingAction.Kind.BLOCK_MEMBER, room_pagecall_id, user_id, workspace, using, room_pk)


def schedule_deleted_member_block(member_pk: int, *, using: str) -> None:
    """Called in the transaction that deletes a member, before the delete: block them on
    Pagecall if they may be in a private room there.

    The row is locked first, so that no worker claims it between this read and the delete. A
    member that never left (pending, refused) is owed nothing; one being added now, or sent
    with a room being created now, may be on Pagecall by the time it is deleted.
    """
    row = (
        Member.objects.using(using)
        .select_for_update()
        .filter(pk=member_pk)
        .values("room_id", "user_id", "sync_state", "is_blocked")
        .first()
    )
    if row is None or row["is_blocked"]:
        return
    room = (
        Room.objects.using(using)
        .filter(pk=row["room_id"])
        .values("pagecall_id", "type", "sync_state", "workspace")
        .first()
    )
    if room is None or room["type"] != RoomType.PRIVATE:
        return
    workspace = room["workspace"]
    if room["pagecall_id"]:
        if row["sync_state"] in (SyncState.SYNCED, SyncState.CREATING):
            schedule_member_block(
                room["pagecall_id"], row["user_id"], workspace=workspace, using=using
            )
    elif room["sync_state"] == SyncState.CREATING:
        schedule_member_block(
            "", row["user_id"], workspace=workspace, using=using, room_pk=row["room_id"]
        )


def owe(
    kind: str,
    room_pagecall_id: str,
    user_id: str,
    workspace: str,
    using: str,
    room_pk: int | None = None,
) -> None:
    """Record a call in the current transaction, and queue it once that commits."""
    from .. import tasks

    action = PendingAction.objects.using(using).create(
        kind=kind,
        room_pagecall_id=room_pagecall_id,
        user_id=user_id,
        workspace=workspace,
        room_pk=room_pk,
    )
    enqueue_on_commit(using, tasks.run_action, action.pk, using)


def run_action(action_pk: int, using: str = "default") -> None:
    """Make a pending action's call, then forget it."""
    action = PendingAction.objects.using(using).filter(pk=action_pk).first()
    if action is None:
        return  # done already
    if not action.room_pagecall_id and not _learn_room_id(action, using):
        return
    PendingAction.objects.using(using).filter(pk=action.pk).update(attempts=F("attempts") + 1)
    try:
        client = get_client(action.workspace)
        if action.kind == PendingAction.Kind.BLOCK_MEMBER:
            client.update_member(action.room_pagecall_id, action.user_id, is_blocked=True)
        else:
            client.delete_room(action.room_pagecall_id)
    except WorkspaceNotConfigured as exc:
        # Kept, not dropped: the call is still owed once the workspace is configured again.
        PendingAction.objects.using(using).filter(pk=action.pk).update(last_error=str(exc))
        raise RetryLater(str(exc)) from exc
    except PagecallRefused as exc:  # e.g. gone already: nothing more to do
        logger.warning("Pagecall refused %s: %s", action, exc)
    except PagecallError as exc:
        PendingAction.objects.using(using).filter(pk=action.pk).update(last_error=error_text(exc))
        raise RetryLater(str(exc)) from exc
    else:
        logger.info("Done on Pagecall: %s", action)
    PendingAction.objects.using(using).filter(pk=action.pk).delete()


def _learn_room_id(action: PendingAction, using: str) -> bool:
    """For a block that waits for its room's Pagecall id: True once the id is known (and set on
    ``action``); :class:`RetryLater` while the room is being created; False, the action
    dropped, when the room will not be on Pagecall with that member."""
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
