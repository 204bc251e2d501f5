"""Creating a room while other things happen to it, on both paths of ``sync.create_room``:
PostgreSQL's hand-written statements (claim, store, follow-ups) and the ORM's.

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
from django.core.management import call_command
from django.db import IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_pagecall import signals, sync
from django_pagecall.emulator import Emulator
from django_pagecall.models import DeletedRoom, Member, Room, SyncState
from django_pagecall.resources import Room as RemoteRoom
from django_pagecall.sync import rooms as room_sync
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("creation_path")]

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
    remote = RemoteRoom(id="taken", name=room.name, type="public")
    with pytest.raises(IntegrityError):
        room_sync._store_created(room, remote, "default", lease, member_pks)
    room.refresh_from_db()
    assert room.sync_state == SyncState.CREATING
    assert room.pagecall_id is None
    assert set(room.members.values_list("sync_state", flat=True)) == {SyncState.PENDING}
    assert created == []


def test_the_usual_creation_takes_two_statements_on_postgresql(
    pagecall_emulator: Emulator, creation_path: str
) -> None:
    """The claim, then one call that stores the room, commits, and looks for its follow-ups."""
    if creation_path != "statements":
        pytest.skip("the ORM path's statements are the ORM's")
    room = pending_room()
    with CaptureQueriesContext(connection) as queries:
        sync.create_room(room.pk)
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 2, statements
    claim, store = statements
    assert "FROM django_pagecall_claim_room(" in claim
    assert store.startswith("CALL django_pagecall_store_room_and_follow_up(")
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert set(room.members.values_list("sync_state", flat=True)) == {SyncState.SYNCED}


@pytest.mark.parametrize("room_type", ["public", "private"])
def test_sending_a_claimed_room_reads_no_field_the_claim_left_out(
    pagecall_emulator: Emulator, creation_path: str, room_type: str
) -> None:
    """The claim loads only the columns sending reads (``queries.CLAIMED_ROOM``); a field it
    left out would be loaded by a query of its own, which this would see. A private room's
    members are registered first, which reads them too."""
    if creation_path != "statements":
        pytest.skip("the ORM path reads whole rows")
    room = pending_room()
    Room.objects.filter(pk=room.pk).update(type=room_type, max_meeting_seconds=900)
    with CaptureQueriesContext(connection) as queries:
        sync.create_room(room.pk)
    reads = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT")
        and (
            'FROM "django_pagecall_room"' in q["sql"] or 'FROM "django_pagecall_member"' in q["sql"]
        )
    ]
    assert reads == []
    (body,) = [r["body"] for r in posts(pagecall_emulator)]
    assert (body["type"], body["max_meeting_seconds"]) == (room_type, 900)
    assert sorted(m["user_id"] for m in body["members"]) == ["ann", "bob"]
    assert Room.objects.get(pk=room.pk).sync_state == SyncState.SYNCED
    if room_type == "private":
        assert sorted(r["body"]["user_id"] for r in posts(pagecall_emulator, "/users")) == [
            "ann",
            "bob",
        ]


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements ORDER BY prepare_time")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.parametrize("threshold", [None, 2])
def test_the_creation_statements_are_prepared_only_where_the_site_says_so(
    pagecall_emulator: Emulator, creation_path: str, threshold: int | None
) -> None:
    """Django's default (``prepare_threshold`` None) prepares nothing, so a transaction-mode
    pooler is fine; with ``OPTIONS["prepare_threshold"]`` (README), the claim and the store are
    prepared on the connection once they have run that many times (psycopg prepares the run
    after)."""
    if creation_path != "statements":
        pytest.skip("only the PostgreSQL statements are bound on the server")
    options = connection.settings_dict.setdefault("OPTIONS", {})
    saved = dict(options)
    if threshold is not None:
        options["prepare_threshold"] = threshold
    connection.close()  # the next statement connects with the options
    try:
        rooms = [pending_room(f"Prepared {i}") for i in range((threshold or 2) + 1)]
        for room in rooms:
            sync.create_room(room.pk)
        prepared = _prepared_statements()
        assert [r.sync_state for r in Room.objects.filter(pk__in=[r.pk for r in rooms])] == [
            SyncState.SYNCED
        ] * len(rooms)
    finally:
        options.clear()
        options.update(saved)
        connection.close()
    calls = _creation_calls(prepared)
    if threshold is None:
        assert prepared == []
    else:
        assert calls == ["claim_room", "store_room_and_follow_up"], prepared


def _creation_calls(statements: list[str]) -> list[str]:
    """The app's functions and procedure called, in order (``claim_room``, ...)."""
    return [
        s.split("django_pagecall_")[1].split("(")[0] for s in statements if "django_pagecall_" in s
    ]


def test_inside_a_transaction_the_store_and_the_follow_ups_are_two_statements(
    pagecall_emulator: Emulator, creation_path: str
) -> None:
    """The procedure commits, which PostgreSQL refuses inside a transaction block: there the
    store and the follow-ups are sent apart, and the caller's transaction commits them."""
    if creation_path != "statements":
        pytest.skip("the ORM path's statements are the ORM's")
    room = pending_room()
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        sync.create_room(room.pk)
    calls = _creation_calls([q["sql"] for q in queries.captured_queries])
    assert calls == ["claim_room", "store_room", "room_follow_ups"]
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED


