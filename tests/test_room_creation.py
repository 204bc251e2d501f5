"""Creating a room while other things happen to it (``sync.create_room``).

Tasks run eagerly; the room is created in a thread of its own while the test, on its own
database connection, does what a site or another worker would do during the ``POST /rooms``
(which the emulator holds back for a moment).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from django_pagecall import remote, signals, sync
from django_pagecall.emulator import Emulator
from django_pagecall.models import DeletedRoom, Member, Room, SyncState
from django_pagecall.sync import outcomes
from django_pagecall.sync import rooms as room_sync
from tests.conftest import at_most, requires_server_database, wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]

SLOW_POST = 0.6  # seconds the emulator holds ``POST /rooms`` back


def posts(emu: Emulator, route: str = "/rooms") -> list[dict[str, Any]]:
    return [r for r in emu.requests if r["method"] == "POST" and r["route"] == route]


@pytest.fixture
def created() -> Iterator[list[Room]]:
    """The rooms ``room_created`` was sent with, in order."""
    seen: list[Room] = []

    def receiver(sender: Any, room: Room, **kwargs: Any) -> None:
        seen.append(room)

    signals.room_created.connect(receiver, weak=False)
    yield seen
    signals.room_created.disconnect(receiver)


def pending_room(name: str = "Standup", members: tuple[str, ...] = ("ann", "bob")) -> Room:
    """A pending room and its members, saved without queueing anything (the test sends it)."""
    Room.objects.bulk_create([Room(name=name, type="public")])
    room = Room.objects.get(name=name)
    Member.objects.bulk_create([Member(room=room, user_id=user_id) for user_id in members])
    return room


def creating_in_a_thread(room: Room, emu: Emulator) -> tuple[threading.Thread, list[BaseException]]:
    """Start ``create_room`` in a thread with a slow POST; return once the POST is under way."""
    requires_server_database()  # SQLite's shared in-memory database locks whole tables
    errors: list[BaseException] = []

    def run() -> None:
        try:
            sync.create_room(room.pk)
        except BaseException as exc:  # the test reads it
            errors.append(exc)
        finally:
            connections.close_all()  # this thread's connection

    emu.inject("POST", "/rooms", delay=SLOW_POST)
    worker = threading.Thread(target=run)
    worker.start()
    wait_for(lambda: Room.objects.get(pk=room.pk).sync_state == SyncState.CREATING)
    wait_for(lambda: emu.faults == [])  # the POST has reached Pagecall: its members were read
    return worker, errors


def finished(worker: threading.Thread, errors: list[BaseException]) -> None:
    worker.join(10)
    assert not worker.is_alive()
    assert errors == []


def test_the_claim_is_committed_before_the_call_and_the_answer_stored_once(
    pagecall_emulator: Emulator, created: list[Room]
) -> None:
    room = pending_room()
    worker, errors = creating_in_a_thread(room, pagecall_emulator)
    # Seen from another connection while the POST is under way: claimed, with a lease.
    claimed = Room.objects.get(pk=room.pk)
    assert claimed.sync_attempts == 1
    assert claimed.attempt_started_at is not None
    assert claimed.lease_until is not None and claimed.lease_until > timezone.now()
    assert claimed.pagecall_id is None
    assert created == []
    finished(worker, errors)

    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert room.lease_until is None
    assert room.synced_at is not None
    (post,) = posts(pagecall_emulator)
    assert [m["user_id"] for m in post["body"]["members"]] == ["ann", "bob"]
    assert set(room.members.values_list("sync_state", flat=True)) == {SyncState.SYNCED}
    # Once, after the commit, with the row as stored.
    (announced,) = created
    assert isinstance(announced, Room)
    assert announced.pk == room.pk
    assert announced.pagecall_id == room.pagecall_id
    assert announced.sync_state == SyncState.SYNCED
    assert announced.layout == room.layout
    assert announced.pagecall_created_at == room.pagecall_created_at
    sync.create_room(room.pk)  # run again: nothing more
    assert len(posts(pagecall_emulator)) == 1
    assert len(created) == 1


def test_members_added_during_the_call_are_sent_after_it(pagecall_emulator: Emulator) -> None:
    room = pending_room()
    worker, errors = creating_in_a_thread(room, pagecall_emulator)
    # Its task runs now (eagerly), finds no Pagecall id, and leaves it to the room's creation.
    late = Member.objects.create(room=room, user_id="late", type="host")
    assert Member.objects.get(pk=late.pk).sync_state == SyncState.PENDING
    finished(worker, errors)

    late.refresh_from_db()
    assert late.sync_state == SyncState.SYNCED
    room.refresh_from_db()
    on_pagecall = {m["user_id"] for m in pagecall_emulator.members(room.pagecall_id or "")}
    assert on_pagecall == {"ann", "bob", "late"}
    (member_post,) = posts(pagecall_emulator, "/rooms/{room_id}/members")
    assert member_post["body"]["user_id"] == "late"
    (room_post,) = posts(pagecall_emulator)
    assert "late" not in [m["user_id"] for m in room_post["body"]["members"]]


def test_a_member_changed_during_the_call_is_updated_after_it(
    pagecall_emulator: Emulator,
) -> None:
    room = pending_room()
    worker, errors = creating_in_a_thread(room, pagecall_emulator)
    bob = Member.objects.get(room=room, user_id="bob")
    bob.name = "Bob B."
    bob.type = "host"
    bob.save()  # sent with the room as it was read; the change must follow
    finished(worker, errors)

    bob.refresh_from_db()
    assert bob.sync_state == SyncState.SYNCED
    assert bob.needs_update is False
    puts = [
        r
        for r in pagecall_emulator.requests
        if r["method"] == "PUT" and r["route"] == "/rooms/{room_id}/members/{member_id}"
    ]
    assert [p["body"] for p in puts] == [{"name": "Bob B.", "type": "host"}]


def test_a_claim_lost_during_the_call_stores_nothing(
    pagecall_emulator: Emulator, created: list[Room]
) -> None:
    room = pending_room()
    worker, errors = creating_in_a_thread(room, pagecall_emulator)
    # Another worker took the room over meanwhile (its claim, its lease).
    theirs = timezone.now() + timedelta(minutes=5)
    Room.objects.filter(pk=room.pk).update(lease_until=theirs)
    finished(worker, errors)

    room.refresh_from_db()
    assert room.sync_state == SyncState.CREATING
    assert room.lease_until == theirs
    assert room.pagecall_id is None
    assert set(room.members.values_list("sync_state", flat=True)) == {SyncState.PENDING}
    assert created == []


def test_room_created_waits_for_the_callers_commit(
    pagecall_emulator: Emulator, created: list[Room]
) -> None:
    room = pending_room()
    with transaction.atomic():
        sync.create_room(room.pk)
        assert created == []
    (announced,) = created
    assert announced.pk == room.pk
    assert announced.sync_state == SyncState.SYNCED


def test_a_pagecall_id_of_another_room_is_refused_and_changes_nothing(
    pagecall_emulator: Emulator, created: list[Room]
) -> None:
    owner = pending_room("Owner", members=())
    Room.objects.filter(pk=owner.pk).update(sync_state=SyncState.SYNCED, pagecall_id="taken")
    room = pending_room()
    lease = timezone.now() + timedelta(minutes=1)
    Room.objects.filter(pk=room.pk).update(sync_state=SyncState.CREATING, lease_until=lease)
    member_pks = list(room.members.values_list("pk", flat=True))
    taken = remote.Room(id="taken", name=room.name, type="public")
    room.lease_until = lease
    with pytest.raises(IntegrityError):
        room_sync.store(room, taken, "default", member_pks)
    room.refresh_from_db()
    assert room.sync_state == SyncState.CREATING
    assert room.pagecall_id is None
    assert set(room.members.values_list("sync_state", flat=True)) == {SyncState.PENDING}
    assert created == []


def test_a_creation_takes_at_most_eight_queries_in_two_transactions(
    pagecall_emulator: Emulator,
) -> None:
    """Without the HTTP call: the claim is committed before it, the result after it."""
    room = pending_room()
    with at_most(8, transactions=2) as statements:
        sync.create_room(room.pk)
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert len(posts(pagecall_emulator)) == 1
    writes = [sql.split()[0].upper() for sql in statements]
    assert writes.count("UPDATE") == 3  # the claim; the room stored and its members marked


def _delete(room: Room) -> None:
    room.delete()


def _fail(room: Room) -> None:
    Room.objects.filter(pk=room.pk).update(sync_state=SyncState.FAILED)


def _sync(room: Room) -> None:
    Room.objects.filter(pk=room.pk).update(sync_state=SyncState.SYNCED, pagecall_id="elsewhere")


@pytest.mark.parametrize("prepare", [_delete, _fail, _sync], ids=["gone", "failed", "synced"])
def test_a_room_that_is_not_pending_is_not_sent(
    pagecall_emulator: Emulator, prepare: Callable[[Room], None], created: list[Room]
) -> None:
    room = pending_room()
    prepare(room)
    sync.create_room(room.pk)
    assert posts(pagecall_emulator) == []
    assert created == []


def _expire_lease(room: Room) -> None:
    """What waiting out ``AMBIGUOUS_GRACE`` does: the claim's lease is in the past."""
    Room.objects.filter(pk=room.pk).update(lease_until=timezone.now() - timedelta(seconds=1))


