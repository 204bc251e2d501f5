"""Creating a room exactly once (claim, send, store, follow up), and its later updates.

:func:`create_room` is where a saved room becomes ``POST /rooms``; docs/how-sync-works.md
tells the states and why a room is never created twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Case, Exists, PositiveIntegerField, Q, Value, When
from django.utils import timezone

from .. import remote, signals
from ..client import get_client
from ..conf import pagecall_settings
from ..exceptions import PagecallError, PagecallRefused
from ..models import DeletedRoom, Member, Room, RoomType, SyncState
from ..webhooks.auth import headers_for_room
from . import outcomes
from .deletion import deleted_in_flight, forget_room, schedule_remote_room_deletion
from .outcomes import (
    RetryLater,
    error_text,
    may_have_happened,
    new_lease,
    seconds_until,
    settled_at,
)
from .scheduling import enqueue, enqueue_on_commit
from .updates import send_update
from .users import ensure_registered

logger = logging.getLogger("django_pagecall.sync")


def create_room(room_pk: int, using: str = "default") -> None:
    """Bring one room to Pagecall. Safe to call any number of times, from any number of workers.

    Raises :class:`RetryLater` when the room is not done yet and not failed.
    """
    for _ in range(3):  # claim, or resolve an expired claim, then act; bounded
        room = Room.objects.using(using).filter(pk=room_pk).first()
        if room is None:
            logger.info("Room %s is gone; nothing to create", room_pk)
            return
        if room.sync_state in (SyncState.SYNCED, SyncState.FAILED):
            return
        if room.sync_state == SyncState.CREATING:
            if room.lease_until is not None and room.lease_until > timezone.now():
                logger.info("Room %s is being created by another worker", room_pk)
                raise RetryLater(
                    f"room {room_pk} is claimed until {room.lease_until}",
                    countdown=seconds_until(room.lease_until),
                )
            if resolve_unknown_outcome(room, using):
                return
            continue  # known to be absent: back to pending, claim again
        if room.sync_attempts >= pagecall_settings.MAX_ATTEMPTS:
            give_up(room, using, f"gave up after {room.sync_attempts} attempts: {room.sync_error}")
            return
        outcomes.wait_for_configuration(Room.objects.using(using), room.pk, room.workspace)
        members = claim(room, using)
        if members is None:
            continue  # someone else changed the row first: look again
        send(room, members, using)
        return
    raise RetryLater(f"room {room_pk}: the row kept changing under us")


def claim(room: Room, using: str) -> list[Member] | None:
    """Claim a pending room for one attempt (committed before the call) and read the members
    that go with it; None when the row changed first.

    The claim writes the name it sends into ``name_in_flight``, unique: a namesake in flight
    refuses it, so that after an unknown outcome the lookup by that name finds this room's
    Pagecall room and no namesake's. A rename made since is sent afterwards, as an update.
    """
    now = timezone.now()
    lease = new_lease()
    # Not while a deleted row's attempt under this name may still land (in the same statement:
    # the common case pays no query for it).
    deleted_in_flight_now = DeletedRoom.objects.using(using).filter(
        name_in_flight=room.name, workspace=room.workspace, in_flight_until__gt=now
    )
    try:
        with transaction.atomic(using=using):
            claimed = (
                Room.objects.using(using)
                .exclude(Exists(deleted_in_flight_now))
                .claim(
                    room.pk,
                    lease,
                    now,
                    was={"sync_state": SyncState.PENDING},
                    name_in_flight=room.name,
                )
            )
    except IntegrityError:
        raise RetryLater(f"room {room.pk}: a room of the same name is being created") from None
    if not claimed:
        until = deleted_in_flight(room.name, room.workspace, using)
        if until is not None and until > now:
            raise RetryLater(
                f"room {room.pk}: a deleted room's attempt under the same name may still land",
                countdown=seconds_until(until),
            )
        return None
    room.sync_state = SyncState.CREATING
    room.sync_attempts += 1
    room.attempt_started_at = now
    room.lease_until = lease
    room.name_in_flight = room.name
    logger.log(
        logging.INFO if room.sync_attempts > 1 else logging.DEBUG,  # the outcome gets INFO
        "Creating room %s %r on Pagecall (attempt %s)",
        room.pk,
        room.name,
        room.sync_attempts,
    )
    return list(
        Member.objects.using(using).filter(room_id=room.pk, is_blocked=False).order_by("pk")
    )


def send(room: Room, members: list[Member], using: str) -> None:
    """``POST /rooms`` for a claimed room, and what its outcome leaves on the row."""
    rooms = Room.objects.using(using)
    try:
        if room.type == RoomType.PRIVATE:  # private rooms invite registered workspace users only
            ensure_registered(members, room.workspace, using)
            renewed = new_lease()  # registering took time: the POST gets a whole lease
            if not rooms.hold(room.pk, room.lease_until, renewed):
                raise RetryLater(f"room {room.pk}: the claim was lost before sending")
            room.lease_until = renewed
        webhook_url = pagecall_settings.WEBHOOK_URL
        created = get_client(room.workspace).create_room(
            name=room.name,
            type=room.type,
            record=room.record,
            max_meeting_seconds=room.max_meeting_seconds,
            members=[
                {"user_id": m.user_id, "type": m.type, "name": m.name or None} for m in members
            ],
            webhook_url=webhook_url,
            webhook_headers=headers_for_room(room.pk) if webhook_url else None,
        )
    except PagecallRefused as exc:
        fail(room, using, error_text(exc))
        return
    except PagecallError as exc:
        if may_have_happened(exc):
            # It may exist, or Pagecall may still be creating it: keep the claim until the
            # request has surely landed; whoever runs next looks before it sends again.
            until, grace = settled_at()
            rooms.hold(room.pk, room.lease_until, until, sync_error=error_text(exc))
            raise RetryLater(str(exc), countdown=grace) from exc
        # The request never left: sending it again is safe.
        rooms.settle(room.pk, room.lease_until, SyncState.PENDING, sync_error=error_text(exc))
        raise RetryLater(str(exc)) from exc
    store(room, created, using, [m.pk for m in members])


def store(room: Room, created: remote.Room, using: str, member_pks: list[int]) -> bool:
    """Record the room's Pagecall id once, mark the members sent with it, then follow up:
    webhooks that waited for the id, members added and changes made meanwhile.

    An answer the row cannot hold (an id longer than the column) fails the room with the
    error, so that it never blocks the sweep."""
    id_length = Room._meta.get_field("pagecall_id").max_length or 0
    if len(created.id) > id_length:
        fail(
            room,
            using,
            f"Pagecall answered an id of {len(created.id)} characters, over "
            f"the {id_length} kept: {created.id[:id_length]!r}...; not stored",
        )
        return False
    try:
        with transaction.atomic(using=using):
            stored = Room.objects.using(using).settle(
                room.pk,
                room.lease_until,
                SyncState.SYNCED,
                pagecall_id=created.id,
                synced_at=timezone.now(),
                sync_error="",
                # Renamed or terminated while it was being created: yet to be sent.
                needs_update=Case(
                    When(~Q(name=created.name) | Q(terminate_requested=True), then=Value(True)),
                    default=Value(False),
                ),
                **mirrored(created),
            )
            if not stored:
                not_stored(room, created, using)
                return False
            if member_pks:
                Member.objects.using(using).filter(
                    pk__in=member_pks, sync_state=SyncState.PENDING
                ).update(sync_state=SyncState.SYNCED, synced_at=timezone.now(), sync_error="")
            room.refresh_from_db(using=using)  # receivers get the row as stored

            def announce() -> None:
                signals.room_created.send(sender=Room, room=room)

            transaction.on_commit(announce, using=using, robust=True)
    except IntegrityError:
        logger.error("Room %s: Pagecall id %s already belongs to another room", room.pk, created.id)
        raise
    except DatabaseError as exc:  # what Pagecall answered does not fit: failed, not stuck
        fail(room, using, f"Pagecall's answer could not be stored: {type(exc).__name__}: {exc}")
        return False
    logger.info("Room %s %r is on Pagecall as %s", room.pk, room.name, created.id)
    apply_waiting_webhooks(room, using)
    follow_up(room, using)
    return True


def not_stored(room: Room, created: remote.Room, using: str) -> None:
    """Pagecall created the room, but the claim was lost meanwhile: the row was deleted, or
    (its lease run out) another worker holds it now and will find this Pagecall room by name."""
    if Room.objects.using(using).filter(pk=room.pk).exists():
        logger.warning(
            "Room %s: created on Pagecall as %s but the claim was lost; not stored",
            room.pk,
            created.id,
        )
        return
    logger.warning("Room %s was deleted while Pagecall created it as %s", room.pk, created.id)
    forget_room(created.id, created.created_at, using=using)
    # With DELETE_REMOTE_ROOMS only.
    schedule_remote_room_deletion(created.id, workspace=room.workspace, using=using)


def apply_waiting_webhooks(room: Room, using: str) -> None:
    """Webhooks that arrived before the room's Pagecall id was stored (someone joined at once)."""
    from ..webhooks import apply_waiting

    try:
        apply_waiting(room.pk, using)
    except Exception:  # the room is created; the deliveries stay waiting for pagecall_replay
        logger.exception("Room %s: applying the webhooks that waited for it failed", room.pk)


