"""Creating a room exactly once (claim, send, store or resolve), and its later updates."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone

from .. import signals
from ..client import get_client
from ..conf import pagecall_settings
from ..db import field_names, savepoint_if_nested
from ..exceptions import (
    PagecallError,
    PagecallRefused,
)
from ..models import DeletedRoom, Member, Room, RoomType, SyncState
from ..resources import Room as RemoteRoom
from ..webhook_auth import headers_for_room
from . import queries
from .base import (
    RetryLater,
    _enqueue,
    _error_text,
    _mirror,
    _on_commit,
    _send_update,
    _settle,
    _until,
    forget_room,
    lease_seconds,
    may_have_happened,
    schedule_remote_room_deletion,
)
from .users import _ensure_registered

logger = logging.getLogger("django_pagecall.sync")


@dataclass
class _Claim:
    room: Room
    lease_until: Any
    members: list[Member] = field(default_factory=list)


def create_room(room_pk: int, using: str = "default") -> None:
    """Bring one room to Pagecall. Safe to call any number of times, from any number of workers.

    Raises :class:`RetryLater` when the room is not done yet and not failed.
    """
    if queries.supported(using):
        # The usual case, a pending room, in one statement; anything else is decided below.
        claim = _claim_in_one_statement(room_pk, using)
        if claim is not None:
            _send_create(claim, using)
            return
    for _ in range(3):  # claim, or resolve an expired claim, then act; bounded
        room = Room.objects.using(using).filter(pk=room_pk).first()
        if room is None:
            logger.info("Room %s is gone; nothing to create", room_pk)
            return
        now = timezone.now()
        if room.sync_state in (SyncState.SYNCED, SyncState.FAILED):
            return
        if room.sync_state == SyncState.CREATING:
            if room.lease_until is not None and room.lease_until > now:
                logger.info("Room %s is being created by another worker", room_pk)
                raise RetryLater(
                    f"room {room_pk} is claimed until {room.lease_until}",
                    countdown=_until(room.lease_until),
                )
            if _resolve_ambiguous(room, using):
                return
            continue  # known to be absent: back to pending, claim again
        if room.sync_attempts >= pagecall_settings.MAX_ATTEMPTS:
            _give_up(room, using, f"gave up after {room.sync_attempts} attempts: {room.sync_error}")
            return
        claim = _claim(room, using)
        if claim is None:
            if _namesakes_in_flight(room, using):
                raise RetryLater(f"room {room_pk}: a room of the same name is being created")
            continue  # someone else changed the row first: look again
        _send_create(claim, using)
        return
    raise RetryLater(f"room {room_pk}: the row kept changing under us")


def _claim(room: Room, using: str) -> _Claim | None:
    now = timezone.now()
    lease = now + timedelta(seconds=lease_seconds())
    # One room of a given name in flight at a time: after an unknown outcome, the lookup by
    # the name sent can then tell this room's Pagecall room from a namesake's. The name sent
    # is the one read here (a rename since is sent after the creation, as an update).
    namesake_in_flight = Exists(
        Room.objects.using(using)
        .filter(sent_name=room.name, sync_state=SyncState.CREATING)
        .exclude(pk=OuterRef("pk"))
    )
    try:
        with savepoint_if_nested(using):
            claimed = (
                Room.objects.using(using)
                .filter(pk=room.pk, sync_state=SyncState.PENDING)
                .exclude(namesake_in_flight)
                .update(
                    sync_state=SyncState.CREATING,
                    sync_attempts=F("sync_attempts") + 1,
                    attempt_started_at=now,
                    lease_until=lease,
                    sent_name=room.name,
                )
            )
    except IntegrityError:  # a namesake claimed at the same moment (the unique index)
        return None
    if not claimed:
        return None
    # What the UPDATE wrote, without reading the row back.
    room.sync_state = SyncState.CREATING
    room.sync_attempts += 1
    room.attempt_started_at = now
    room.lease_until = lease
    room.sent_name = room.name
    members = list(
        Member.objects.using(using).filter(room_id=room.pk, is_blocked=False).order_by("pk")
    )
    _log_attempt(room)
    return _Claim(room=room, lease_until=lease, members=members)


def _log_attempt(room: Room) -> None:
    """A first attempt is logged at DEBUG (its outcome gets the INFO line); a retry at INFO."""
    logger.log(
        logging.INFO if room.sync_attempts > 1 else logging.DEBUG,
        "Creating room %s %r on Pagecall (attempt %s)",
        room.pk,
        room.name,
        room.sync_attempts,
    )


def _claim_in_one_statement(room_pk: int, using: str) -> _Claim | None:
    """:func:`_claim` of a pending room with attempts left, without reading the row first
    (PostgreSQL); None when it did not claim the room, whatever the reason."""
    now = timezone.now()
    lease = now + timedelta(seconds=lease_seconds())
    claimed = queries.claim(room_pk, using, now, lease, int(pagecall_settings.MAX_ATTEMPTS))
    if claimed is None:
        return None
    room = claimed.room
    _log_attempt(room)
    return _Claim(room=room, lease_until=room.lease_until, members=claimed.members)


def _renew(claim: _Claim, using: str) -> None:
    lease = timezone.now() + timedelta(seconds=lease_seconds())
    renewed = (
        Room.objects.using(using)
        .filter(pk=claim.room.pk, sync_state=SyncState.CREATING, lease_until=claim.lease_until)
        .update(lease_until=lease)
    )
    if not renewed:
        raise RetryLater(f"room {claim.room.pk}: the claim was lost before sending")
    claim.lease_until = lease


def _send_create(claim: _Claim, using: str) -> None:
    room = claim.room
    client = get_client()
    try:
        if room.type == RoomType.PRIVATE:  # private rooms invite registered workspace users only
            _ensure_registered(claim.members, using)
            _renew(claim, using)  # registering took time: the POST gets a whole lease
        webhook_url = pagecall_settings.WEBHOOK_URL
        remote = client.create_room(
            name=room.name,
            type=room.type,
            record=room.record,
            max_meeting_seconds=room.max_meeting_seconds,
            members=[
                {"user_id": m.user_id, "type": m.type, "name": m.name or None}
                for m in claim.members
            ],
            webhook_url=webhook_url,
            webhook_headers=headers_for_room(room.pk) if webhook_url else None,
        )
    except PagecallRefused as exc:
        _fail(room, using, claim.lease_until, _error_text(exc))
        return
    except PagecallError as exc:
        if may_have_happened(exc):
            # It may exist, or Pagecall may still be creating it: keep the claim until the
            # request has surely landed, then whoever runs next looks before it sends again.
            settled, grace = _settle()
            Room.objects.using(using).filter(
                pk=room.pk, sync_state=SyncState.CREATING, lease_until=claim.lease_until
            ).update(lease_until=settled, sync_error=_error_text(exc))
            raise RetryLater(str(exc), countdown=grace) from exc
        # The request never left: sending it again is safe.
        Room.objects.using(using).filter(
            pk=room.pk, sync_state=SyncState.CREATING, lease_until=claim.lease_until
        ).update(sync_state=SyncState.PENDING, lease_until=None, sync_error=_error_text(exc))
        raise RetryLater(str(exc)) from exc
    _store_created(room, remote, using, claim.lease_until, [m.pk for m in claim.members])


def _store_created(
    room: Room, remote: RemoteRoom, using: str, lease_until: Any, member_pks: list[int]
) -> bool:
    """Record the room's Pagecall id (once), mark the members sent with it, then follow up."""
    if queries.supported(using):
        return _store_created_on_postgresql(room, remote, using, lease_until, member_pks)
    try:
        with transaction.atomic(using=using):
            stored = (
                Room.objects.using(using)
                .filter(pk=room.pk, sync_state=SyncState.CREATING, lease_until=lease_until)
                .update(
                    pagecall_id=remote.id,
                    sync_state=SyncState.SYNCED,
                    synced_at=timezone.now(),
                    lease_until=None,
                    sync_error="",
                    # Renamed or terminated while it was being created: yet to be sent.
                    needs_update=Case(
                        When(~Q(name=remote.name) | Q(terminate_requested=True), then=Value(True)),
                        default=Value(False),
                    ),
                    **_mirror(remote),
                )
            )
            if not stored:
                _not_stored(room, remote, using)
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
        logger.error("Room %s: Pagecall id %s already belongs to another room", room.pk, remote.id)
        raise
    logger.info("Room %s %r is on Pagecall as %s", room.pk, room.name, remote.id)
    _apply_waiting_webhooks(room, using)
    _follow_up(room, using)
    return True


