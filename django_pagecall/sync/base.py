"""What every part of the sync shares: the retry signal, queueing tasks after commit, leases,
what is kept of an error, and the one idempotent update."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from ..conf import pagecall_settings
from ..exceptions import (
    PagecallAmbiguousError,
    PagecallError,
    PagecallRefused,
    PagecallResponseError,
    PagecallTransientError,
)
from ..models import DeletedRoom, Member, PendingAction, Room, RoomType, SyncState
from ..resources import Room as RemoteRoom

logger = logging.getLogger("django_pagecall.sync")

T = TypeVar("T")


class RetryLater(Exception):
    """The work is not done and should be tried again later (the row says so too).

    ``countdown``, when given, is the earliest time a retry can make progress
    (a claim that has yet to run out).
    """

    def __init__(self, message: str, countdown: float | None = None) -> None:
        super().__init__(message)
        self.countdown = countdown


def _settle() -> tuple[Any, float]:
    """After an ambiguous outcome, when to look: once a request still in flight has landed."""
    grace = float(pagecall_settings.AMBIGUOUS_GRACE)
    return timezone.now() + timedelta(seconds=grace), grace


def _until(moment: Any) -> float:
    return max(float((moment - timezone.now()).total_seconds()), 0.0)


# -- scheduling (called from the models' save/delete) ------------------------------------------


def _enqueue(task_name: str, *args: Any) -> None:
    """Queue a task; if the broker cannot take it, log and leave the row for the sweep.

    During an inline sweep nothing is published: the row says what is left to do, and the
    sweep's next pass over :func:`~django_pagecall.sync.pending_work` runs it. After a publish
    failed, nothing is published by this process for ``PUBLISH_TIMEOUT`` seconds: each task
    is logged in one line and its row stays pending, so that a save that queues many tasks
    while the broker is down waits for the broker once.
    """
    from .. import tasks
    from . import publishing

    if publishing.in_inline_sweep():
        logger.debug("%s%r: left to the sweep's next pass", task_name, args)
        return
    paused = publishing.paused_for()
    if paused:
        logger.warning(
            "Not queueing %s%r: the broker was unreachable moments ago (this process tries it "
            "again in %.1f s). The row stays pending; `manage.py pagecall_sync` or the periodic "
            "task django_pagecall.tasks.sync will send it.",
            task_name,
            args,
            paused,
        )
        return
    task = getattr(tasks, task_name)
    timeout = float(pagecall_settings.PUBLISH_TIMEOUT)
    try:
        task.apply_async(
            args=args,
            retry=True,
            retry_policy={
                # Two more tries, half the budget apart; each connect is bounded by the broker's
                # socket timeouts (broker_transport_options, see the README).
                "max_retries": 2,
                "interval_start": timeout / 2,
                "interval_step": timeout / 2,
                "interval_max": timeout / 2,
            },
        )
    except Exception:
        publishing.pause(timeout)
        logger.exception(
            "Could not queue %s%r: the broker is unreachable. The row stays pending; "
            "`manage.py pagecall_sync` or the periodic task django_pagecall.tasks.sync will send it. "
            "This process queues nothing more for %s s.",
            task_name,
            args,
            timeout,
        )


def _on_commit(using: str, task_name: str, *args: Any) -> None:
    def enqueue() -> None:  # a def, not functools.partial: robust=True needs a __qualname__
        _enqueue(task_name, *args)

    transaction.on_commit(enqueue, using=using, robust=True)


def schedule_room_creation(room: Room) -> None:
    db = room._state.db or "default"
    # Until the commit, members saved with this instance go into the room's POST /rooms: the
    # claim reads them after the commit. They need no task of their own.
    room._creation_uncommitted = True  # type: ignore[attr-defined]

    def enqueue() -> None:
        room._creation_uncommitted = False  # type: ignore[attr-defined]
        _enqueue("create_room", room.pk, db)

    transaction.on_commit(enqueue, using=db, robust=True)


def schedule_room_update(room: Room) -> None:
    db = room._state.db or "default"
    _on_commit(db, "update_room", room.pk, db)


def schedule_remote_room_deletion(pagecall_id: str, *, using: str) -> None:
    if pagecall_settings.DELETE_REMOTE_ROOMS:
        _owe(PendingAction.Kind.DELETE_ROOM, pagecall_id, "", using)


def room_deleted(room_pk: int, *, using: str) -> None:
    """Called in the transaction that deletes a room, before the delete. The row is read (and
    locked, so that a worker storing its Pagecall id now waits, then finds it gone) rather than
    the instance trusted, which may predate the id. Its Pagecall room is remembered
    (:func:`forget_room`), and deleted there with ``DELETE_REMOTE_ROOMS``."""
    row = (
        Room.objects.using(using)
        .select_for_update()
        .filter(pk=room_pk)
        .values("pagecall_id", "pagecall_created_at")
        .first()
    )
    if row is not None and row["pagecall_id"]:
        forget_room(row["pagecall_id"], row["pagecall_created_at"], using=using)
        schedule_remote_room_deletion(row["pagecall_id"], using=using)


def forget_room(pagecall_id: str, created_at: Any, *, using: str) -> None:
    """Remember a Pagecall room whose row is gone (:class:`DeletedRoom`), so that no namesake
    adopts it after an unknown outcome; and drop those that no attempt can find any more: an
    attempt looks at rooms created from ``ADOPT_WINDOW`` before it began."""
    now = timezone.now()
    DeletedRoom.objects.using(using).get_or_create(
        pagecall_id=pagecall_id, defaults={"pagecall_created_at": created_at or now}
    )
    earliest = (
        Room.objects.using(using)
        .filter(sync_state=SyncState.CREATING)
        .aggregate(started=Min("attempt_started_at"))["started"]
    )
    horizon = min(earliest or now, now) - timedelta(seconds=pagecall_settings.ADOPT_WINDOW)
    DeletedRoom.objects.using(using).filter(pagecall_created_at__lt=horizon).delete()


def schedule_member_creation(member: Member) -> None:
    db = member._state.db or "default"
    room = member._state.fields_cache.get("room")  # the instance it was saved with, if any
    if (
        isinstance(room, Room)
        and getattr(room, "_creation_uncommitted", False)
        and room.pk == member.room_id
        and room._state.db == db
    ):
        return  # saved in the transaction that creates its room: sent with the room
    _on_commit(db, "create_member", member.pk, db)


def schedule_member_update(member: Member) -> None:
    db = member._state.db or "default"
    _on_commit(db, "update_member", member.pk, db)


def schedule_member_block(
    room_pagecall_id: str, user_id: str, *, using: str, room_pk: int | None = None
) -> None:
    """A member of a private room that is gone but may be on Pagecall: the row is gone, so the
    call is kept as its own row. Without ``room_pagecall_id`` (the room is being created), it
    waits for the room ``room_pk`` to have one."""
    _owe(PendingAction.Kind.BLOCK_MEMBER, room_pagecall_id, user_id, using, room_pk)


def schedule_deleted_member_block(member_pk: int, *, using: str) -> None:
    """Called in the transaction that deletes a member, before the delete: block them on
    Pagecall if they may be in a private room there.

    The member's row is locked first, so that no worker claims it between this read and the
    delete. A member that never left (pending, refused) is owed nothing; one being added now,
    or sent with a room being created now, may be on Pagecall by the time it is deleted.
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
        .values("pagecall_id", "type", "sync_state")
        .first()
    )
    if room is None or room["type"] != RoomType.PRIVATE:
        return
    if room["pagecall_id"]:
        if row["sync_state"] in (SyncState.SYNCED, SyncState.CREATING):
            schedule_member_block(room["pagecall_id"], row["user_id"], using=using)
    elif room["sync_state"] == SyncState.CREATING:
        schedule_member_block("", row["user_id"], using=using, room_pk=row["room_id"])