def test_a_room_renamed_after_an_unknown_outcome_is_looked_up_by_the_name_it_was_sent_with(
    pagecall_emulator: Emulator,
) -> None:
    room = pending_room("Old name", members=())
    pagecall_emulator.inject("POST", "/rooms", drop="after")  # created, the answer lost
    with pytest.raises(sync.RetryLater):
        sync.create_room(room.pk)
    room = Room.objects.get(pk=room.pk)
    assert room.name_in_flight == "Old name"
    room.name = "New name"  # renamed in the admin meanwhile
    room.save()
    _expire_lease(room)
    sync.create_room(room.pk)  # looks "Old name" up, adopts it, then sends the rename
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert [p["body"]["name"] for p in posts(pagecall_emulator)] == ["Old name"]
    assert [r["name"] for r in pagecall_emulator.rooms.values()] == ["New name"]
    assert room.pagecall_id in pagecall_emulator.rooms


def test_a_room_renamed_into_a_name_in_flight_gets_a_pagecall_room_of_its_own(
    pagecall_emulator: Emulator,
) -> None:
    a = pending_room("Team", members=())
    pagecall_emulator.inject("POST", "/rooms", drop="after")  # A created, the answer lost
    with pytest.raises(sync.RetryLater):
        sync.create_room(a.pk)
    (a_remote,) = pagecall_emulator.rooms
    b = pending_room("Other", members=())
    pagecall_emulator.inject("POST", "/rooms", drop="before")  # B: nothing created
    with pytest.raises(sync.RetryLater):
        sync.create_room(b.pk)
    b = Room.objects.get(pk=b.pk)
    b.name = "Team"  # both rows are called "Team" now, both in flight
    b.save()
    _expire_lease(a)
    _expire_lease(b)
    sync.create_room(a.pk)
    sync.create_room(b.pk)  # "Other" is not found: sent again, as "Team", once A is done
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.sync_state, b.sync_state) == (SyncState.SYNCED, SyncState.SYNCED)
    assert a.pagecall_id == a_remote
    assert b.pagecall_id not in (None, a_remote)
    assert len(pagecall_emulator.rooms) == 2