def _store_created_on_postgresql(
    room: Room, remote: RemoteRoom, using: str, lease_until: Any, member_pks: list[int]
) -> bool:
    """:func:`_store_created` on PostgreSQL: the same writes and follow-ups, in one round trip
    when nothing needs the row as stored, else in two statements.

    The follow-ups are looked for once the row is committed, as on the ORM path: a member
    or a webhook that arrives in the meantime finds the Pagecall id, or is found here.
    The one round trip (a procedure that commits between the two) is taken outside a
    transaction and when ``room_created`` has no receivers: receivers get the row as the
    storing statement returned it, sent as soon as it is committed, before anything else
    can fail.
    """
    stored: Room | None = None
    found: queries.FollowUps | None = None  # found by the procedure
    try:
        if queries.can_commit_inside(using) and not signals.room_created.has_listeners(Room):
            done = queries.store_and_follow_up(
                room.pk, remote, lease_until, member_pks, timezone.now(), using
            )
            is_stored, needs_update, found = done.stored, done.needs_update, done.follow_ups
        else:
            stored = queries.store(room.pk, remote, lease_until, member_pks, timezone.now(), using)
            is_stored = stored is not None
            needs_update = bool(stored and stored.needs_update)
    except IntegrityError:
        logger.error("Room %s: Pagecall id %s already belongs to another room", room.pk, remote.id)
        raise
    if not is_stored:
        _not_stored(room, remote, using)
        return False
    if stored is not None:

        def announce() -> None:
            signals.room_created.send(sender=Room, room=stored)  # the row as stored

        transaction.on_commit(announce, using=using, robust=True)
    logger.info("Room %s %r is on Pagecall as %s", room.pk, room.name, remote.id)
    if found is None:
        found = queries.follow_ups(room.pk, using)
    if found.deliveries_waiting:
        _apply_waiting_webhooks(room, using)
    for member_pk, task_name in found.members:
        _enqueue(task_name, member_pk, using)
    if needs_update:
        _enqueue("update_room", room.pk, using)
    return True