def follow_up(room: Room, using: str) -> None:
    """Members added, or changes made, while the room was being created."""
    from .. import tasks

    members = Member.objects.using(using).filter(
        Q(sync_state=SyncState.PENDING) | Q(sync_state=SyncState.SYNCED, needs_update=True),
        room_id=room.pk,
    )
    for member_pk, state in members.values_list("pk", "sync_state"):
        task = tasks.create_member if state == SyncState.PENDING else tasks.update_member
        enqueue(task, member_pk, using)
    if room.needs_update:
        enqueue(tasks.update_room, room.pk, using)


def resolve_unknown_outcome(room: Room, using: str) -> bool:
    """After an unknown outcome: adopt the room if Pagecall has it (True), else back to pending.

    Only a room of the name sent, created since the attempt began (less ``ADOPT_WINDOW``),
    that no other row has and whose row was not deleted, is adopted.
    """
    rooms = Room.objects.using(using)
    now = timezone.now()
    lease = new_lease()
    if not rooms.hold(room.pk, room.lease_until, lease):
        raise RetryLater(f"room {room.pk}: another worker is resolving it")
    room.lease_until = lease
    since = (room.attempt_started_at or now) - timedelta(seconds=outcomes.ADOPT_WINDOW)
    sent_name = room.name_in_flight or room.name
    # What a deleted row's attempt under this name created belongs to no row: not adopted.
    since = max(since, deleted_in_flight(sent_name, room.workspace, using) or since)
    try:
        client = get_client(room.workspace)
        candidates = [
            r
            for r in client.list_rooms(name=sent_name)
            if r.name == sent_name and r.created_at is not None and r.created_at >= since
        ]
        candidate_ids = [c.id for c in candidates]
        taken = set(
            rooms.filter(pagecall_id__in=candidate_ids).values_list("pagecall_id", flat=True)
        ) | set(
            DeletedRoom.objects.using(using)
            .filter(pagecall_id__in=candidate_ids)
            .values_list("pagecall_id", flat=True)
        )
        candidates = sorted(
            (c for c in candidates if c.id not in taken), key=lambda c: c.created_at or since
        )
        if len(candidates) > 1:
            # No other row sent this name while this one was in flight, so these come from
            # elsewhere (another site or a person using the workspace): adopting the wrong one
            # would bind this row to another room's meetings. Ask a person.
            ids = ", ".join(c.id for c in candidates)
            fail(
                room,
                using,
                f"the outcome of creating it is unknown and several rooms named {sent_name!r} "
                f"were created on Pagecall since ({ids}); the app cannot tell which is this one. "
                "Check them at Pagecall, then retry this room.",
            )
            return True
        if candidates:
            found = candidates[0]
            on_pagecall = {m.user_id for m in client.list_members(found.id)}
    except PagecallError as exc:
        rooms.hold(
            room.pk,
            lease,
            timezone.now(),
            sync_error=f"looking the room up failed: {error_text(exc)}",
        )
        raise RetryLater(str(exc)) from exc
    if candidates:
        logger.info("Room %s: the earlier attempt did create it (%s); adopting", room.pk, found.id)
        # The members that went with it are the ones Pagecall has; the rest are sent after.
        member_pks = list(
            Member.objects.using(using)
            .filter(room_id=room.pk, sync_state=SyncState.PENDING, user_id__in=on_pagecall)
            .values_list("pk", flat=True)
        )
        return store(room, found, using, member_pks)
    logger.info("Room %s: not found at Pagecall after an unknown outcome; sending again", room.pk)
    rooms.settle(room.pk, lease, SyncState.PENDING)
    return False


