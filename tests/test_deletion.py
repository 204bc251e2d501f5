"""Removing people and rooms: what a delete owes Pagecall, decided from the rows as the deleting
transaction sees them, also while a worker is creating the room or adding the member.

Tasks run eagerly; where a worker must be busy during the delete, it runs in a thread of its own
with the emulator holding its request back, while the test deletes on its own connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections, transaction

from django_pagecall import sync
from django_pagecall.emulator import Emulator
from django_pagecall.models import Member, PendingAction, Room, SyncState
from tests.conftest import requires_server_database, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SLOW = 0.6  # seconds the emulator holds a request back


def on_pagecall(emu: Emulator, room: Room) -> set[str]:
    room.refresh_from_db()
    return {m["user_id"] for m in emu.members(room.pagecall_id or "")}


def puts(emu: Emulator) -> list[dict[str, Any]]:
    return [
        r
        for r in emu.requests
        if r["method"] == "PUT" and r["route"] == "/rooms/{room_id}/members/{member_id}"
    ]


def in_a_thread(func: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    requires_server_database()  # SQLite's shared in-memory database locks whole tables
    errors: list[BaseException] = []

    def run() -> None:
        try:
            func()
        except BaseException as exc:  # the test reads it
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def joined(thread: threading.Thread, errors: list[BaseException]) -> None:
    thread.join(10)
    assert not thread.is_alive()
    assert errors == []


def test_deleting_the_instance_that_added_a_member_blocks_them(pagecall_emulator: Emulator) -> None:
    room = Room.objects.create(name="Private", type="private")
    member = Member.objects.create(room=room, user_id="leaver")  # added by the (eager) task
    assert Member.objects.get(pk=member.pk).sync_state == SyncState.SYNCED
    assert member.sync_state == SyncState.PENDING  # what this instance still says
    member.delete()
    assert on_pagecall(pagecall_emulator, room) == set()
    assert PendingAction.objects.count() == 0  # sent and forgotten


def test_deleting_a_member_that_was_never_sent_owes_nothing(pagecall_emulator: Emulator) -> None:
    room = Room.objects.create(name="Private", type="private")
    room.refresh_from_db()
    Member.objects.bulk_create([Member(room=room, user_id="never")])  # no task: stays pending
    Member.objects.get(user_id="never").delete()
    assert puts(pagecall_emulator) == []
    assert PendingAction.objects.count() == 0


def test_a_member_deleted_while_the_room_is_created_with_them_is_blocked_once_it_is(
    pagecall_emulator: Emulator,
) -> None:
    with transaction.atomic():
        Room.objects.bulk_create([Room(name="Racing", type="private")])  # the test sends it
        room = Room.objects.get()
        Member.objects.bulk_create(
            [Member(room=room, user_id="stays"), Member(room=room, user_id="goes")]
        )
    pagecall_emulator.inject("POST", "/rooms", delay=SLOW)
    worker = in_a_thread(lambda: sync.create_room(room.pk))
    wait_for(lambda: pagecall_emulator.faults == [])  # the POST, with both, is at Pagecall
    Member.objects.get(user_id="goes").delete()  # a fresh instance, as the admin deletes
    joined(*worker)
    wait_for(lambda: not PendingAction.objects.exists())  # the block waited for the room's id
    assert Room.objects.get(pk=room.pk).sync_state == SyncState.SYNCED
    assert on_pagecall(pagecall_emulator, room) == {"stays"}


def test_a_member_deleted_while_being_added_is_blocked_after_the_add_lands(
    pagecall_emulator: Emulator,
) -> None:
    room = Room.objects.create(name="Private", type="private")
    room.refresh_from_db()
    Member.objects.bulk_create([Member(room=room, user_id="late")])  # no task: the test adds it
    member = Member.objects.get(user_id="late")
    pagecall_emulator.inject("POST", "/rooms/{room_id}/members", delay=SLOW)
    worker = in_a_thread(lambda: sync.create_member(member.pk))
    wait_for(lambda: pagecall_emulator.faults == [])  # the add is at Pagecall
    Member.objects.get(pk=member.pk).delete()  # its block may reach Pagecall before the add
    joined(*worker)
    assert on_pagecall(pagecall_emulator, room) == set()
    assert PendingAction.objects.count() == 0


def test_a_block_waiting_for_a_room_that_is_sent_again_without_the_member_is_dropped(
    pagecall_emulator: Emulator,
) -> None:
    Room.objects.bulk_create([Room(name="Resent", type="private")])
    room = Room.objects.get()
    Room.objects.filter(pk=room.pk).update(sync_state=SyncState.CREATING, name_in_flight="Resent")
    Member.objects.bulk_create([Member(room=room, user_id="gone")])
    with transaction.atomic():
        Member.objects.get(user_id="gone").delete()
        # The block is owed, waiting: the delete's task runs once this commits.
        (action,) = PendingAction.objects.all()
        assert (action.room_pagecall_id, action.room_pk) == ("", room.pk)
        # Meanwhile the unknown outcome was resolved as "not created": sent again, without them.
        Room.objects.filter(pk=room.pk).update(sync_state=SyncState.PENDING)
    assert PendingAction.objects.count() == 0
    assert puts(pagecall_emulator) == []


def test_a_member_removed_before_it_was_sent_is_never_added(pagecall_emulator: Emulator) -> None:
    with transaction.atomic():
        Room.objects.bulk_create([Room(name="Removed early", type="private")])
        room = Room.objects.get()
        Member.objects.create(room=room, user_id="kept")
        Member.objects.create(room=room, user_id="never").remove()
    sync.create_room(room.pk)  # the task, or the sweep
    assert on_pagecall(pagecall_emulator, room) == {"kept"}
    assert [r["route"] for r in pagecall_emulator.requests if r["method"] == "POST"] == [
        "/users",
        "/rooms",
    ]
    never = Member.objects.get(user_id="never")
    assert (never.sync_state, never.is_blocked, never.needs_update) == (
        SyncState.SYNCED,
        True,
        False,
    )
    assert sync.pending_work() == []


def test_deleting_a_room_from_an_instance_loaded_before_its_id_was_stored_deletes_it_there(
    pagecall_emulator: Emulator, settings: Any
) -> None:
    settings.PAGECALL = {**settings.PAGECALL, "DELETE_REMOTE_ROOMS": True}
    room = Room.objects.create(name="Short-lived")  # created by the (eager) task
    assert room.pagecall_id is None  # this instance predates the id
    assert len(pagecall_emulator.rooms) == 1
    room.delete()
    assert pagecall_emulator.rooms == {}
    assert PendingAction.objects.count() == 0
