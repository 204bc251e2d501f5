"""The sweep: everything that should have reached Pagecall and has not, run inline."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from ..exceptions import (
    PagecallError,
)
from ..models import Member, PendingAction, Room, SyncState
from .base import (
    RetryLater,
)
from .members import create_member, run_action, update_member
from .rooms import create_room, update_room

logger = logging.getLogger("django_pagecall.sync")


@dataclass
class SweepResult:
    done: int = 0
    retry: int = 0
    errors: list[str] = field(default_factory=list)


def pending_work(using: str = "default") -> list[tuple[str, int]]:
    """Everything that should reach Pagecall and has not: (function name, primary key)."""
    now = timezone.now()
    stuck = Q(sync_state=SyncState.PENDING) | Q(sync_state=SyncState.CREATING, lease_until__lte=now)
    work: list[tuple[str, int]] = []
    work += [
        ("create_room", pk)
        for pk in Room.objects.using(using).filter(stuck).values_list("pk", flat=True)
    ]
    work += [
        ("update_room", pk)
        for pk in Room.objects.using(using)
        .filter(sync_state=SyncState.SYNCED, needs_update=True)
        .values_list("pk", flat=True)
    ]
    work += [
        ("create_member", pk)
        for pk in Member.objects.using(using)
        .filter(stuck, room__pagecall_id__isnull=False)
        .values_list("pk", flat=True)
    ]
    work += [
        ("run_action", pk) for pk in PendingAction.objects.using(using).values_list("pk", flat=True)
    ]
    work += [
        ("update_member", pk)
        for pk in Member.objects.using(using)
        .filter(sync_state=SyncState.SYNCED, needs_update=True)
        .values_list("pk", flat=True)
    ]
    return work


def run(name: str, pk: int, using: str = "default") -> bool:
    """Run one unit of work inline; True when it is done, False when it wants a retry."""
    func = {
        "create_room": create_room,
        "update_room": update_room,
        "create_member": create_member,
        "update_member": update_member,
        "run_action": run_action,
    }[name]
    try:
        func(pk, using)
    except RetryLater as exc:
        logger.info("%s(%s) will be retried: %s", name, pk, exc)
        return False
    return True


def sweep(
    using: str = "default", progress: Callable[[str, int], None] | None = None
) -> SweepResult:
    """Run every unit of :func:`pending_work` inline (``pagecall_sync`` and the periodic task)."""
    result = SweepResult()
    for name, pk in pending_work(using):
        try:
            ok = run(name, pk, using)
        except PagecallError as exc:  # e.g. refresh failures: counted, the sweep goes on
            result.errors.append(f"{name}({pk}): {exc}")
            ok = False
        if ok:
            result.done += 1
        else:
            result.retry += 1
        if progress is not None:
            progress(name, pk)
    return result
