"""The statements on a webhook's path, hand-written for PostgreSQL (the ORM elsewhere).

The view's common case is one statement: :func:`receive_postgresql` calls the
PL/pgSQL function of migration 0005, which checks the room, applies the event
and stores the delivery in one transaction. PostgreSQL plans the function's
statements once per connection; parameters are bound on the server, not
quoted into the text by Python. The general path (replays, deliveries that
waited for their room, anything unusual) uses the other three: load the
room, store the delivery, apply the event. On this path the ORM's query
compilation costs more than PostgreSQL takes to run them, so on PostgreSQL
each is written once per database alias (from the models' metadata,
identifiers quoted by the backend, every value a parameter) and run with a
plain Django cursor, so query logging, execute wrappers and error
translation still apply. Rows come back as the ORM would build them: psycopg
returns the Python types Django uses, and ``Model.from_db`` builds the
instance. The rules the statements carry out are described in :mod:`.effects`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from django.db import connections

from ..db import field_names, savepoint_if_nested, select_list, server_binding_cursor
from ..models import DeliveryResult, DeliveryState, Member, Room, Session, WebhookDelivery

if TYPE_CHECKING:
    from .serializers import WebhookEvent


@cache
def _room_sql(using: str) -> str:
    q = connections[using].ops.quote_name
    pk = q(Room._meta.pk.column or Room._meta.pk.attname)
    return f"SELECT {select_list(Room, using)} FROM {q(Room._meta.db_table)} WHERE {pk} = %s"  # noqa: S608


def load_room(room_pk: int, using: str) -> Room | None:
    """The room, in one query."""
    if connections[using].vendor != "postgresql":
        return Room.objects.using(using).filter(pk=room_pk).first()
    with server_binding_cursor(using) as cursor:
        cursor.execute(_room_sql(using), [room_pk])
        row = cursor.fetchone()
    return Room.from_db(using, field_names(Room), row) if row else None


@cache
def _insert_sql(using: str) -> str:
    connection = connections[using]
    q = connection.ops.quote_name
    fields = [f for f in WebhookDelivery._meta.concrete_fields if not f.primary_key]
    # Explicit casts, so the statement also holds with server-side parameter binding.
    casts = {"headers": "::jsonb", "remote_addr": "::inet"}
    return (
        f"INSERT INTO {q(WebhookDelivery._meta.db_table)}"  # noqa: S608
        f" ({', '.join(q(f.column or f.attname) for f in fields)})"
        f" VALUES ({', '.join('%s' + casts.get(f.attname, '') for f in fields)})"
        f" RETURNING {q(WebhookDelivery._meta.pk.column or WebhookDelivery._meta.pk.attname)}"
    )


def insert_delivery(delivery: WebhookDelivery, using: str) -> None:
    """``delivery.save(force_insert=True)``, in one query without the ORM's compilation."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        delivery.save(using=using, force_insert=True)
        return
    fields = [f for f in WebhookDelivery._meta.concrete_fields if not f.primary_key]
    params = [
        json.dumps(delivery.headers)
        if f.attname == "headers"
        else f.get_db_prep_save(getattr(delivery, f.attname), connection)
        for f in fields
    ]
    with server_binding_cursor(using) as cursor:
        cursor.execute(_insert_sql(using), params)
        (delivery.pk,) = cursor.fetchone()
    delivery._state.adding = False
    delivery._state.db = using


@cache
def _apply_sql(using: str, column: str) -> str:
    """The statement for one action's column. Identifiers come from the models' metadata, quoted
    by the backend; every value is a parameter (hence the S608 waivers)."""
    q = connections[using].ops.quote_name

    def cols(model: Any) -> dict[str, str]:
        return {f.attname: q(f.column or f.attname) for f in model._meta.concrete_fields}

    s, m, r, d = cols(Session), cols(Member), cols(Room), cols(WebhookDelivery)
    session_t, member_t = q(Session._meta.db_table), q(Member._meta.db_table)
    room_t, delivery_t = q(Room._meta.db_table), q(WebhookDelivery._meta.db_table)
    target = s[column]
    inserted = ["room_id", "session_id", "member_id", "user_id", "room_member_id", column]
    inserted += ["source", "created_at", "updated_at"]
    # The member by Pagecall's member id, else by user id (members created with the room
    # have no Pagecall member id here).
    member = (
        f"(SELECT {m['id']} FROM {member_t} WHERE {m['room_id']} = %s"  # noqa: S608
        f" AND ({m['pagecall_id']} = %s OR {m['user_id']} = %s)"
        f" ORDER BY CASE WHEN {m['pagecall_id']} = %s THEN 0 ELSE 1 END, {m['id']} LIMIT 1)"
    )
    values = ["%s", "%s", "%s", "%s", member, "%s", "%s", "%s", "%s"]

    def fill_if_blank(name: str) -> str:
        return (
            f"{s[name]} = CASE WHEN {session_t}.{s[name]} = ''"
            f" THEN excluded.{s[name]} ELSE {session_t}.{s[name]} END"
        )

    return (
        f"WITH changed AS (INSERT INTO {session_t} ({', '.join(s[n] for n in inserted)})"  # noqa: S608
        f" VALUES ({', '.join(values)})"
        f" ON CONFLICT ({s['session_id']}) DO UPDATE SET {target} = excluded.{target},"
        f" {s['updated_at']} = excluded.{s['updated_at']},"
        f" {fill_if_blank('member_id')}, {fill_if_blank('user_id')},"
        f" {s['room_member_id']} = COALESCE({session_t}.{s['room_member_id']},"
        f" excluded.{s['room_member_id']})"
        f" WHERE {session_t}.{s['room_id']} = excluded.{s['room_id']}"
        f" AND ({session_t}.{target} IS NULL OR {session_t}.{target} < excluded.{target})"
        f" RETURNING {', '.join(s.values())}),"
        f" counters AS (UPDATE {room_t} SET {r['sessions_count']} = %s,"
        f" {r['members_count']} = %s, {r['counters_at']} = %s"
        f" WHERE {r['id']} = %s AND EXISTS (SELECT 1 FROM changed)"
        f" AND ({r['counters_at']} IS NULL OR {r['counters_at']} <= %s)"
        f" RETURNING {r['id']}),"
        f" done AS (UPDATE {delivery_t} SET {d['state']} = %s,"
        f" {d['result']} = CASE WHEN EXISTS (SELECT 1 FROM changed) THEN %s ELSE %s END,"
        f" {d['processed_at']} = %s, {d['error']} = '', {d['traceback']} = '',"
        f" {d['attempts']} = {d['attempts']} + %s WHERE {d['id']} = %s)"
        # Every data-modifying WITH runs to completion, whether or not the SELECT reads it.
        f" SELECT changed.*, EXISTS (SELECT 1 FROM counters) AS counters_updated FROM changed"
    )


