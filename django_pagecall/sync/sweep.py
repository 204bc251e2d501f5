"""The sweep: everything that should have reached Pagecall and has not, run inline."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, router
from django.db.models import Q
from django.utils import timezone

from ..exceptions import PagecallError
from ..models import Member, PendingAction, Room, SyncState
from .deletion import run_action
from .members import create_member, update_member
from .outcomes import RetryLater
from .publishing import inline_sweep
from .rooms import create_room, update_room

logger = logging.getLogger("django_pagecall.sync")


class Outcome(StrEnum):
    """How one unit of work ended, as its row records it."""

    #: On Pagecall (or nothing left to send: the row is gone).
    SENT = "sent"
    #: Pagecall refused it, or the app gave up on it; the error is kept on the row.
    FAILED = "failed"
    #: Not done yet: a later sweep, or the unit's own task, sends it.
    RETRY = "retry"


@dataclass
class SweepResult:
    done: int = 0
    failed: int = 0
    retry: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.done + self.failed + self.retry

    def count(self, outcome: Outcome) -> None:
        if outcome == Outcome.SENT:
            self.done += 1
        elif outcome == Outcome.FAILED:
            self.failed += 1
        else:
            self.retry += 1

    def add(self, other: SweepResult) -> None:
        """Count in another sweep's units (one alias's, when several are swept)."""
        self.done += other.done
        self.failed += other.failed
        self.retry += other.retry
        self.errors += other.errors


@dataclass(frozen=True)
class SweepStep:
    """What the sweep's ``progress`` callback gets after each unit: the unit, how it ended, and
    how many units the sweep has run (``count``) of those it has found so far (``total``)."""

    name: str
    pk: int
    outcome: Outcome
    count: int
    total: int


def aliases(using: str | None = None) -> list[str]:
    """The database aliases a sweep covers: ``using`` alone when given, else every alias in
    ``settings.DATABASES`` on which the app's tables are migrated (the routers'
    ``allow_migrate``), since a row saved on any of them while the broker was down waits there."""
    if using is not None:
        return [using]
    return [alias for alias in settings.DATABASES if router.allow_migrate_model(alias, Room)]


def pending_work(using: str = "default", workspace: str | None = None) -> list[tuple[str, int]]:
    """Everything that should reach Pagecall and has not: (function name, primary key); of the
    rooms of one workspace when ``workspace`` is given, else of every room."""
    now = timezone.now()
    stuck = Q(sync_state=SyncState.PENDING) | Q(sync_state=SyncState.CREATING, lease_until__lte=now)
    of_rooms = Q() if workspace is None else Q(workspace=workspace)
    of_members = Q() if workspace is None else Q(room__workspace=workspace)
    rooms = Room.objects.using(using).filter(of_rooms)
    members = Member.objects.using(using).filter(of_members)
    work: list[tuple[str, int]] = []
    work += [("create_room", pk) for pk in rooms.filter(stuck).values_list("pk", flat=True)]
    work += [
        ("update_room", pk)
        for pk in rooms.filter(sync_state=SyncState.SYNCED, needs_update=True).values_list(
            "pk", flat=True
        )
    ]
    work += [
        ("create_member", pk)
        for pk in members.filter(stuck, room__pagecall_id__isnull=False).values_list(
            "pk", flat=True
        )
    ]
    work += [
        ("run_action", pk)
        for pk in PendingAction.objects.using(using).filter(of_rooms).values_list("pk", flat=True)
    ]
    work += [
        ("update_member", pk)
        for pk in members.filter(sync_state=SyncState.SYNCED, needs_update=True).values_list(
            "pk", flat=True
        )
    ]
    return work


def run(name: str, pk: int, using: str = "default") -> Outcome:
    """Run one unit of work inline and say how it ended, as the row records it afterwards.

    The functions return normally whether Pagecall took the call or refused it, so the row is
    read once they return (here, not in the tasks, which need no answer):

    * ``create_room``, ``create_member``: ``synced`` (or the row gone) is sent, ``failed`` (a
      refusal, or the app gave up after ``MAX_ATTEMPTS``) is failed, anything else (a claim
      lost to another worker) is to retry;
    * ``update_room``, ``update_member``: ``needs_update`` cleared is sent, or failed when a
      refusal was recorded in ``sync_error``; still set (changed while the update was in
      flight: the newer values are yet to be sent) is to retry;
    * ``run_action``: the call owed for a deleted row is settled once Pagecall has answered,
      even with a refusal (what it refuses to block or delete is not there: nothing more is
      owed, and the refusal is logged), and its row is then deleted: sent; a row still there is
      to retry.

    :class:`RetryLater` (a transient failure, a live claim) is to retry.
    """
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
        return Outcome.RETRY
    return _recorded_outcome(name, pk, using)


def _recorded_outcome(name: str, pk: int, using: str) -> Outcome:
    if name in ("create_room", "create_member"):
        created = Room if name == "create_room" else Member
        state = created.objects.using(using).filter(pk=pk).values_list("sync_state", flat=True)
        match state.first():
            case None | SyncState.SYNCED:
                return Outcome.SENT
            case SyncState.FAILED:
                return Outcome.FAILED
            case _:
                return Outcome.RETRY
    if name in ("update_room", "update_member"):
        updated = Room if name == "update_room" else Member
        row = (
            updated.objects.using(using).filter(pk=pk).values_list("needs_update", "sync_error")
        ).first()
        if row is None:
            return Outcome.SENT
        needs_update, error = row
        if needs_update:
            return Outcome.RETRY
        return Outcome.FAILED if error else Outcome.SENT
    owed = PendingAction.objects.using(using).filter(pk=pk).exists()
    return Outcome.RETRY if owed else Outcome.SENT


#: Passes over :func:`pending_work` in one sweep: the work found first, then what running it
#: led to (a member's display name after the member, a room's update after its creation...).
MAX_PASSES = 5


def sweep(
    using: str = "default",
    progress: Callable[[SweepStep], None] | None = None,
    *,
    passes: int = MAX_PASSES,
    workspace: str | None = None,
) -> SweepResult:
    """Run every unit of :func:`pending_work` inline (``pagecall_sync`` and the periodic task).

    Nothing is published to the broker meanwhile (which may be what is down): each pass runs
    the units the rows show that this sweep has not run yet, until none is left or ``passes``
    have run. A unit that asked for a retry is not run again in the same sweep; units still
    found after the last pass are counted as to retry. ``workspace``: the rooms of that one
    only (default: every room). ``progress`` is called after each unit
    with a :class:`SweepStep`, whose ``total`` grows as passes find more.
    """
    result = SweepResult()
    seen: set[tuple[str, int]] = set()
    with inline_sweep():
        for _ in range(passes):
            work = [unit for unit in pending_work(using, workspace) if unit not in seen]
            if not work:
                break
            seen.update(work)
            total = len(seen)
            for name, pk in work:
                try:
                    outcome = run(name, pk, using)
                except (PagecallError, ImproperlyConfigured, DatabaseError) as exc:
                    # Counted and shown; one unit that cannot be done never stops the rest.
                    result.errors.append(f"{name}({pk}): {exc}")
                    outcome = Outcome.RETRY
                result.count(outcome)
                if progress is not None:
                    progress(SweepStep(name, pk, outcome, result.total, total))
        else:
            left = [unit for unit in pending_work(using, workspace) if unit not in seen]
            if left:
                logger.warning(
                    "Sweep of %r: %s unit(s) still found after %s passes, left to the next sweep",
                    using,
                    len(left),
                    passes,
                )
                result.retry += len(left)
    return result
