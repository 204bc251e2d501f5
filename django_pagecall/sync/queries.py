"""The statements of a room's creation, hand-written for PostgreSQL (the ORM elsewhere).

Creating a room is little work around three statements and one HTTP call, and
on that path the ORM's query compilation cost more than PostgreSQL took to run
the statements. So on PostgreSQL each is written once per database alias (from
the models' metadata, identifiers quoted by the backend, every value a
parameter, hence the S608 waivers) and run with a plain Django cursor, so
query logging, execute wrappers and error translation still apply:

* :func:`claim`: the compare-and-set that takes a pending room (committed by
  itself before the call), returning the row as claimed and its members, where
  the ORM path reads the row, claims it and reads the members (three
  statements);
* :func:`store`: Pagecall's answer stored and the members sent with it marked,
  returning the row as stored (the ORM path: a transaction of three statements);
* :func:`follow_ups`: once that is committed, whether webhooks wait for the room
  and which of its members still have to be sent (the ORM path: two queries).

Each does what its ORM counterpart in :mod:`.rooms` does, with the same
conditions; only the number of round trips and the Python spent building them
differ. Rows come back as the ORM would build them: psycopg returns the Python
types Django uses, and ``Model.from_db`` builds the instances.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from django.db import connections

from ..db import columns, field_names, savepoint_if_nested, server_binding_cursor
from ..models import DeliveryState, Member, Room, SyncState, WebhookDelivery
from ..resources import Room as RemoteRoom
from .base import _mirror


def supported(using: str) -> bool:
    """Whether the statements here can run on the alias (PostgreSQL); else the ORM path runs."""
    return connections[using].vendor == "postgresql"


@cache
def _room_fields() -> dict[str, Any]:
    return {f.attname: f for f in Room._meta.concrete_fields}


@dataclass
class Claimed:
    """A room claimed by :func:`claim`: the row as the claim left it, and its unblocked members."""

    room: Room
    members: list[Member] = field(default_factory=list)


@cache
def _claim_sql(using: str) -> str:
    q = connections[using].ops.quote_name
    r, m = columns(Room, using), columns(Member, using)
    room_t, member_t = q(Room._meta.db_table), q(Member._meta.db_table)
    returned = ", ".join(r.values())
    members = ", ".join(f"m.{c}" for c in m.values())
    return (
        f"WITH claimed AS (UPDATE {room_t} SET {r['sync_state']} = %s,"  # noqa: S608
        f" {r['sync_attempts']} = {r['sync_attempts']} + 1,"
        f" {r['attempt_started_at']} = %s, {r['lease_until']} = %s"
        f" WHERE {r['id']} = %s AND {r['sync_state']} = %s AND {r['sync_attempts']} < %s"
        # One room of a given name in flight at a time (see rooms._claim).
        f" AND NOT EXISTS (SELECT 1 FROM {room_t} namesake"
        f" WHERE namesake.{r['name']} = {room_t}.{r['name']}"
        f" AND namesake.{r['sync_state']} = %s AND namesake.{r['id']} <> {room_t}.{r['id']})"
        f" RETURNING {returned})"
        f" SELECT {', '.join(f'claimed.{c}' for c in r.values())}, {members} FROM claimed"
        f" LEFT JOIN {member_t} m ON m.{m['room_id']} = claimed.{r['id']}"
        f" AND NOT m.{m['is_blocked']} ORDER BY m.{m['id']}"
    )


def claim(room_pk: int, using: str, now: Any, lease: Any, max_attempts: int) -> Claimed | None:
    """Claim a pending room that has attempts left and no namesake in flight, in one statement.

    None when it was not claimed, for whatever reason: the caller then reads the row and
    decides, as the ORM path does. The members are read in the claiming statement; any that
    it did not see are pending after the room is stored, and :func:`follow_ups` finds them.
    """
    params: list[Any] = [
        SyncState.CREATING.value,
        now,
        lease,
        room_pk,
        SyncState.PENDING.value,
        max_attempts,
        SyncState.CREATING.value,
    ]
    with server_binding_cursor(using) as cursor:
        cursor.execute(_claim_sql(using), params)
        rows = cursor.fetchall()
    if not rows:
        return None
    room_names, member_names = field_names(Room), field_names(Member)
    width = len(room_names)
    room = Room.from_db(using, room_names, rows[0][:width])
    members = [
        Member.from_db(using, member_names, row[width:]) for row in rows if row[width] is not None
    ]
    return Claimed(room=room, members=members)


@cache
def _store_sql(using: str, mirrored: tuple[str, ...]) -> str:
    connection = connections[using]
    q = connection.ops.quote_name
    r, m = columns(Room, using), columns(Member, using)
    room_t, member_t = q(Room._meta.db_table), q(Member._meta.db_table)
    member_pk_type = Member._meta.pk.rel_db_type(connection)
    return (
        f"WITH stored AS (UPDATE {room_t} SET {r['pagecall_id']} = %s,"  # noqa: S608
        f" {r['sync_state']} = %s, {r['synced_at']} = %s, {r['lease_until']} = NULL,"
        f" {r['sync_error']} = '',"
        # Renamed or terminated while it was being created: yet to be sent.
        f" {r['needs_update']} = ({r['name']} IS DISTINCT FROM %s OR {r['terminate_requested']})"
        f"{''.join(f', {r[name]} = %s' for name in mirrored)}"
        f" WHERE {r['id']} = %s AND {r['sync_state']} = %s AND {r['lease_until']} = %s"
        f" RETURNING {', '.join(r.values())}),"
        f" sent AS (UPDATE {member_t} SET {m['sync_state']} = %s, {m['synced_at']} = %s,"
        f" {m['sync_error']} = ''"
        f" WHERE {m['id']} = ANY(%s::{member_pk_type}[]) AND {m['room_id']} = %s"
        f" AND {m['sync_state']} = %s AND EXISTS (SELECT 1 FROM stored))"
        # Every data-modifying WITH runs to completion, whether or not the SELECT reads it.
        " SELECT * FROM stored"
    )


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
    connection = connections[using]
    fields = _room_fields()
    mirrored = _mirror(remote)
    params: list[Any] = [
        remote.id,
        SyncState.SYNCED.value,
        now,
        remote.name,
        *(fields[name].get_db_prep_save(value, connection) for name, value in mirrored.items()),
        room_pk,
        SyncState.CREATING.value,
        lease_until,
        # the members
        SyncState.SYNCED.value,
        now,
        list(member_pks),
        room_pk,
        SyncState.PENDING.value,
    ]
    with savepoint_if_nested(using), server_binding_cursor(using) as cursor:
        cursor.execute(_store_sql(using, tuple(mirrored)), params)
        row = cursor.fetchone()
    return Room.from_db(using, field_names(Room), row) if row else None


@dataclass
class FollowUps:
    """What :func:`follow_ups` found for a room just stored."""

    deliveries_waiting: bool
    #: (member pk, task): ``create_member`` for a pending member, ``update_member`` for a synced
    #: one with a change not sent yet; by pk.
    members: list[tuple[int, str]]


@cache
def _follow_ups_sql(using: str) -> str:
    q = connections[using].ops.quote_name
    m, d = columns(Member, using), columns(WebhookDelivery, using)
    member_t, delivery_t = q(Member._meta.db_table), q(WebhookDelivery._meta.db_table)
    # What webhooks.apply_waiting applies, and what rooms._follow_up sends.
    return (
        f"SELECT EXISTS (SELECT 1 FROM {delivery_t} WHERE {d['room_id']} = %s"  # noqa: S608
        f" AND {d['state']} = %s), m.{m['id']}, m.{m['sync_state']}"
        f" FROM (SELECT 1) one LEFT JOIN {member_t} m ON m.{m['room_id']} = %s"
        f" AND (m.{m['sync_state']} = %s OR (m.{m['sync_state']} = %s AND m.{m['needs_update']}))"
        f" ORDER BY m.{m['id']}"
    )


def follow_ups(room_pk: int, using: str) -> FollowUps:
    """Run once the stored room is committed: webhooks that waited for its Pagecall id, and
    members added or changed while it was being created, in one query."""
    params: list[Any] = [
        room_pk,
        DeliveryState.WAITING.value,
        room_pk,
        SyncState.PENDING.value,
        SyncState.SYNCED.value,
    ]
    with server_binding_cursor(using) as cursor:
        cursor.execute(_follow_ups_sql(using), params)
        rows = cursor.fetchall()
    return FollowUps(
        deliveries_waiting=bool(rows[0][0]),
        members=[
            (pk, "create_member" if state == SyncState.PENDING else "update_member")
            for _, pk, state in rows
            if pk is not None
        ],
    )