def _owe(
    kind: str, room_pagecall_id: str, user_id: str, using: str, room_pk: int | None = None
) -> None:
    """Record a call in the deleting transaction, and queue it once that commits."""
    action = PendingAction.objects.using(using).create(
        kind=kind, room_pagecall_id=room_pagecall_id, user_id=user_id, room_pk=room_pk
    )
    _on_commit(using, "run_action", action.pk, using)


# -- helpers ----------------------------------------------------------------------------------


def lease_seconds() -> float:
    """How long a claim is valid: every transport attempt timing out, and then some."""
    s = pagecall_settings
    per_try = float(s.CONNECT_TIMEOUT) * (int(s.CONNECT_RETRIES) + 1) + float(s.READ_TIMEOUT)
    return per_try * 2 + 1


def _error_text(exc: PagecallError) -> str:
    """What is kept of a failure on the row: the message, and Pagecall's answer to a refusal.

    The body of a 2xx answer that could not be read is left out: it may be a user object with
    its access token.
    """
    text = str(exc)
    if exc.body and not (exc.status is not None and 200 <= exc.status < 300):
        text += f"\n{exc.body}"
    return text


def _mirror(remote: RemoteRoom) -> dict[str, Any]:
    """The local fields of a Room that come from Pagecall's Room object."""
    return {
        "application_id": remote.application_id or "",
        "layout": remote.layout or "",
        "thumbnail_url": remote.thumbnail_url or "",
        "meeting_time": remote.meeting_time,
        "started_at": remote.started_at,
        "terminated_at": remote.terminated_at,
        "pagecall_created_at": remote.created_at,
        "pagecall_updated_at": remote.updated_at,
    }


def may_have_happened(exc: PagecallError) -> bool:
    """Whether a failed create may still have created something at Pagecall.

    Besides the ambiguous outcomes proper, a 5xx answer proves nothing about a request that has
    no idempotency key, and neither does a 2xx answer that could not be read.
    """
    if isinstance(exc, PagecallAmbiguousError | PagecallResponseError):
        return True
    return isinstance(exc, PagecallTransientError) and exc.status is not None and exc.status >= 500


def _send_update(
    model: type[Room] | type[Member],
    pk: int,
    using: str,
    sent: dict[str, Any],
    call: Callable[[], T],
    stored: Callable[[T], dict[str, Any]],
) -> None:
    """One idempotent PUT of the values ``sent``, then ``needs_update`` cleared, but only if the
    row still holds those values: a change made while the PUT was in flight is sent after it.

    A refusal is recorded and not retried; anything else raises :class:`RetryLater`.
    """
    rows = model.objects.using(using).filter(pk=pk)
    try:
        answer = call()
    except PagecallRefused as exc:
        logger.error("Pagecall refused the update of %s %s: %s", model._meta.model_name, pk, exc)
        changes = {"needs_update": False, "sync_error": _error_text(exc)}
    except PagecallError as exc:
        rows.update(sync_error=_error_text(exc))
        raise RetryLater(str(exc)) from exc
    else:
        logger.info("%s %s updated on Pagecall", model._meta.model_name, pk)
        changes = {"needs_update": False, "sync_error": "", **stored(answer)}
    if not rows.filter(**sent).update(**changes) and rows.update(needs_update=True):
        # Changed while ours was in flight, and maybe sent already, before ours landed: the
        # row's values must reach Pagecall after ours.
        _enqueue(f"update_{model._meta.model_name}", pk, using)
