"""The sweep (``pagecall_sync`` and the periodic task ``django_pagecall.tasks.sync``), on the fast
layer: what it counts as sent, failed or left to retry, the follow-ups it runs itself while the
broker is down, and how a save behaves once the broker has refused a task.
"""

from __future__ import annotations

import importlib
import logging
import re
import time
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from django_pagecall import sync, tasks
from django_pagecall.emulator import Emulator
from django_pagecall.models import Member, PendingAction, Room, SyncState
from django_pagecall.sync import publishing

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


def progress_lines(err: str) -> list[tuple[int, int]]:
    """The progress bar's ``count/total`` lines (not a terminal: one line per step shown)."""
    return [(int(a), int(b)) for a, b in re.findall(r"^pagecall_sync (\d+)/(\d+)$", err, re.M)]


@pytest.fixture
def broker_down() -> Iterator[None]:
    """Tasks go through the broker (not eagerly), and the broker is a port nothing listens on:
    publishing fails for real."""
    from tests.celery_app import app
    from tests.conftest import use_broker
    from tests.redis_server import free_port

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    previous = use_broker(f"redis://127.0.0.1:{free_port()}/0")
    yield
    use_broker(previous)
    app.conf.task_always_eager = eager


def not_queued(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Log records of tasks that were not published (attempted and failed, or not attempted)."""
    return [
        r
        for r in caplog.records
        if r.name == "django_pagecall.sync" and "stays pending" in r.getMessage()
    ]


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

    time.sleep(1.0)  # past AMBIGUOUS_GRACE (0.3 s in tests.timing)
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
    time.sleep(1.0)  # past AMBIGUOUS_GRACE (0.3 s in tests.timing)
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
    assert tasks.sync() == {"done": 1, "failed": 1, "retry": 0, "pruned": 0}
    member.refresh_from_db()
    assert member.sync_state == SyncState.FAILED
    assert tasks.sync() == {"done": 0, "failed": 0, "retry": 0, "pruned": 0}


# -- 2. follow-ups, run in the same sweep ------------------------------------------------------


@pytest.mark.usefixtures("broker_down")
def test_follow_ups_are_sent_by_the_same_sweep_while_the_broker_is_down(
    pagecall_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.celery_app import app

    app.conf.task_always_eager = True  # the room is created through its task, then the broker dies
    room = synced_room()
    app.conf.task_always_eager = False
    # Members whose display name goes in a follow-up update, once each is added.
    Member.objects.bulk_create(
        [Member(room=room, user_id=f"u{i}", name=f"Person {i}") for i in range(3)]
    )
    # A room closed before it was created: its creation is followed by the update that closes it.
    closed = pending_room("Closed early", terminate_requested=True)

    with caplog.at_level(logging.DEBUG, logger="django_pagecall"):
        out, err = pagecall_sync()

    # Pass 1: the room and the 3 members; pass 2: closing the room and the 3 names.
    assert "8 sent, 0 failed, 0 to retry" in out
    on_pagecall = pagecall_emulator.snapshot()["members"]
    assert {m["user_id"]: m["name"] for m in on_pagecall if m["room_id"] == room.pagecall_id} == {
        f"u{i}": f"Person {i}" for i in range(3)
    }
    assert Member.objects.filter(needs_update=True).count() == 0
    closed.refresh_from_db()
    assert closed.terminated_at is not None
    assert "terminated_at" in pagecall_emulator.rooms[closed.pagecall_id or ""]
    # Nothing was published while the sweep ran (the broker is down: it would have failed).
    assert [r for r in caplog.records if r.getMessage().startswith("Could not queue")] == []
    assert sync.pending_work() == []
    # The progress bar counts what each pass added, and ends at the number of units run.
    lines = progress_lines(err)
    assert lines[-1] == (8, 8)
    assert all(count <= total for count, total in lines)
    assert [count for count, _ in lines] == sorted(count for count, _ in lines)


def test_a_unit_that_asks_for_a_retry_is_not_run_again_in_the_same_sweep(
    pagecall_emulator: Emulator,
) -> None:
    room = synced_room()
    (member,) = Member.objects.bulk_create([Member(room=room, user_id="u", name="Named")])
    pagecall_emulator.inject("PUT", MEMBER_ROUTE, status=503, times=None)
    result = sync.sweep()
    assert (result.done, result.failed, result.retry) == (1, 0, 1)
    assert len([r for r in pagecall_emulator.requests if r["route"] == MEMBER_ROUTE]) == 1
    member.refresh_from_db()
    assert (member.sync_state, member.needs_update) == (SyncState.SYNCED, True)


def test_passes_are_bounded(pagecall_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    sweep_module = importlib.import_module("django_pagecall.sync.sweep")

    # Every unit run finds a new one: the sweep stops after its last pass and counts what is
    # left for the next sweep as to retry.
    found = iter(range(1000, 2000))
    monkeypatch.setattr(
        sweep_module, "pending_work", lambda using, workspace: [("run_action", next(found))]
    )
    result = sync.sweep(passes=3)
    assert (result.done, result.failed, result.retry) == (3, 0, 1)


# -- 4. a pause after the broker refused a task ------------------------------------------------


@pytest.mark.usefixtures("broker_down")
def test_after_a_failed_publish_the_process_leaves_the_broker_alone_for_a_while(
    pagecall_emulator: Emulator, caplog: pytest.LogCaptureFixture, settings: Any
) -> None:
    from tests.celery_app import app

    app.conf.task_always_eager = True
    room = synced_room()
    members = [Member.objects.create(room=room, user_id=f"u{i}") for i in range(5)]
    app.conf.task_always_eager = False

    # Each save queues update_member once the transaction commits.
    with caplog.at_level(logging.INFO, logger="django_pagecall"), transaction.atomic():
        for member in members:
            member.name = f"Now {member.user_id}"
            member.save()

    # One publish was attempted, and failed; the other four were not attempted.
    attempted = [r for r in caplog.records if r.getMessage().startswith("Could not queue")]
    assert len(attempted) == 1
    skipped = not_queued(caplog)
    assert len(skipped) == 5
    for record, member in zip(skipped, members, strict=True):
        message = record.getMessage()
        assert "\n" not in message
        assert f"update_member({member.pk}, 'default')" in message
        assert "pagecall_sync" in message
    assert Member.objects.filter(needs_update=True).count() == 5
    assert calls_to(pagecall_emulator, MEMBER_ROUTE) == 0

    out, _ = pagecall_sync()  # the sweep sends them all
    assert "5 sent, 0 failed, 0 to retry" in out


@pytest.mark.usefixtures("broker_down")
def test_the_broker_is_tried_again_once_the_pause_is_over(
    pagecall_emulator: Emulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publishing, "PUBLISH_TIMEOUT", 0.2)
    with caplog.at_level(logging.INFO, logger="django_pagecall"):
        Room.objects.create(name="First")
        time.sleep(0.5)  # longer than the pause
        Room.objects.create(name="Second")
    attempted = [r for r in caplog.records if r.getMessage().startswith("Could not queue")]
    assert len(attempted) == 2  # both were attempted
    assert len(not_queued(caplog)) == 2


def calls_to(emu: Emulator, route: str) -> int:
    return len([r for r in emu.requests if r["route"] == route])
