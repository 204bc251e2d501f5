"""The sweep (``pagecall_sync`` and the periodic task ``django_pagecall.tasks.sync``), on the fast
layer: what it counts as sent, failed or left to retry.

Pagecall is the emulator over real HTTP.
"""

from __future__ import annotations

import time
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_pagecall import sync, tasks
from django_pagecall.emulator import Emulator
from django_pagecall.models import Member, PendingAction, Room, SyncState

pytestmark = pytest.mark.django_db(transaction=True)

MEMBER_ROUTE = "/rooms/{room_id}/members/{member_id}"


def pending_room(name: str = "Pending", **fields: Any) -> Room:
    """A room that is pending and has no task queued (``bulk_create`` does not call ``save``)."""
    (room,) = Room.objects.bulk_create([Room(name=name, **fields)])
    return room


def synced_room(name: str = "Synced", **fields: Any) -> Room:
    """A room on Pagecall (tasks run eagerly in the fast layer)."""
    room = Room.objects.create(name=name, **fields)
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    return room


def pagecall_sync(*args: str) -> tuple[str, str]:
    """Run the command; its stdout and stderr."""
    out, err = StringIO(), StringIO()
    call_command("pagecall_sync", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# -- 1. sent, failed or to retry ----------------------------------------------------------------


def test_a_refused_room_is_counted_failed_and_the_command_exits_with_status_1(
    pagecall_emulator: Emulator,
) -> None:
    room = pending_room()
    pagecall_emulator.inject("POST", "/rooms", status=400, times=1, body={"message": "no"})
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("pagecall_sync", stdout=out, stderr=err)
    assert raised.value.returncode == 1
    assert "0 sent, 1 failed, 0 to retry" in out.getvalue()
    assert "sync_error" in str(raised.value)  # says where to look
    room.refresh_from_db()
    assert room.sync_state == SyncState.FAILED
    assert "no" in room.sync_error


def test_a_transient_failure_is_left_to_retry_and_the_command_exits_with_status_1(
    pagecall_emulator: Emulator,
) -> None:
    room = pending_room()
    pagecall_emulator.inject("POST", "/rooms", status=503, times=1)
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("pagecall_sync", stdout=out, stderr=err)
    assert raised.value.returncode == 1
    assert "0 sent, 0 failed, 1 to retry" in out.getvalue()
    assert "again" in str(raised.value)
    room.refresh_from_db()
    assert room.sync_state == SyncState.CREATING  # a 503 may have created it: looked up first

    time.sleep(1.0)  # past AMBIGUOUS_GRACE (0.3 s in the test settings)
    out, _ = pagecall_sync()  # looked up, not there, sent: status 0
    assert "1 sent, 0 failed, 0 to retry" in out
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED


def test_nothing_to_send_is_success(pagecall_emulator: Emulator) -> None:
    synced_room()
    out, _ = pagecall_sync()
    assert "Nothing to send" in out


def test_run_reports_what_the_row_records(pagecall_emulator: Emulator, settings: Any) -> None:
    refused = pending_room("Refused")
    pagecall_emulator.inject("POST", "/rooms", status=400, times=1, body={"message": "no"})
    assert sync.run("create_room", refused.pk) == "failed"

    settings.PAGECALL = {**settings.PAGECALL, "MAX_ATTEMPTS": 2}
    given_up = pending_room("Given up", sync_attempts=2)
    assert sync.run("create_room", given_up.pk) == "failed"
    given_up.refresh_from_db()
    assert "gave up" in given_up.sync_error

    pagecall_emulator.inject("POST", "/rooms", status=503, times=1)
    later = pending_room("Later")
    assert sync.run("create_room", later.pk) == "retry"
    time.sleep(1.0)  # past AMBIGUOUS_GRACE (0.3 s in the test settings)
    assert sync.run("create_room", later.pk) == "sent"

    room = synced_room()
    Room.objects.filter(pk=room.pk).update(name="Renamed", needs_update=True)
    pagecall_emulator.inject("PUT", "/rooms/{id}", status=400, times=1, body={"message": "locked"})
    assert sync.run("update_room", room.pk) == "failed"
    Room.objects.filter(pk=room.pk).update(name="Renamed again", needs_update=True)
    assert sync.run("update_room", room.pk) == "sent"

    (member,) = Member.objects.bulk_create([Member(room=room, user_id="m")])
    pagecall_emulator.inject("POST", "/rooms/{room_id}/members", status=400, times=1)
    assert sync.run("create_member", member.pk) == "failed"

    kept = Member.objects.create(room=room, user_id="kept")
    Member.objects.filter(pk=kept.pk).update(name="Kept", needs_update=True)
    pagecall_emulator.inject("PUT", MEMBER_ROUTE, status=400, times=1, body={"message": "bad"})
    assert sync.run("update_member", kept.pk) == "failed"
    kept.refresh_from_db()
    assert (kept.needs_update, "bad" in kept.sync_error) == (False, True)

    # A call owed for a deleted row is settled once Pagecall has answered, even with a refusal
    # (what it refuses to block or delete is gone there already): the row is deleted.
    action = PendingAction.objects.create(
        kind=PendingAction.Kind.BLOCK_MEMBER, room_pagecall_id=room.pagecall_id, user_id="kept"
    )
    pagecall_emulator.inject("PUT", MEMBER_ROUTE, status=503, times=1)
    assert sync.run("run_action", action.pk) == "retry"
    pagecall_emulator.inject("PUT", MEMBER_ROUTE, status=400, times=1)
    assert sync.run("run_action", action.pk) == "sent"
    assert not PendingAction.objects.filter(pk=action.pk).exists()


def test_the_periodic_task_counts_failures_apart(pagecall_emulator: Emulator) -> None:
    room = synced_room()
    (member,) = Member.objects.bulk_create([Member(room=room, user_id="refused")])
    pending_room("Sent")
    pagecall_emulator.inject("POST", "/rooms/{room_id}/members", status=400, times=1)
    assert tasks.sync() == {"done": 1, "failed": 1, "retry": 0}
    member.refresh_from_db()
    assert member.sync_state == SyncState.FAILED
    assert tasks.sync() == {"done": 0, "failed": 0, "retry": 0}
