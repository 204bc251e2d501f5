"""Celery tasks: thin wrappers that take primary keys and call :mod:`django_pagecall.sync`.

Each is safe to run twice. Transient failures are retried with backoff up to
``PAGECALL["MAX_ATTEMPTS"]``; what is left is sent by the periodic :func:`sync` sweep
(docs/celery.md).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from celery import Task, shared_task

from . import sync as syncing
from .conf import pagecall_settings

logger = logging.getLogger(__name__)

#: ``max_retries=None``: Celery's own limit (3) would cut retries short; ``_retrying`` counts
#: against ``PAGECALL["MAX_ATTEMPTS"]`` itself.
TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "ignore_result": True,
    "max_retries": None,
}


def backoff(retries: int) -> float:
    """Seconds before retry number ``retries + 1``: exponential, capped, with full jitter."""
    ceiling = min(
        float(pagecall_settings.RETRY_BACKOFF_MAX),
        float(pagecall_settings.RETRY_BACKOFF) * 2 ** min(retries, 30),
    )
    return max(random.uniform(0, ceiling), 0.05)


def _retrying(task: Task[Any, Any], func: Callable[..., None], *args: Any) -> None:
    try:
        func(*args)
    except syncing.RetryLater as exc:
        countdown = max(backoff(task.request.retries), exc.countdown or 0.0)
        if task.request.retries >= pagecall_settings.MAX_ATTEMPTS:
            logger.warning(
                "%s%r: retries used up; the periodic sync will pick it up", task.name, args
            )
            return
        if task.request.is_eager:
            # Eager mode (tests) retries at once; sleeping keeps the countdown's meaning.
            time.sleep(countdown)
        raise task.retry(exc=exc, countdown=countdown) from exc


@shared_task(name="django_pagecall.tasks.create_room", **TASK_OPTIONS)
def create_room(self: Task[Any, Any], room_pk: int, using: str = "default") -> None:
    _retrying(self, syncing.create_room, room_pk, using)


@shared_task(name="django_pagecall.tasks.update_room", **TASK_OPTIONS)
def update_room(self: Task[Any, Any], room_pk: int, using: str = "default") -> None:
    _retrying(self, syncing.update_room, room_pk, using)


@shared_task(name="django_pagecall.tasks.create_member", **TASK_OPTIONS)
def create_member(self: Task[Any, Any], member_pk: int, using: str = "default") -> None:
    _retrying(self, syncing.create_member, member_pk, using)


@shared_task(name="django_pagecall.tasks.update_member", **TASK_OPTIONS)
def update_member(self: Task[Any, Any], member_pk: int, using: str = "default") -> None:
    _retrying(self, syncing.update_member, member_pk, using)


@shared_task(name="django_pagecall.tasks.run_action", **TASK_OPTIONS)
def run_action(self: Task[Any, Any], action_pk: int, using: str = "default") -> None:
    """A call owed for a deleted row: blocking a removed member, deleting a room."""
    _retrying(self, syncing.run_action, action_pk, using)


@shared_task(name="django_pagecall.tasks.refresh_room", **TASK_OPTIONS)
def refresh_room(self: Task[Any, Any], room_pk: int, using: str = "default") -> None:
    """Read a room back from Pagecall (``GET /rooms/{id}``): queued when a meeting ends."""
    from .sync.mirror import refresh

    _retrying(self, refresh, room_pk, using)


@shared_task(name="django_pagecall.tasks.count_usage", ignore_result=True)
def count_usage(room_pk: int, using: str = "default") -> None:
    """Count a room's sessions and meetings in the monthly usage: queued when a meeting ends."""
    from .usage import count_room

    count_room(room_pk, using)


@shared_task(name="django_pagecall.tasks.sync", ignore_result=True)
def sync(using: str | None = None, workspace: str | None = None) -> dict[str, int]:
    """The periodic sweep: send every room and member that is pending or stuck, count the
    usage of rooms whose sessions changed with no meeting going on, then delete the processed
    webhook deliveries older than ``DELIVERY_RETENTION_DAYS``.

    Schedule it with Celery beat (one beat only), e.g. every minute. It sweeps every database
    alias the app's tables are migrated on (``using``: that alias only), and returns how many
    units were sent (``done``), refused or given up on (``failed``: the rows keep the error),
    left to retry, and how many deliveries were deleted (``pruned``). ``workspace``: the rooms
    of that workspace only (default: every room).
    """
    from .sync.sweep import aliases
    from .usage import count_stale
    from .webhooks.retention import prune_deliveries

    total = syncing.SweepResult()
    pruned = 0
    for alias in aliases(using):
        result = syncing.sweep(alias, workspace=workspace)
        logger.info(
            "Pagecall sync of %r: %s done, %s failed, %s to retry",
            alias,
            result.done,
            result.failed,
            result.retry,
        )
        total.add(result)
        counted = count_stale(alias)
        if counted:
            logger.info("Pagecall sync of %r: counted the usage of %s room(s)", alias, counted)
        pruned += prune_deliveries(alias)
    if pruned:
        logger.info("Pagecall sync: deleted %s old webhook deliveries", pruned)
    return {"done": total.done, "failed": total.failed, "retry": total.retry, "pruned": pruned}