def fail(room: Room, using: str, error: str) -> None:
    """Pagecall refused the claimed room (or the app cannot tell which room is this one)."""
    with transaction.atomic(using=using):
        if Room.objects.using(using).settle(
            room.pk, room.lease_until, SyncState.FAILED, sync_error=error
        ):
            announce_failure(room, using, error)
    logger.error("Pagecall refused room %s %r: %s", room.pk, room.name, error)


def give_up(room: Room, using: str, error: str) -> None:
    with transaction.atomic(using=using):
        failed = (
            Room.objects.using(using)
            .filter(pk=room.pk, sync_state=SyncState.PENDING)
            .update(sync_state=SyncState.FAILED, sync_error=error)
        )
        if failed:
            announce_failure(room, using, error)
    logger.error("Room %s %r: %s", room.pk, room.name, error)


def announce_failure(room: Room, using: str, error: str) -> None:
    def announce() -> None:
        room.refresh_from_db(using=using)
        signals.room_creation_failed.send(sender=Room, room=room, error=error)

    transaction.on_commit(announce, using=using, robust=True)


def retry_room(room: Room) -> None:
    """Send a failed room again (admin action, or by hand)."""
    from .. import tasks

    using = room._state.db or "default"
    Room.objects.using(using).filter(pk=room.pk, sync_state=SyncState.FAILED).update(
        sync_state=SyncState.PENDING, sync_attempts=0
    )
    enqueue_on_commit(using, tasks.create_room, room.pk, using)


