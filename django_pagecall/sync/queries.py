"""The statements of a room's creation on PostgreSQL (the ORM elsewhere).

Creating a room is little work around a few statements and one HTTP call. On
that path the ORM's query compilation cost more than PostgreSQL took to run
the statements, and PostgreSQL parsing and planning them cost more than
running them. So on PostgreSQL each is a PL/pgSQL function (migration 0007),
planned once per connection, called with parameters bound on the server,
through Django's cursor wrapper (query logging, execute wrappers and error
translation still apply):

* :func:`claim`: the compare-and-set that takes a pending room (committed by
  itself before the call), returning the row as claimed and its members, where
  the ORM path reads the row, claims it and reads the members (three
  statements);
* :func:`store`: Pagecall's answer stored and the members sent with it marked,
  returning the row as stored (the ORM path: a transaction of three statements);
* :func:`follow_ups`: once that is committed, whether webhooks wait for the room
  and which of its members still have to be sent (the ORM path: two queries);
* :func:`store_and_follow_up`: the last two in one round trip, a procedure that
  commits between them (migration 0008), where the caller is not in a
  transaction and nothing needs the row as stored (``room_created`` has no
  receivers); so a room usually takes two round trips. On the machines of
  BENCHMARKS.md a round trip cost more of the worker's CPU than the work in it.

Each does what its ORM counterpart in :mod:`.rooms` does, with the same
conditions; only the number of round trips and the work spent preparing them
differ. Rows come back as the ORM would build them: the functions return the
tables' row types, which the calls spread into the models' columns by name, and
``Model.from_db`` builds the instances. The procedure returns scalars only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.db import IntegrityError, connections

from ..db import field_names, savepoint_if_nested, select_list, server_binding_cursor
from ..models import Member, Room, SyncState
from ..resources import Room as RemoteRoom
from .base import _mirror


def supported(using: str) -> bool:
    """Whether the statements here can run on the alias (PostgreSQL); else the ORM path runs."""
    return connections[using].vendor == "postgresql"


@dataclass
class Claimed:
    """A room claimed by :func:`claim`: the row as the claim left it, and its unblocked members,
    each with the columns of :data:`CLAIMED_ROOM` and :data:`CLAIMED_MEMBER` loaded."""

    room: Room
    members: list[Member] = field(default_factory=list)


#: The columns of a claimed room that sending it reads (``sync.rooms._send_create`` and what it
#: calls), and those the claim wrote. The instances defer the rest, as ``.only()`` would: a
#: reader of another field gets it from the database. Building all 27, ten of them
#: timestamps, cost about a tenth of the claim's time in the worker.
CLAIMED_ROOM: tuple[str, ...] = (
    "id", "name", "type", "record", "max_meeting_seconds",
    "sync_state", "sync_attempts", "attempt_started_at", "lease_until", "sent_name",
)  # fmt: skip
#: The same for its members: what goes into ``POST /rooms`` and into registering a user.
CLAIMED_MEMBER: tuple[str, ...] = (
    "id", "room_id", "user_id", "type", "name", "sync_state", "is_blocked",
)  # fmt: skip


@cache
def _claim_sql(using: str) -> str:
    room = select_list(Room, using, "(o.o_room)", CLAIMED_ROOM)
    member = select_list(Member, using, "(o.o_member)", CLAIMED_MEMBER)
    return f"SELECT {room}, {member} FROM django_pagecall_claim_room(%s, %s, %s, %s) o"  # noqa: S608


def claim(room_pk: int, using: str, now: Any, lease: Any, max_attempts: int) -> Claimed | None:
    """Claim a pending room that has attempts left and no namesake in flight, in one statement.

    None when it was not claimed, for whatever reason: the caller then reads the row and
    decides, as the ORM path does. That includes a namesake claimed by another worker at the
    same moment, which the unique index on names in flight refuses (``IntegrityError``). The
    members are read in the claiming statement; any that it did not see are pending after the
    room is stored, and :func:`follow_ups` finds them.
    """
    try:
        with savepoint_if_nested(using), server_binding_cursor(using) as cursor:
            cursor.execute(_claim_sql(using), [room_pk, now, lease, max_attempts])
            rows = cursor.fetchall()
    except IntegrityError:
        return None
    if not rows:
        return None
    room_names = field_names(Room, CLAIMED_ROOM)
    member_names = field_names(Member, CLAIMED_MEMBER)
    width = len(room_names)
    room = Room.from_db(using, room_names, rows[0][:width])
    members = [
        Member.from_db(using, member_names, row[width:]) for row in rows if row[width] is not None
    ]
    return Claimed(room=room, members=members)


def _store_params(
    room_pk: int, remote: RemoteRoom, lease_until: Any, member_pks: list[int], now: Any
) -> tuple[tuple[str, ...], list[Any]]:
    """The mirrored fields' names, and the parameters in the order of :func:`_argument_list`."""
    mirrored = _mirror(remote)
    params = [room_pk, lease_until, remote.id, remote.name, now, *mirrored.values(), member_pks]
    return tuple(mirrored), params