def _not_stored(room: Room, remote: RemoteRoom, using: str) -> None:
    """Pagecall created the room, but the claim was lost meanwhile: the row was deleted, or
    (its lease run out) another worker holds it now and will find this Pagecall room by name."""
    if Room.objects.using(using).filter(pk=room.pk).exists():
        logger.warning(
            "Room %s: created on Pagecall as %s but the claim was lost; not stored",
            room.pk,
            remote.id,
        )
        return
    logger.warning("Room %s was deleted while Pagecall created it as %s", room.pk, remote.id)
    forget_room(remote.id, remote.created_at, using=using)
    schedule_remote_room_deletion(remote.id, using=using)  # with DELETE_REMOTE_ROOMS only


def _apply_waiting_webhooks(room: Room, using: str) -> None:
    """Webhooks that arrived before the room's Pagecall id was stored (someone joined at once)."""
    from ..webhooks import apply_waiting

    try:
        apply_waiting(room.pk, using)
    except Exception:  # the room is created; the deliveries stay waiting for pagecall_replay
        logger.exception("Room %s: applying the webhooks that waited for it failed", room.pk)


def _follow_up(room: Room, using: str) -> None:
    """Members added, or changes made, while the room was being created."""
    members = Member.objects.using(using).filter(
        Q(sync_state=SyncState.PENDING) | Q(sync_state=SyncState.SYNCED, needs_update=True),
        room_id=room.pk,
    )
    for member_pk, state in members.values_list("pk", "sync_state"):
        _enqueue(
            "create_member" if state == SyncState.PENDING else "update_member", member_pk, using
        )
    if room.needs_update:
        _enqueue("update_room", room.pk, using)


def _resolve_ambiguous(room: Room, using: str) -> bool:
    """After an unknown outcome: adopt the room if Pagecall has it (True), else back to pending."""
    now = timezone.now()
    lease = now + timedelta(seconds=lease_seconds())
    claimed = (
        Room.objects.using(using)
        .filter(pk=room.pk, sync_state=SyncState.CREATING, lease_until=room.lease_until)
        .update(lease_until=lease)
    )
    if not claimed:
        raise RetryLater(f"room {room.pk}: another worker is resolving it")
    since = (room.attempt_started_at or now) - timedelta(seconds=pagecall_settings.ADOPT_WINDOW)
    sent_name = room.sent_name if room.sent_name is not None else room.name
    client = get_client()
    try:
        candidates = [
            r
            for r in client.list_rooms(name=sent_name)
            if r.name == sent_name and r.created_at is not None and r.created_at >= since
        ]
        candidate_ids = [c.id for c in candidates]
        taken = set(
            Room.objects.using(using)
            .filter(pagecall_id__in=candidate_ids)
            .values_list("pagecall_id", flat=True)
        ) | set(
            DeletedRoom.objects.using(using)
            .filter(pagecall_id__in=candidate_ids)
            .values_list("pagecall_id", flat=True)
        )
        candidates = sorted(
            (c for c in candidates if c.id not in taken), key=lambda c: c.created_at or since
        )
        if len(candidates) > 1:
            # No other row sent this name while this one was in flight (the unique index on
            # names in flight), so these come from elsewhere: another site or a person using
            # the same workspace. Adopting the wrong one would bind this row to another room's
            # meetings. Ask a person.
            ids = ", ".join(c.id for c in candidates)
            error = (
                f"the outcome of creating it is unknown and several rooms named {sent_name!r} "
                f"were created on Pagecall since ({ids}); the app cannot tell which is this one. "
                "Check them at Pagecall, then retry this room."
            )
            _fail(room, using, lease, error)
            return True
        if candidates:
            remote = candidates[0]
            on_pagecall = {m.user_id for m in client.list_members(remote.id)}
    except PagecallError as exc:
        Room.objects.using(using).filter(pk=room.pk, lease_until=lease).update(
            lease_until=timezone.now(), sync_error=f"looking the room up failed: {_error_text(exc)}"
        )
        raise RetryLater(str(exc)) from exc
    if candidates:
        logger.info("Room %s: the earlier attempt did create it (%s); adopting", room.pk, remote.id)
        # The members that went with it are the ones Pagecall has; the rest are sent after.
        member_pks = list(
            Member.objects.using(using)
            .filter(room_id=room.pk, sync_state=SyncState.PENDING, user_id__in=on_pagecall)
            .values_list("pk", flat=True)
        )
        return _store_created(room, remote, using, lease, member_pks)
    logger.info("Room %s: not found at Pagecall after an unknown outcome; sending again", room.pk)
    Room.objects.using(using).filter(pk=room.pk, lease_until=lease).update(
        sync_state=SyncState.PENDING, lease_until=None
    )
    return False


