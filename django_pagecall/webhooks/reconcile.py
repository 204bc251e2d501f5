"""Sessions the webhooks missed, filled in from Pagecall's ``GET /rooms/{id}/sessions``.

For each room on Pagecall and not terminated, missing sessions are created (``source =
reconciled``) and an empty ``joined_at`` or ``left_at`` is filled in; what a webhook wrote is
never overwritten, and no signal is sent. Run by ``manage.py pagecall_sync --sessions``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from .. import remote
from ..client import get_client
from ..exceptions import PagecallError
from ..models import Member, Room, Session
from ..usage import count_room
from .effects import locked_room

logger = logging.getLogger(__name__)


@dataclass
class ReconcileResult:
    rooms: int = 0
    created: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)


def rooms_to_reconcile(using: str = "default", workspace: str | None = None) -> QuerySet[Room]:
    """Rooms on Pagecall that are not known to be terminated (of one workspace, when given)."""
    rooms = Room.objects.using(using).filter(pagecall_id__isnull=False, terminated_at__isnull=True)
    if workspace is not None:
        rooms = rooms.filter(workspace=workspace)
    return rooms.order_by("pk")


def reconcile_room(room: Room, using: str = "default") -> tuple[int, int]:
    """Bring one room's sessions in line with Pagecall's list; (created, updated).

    Raises :class:`~django_pagecall.exceptions.PagecallError` when Pagecall cannot be asked.
    """
    assert room.pagecall_id is not None
    listed = get_client(room.workspace).list_room_sessions(room.pagecall_id)
    if not listed:
        return 0, 0
    with transaction.atomic(using=using):
        # The room's lock, as webhooks take it: what is read below stays true until the commit.
        locked = locked_room(room.pk, using)
        if locked is None:
            return 0, 0
        created, updated = fill_in(locked, listed, using)
        if created or updated:
            Room.objects.using(using).filter(pk=room.pk).update(usage_stale=True)
    if created or updated:
        count_room(room.pk, using)
    if created or updated:
        logger.info(
            "Room %s: %s session(s) added and %s completed from Pagecall's list",
            room.pk,
            created,
            updated,
        )
    return created, updated


def fill_in(room: Room, listed: list[remote.Session], using: str) -> tuple[int, int]:
    """Create the sessions Pagecall lists that the site lacks and fill in empty times;
    (created, updated)."""
    sessions = Session.objects.using(using)
    known = {s.session_id: s for s in sessions.filter(session_id__in=[r.id for r in listed])}
    members = _members_by_key(room, listed, using)
    missing = [r for r in listed if r.id not in known]
    created = 0
    if missing:
        # No webhook of the room can insert one meanwhile: they wait for the room's lock.
        sessions.bulk_create([_new_session(room, r, members) for r in missing])
        created = len(missing)
    updated = 0
    for r in listed:
        local = known.get(r.id)
        if local is None:
            continue
        if local.room_id != room.pk:
            logger.warning(
                "Session %s is recorded for room %s, Pagecall lists it in room %s; left alone",
                r.id,
                local.room_id,
                room.pk,
            )
            continue
        # Only empty columns: what a webhook wrote is never undone.
        for column, value in (("joined_at", r.connected_at), ("left_at", r.disconnected_at)):
            if value is not None and getattr(local, column) is None:
                changes = {column: value, "updated_at": timezone.now()}
                updated += sessions.filter(pk=local.pk).update(**changes)
    return created, updated


def _members_by_key(room: Room, listed: list[remote.Session], using: str) -> dict[str, Member]:
    member_ids = {r.member_id for r in listed if r.member_id}
    user_ids = {r.user_id for r in listed if r.user_id}
    found: dict[str, Member] = {}
    for member in Member.objects.using(using).filter(
        Q(pagecall_id__in=member_ids) | Q(user_id__in=user_ids), room_id=room.pk
    ):
        found.setdefault(f"user:{member.user_id}", member)
        if member.pagecall_id:
            found[f"member:{member.pagecall_id}"] = member
    return found


def _new_session(room: Room, listed: remote.Session, members: dict[str, Member]) -> Session:
    member = members.get(f"member:{listed.member_id}") or members.get(f"user:{listed.user_id}")
    return Session(
        room=room,
        session_id=listed.id,
        member_id=listed.member_id or "",
        user_id=listed.user_id or "",
        room_member=member,
        joined_at=listed.connected_at,
        left_at=listed.disconnected_at,
        source=Session.Source.RECONCILED,
    )


def reconcile_sessions(
    rooms: Iterable[Room] | None = None,
    using: str = "default",
    progress: Callable[[Room], None] | None = None,
) -> ReconcileResult:
    """Reconcile ``rooms`` (default: :func:`rooms_to_reconcile`); a room Pagecall fails on is counted and skipped."""
    result = ReconcileResult()
    for room in rooms if rooms is not None else rooms_to_reconcile(using):
        try:
            created, updated = reconcile_room(room, using)
        except PagecallError as exc:
            result.errors.append(
                gettext("room %(pk)s (%(pagecall_id)s): %(error)s")
                % {"pk": room.pk, "pagecall_id": room.pagecall_id, "error": exc}
            )
            logger.warning("Could not reconcile the sessions of room %s: %s", room.pk, exc)
        else:
            result.created += created
            result.updated += updated
        result.rooms += 1
        if progress is not None:
            progress(room)
    return result
