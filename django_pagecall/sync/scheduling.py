"""Queueing a row's task once its transaction commits; a broker that cannot take it leaves the
row pending for the sweep."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.db import transaction

from ..models import Member, Room
from . import publishing

if TYPE_CHECKING:
    from celery import Task

logger = logging.getLogger("django_pagecall.sync")


def enqueue(task: Task[Any, Any], *args: Any) -> None:
    """Queue ``task``; if the broker cannot take it, log and leave the row for the sweep.

    During an inline sweep nothing is published: the sweep's next pass finds the work from the
    rows. After a failed publish this process publishes nothing for ``PUBLISH_TIMEOUT``, so a
    save that queues many tasks while the broker is down waits for it once.
    """
    if publishing.in_inline_sweep():
        logger.debug("%s%r: left to the sweep's next pass", task.name, args)
        return
    paused = publishing.paused_for()
    if paused:
        publishing.note_unsent(task.name)
        logger.warning(
            "Not queueing %s%r: the broker was unreachable moments ago (this process tries it "
            "again in %.1f s). The row stays pending; `manage.py pagecall_sync` or the periodic "
            "task django_pagecall.tasks.sync will send it.",
            task.name,
            args,
            paused,
        )
        return
    publishing.warn_once_about(task.app, logger)
    timeout = publishing.PUBLISH_TIMEOUT
    try:
        task.apply_async(
            args=args,
            retry=True,
            retry_policy={
                # Two more tries, half the budget apart; each connect is bounded by the broker's
                # socket timeouts (broker_transport_options, see docs/celery.md).
                "max_retries": 2,
                "interval_start": timeout / 2,
                "interval_step": timeout / 2,
                "interval_max": timeout / 2,
            },
        )
    except Exception as exc:
        publishing.pause(timeout)
        publishing.note_unsent(task.name)
        # One line says what happened and what follows; the traceback is for DEBUG.
        logger.warning(
            "Could not queue %s%r: %s. The row stays pending; `manage.py pagecall_sync` or the "
            "periodic task django_pagecall.tasks.sync will send it. This process queues nothing "
            "more for %s s.",
            task.name,
            args,
            publish_failure(exc),
            timeout,
        )
        logger.debug("Publishing %s failed", task.name, exc_info=True)


def publish_failure(exc: BaseException) -> str:
    """Why a publish failed, in words: a transport that cannot be imported is not a broker down."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ImportError):
            return (
                f"Celery cannot load the broker's transport ({type(seen).__name__}: {seen}); "
                "install the client it needs, for Redis `celery[redis]` "
                "(`django-pagecall[redis]`)"
            )
        seen = seen.__cause__ or seen.__context__
    return f"the broker is unreachable ({type(exc).__name__}: {exc})"


def enqueue_on_commit(using: str, task: Task[Any, Any], *args: Any) -> None:
    def publish() -> None:  # a def, not functools.partial: robust=True needs a __qualname__
        enqueue(task, *args)

    transaction.on_commit(publish, using=using, robust=True)


def schedule_room_creation(room: Room) -> None:
    from .. import tasks

    db = room._state.db or "default"
    # Until the commit, members saved with this instance go into the room's POST /rooms (the
    # claim reads them after the commit): they need no task of their own.
    room._creation_uncommitted = True  # type: ignore[attr-defined]

    def publish() -> None:
        room._creation_uncommitted = False  # type: ignore[attr-defined]
        enqueue(tasks.create_room, room.pk, db)

    transaction.on_commit(publish, using=db, robust=True)


def schedule_room_update(room: Room) -> None:
    from .. import tasks

    db = room._state.db or "default"
    enqueue_on_commit(db, tasks.update_room, room.pk, db)


def schedule_member_creation(member: Member) -> None:
    from .. import tasks

    db = member._state.db or "default"
    room = member._state.fields_cache.get("room")  # the instance it was saved with, if any
    if (
        isinstance(room, Room)
        and getattr(room, "_creation_uncommitted", False)
        and room.pk == member.room_id
        and room._state.db == db
    ):
        return  # saved in the transaction that creates its room: sent with the room
    enqueue_on_commit(db, tasks.create_member, member.pk, db)


def schedule_member_update(member: Member) -> None:
    from .. import tasks

    db = member._state.db or "default"
    enqueue_on_commit(db, tasks.update_member, member.pk, db)