def test_with_room_created_receivers_they_get_the_row_as_stored_before_the_follow_ups(
    pagecall_emulator: Emulator, creation_path: str, created: list[Room]
) -> None:
    """A receiver gets the row the storing statement returned, sent once it is committed and
    before the follow-ups are looked for: the one-round-trip procedure is not used then."""
    if creation_path != "statements":
        pytest.skip("the ORM path's statements are the ORM's")
    room = pending_room()
    calls_when_sent: list[list[str]] = []

    def receiver(sender: Any, room: Room, **kwargs: Any) -> None:
        calls_when_sent.append(_creation_calls([q["sql"] for q in queries.captured_queries]))

    signals.room_created.connect(receiver, weak=False)
    try:
        with CaptureQueriesContext(connection) as queries:
            sync.create_room(room.pk)
    finally:
        signals.room_created.disconnect(receiver)
    assert _creation_calls([q["sql"] for q in queries.captured_queries]) == [
        "claim_room",
        "store_room",
        "room_follow_ups",
    ]
    assert calls_when_sent == [["claim_room", "store_room"]]
    room.refresh_from_db()
    assert [(r.pk, r.pagecall_id, r.sync_state, r.synced_at) for r in created] == [
        (room.pk, room.pagecall_id, SyncState.SYNCED, room.synced_at)
    ]


def test_a_transaction_opened_on_the_driver_connection_is_seen(creation_path: str) -> None:
    """Django's flags alone would say the procedure can commit; the driver's status says not."""
    if creation_path != "statements":
        pytest.skip("the procedure is PostgreSQL's")
    from django_pagecall.sync import queries as creation_queries

    connection.ensure_connection()
    assert creation_queries.can_commit_inside("default")
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")  # behind Django's back: it still thinks autocommit is on
        try:
            assert not creation_queries.can_commit_inside("default")
        finally:
            cursor.execute("ROLLBACK")
    assert creation_queries.can_commit_inside("default")
    with transaction.atomic():
        assert not creation_queries.can_commit_inside("default")


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


FUNCTIONS = (
    "django_pagecall_claim_room",
    "django_pagecall_store_room",
    "django_pagecall_room_follow_ups",
)
PROCEDURE = "django_pagecall_store_room_and_follow_up"


def test_migrations_0007_and_0008_create_the_functions_and_reversing_them_drops_them(
    creation_path: str,
) -> None:
    if creation_path != "statements":
        pytest.skip("the functions are PostgreSQL's; other backends get nothing")

    def present() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT proname FROM pg_proc WHERE proname = ANY(%s)", [[*FUNCTIONS, PROCEDURE]]
            )
            return {name for (name,) in cursor.fetchall()}

    assert present() == {*FUNCTIONS, PROCEDURE}
    try:
        call_command("migrate", "django_pagecall", "0007", verbosity=0)
        assert present() == set(FUNCTIONS)
        call_command("migrate", "django_pagecall", "0006", verbosity=0)
        assert present() == set()
    finally:
        call_command("migrate", "django_pagecall", verbosity=0)
    assert present() == {*FUNCTIONS, PROCEDURE}


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
    assert room.sent_name == "Old name"
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


def test_two_namesakes_claimed_at_the_same_moment_are_never_both_in_flight(
    creation_path: str,
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("a race between two connections; SQLite has one writer")
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
                if creation_path == "statements":
                    room_sync._claim_in_one_statement(pk, "default")
                else:
                    room_sync._claim(room, "default")
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


def test_migration_0010_records_the_name_sent_and_reversing_it_restores_the_claim(
    creation_path: str,
) -> None:
    if creation_path != "statements":
        pytest.skip("the claim function is PostgreSQL's")
    from django.db.migrations.executor import MigrationExecutor

    def claim_source() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [FUNCTIONS[0]])
            (source,) = cursor.fetchone()
        return str(source)

    def columns() -> set[str]:
        with connection.cursor() as cursor:
            return {
                c.name
                for c in connection.introspection.get_table_description(cursor, Room._meta.db_table)
            }

    assert "sent_name" in claim_source()
    try:
        call_command("migrate", "django_pagecall", "0009", verbosity=0)
        assert "sent_name" not in claim_source()
        assert "sent_name" not in columns()
        # Rooms in flight during the upgrade: the first of each name gets it as its name sent.
        old = MigrationExecutor(connection).loader.project_state(
            ("django_pagecall", "0009_admin_list_indexes")
        )
        OldRoom = old.apps.get_model("django_pagecall", "Room")
        OldRoom.objects.bulk_create(
            [
                OldRoom(name="Busy", sync_state="creating"),
                OldRoom(name="Busy", sync_state="creating"),
                OldRoom(name="Quiet", sync_state="pending"),
            ]
        )
        call_command("migrate", "django_pagecall", "0010", verbosity=0)
        assert list(Room.objects.order_by("pk").values_list("name", "sent_name")) == [
            ("Busy", "Busy"),
            ("Busy", None),
            ("Quiet", None),
        ]
        assert "sent_name" in claim_source()
    finally:
        call_command("migrate", "django_pagecall", verbosity=0)
    assert "sent_name" in claim_source()


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


def test_deleted_rooms_are_forgotten_once_no_attempt_can_find_them(settings: Any) -> None:
    settings.PAGECALL = {**settings.PAGECALL, "ADOPT_WINDOW": 60}
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