def fitted(name: str, value: Any) -> Any:
    """``value`` for the Room field ``name``, or blank when it cannot be kept there (too long,
    or a count out of range): one odd value from Pagecall never makes the row unwritable."""
    model_field = Room._meta.get_field(name)
    max_length = getattr(model_field, "max_length", None)
    too_long = isinstance(value, str) and max_length is not None and len(value) > max_length
    out_of_range = isinstance(model_field, PositiveIntegerField) and (
        isinstance(value, int) and not 0 <= value <= MAX_POSITIVE_INT
    )
    if not (too_long or out_of_range):
        return value
    logger.warning(
        "Pagecall's %s %s cannot be kept (%s); left blank",
        name,
        repr(value)[:80],
        f"{len(value)} characters, over {max_length}" if too_long else "out of range",
    )
    return None if model_field.null else ""


#: The largest value a PositiveIntegerField holds on every supported database.
MAX_POSITIVE_INT = 2**31 - 1


def mirrored(found: remote.Room) -> dict[str, Any]:
    """The local fields of a Room that come from Pagecall's Room object, each as it fits."""
    values = {
        "application_id": found.application_id or "",
        "layout": found.layout or "",
        "thumbnail_url": found.thumbnail_url or "",
        "meeting_time": found.meeting_time,
        "started_at": found.started_at,
        "terminated_at": found.terminated_at,
        "pagecall_created_at": found.created_at,
        "pagecall_updated_at": found.updated_at,
    }
    return {name: fitted(name, value) for name, value in values.items()}


def update_room(room_pk: int, using: str = "default") -> None:
    """Send a synced room's rename or termination (``PUT /rooms/{id}``); idempotent."""
    room = Room.objects.using(using).filter(pk=room_pk).first()
    if room is None or not room.pagecall_id or not room.needs_update:
        return
    pagecall_id = room.pagecall_id

    def put() -> remote.Room:
        client = get_client(room.workspace)
        application_id = room.application_id or client.get_room(pagecall_id).application_id
        return client.update_room(
            pagecall_id,
            application_id=application_id or "",
            name=room.name,
            is_terminated=True if room.terminate_requested else None,
        )

    sent = {"name": room.name, "terminate_requested": room.terminate_requested}
    send_update(Room, room.pk, using, sent, put, mirrored)


def refresh_room(room: Room) -> None:
    """Read the room back from Pagecall (``GET /rooms/{id}``) into its mirrored fields."""
    if not room.pagecall_id:
        return
    fields = mirrored(get_client(room.workspace).get_room(room.pagecall_id))
    for name, value in fields.items():
        setattr(room, name, value)
    Room.objects.using(room._state.db or "default").filter(pk=room.pk).update(**fields)