def _argument_list(mirrored: tuple[str, ...]) -> str:
    """The arguments of the store function and procedure, by name (``p_layout => ...``): each
    field ``sync.base._mirror`` fills goes to the parameter of its name, and one they lack
    fails the call loudly."""
    names = ["room_id", "lease", "pagecall_id", "name", "now", *mirrored, "member_ids"]
    return ", ".join(f"p_{name} => %s" for name in names)


@cache
def _store_sql(using: str, mirrored: tuple[str, ...]) -> str:
    returned = select_list(Room, using, "o")
    return f"SELECT {returned} FROM django_pagecall_store_room({_argument_list(mirrored)}) o"  # noqa: S608


def store(
    room_pk: int,
    remote: RemoteRoom,
    lease_until: Any,
    member_pks: list[int],
    now: Any,
    using: str,
) -> Room | None:
    """Store Pagecall's answer on a room still claimed with ``lease_until`` and mark the members
    ``member_pks`` (those still pending) synced, in one statement; the row as stored, or None
    when the claim was lost (then nothing changed). Raises ``IntegrityError`` when another room
    has that Pagecall id."""
    mirrored, params = _store_params(room_pk, remote, lease_until, member_pks, now)
    with savepoint_if_nested(using), server_binding_cursor(using) as cursor:
        cursor.execute(_store_sql(using, mirrored), params)
        row = cursor.fetchone()
    return Room.from_db(using, field_names(Room), row) if row else None


@dataclass
class FollowUps:
    """What :func:`follow_ups` found for a room just stored."""

    deliveries_waiting: bool
    #: (member pk, task): ``create_member`` for a pending member, ``update_member`` for a synced
    #: one with a change not sent yet; by pk.
    members: list[tuple[int, str]]


def follow_ups(room_pk: int, using: str) -> FollowUps:
    """Run once the stored room is committed: webhooks that waited for its Pagecall id, and
    members added or changed while it was being created, in one query."""
    with server_binding_cursor(using) as cursor:
        cursor.execute("SELECT * FROM django_pagecall_room_follow_ups(%s)", [room_pk])
        rows = cursor.fetchall()
    return FollowUps(
        deliveries_waiting=bool(rows[0][0]),
        members=_member_tasks((pk, state) for _, pk, state in rows if pk is not None),
    )


def _member_tasks(members: Iterable[tuple[int, str]]) -> list[tuple[int, str]]:
    return [
        (pk, "create_member" if state == SyncState.PENDING else "update_member")
        for pk, state in members
    ]


@dataclass
class Stored:
    """What :func:`store_and_follow_up` did and found."""

    #: Whether the claim still held (False: nothing was written, nothing followed up).
    stored: bool
    #: Whether a rename or termination made during the creation is still to be sent.
    needs_update: bool
    follow_ups: FollowUps


def can_commit_inside(using: str) -> bool:
    """Whether :func:`store_and_follow_up` can run: the procedure commits, which PostgreSQL
    allows only outside a transaction block: no ``atomic()``, autocommit on, and none opened
    on the driver's connection behind Django's back either."""
    connection = connections[using]
    if connection.in_atomic_block or not connection.get_autocommit():
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    driver: Any = connection.connection
    if is_psycopg3:
        from psycopg.pq import TransactionStatus

        return bool(driver.info.transaction_status == TransactionStatus.IDLE)
    return bool(driver.get_transaction_status() == 0)  # psycopg2's TRANSACTION_STATUS_IDLE


@cache
def _store_and_follow_up_sql(mirrored: tuple[str, ...]) -> str:
    return f"CALL django_pagecall_store_room_and_follow_up({_argument_list(mirrored)})"


def store_and_follow_up(
    room_pk: int,
    remote: RemoteRoom,
    lease_until: Any,
    member_pks: list[int],
    now: Any,
    using: str,
) -> Stored:
    """:func:`store`, committed, then :func:`follow_ups`, in one round trip (migration 0008).

    The same two transactions as the two calls, in the same order: the follow-ups are
    looked for after the commit. Only where :func:`can_commit_inside` says so. Raises
    ``IntegrityError`` when another room has that Pagecall id (then nothing is written).
    """
    mirrored, params = _store_params(room_pk, remote, lease_until, member_pks, now)
    with server_binding_cursor(using) as cursor:
        cursor.execute(_store_and_follow_up_sql(mirrored), params)
        stored, needs_update, waiting, member_ids, states = cursor.fetchone()
    return Stored(
        stored=bool(stored),
        needs_update=bool(needs_update),
        follow_ups=FollowUps(
            deliveries_waiting=bool(waiting),
            members=_member_tasks(zip(member_ids or (), states or (), strict=True)),
        ),
    )
