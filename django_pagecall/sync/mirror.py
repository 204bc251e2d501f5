"""Keeping the mirror true: a room read back from Pagecall after its meeting ends, and rooms that
exist on Pagecall but not in the site brought in with their members (docs/commands.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from .. import remote
from ..client import get_client
from ..conf import DEFAULT_WORKSPACE
from ..exceptions import PagecallError, PagecallRefused
from ..models import DeletedRoom, Member, MemberType, Room, RoomType, SyncState
from .outcomes import RetryLater, error_text
from .rooms import mirrored, refresh_room

logger = logging.getLogger("django_pagecall.sync")


def refresh(room_pk: int, using: str = "default") -> None:
    """Read one room back from Pagecall (``GET /rooms/{id}``); what a meeting's end queues.

    Raises :class:`RetryLater` when Pagecall did not answer; a refusal is logged and ends it."""
    room = Room.objects.using(using).filter(pk=room_pk).first()
    if room is None or not room.pagecall_id:
        return
    try:
        refresh_room(room)
    except PagecallRefused as exc:
        logger.warning("Room %s: refreshing it from Pagecall was refused: %s", room_pk, exc)
    except PagecallError as exc:
        raise RetryLater(error_text(exc)) from exc


@dataclass
class ImportResult:
    imported: int = 0
    members: int = 0
    #: Already in the site (or deleted from it), or created here meanwhile.
    skipped: int = 0
    failed: int = 0

    def add(self, other: ImportResult) -> None:
        self.imported += other.imported
        self.members += other.members
        self.skipped += other.skipped
        self.failed += other.failed

    def __str__(self) -> str:
        return gettext(
            "%(imported)d room(s) imported with %(members)d member(s), %(skipped)d already in "
            "the site, %(failed)d failed"
        ) % {
            "imported": self.imported,
            "members": self.members,
            "skipped": self.skipped,
            "failed": self.failed,
        }


def rooms_to_import(
    using: str = "default",
    *,
    workspace: str = DEFAULT_WORKSPACE,
    since: datetime | None = None,
    until: datetime | None = None,
    include_terminated: bool = False,
) -> list[remote.Room]:
    """The workspace's rooms on Pagecall created in ``[since, until)`` that no row here has (nor
    had: a room deleted here is not brought back), read page by page; terminated ones on request."""
    listed = get_client(workspace).list_rooms(is_terminated=None if include_terminated else False)
    candidates = [
        r
        for r in listed
        if (include_terminated or r.terminated_at is None)
        and (since is None or (r.created_at is not None and r.created_at >= since))
        and (until is None or (r.created_at is not None and r.created_at < until))
    ]
    taken: set[str | None] = set()  # ids, and names in flight
    for start in range(0, len(candidates), 500):  # bounded IN lists
        taken.update(taken_here(candidates[start : start + 500], using, workspace))
    return [r for r in candidates if r.id not in taken and (r.name or r.id) not in taken]


def taken_here(page: list[remote.Room], using: str, workspace: str) -> set[str | None]:
    """The ids of ``page`` that a row has or had, and the names in flight among theirs: a room
    being created here is on Pagecall before its id is stored here, under a name in flight."""
    ids = [r.id for r in page]
    in_flight = Q(workspace=workspace, name_in_flight__in=[r.name for r in page if r.name])
    # Rooms first, then deleted rooms: a deletion moves a row from one to the other at once.
    taken = {
        value
        for pair in Room.objects.using(using)
        .filter(Q(pagecall_id__in=ids) | in_flight)
        .values_list("pagecall_id", "name_in_flight")
        for value in pair
    }
    taken.update(
        value
        for pair in DeletedRoom.objects.using(using)
        .filter(Q(pagecall_id__in=ids) | in_flight & Q(in_flight_until__gt=timezone.now()))
        .values_list("pagecall_id", "name_in_flight")
        for value in pair
    )
    return taken


def import_room(
    found: remote.Room, using: str = "default", workspace: str = DEFAULT_WORKSPACE
) -> int | None:
    """Save one Pagecall room of ``workspace`` here, already synced, with its members; how many
    members, or None when a row has it by now. Nothing is sent to Pagecall."""
    # Read before the transaction, so that no lock is held while Pagecall answers.
    members = list(get_client(workspace).list_members(found.id))
    now = timezone.now()
    room_type = found.type if found.type in RoomType.values else RoomType.PUBLIC
    try:
        with transaction.atomic(using=using):
            room = Room(
                name=(found.name or found.id)[:255],
                workspace=workspace,
                type=room_type,
                record=True if found.record is None else found.record,
                pagecall_id=found.id,
                sync_state=SyncState.SYNCED,
                synced_at=now,
                **mirrored(found),
            )
            room.save(using=using)
            saved = 0
            for user_id, member in unique_members(members).items():
                Member(
                    room=room,
                    user_id=user_id,
                    type=member.type if member.type in MemberType.values else MemberType.GUEST,
                    name=(member.name or "")[:255],
                    pagecall_id=member.id,
                    sync_state=SyncState.SYNCED,
                    synced_at=now,
                ).save(using=using)
                saved += 1
    except IntegrityError:
        logger.info("Pagecall room %s is in the site already; not imported", found.id)
        return None
    logger.info("Imported Pagecall room %s as room %s (%s members)", found.id, room.pk, saved)
    return saved


def unique_members(members: Iterable[remote.Member]) -> dict[str, remote.Member]:
    """One per user id (the site's key for a member); anonymous ones have none and are left."""
    seen: dict[str, remote.Member] = {}
    for member in members:
        if member.user_id and member.user_id not in seen:
            seen[member.user_id] = member
    return seen


def import_rooms(
    rooms: Iterable[remote.Room],
    using: str = "default",
    on_room: Callable[[], None] | None = None,
    workspace: str = DEFAULT_WORKSPACE,
) -> ImportResult:
    result = ImportResult()
    for found in rooms:
        try:
            members = import_room(found, using, workspace)
        except PagecallError as exc:
            logger.error("Pagecall room %s: not imported: %s", found.id, exc)
            result.failed += 1
        else:
            if members is None:
                result.skipped += 1
            else:
                result.imported += 1
                result.members += members
        if on_room is not None:
            on_room()
    return result
