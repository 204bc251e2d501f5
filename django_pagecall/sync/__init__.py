"""Turning local rows into Pagecall calls, and Pagecall's answers back into rows.

:func:`create_room` is where a saved room becomes ``POST /rooms``; the tasks in
:mod:`django_pagecall.tasks` are thin wrappers around the functions here, and
``pagecall_sync`` runs them inline. docs/how-sync-works.md tells how it works.
"""

from .deletion import (
    forget_room,
    room_deleted,
    run_action,
    schedule_deleted_member_block,
    schedule_member_block,
    schedule_remote_room_deletion,
)
from .members import create_member, update_member
from .outcomes import RetryLater, lease_seconds, may_have_happened
from .rooms import create_room, refresh_room, retry_room, update_room
from .scheduling import (
    schedule_member_creation,
    schedule_member_update,
    schedule_room_creation,
    schedule_room_update,
)
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
