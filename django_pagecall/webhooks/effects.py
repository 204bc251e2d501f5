"""The writes one webhook causes, as one atomic unit: its session row, its room's counters and its
delivery marked processed; then the signal, once that is committed.

Owns the rules that make any order of arrival and any number of duplicates
end right, with no lock taken by hand:

* One :class:`~django_pagecall.models.Session` per ``sessionId`` (unique
  constraint). Each action owns one column (``sessionJoined`` ->
  ``joined_at``, ``sessionLeft`` -> ``left_at``), written only when it is
  empty or older than the event's timestamp. That conditional write is the
  de-duplication: the pair (session id, action) is unique because the row is
  unique and the action names one of its columns, and a duplicate is a write
  whose condition fails. So ``sessionLeft`` before ``sessionJoined`` ends with
  both set, and a duplicate changes nothing and sends no signal.
* Room counters are snapshots: kept from the event with the newest timestamp
  (a conditional ``UPDATE ... WHERE counters_at <= ts``), never incremented,
  and only by an event that changed its session, so a duplicate never moves
  them. Between new events of the same millisecond (Pagecall ending every
  session of a terminated room at once) the later arrival wins, which is
  right when they arrive in the order they were sent.
* A session never moves between rooms: a ``sessionId`` already recorded for
  another room is left alone (it reads as a duplicate).

On PostgreSQL the view's common case does all of it, and stores the delivery,
in one call of the function of migration 0005 (:func:`.queries.receive_postgresql`),
whose statements are the ones below. Replays and deliveries that waited use
:func:`apply_event`, one statement (:func:`.queries.apply_postgresql`): an
``INSERT ... ON CONFLICT (session_id) DO UPDATE ... WHERE <newer>
RETURNING`` that returns the row only when it inserted or changed it, and,
in the same ``WITH``, the counters ``UPDATE`` and the delivery's ``UPDATE``.
One statement is atomic without ``BEGIN``/``COMMIT``, and PostgreSQL
re-checks each condition on the locked row, so concurrent duplicates change a
row once. Other backends (:func:`_apply_portable`) run the same rules as ORM
calls in a transaction: more queries, same outcome.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.db.models import F, Q
from django.dispatch import Signal
from django.utils import timezone

from .. import signals
from ..models import DeliveryResult, DeliveryState, Member, Room, Session, WebhookDelivery
from . import queries
from .serializers import SESSION_JOINED, WebhookEvent

logger = logging.getLogger(__name__)


def column_of(event: WebhookEvent) -> str:
    """The session column an event's action owns."""
    return "joined_at" if event.action == SESSION_JOINED else "left_at"


def apply_event(
    room: Room, event: WebhookEvent, delivery: WebhookDelivery, using: str, *, replay: bool = False
) -> Session | None:
    """Apply ``event`` to ``room`` and mark ``delivery`` processed, all or nothing.

    Returns the session when it changed, ``None`` for a duplicate. ``delivery``
    is updated in memory too, and so are ``room``'s counters when the session
    changed (the signal carries it). ``replay`` counts one more attempt.
    The signal goes out once the change is committed (at once in autocommit).
    """
    now = timezone.now()
    if connections[using].vendor == "postgresql":
        session, counters = queries.apply_postgresql(
            room.pk, event, column_of(event), delivery.pk, now, replay, using
        )
    else:
        session, counters = _apply_portable(room.pk, event, delivery.pk, now, replay, using)
    delivery.state = DeliveryState.PROCESSED
    delivery.result = DeliveryResult.APPLIED if session else DeliveryResult.DUPLICATE
    delivery.processed_at = now
    delivery.error = delivery.traceback = ""
    delivery.attempts += 1 if replay else 0
    if counters:
        room.sessions_count = event.sessions_count
        room.members_count = event.members_count
        room.counters_at = event.timestamp
    if session is not None:
        announce(session, room, event, using)
    return session


def _signal_of(event: WebhookEvent) -> Signal:
    return signals.session_joined if event.action == SESSION_JOINED else signals.session_left


def has_receivers(event: WebhookEvent) -> bool:
    """Whether the signal this event would send has receivers (else its rows need not be read)."""
    return _signal_of(event).has_listeners(Session)


def announce(session: Session, room: Room, event: WebhookEvent, using: str) -> None:
    signal = _signal_of(event)

    def send() -> None:  # a def, not functools.partial: robust=True needs a __qualname__
        signal.send(sender=Session, session=session, room=room)

    transaction.on_commit(send, using=using, robust=True)


def _delivery_done(result: str, now: Any, replay: bool) -> dict[str, Any]:
    return {
        "state": DeliveryState.PROCESSED,
        "result": result,
        "processed_at": now,
        "error": "",
        "traceback": "",
        "attempts": F("attempts") + (1 if replay else 0),
    }


# -- any other backend ------------------------------------------------------------------------


def _apply_portable(
    room_pk: int,
    event: WebhookEvent,
    delivery_pk: int,
    now: Any,
    replay: bool,
    using: str,
) -> tuple[Session | None, bool]:
    with transaction.atomic(using=using):
        session = _upsert_portable(room_pk, event, now, using)
        counters = session is not None and bool(
            Room.objects.using(using)
            .filter(pk=room_pk)
            .filter(Q(counters_at__isnull=True) | Q(counters_at__lte=event.timestamp))
            .update(
                sessions_count=event.sessions_count,
                members_count=event.members_count,
                counters_at=event.timestamp,
            )
        )
        result = DeliveryResult.APPLIED if session else DeliveryResult.DUPLICATE
        WebhookDelivery.objects.using(using).filter(pk=delivery_pk).update(
            **_delivery_done(result, now, replay)
        )
    return session, counters


def _upsert_portable(room_pk: int, event: WebhookEvent, now: Any, using: str) -> Session | None:
    column = column_of(event)
    sessions = Session.objects.using(using)
    candidates = list(
        Member.objects.using(using)
        .filter(room_id=room_pk)
        .filter(Q(pagecall_id=event.member_id) | Q(user_id=event.user_id or None))
        .order_by("pk")
    )
    by_member_id = [m for m in candidates if m.pagecall_id == event.member_id]
    ranked = by_member_id or candidates
    room_member = ranked[0] if ranked else None
    try:
        with transaction.atomic(using=using):
            return sessions.create(
                room_id=room_pk,
                session_id=event.session_id,
                member_id=event.member_id,
                user_id=event.user_id,
                room_member=room_member,
                source=Session.Source.WEBHOOK,
                **{column: event.timestamp},
            )
    except IntegrityError:
        pass  # the session exists: apply the timestamp only if it is newer
    newer = Q(**{f"{column}__isnull": True}) | Q(**{f"{column}__lt": event.timestamp})
    changed = (
        sessions.filter(session_id=event.session_id, room_id=room_pk)
        .filter(newer)
        .update(**{column: event.timestamp}, updated_at=now)
    )
    if not changed:
        return None
    session = sessions.get(session_id=event.session_id)
    fill: dict[str, Any] = {}
    if not session.member_id:
        fill["member_id"] = event.member_id
    if not session.user_id and event.user_id:
        fill["user_id"] = event.user_id
    if session.room_member_id is None and room_member is not None:
        fill["room_member_id"] = room_member.pk
    if fill:
        sessions.filter(pk=session.pk).update(**fill)
        for name, value in fill.items():
            setattr(session, name, value)
    return session
