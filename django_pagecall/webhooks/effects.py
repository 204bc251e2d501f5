"""The writes one webhook event causes: its session row, its room's counters and meeting, right
in any order of arrival and against duplicates, and the signals they send (docs/webhooks.md,
docs/meetings.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Q
from django.dispatch import Signal
from django.utils import timezone

from .. import signals
from ..models import Member, Room, Session, WebhookDelivery
from .serializers import SESSION_JOINED, Event, WebhookEvent


class SessionOfAnotherRoom(Exception):
    """The event names a session id already recorded for another room: kept and flagged, never
    taken for a duplicate (session ids are unique across rooms)."""


def locked_room(room_pk: int, using: str) -> Room | None:
    """The room, its row locked until the transaction ends: the events of one room are applied
    one at a time, and a room being stored waits for (or is seen by) a webhook in flight."""
    return Room.objects.using(using).select_for_update().filter(pk=room_pk).order_by().first()


def apply_event(room: Room, event: WebhookEvent, using: str) -> Session | None:
    """Apply ``event`` to the session it names and to ``room``'s counters; the session when it
    changed, ``None`` for a duplicate or an older event.

    Call it in a transaction that holds the room from :func:`locked_room`. Each action owns one
    column, written only when it is empty or older than the event; the counters are snapshots,
    kept from the newest event that changed a session, and the room's usage is marked stale
    (:mod:`~django_pagecall.usage`). A session never moves between rooms:
    an event for a session of another room raises :class:`SessionOfAnotherRoom` before any write.
    """
    column = "joined_at" if event.action == SESSION_JOINED else "left_at"
    sessions = Session.objects.using(using)
    session = sessions.filter(session_id=event.session_id).first()
    if session is None:
        session = sessions.create(
            room=room,
            session_id=event.session_id,
            member_id=event.member_id,
            user_id=event.user_id,
            room_member=member_of(room, event, using),
            source=Session.Source.WEBHOOK,
            **{column: event.timestamp},
        )
    else:
        if session.room_id != room.pk:
            raise SessionOfAnotherRoom(
                f"session {event.session_id!r} is recorded in room {session.room_id}, not room "
                f"{room.pk}: not applied"
            )
        stored = getattr(session, column)
        if stored is not None and stored >= event.timestamp:
            return None
        changes: dict[str, object] = {column: event.timestamp, "updated_at": timezone.now()}
        if not session.member_id:
            changes["member_id"] = event.member_id
        if not session.user_id and event.user_id:
            changes["user_id"] = event.user_id
        if session.room_member_id is None:
            member = member_of(room, event, using)
            if member is not None:
                changes["room_member_id"] = member.pk
        sessions.filter(pk=session.pk).update(**changes)
        for name, value in changes.items():
            setattr(session, name, value)
    if room.counters_at is None or room.counters_at <= event.timestamp:
        # Between events of the same millisecond the later arrival wins.
        room.sessions_count = event.sessions_count
        room.members_count = event.members_count
        room.counters_at = event.timestamp
        room.usage_stale = True
        Room.objects.using(using).filter(pk=room.pk).update(
            sessions_count=room.sessions_count,
            members_count=room.members_count,
            counters_at=room.counters_at,
            usage_stale=True,
        )
    elif not room.usage_stale:
        room.usage_stale = True
        Room.objects.using(using).filter(pk=room.pk).update(usage_stale=True)
    return session


def member_of(room: Room, event: WebhookEvent, using: str) -> Member | None:
    """The room's member the event is about: by Pagecall member id, else by user id."""
    candidates = list(
        Member.objects.using(using)
        .filter(room_id=room.pk)
        .filter(Q(pagecall_id=event.member_id) | Q(user_id=event.user_id or None))
        .order_by("pk")
    )
    by_member_id = [m for m in candidates if m.pagecall_id == event.member_id]
    ranked = by_member_id or candidates
    return ranked[0] if ranked else None


def record(room: Room, event: WebhookEvent, using: str) -> Session | None:
    """:func:`apply_event`, then the room's meeting, and their signals once the transaction
    commits: ``meeting_started``, the session's signal, ``meeting_ended``, in that order."""
    session = apply_event(room, event, using)
    if session is None:
        return None
    started = start_meeting(room, session, using)
    if started is not None:
        send_on_commit(signals.meeting_started, using, room=room, started_at=started)
    announce(session, room, event, using)
    ended = end_meeting(room, event, using)
    if ended is not None:
        send_on_commit(
            signals.meeting_ended, using, room=room, started_at=ended[0], ended_at=ended[1]
        )
        refresh_on_commit(room, using)
    return session


def refresh_on_commit(room: Room, using: str) -> None:
    """After the commit, queue the count of the room's usage and its refresh from Pagecall (its
    meeting time, its end)."""
    from .. import tasks
    from ..sync.scheduling import enqueue_on_commit

    enqueue_on_commit(using, tasks.count_usage, room.pk, using)
    enqueue_on_commit(using, tasks.refresh_room, room.pk, using)


def start_meeting(room: Room, session: Session, using: str) -> datetime | None:
    """When ``session`` is open in a room that had no meeting going on: its start, now stored."""
    if room.meeting_started_at is not None or session.joined_at is None or session.left_at:
        return None
    room.meeting_started_at = session.joined_at
    Room.objects.using(using).filter(pk=room.pk).update(meeting_started_at=session.joined_at)
    return session.joined_at


def end_meeting(room: Room, event: WebhookEvent, using: str) -> tuple[datetime, datetime] | None:
    """When a ``sessionLeft`` closed the room's last open session: the meeting's start as it
    was announced and its end, the latest ``left_at`` since; the room then has no meeting."""
    started = room.meeting_started_at
    if started is None or event.action == SESSION_JOINED:
        return None
    found = (
        Session.objects.using(using)
        .filter(room_id=room.pk)
        .filter(Q(left_at__isnull=True) | Q(left_at__gte=started))
        .aggregate(
            open=Count("pk", filter=Q(left_at__isnull=True, joined_at__isnull=False)),
            last_left=Max("left_at"),
        )
    )
    if found["open"]:
        return None
    room.meeting_started_at = None
    Room.objects.using(using).filter(pk=room.pk).update(meeting_started_at=None)
    return started, found["last_left"] or event.timestamp


def send_on_commit(signal: Signal, using: str, **kwargs: Any) -> None:
    def send() -> None:  # a def, not functools.partial: robust=True needs a __qualname__
        signal.send(sender=Room, **kwargs)

    transaction.on_commit(send, using=using, robust=True)


def announce_delivery(delivery: WebhookDelivery, room: Room, event: Event, data: Any) -> None:
    """``webhook_received`` for a delivery processed for the first time, after the commit."""
    payload = data.get("payload") if isinstance(data, dict) else None
    using = delivery._state.db or "default"

    def send() -> None:
        signals.webhook_received.send(
            sender=WebhookDelivery,
            delivery=delivery,
            room=room,
            action=event.action,
            payload=payload,
        )

    transaction.on_commit(send, using=using, robust=True)


def signal_of(event: WebhookEvent) -> Signal:
    return signals.session_joined if event.action == SESSION_JOINED else signals.session_left


def announce(session: Session, room: Room, event: WebhookEvent, using: str) -> None:
    """Send the event's signal once the transaction that recorded it commits."""
    signal = signal_of(event)

    def send() -> None:  # a def, not functools.partial: robust=True needs a __qualname__
        signal.send(sender=Session, session=session, room=room)

    transaction.on_commit(send, using=using, robust=True)
