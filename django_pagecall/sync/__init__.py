"""Turning local rows into Pagecall calls, and Pagecall's answers back into rows.

This module owns the state machine that makes every task safe to run twice:

``pending`` --claim (compare-and-set, committed)--> ``creating`` --POST--> ``synced``
                                                                  \\-> ``failed`` (4xx, or too many attempts)

* A request that never left (:class:`PagecallTransientError`) puts the row
  back to ``pending`` and asks for a retry.
* An ambiguous outcome (:class:`PagecallAmbiguousError`) leaves the row
  ``creating`` with its lease expired; whoever runs next looks the room up by
  exact name among rooms created since the attempt began, adopts it if found,
  and only goes back to ``pending`` once it is known to be absent. A worker
  killed mid-call leaves the same state behind (its lease runs out).
* No database lock is held across a network call.

Tasks (:mod:`django_pagecall.tasks`) are thin wrappers around the functions
here; ``manage.py pagecall_sync`` calls them inline.

The package's modules: :mod:`.base` (what they share), :mod:`.rooms`, :mod:`.members`,
:mod:`.users` and :mod:`.sweep`, and :mod:`.queries` (a room's creation in two
round trips, calls of PL/pgSQL functions and a procedure, on PostgreSQL). Everything callers
use is importable from here.
"""

from .base import (
    RetryLater,
    forget_room,
    lease_seconds,
    may_have_happened,
    room_deleted,
    schedule_deleted_member_block,
    schedule_member_block,
    schedule_member_creation,
    schedule_member_update,
    schedule_remote_room_deletion,
    schedule_room_creation,
    schedule_room_update,
)
from .members import create_member, run_action, update_member
from .rooms import create_room, refresh_room, retry_room, update_room
from .sweep import SweepResult, pending_work, run, sweep
from .users import access_token_for, register_user, user_id_for

__all__ = [
    "RetryLater",
    "SweepResult",
    "access_token_for",
    "create_member",
    "create_room",
    "forget_room",
    "lease_seconds",
    "may_have_happened",
    "pending_work",
    "refresh_room",
    "register_user",
    "retry_room",
    "room_deleted",
    "run",
    "run_action",
    "schedule_deleted_member_block",
    "schedule_member_block",
    "schedule_member_creation",
    "schedule_member_update",
    "schedule_remote_room_deletion",
    "schedule_room_creation",
    "schedule_room_update",
    "sweep",
    "update_member",
    "update_room",
    "user_id_for",
]