def test_two_namesakes_claimed_at_the_same_moment_are_never_both_in_flight() -> None:
    requires_server_database()
    pairs = 30
    outcomes = []
    for i in range(pairs):
        name = f"Race {i}"
        Room.objects.bulk_create([Room(name=name), Room(name=name)])
        barrier = threading.Barrier(2)

        def claim(pk: int, barrier: threading.Barrier = barrier) -> None:
            try:
                room = Room.objects.get(pk=pk)
                barrier.wait()
                room_sync.claim(room, "default")
            except sync.RetryLater:
                pass  # the namesake holds the name in flight
            finally:
                connections.close_all()

        threads = [
            threading.Thread(target=claim, args=(pk,))
            for pk in Room.objects.filter(name=name).values_list("pk", flat=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        outcomes.append(Room.objects.filter(name=name, sync_state=SyncState.CREATING).count())
    assert outcomes == [1] * pairs  # one of each pair claimed, never both


def test_a_name_leaves_flight_with_its_room(pagecall_emulator: Emulator) -> None:
    """Refused or synced, a room frees its name; until then a namesake waits."""
    first, second = Room.objects.bulk_create([Room(name="Twin"), Room(name="Twin")])
    pagecall_emulator.inject("POST", "/rooms", status=400)  # refused
    sync.create_room(first.pk)
    assert Room.objects.get(pk=first.pk).sync_state == SyncState.FAILED
    assert Room.objects.get(pk=first.pk).name_in_flight is None
    pagecall_emulator.inject("POST", "/rooms", drop="after")  # created, the answer lost
    with pytest.raises(sync.RetryLater):
        sync.create_room(second.pk)
    assert Room.objects.get(pk=second.pk).name_in_flight == "Twin"
    third = Room.objects.bulk_create([Room(name="Twin")])[0]
    with pytest.raises(sync.RetryLater, match="same name"):
        sync.create_room(third.pk)  # the namesake waits
    _expire_lease(second)
    sync.create_room(second.pk)  # adopts the room Pagecall made
    sync.create_room(third.pk)
    assert (
        list(
            Room.objects.filter(pk__in=[second.pk, third.pk]).values_list(
                "sync_state", "name_in_flight"
            )
        )
        == [(SyncState.SYNCED, None)] * 2
    )
    assert len(pagecall_emulator.rooms) == 2


def test_a_room_deleted_while_pagecall_creates_it_is_deleted_there_when_the_site_says_so(
    pagecall_emulator: Emulator, settings: Any
) -> None:
    settings.PAGECALL = {**settings.PAGECALL, "DELETE_REMOTE_ROOMS": True}
    room = pending_room(members=())
    worker, errors = creating_in_a_thread(room, pagecall_emulator)
    Room.objects.filter(pk=room.pk).delete()  # no Pagecall id yet: nothing owed at this point
    finished(worker, errors)
    assert pagecall_emulator.rooms == {}  # the worker deleted what it created for the gone row
    assert [r["method"] for r in pagecall_emulator.requests] == ["POST", "DELETE"]


def test_a_room_deleted_while_pagecall_creates_it_stays_there_by_default(
    pagecall_emulator: Emulator,
) -> None:
    room = pending_room(members=())
    worker, errors = creating_in_a_thread(room, pagecall_emulator)
    Room.objects.filter(pk=room.pk).delete()
    finished(worker, errors)
    assert len(pagecall_emulator.rooms) == 1  # DELETE_REMOTE_ROOMS is False
    assert [r["method"] for r in pagecall_emulator.requests] == ["POST"]


def test_a_namesake_deleted_locally_is_not_adopted(pagecall_emulator: Emulator) -> None:
    old = pending_room("Standup", members=())
    sync.create_room(old.pk)
    old.refresh_from_db()
    old_remote = old.pagecall_id
    old.delete()  # DELETE_REMOTE_ROOMS is False: it stays on Pagecall, remembered here
    assert list(DeletedRoom.objects.values_list("pagecall_id", flat=True)) == [old_remote]
    room = pending_room("Standup", members=())  # made again at once under the same name
    pagecall_emulator.inject("POST", "/rooms", status=502)  # unknown outcome; nothing created
    with pytest.raises(sync.RetryLater):
        sync.create_room(room.pk)
    _expire_lease(room)
    sync.create_room(room.pk)  # the lookup finds only the deleted row's room: sent again
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert room.pagecall_id not in (None, old_remote)
    assert len(pagecall_emulator.rooms) == 2


def test_deleted_rooms_are_forgotten_once_no_attempt_can_find_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(outcomes, "ADOPT_WINDOW", 60)
    now = timezone.now()
    sync.forget_room("old", now - timedelta(minutes=5), using="default")
    sync.forget_room("recent", now - timedelta(seconds=30), using="default")
    assert set(DeletedRoom.objects.values_list("pagecall_id", flat=True)) == {"recent"}
    # A room in flight since long ago could still find older ones: they are kept for it.
    Room.objects.bulk_create(
        [Room(name="Slow", sync_state="creating", attempt_started_at=now - timedelta(hours=1))]
    )
    sync.forget_room("old", now - timedelta(minutes=5), using="default")
    assert set(DeletedRoom.objects.values_list("pagecall_id", flat=True)) == {"recent", "old"}
