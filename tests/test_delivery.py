"""Delivery for real: PostgreSQL, a Redis broker, a Celery worker, and the emulator over HTTP.

Each test starts its own redis-server on a free port (so stopping it harms nobody) and a
worker: a thread where that is enough, a process where the test must SIGKILL it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction

from django_pagecall import signals
from django_pagecall.emulator import Emulator
from django_pagecall.models import Member, Room, SyncState
from tests.conftest import WorkerProcess, wait_for
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def room_posts(emu: Emulator) -> list[dict[str, Any]]:
    return [r for r in emu.requests if r["method"] == "POST" and r["route"] == "/rooms"]


def state_of(room: Room) -> str:
    room.refresh_from_db()
    return room.sync_state


def settled(room: Room, timeout: float = 30.0) -> Room:
    wait_for(lambda: state_of(room) in (SyncState.SYNCED, SyncState.FAILED), timeout=timeout)
    return room


@pytest.fixture
def created_signals() -> Iterator[list[tuple[str, Room]]]:
    seen: list[tuple[str, Room]] = []

    def on_created(sender: Any, room: Room, **kwargs: Any) -> None:
        seen.append(("created", room))

    def on_failed(sender: Any, room: Room, error: str, **kwargs: Any) -> None:
        seen.append(("failed", room))

    signals.room_created.connect(on_created)
    signals.room_creation_failed.connect(on_failed)
    yield seen
    signals.room_created.disconnect(on_created)
    signals.room_creation_failed.disconnect(on_failed)


@pytest.mark.usefixtures("celery_worker_thread")
class TestWithAWorker:
    def test_a_save_reaches_pagecall_once_with_its_members(
        self, pagecall_emulator: Emulator, created_signals: list[tuple[str, Room]]
    ) -> None:
        with transaction.atomic():
            room = Room.objects.create(name="Through the broker", type="public")
            Member.objects.create(room=room, user_id="u1", type="host")
            Member.objects.create(room=room, user_id="u2")
        settled(room)
        assert room.sync_state == SyncState.SYNCED
        (post,) = room_posts(pagecall_emulator)
        assert [m["user_id"] for m in post["body"]["members"]] == ["u1", "u2"]
        assert room.pagecall_id in pagecall_emulator.rooms
        assert [(kind, r.pk) for kind, r in created_signals] == [("created", room.pk)]

    def test_a_rolled_back_save_sends_nothing(self, pagecall_emulator: Emulator) -> None:
        def save_then_fail() -> None:
            with transaction.atomic():
                Room.objects.create(name="Rolled back")
                raise RuntimeError

        with pytest.raises(RuntimeError):
            save_then_fail()
        # A room saved afterwards goes through the same queue: once it is done, the rolled
        # back one would have been too.
        marker = settled(Room.objects.create(name="After"))
        assert marker.sync_state == SyncState.SYNCED
        assert [p["body"]["name"] for p in room_posts(pagecall_emulator)] == ["After"]

    def test_two_5xx_then_success_is_one_room(self, pagecall_emulator: Emulator) -> None:
        pagecall_emulator.inject("POST", "/rooms", status=503, times=2)
        room = settled(Room.objects.create(name="Flaky"))
        assert room.sync_state == SyncState.SYNCED
        assert [p["status"] for p in room_posts(pagecall_emulator)] == [503, 503, 200]
        assert len(pagecall_emulator.rooms) == 1

    def test_created_then_dropped_is_one_room(self, pagecall_emulator: Emulator) -> None:
        pagecall_emulator.inject("POST", "/rooms", drop="after")
        room = settled(Room.objects.create(name="Dropped"))
        assert room.sync_state == SyncState.SYNCED
        assert list(pagecall_emulator.rooms) == [room.pagecall_id]
        assert len(room_posts(pagecall_emulator)) == 1

    def test_a_refusal_fails_once_and_stops(
        self, pagecall_emulator: Emulator, created_signals: list[tuple[str, Room]]
    ) -> None:
        pagecall_emulator.inject("POST", "/rooms", status=400, times=1, body={"message": "no"})
        room = settled(Room.objects.create(name="Refused"))
        assert room.sync_state == SyncState.FAILED
        marker = settled(Room.objects.create(name="Marker"))
        assert marker.sync_state == SyncState.SYNCED
        assert [p["body"]["name"] for p in room_posts(pagecall_emulator)] == ["Refused", "Marker"]
        assert [(kind, r.pk) for kind, r in created_signals] == [
            ("failed", room.pk),
            ("created", marker.pk),
        ]

    def test_a_member_added_later_is_added_to_the_room(self, pagecall_emulator: Emulator) -> None:
        room = settled(Room.objects.create(name="Later"))
        member = Member.objects.create(room=room, user_id="late")
        wait_for(lambda: Member.objects.get(pk=member.pk).sync_state == SyncState.SYNCED)
        assert "late" in {m["user_id"] for m in pagecall_emulator.members(room.pagecall_id or "")}


def test_broker_down_at_save_then_pagecall_sync(
    pagecall_emulator: Emulator, broker: RedisServer
) -> None:
    broker.stop()
    started = time.monotonic()
    room = Room.objects.create(name="Broker was down")  # must not hang (pytest-timeout guards)
    elapsed = time.monotonic() - started
    assert state_of(room) == SyncState.PENDING
    assert pagecall_emulator.requests == []
    print(f"save with the broker down took {elapsed:.2f}s")  # informative, never asserted

    broker.start()
    call_command("pagecall_sync")
    assert state_of(room) == SyncState.SYNCED
    assert len(room_posts(pagecall_emulator)) == 1
    assert len(pagecall_emulator.rooms) == 1


def test_worker_killed_mid_call_then_restarted(
    pagecall_emulator: Emulator,
    worker_process_factory: Callable[..., WorkerProcess],
) -> None:
    env = {"CELERY_VISIBILITY_TIMEOUT": "3"}
    first = worker_process_factory(pagecall_emulator.url, **env)
    first.start()
    # Pagecall takes its time: the worker is killed while waiting, and Pagecall then creates
    # the room anyway (the request had arrived).
    pagecall_emulator.inject("POST", "/rooms", delay=2.0)
    room = Room.objects.create(name="Killed")
    wait_for(lambda: state_of(room) == SyncState.CREATING, timeout=30)
    time.sleep(0.5)
    first.kill()
    wait_for(lambda: len(pagecall_emulator.rooms) == 1, timeout=10)
    assert state_of(room) == SyncState.CREATING  # nobody recorded the answer

    second = worker_process_factory(pagecall_emulator.url, **env)
    second.start()
    wait_for(lambda: state_of(room) == SyncState.SYNCED, timeout=60)
    assert list(pagecall_emulator.rooms) == [room.pagecall_id]
    assert len(room_posts(pagecall_emulator)) == 1, second.log()


def test_a_killed_pool_process_has_its_task_delivered_again(
    pagecall_emulator: Emulator,
    worker_process_factory: Callable[..., WorkerProcess],
) -> None:
    # A prefork worker whose pool process dies mid-task (the OOM killer, say): with
    # task_reject_on_worker_lost the task goes back to the broker and runs again; without it,
    # it would be acknowledged as failed and the room left to the sweep.
    worker = worker_process_factory(pagecall_emulator.url, pool="prefork")
    worker.start()
    pagecall_emulator.inject("POST", "/rooms", delay=2.0)
    room = Room.objects.create(name="Pool process killed")
    wait_for(lambda: state_of(room) == SyncState.CREATING, timeout=30)
    (child,) = wait_for(worker.pool_processes, timeout=10)
    os.kill(child, signal.SIGKILL)
    # No sweep runs here: only the redelivered task can settle the room.
    wait_for(lambda: state_of(room) == SyncState.SYNCED, timeout=90)
    assert list(pagecall_emulator.rooms) == [room.pagecall_id]
    assert len(room_posts(pagecall_emulator)) == 1, worker.log()
    assert worker.alive