def _namesakes_in_flight(room: Room, using: str) -> bool:
    """Another room sent under this room's name that has no Pagecall id yet."""
    return (
        Room.objects.using(using)
        .filter(sent_name=room.name, sync_state=SyncState.CREATING)
        .exclude(pk=room.pk)
        .exists()
    )


def _fail(room: Room, using: str, lease_until: Any, error: str) -> None:
    with transaction.atomic(using=using):
        failed = (
            Room.objects.using(using)
            .filter(pk=room.pk, sync_state=SyncState.CREATING, lease_until=lease_until)
            .update(sync_state=SyncState.FAILED, lease_until=None, sync_error=error)
        )
        if failed:
            _announce_failure(room, using, error)
    logger.error("Pagecall refused room %s %r: %s", room.pk, room.name, error)


def _give_up(room: Room, using: str, error: str) -> None:
    with transaction.atomic(using=using):
        failed = (
            Room.objects.using(using)
            .filter(pk=room.pk, sync_state=SyncState.PENDING)
            .update(sync_state=SyncState.FAILED, sync_error=error)
        )
        if failed:
            _announce_failure(room, using, error)
    logger.error("Room %s %r: %s", room.pk, room.name, error)


def _announce_failure(room: Room, using: str, error: str) -> None:
    def announce() -> None:
        # Every field: a room claimed on PostgreSQL comes with only those sending it reads.
        room.refresh_from_db(using=using, fields=field_names(Room))
        signals.room_creation_failed.send(sender=Room, room=room, error=error)

    transaction.on_commit(announce, using=using, robust=True)


def retry_room(room: Room) -> None:
    """Send a failed room again (admin action, or by hand)."""
    using = room._state.db or "default"
    Room.objects.using(using).filter(pk=room.pk, sync_state=SyncState.FAILED).update(
        sync_state=SyncState.PENDING, sync_attempts=0
    )
    _on_commit(using, "create_room", room.pk, using)


def update_room(room_pk: int, using: str = "default") -> None:
    """Send a synced room's rename or termination (``PUT /rooms/{id}``); idempotent."""
    room = Room.objects.using(using).filter(pk=room_pk).first()
    if room is None or not room.pagecall_id or not room.needs_update:
        return
    pagecall_id = room.pagecall_id
    client = get_client()

    def put() -> RemoteRoom:
        application_id = room.application_id or client.get_room(pagecall_id).application_id
        return client.update_room(
            pagecall_id,
            application_id=application_id or "",
            name=room.name,
            is_terminated=True if room.terminate_requested else None,
        )

    sent = {"name": room.name, "terminate_requested": room.terminate_requested}
    _send_update(Room, room.pk, using, sent, put, _mirror)


def refresh_room(room: Room) -> None:
    """Read the room back from Pagecall (``GET /rooms/{id}``) into its mirrored fields."""
    if not room.pagecall_id:
        return
    remote = get_client().get_room(room.pagecall_id)
    for name, value in _mirror(remote).items():
        setattr(room, name, value)
    Room.objects.using(room._state.db or "default").filter(pk=room.pk).update(**_mirror(remote))