def apply_postgresql(
    room_pk: int,
    event: WebhookEvent,
    column: str,
    delivery_pk: int,
    now: Any,
    replay: bool,
    using: str,
) -> tuple[Session | None, bool]:
    params = [
        # the session
        room_pk,
        event.session_id,
        event.member_id,
        event.user_id,
        room_pk,
        event.member_id,
        event.user_id or None,  # NULL equals no member's user_id
        event.member_id,
        event.timestamp,
        Session.Source.WEBHOOK.value,
        now,
        now,
        # the counters
        event.sessions_count,
        event.members_count,
        event.timestamp,
        room_pk,
        event.timestamp,
        # the delivery
        DeliveryState.PROCESSED.value,
        DeliveryResult.APPLIED.value,
        DeliveryResult.DUPLICATE.value,
        now,
        1 if replay else 0,
        delivery_pk,
    ]
    sql = _apply_sql(using, column)
    with savepoint_if_nested(using), server_binding_cursor(using) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None, False  # a duplicate: only the delivery changed
    # psycopg hands back the Python types Django would (PostgreSQL needs no converters here).
    return Session.from_db(using, field_names(Session), row[:-1]), bool(row[-1])


# -- a whole webhook in one statement ---------------------------------------------------------

#: The outcomes of :func:`receive_postgresql` that stored and applied the delivery; the others
#: ("room_gone", "waiting", "room_mismatch") wrote nothing and leave it to the general path.
APPLIED, DUPLICATE = DeliveryResult.APPLIED.value, DeliveryResult.DUPLICATE.value


@dataclass(frozen=True, slots=True)
class Received:
    """What the function ``django_pagecall_receive_webhook`` (migration 0005) did."""

    outcome: str  # APPLIED or DUPLICATE: stored and applied; else nothing was written
    delivery_pk: int | None
    session: Session | None  # as stored, when the event changed it
    room: Room | None  # as stored


@cache
def _receive_sql(using: str, rows: bool) -> str:
    """The call; with ``rows``, the session and room as stored, spread into the models' columns
    (``(o.room).*`` would be the table's columns as they are, not necessarily the model's order)."""
    columns = ["o.outcome", "o.delivery_id"]
    if rows:
        columns += [
            select_list(Session, using, "(o.session)"),
            select_list(Room, using, "(o.room)"),
        ]
    params = ", ".join(["%s"] * 14)
    return (
        f"SELECT {', '.join(columns)}"  # noqa: S608
        f" FROM django_pagecall_receive_webhook({params}) o"
    )


def receive_postgresql(
    room_pk: int,
    event: WebhookEvent,
    headers: dict[str, str],
    body: str,
    remote_addr: str | None,
    now: Any,
    using: str,
    *,
    rows: bool,
) -> Received:
    """Store and apply one webhook in one statement (PostgreSQL only; see migration 0005).

    With ``rows``, the session (when it changed) and the room come back as stored;
    without, converting them is not paid for. Raises whatever the database raises;
    nothing is written then.
    """
    from .serializers import SESSION_JOINED

    params = [
        room_pk,
        event.room_id,
        event.action,
        event.action == SESSION_JOINED,
        event.session_id,
        event.member_id,
        event.user_id,
        event.sessions_count,
        event.members_count,
        event.timestamp,
        json.dumps(headers),
        body,
        remote_addr,
        now,
    ]
    with savepoint_if_nested(using), server_binding_cursor(using) as cursor:
        cursor.execute(_receive_sql(using, rows), params)
        row = cursor.fetchone()
    outcome, delivery_pk = row[0], row[1]
    if not rows:
        return Received(outcome, delivery_pk, None, None)
    n_session = len(Session._meta.concrete_fields)
    session_row, room_row = row[2 : 2 + n_session], row[2 + n_session :]
    session = (
        Session.from_db(using, field_names(Session), session_row)
        if session_row[0] is not None
        else None
    )
    room = Room.from_db(using, field_names(Room), room_row) if room_row[0] is not None else None
    return Received(outcome, delivery_pk, session, room)
