"""Turning local rows into Pagecall calls, and Pagecall's answers back into rows.

This module owns the state machine that makes every task safe to run twice:

``pending`` --claim (compare-and-set, committed)--> ``creating`` --POST--> ``synced``
                                                                  \\-> ``failed`` (4xx, or too many attempts)

* A request that never left (:class:`PagecallTransientError`) puts the row
  back to ``pending`` and asks for a retry.
* An ambiguous outcome (:class:`PagecallAmbiguousError`) leaves the row
  ``creating`` with its lease expired; whoever runs next looks the room up by
  exact name among rooms created since the attempt began, adopts it if found,
  and only goes back to ``pending`` once it is known to be absent. A worker
  killed mid-call leaves the same state behind (its lease runs out).
* No database lock is held across a network call.

Tasks (:mod:`django_pagecall.tasks`) are thin wrappers around the functions
here; ``manage.py pagecall_sync`` calls them inline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone
from django.utils.module_loading import import_string

from . import signals
from .client import get_client
from .conf import pagecall_settings
from .exceptions import (
    PagecallAmbiguousError,
    PagecallError,
    PagecallRefused,
    PagecallResponseError,
    PagecallTransientError,
)
from .models import Member, PagecallUser, PendingAction, Room, RoomType, SyncState
from .resources import Member as RemoteMember
from .resources import Room as RemoteRoom
from .webhook_auth import headers_for_room

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)

T = TypeVar("T")


class RetryLater(Exception):
    """The work is not done and should be tried again later (the row says so too).

    ``countdown``, when given, is the earliest time a retry can make progress
    (a claim that has yet to run out).
    """

    def __init__(self, message: str, countdown: float | None = None) -> None:
        super().__init__(message)
        self.countdown = countdown


def _settle() -> tuple[Any, float]:
    """After an ambiguous outcome, when to look: once a request still in flight has landed."""
    grace = float(pagecall_settings.AMBIGUOUS_GRACE)
    return timezone.now() + timedelta(seconds=grace), grace


def _until(moment: Any) -> float:
    return max(float((moment - timezone.now()).total_seconds()), 0.0)


# -- scheduling (called from the models' save/delete) ------------------------------------------


def _enqueue(task_name: str, *args: Any) -> None:
    """Queue a task; if the broker cannot take it, log and leave the row for the sweep."""
    from . import tasks

    task = getattr(tasks, task_name)
    timeout = pagecall_settings.PUBLISH_TIMEOUT
    try:
        task.apply_async(
            args=args,
            retry=True,
            retry_policy={
                # Two more tries, half the budget apart; each connect is bounded by the broker's
                # socket timeouts (broker_transport_options, see the README).
                "max_retries": 2,
                "interval_start": timeout / 2,
                "interval_step": timeout / 2,
                "interval_max": timeout / 2,
            },
        )
    except Exception:
        logger.exception(
            "Could not queue %s%r: the broker is unreachable. The row stays pending; "
            "`manage.py pagecall_sync` or the periodic task django_pagecall.tasks.sync will send it.",
            task_name,
            args,
        )


def _on_commit(using: str, task_name: str, *args: Any) -> None:
    def enqueue() -> None:  # a def, not functools.partial: robust=True needs a __qualname__
        _enqueue(task_name, *args)

    transaction.on_commit(enqueue, using=using, robust=True)


def schedule_room_creation(room: Room) -> None:
    db = room._state.db or "default"
    _on_commit(db, "create_room", room.pk, db)


def schedule_room_update(room: Room) -> None:
    db = room._state.db or "default"
    _on_commit(db, "update_room", room.pk, db)


def schedule_remote_room_deletion(pagecall_id: str, *, using: str) -> None:
    if pagecall_settings.DELETE_REMOTE_ROOMS:
        _owe(PendingAction.Kind.DELETE_ROOM, pagecall_id, "", using)


def schedule_member_creation(member: Member) -> None:
    db = member._state.db or "default"
    _on_commit(db, "create_member", member.pk, db)


def schedule_member_update(member: Member) -> None:
    db = member._state.db or "default"
    _on_commit(db, "update_member", member.pk, db)


def schedule_member_block(room_pagecall_id: str, user_id: str, *, using: str) -> None:
    """A deleted member of a private room: the row is gone, so the call is kept as its own row."""
    _owe(PendingAction.Kind.BLOCK_MEMBER, room_pagecall_id, user_id, using)


def _owe(kind: str, room_pagecall_id: str, user_id: str, using: str) -> None:
    """Record a call in the deleting transaction, and queue it once that commits."""
    action = PendingAction.objects.using(using).create(
        kind=kind, room_pagecall_id=room_pagecall_id, user_id=user_id
    )
    _on_commit(using, "run_action", action.pk, using)


# -- helpers ----------------------------------------------------------------------------------


def lease_seconds() -> float:
    """How long a claim is valid: every transport attempt timing out, and then some."""
    s = pagecall_settings
    per_try = float(s.CONNECT_TIMEOUT) * (int(s.CONNECT_RETRIES) + 1) + float(s.READ_TIMEOUT)
    return per_try * 2 + 1


def _error_text(exc: PagecallError) -> str:
    """What is kept of a failure on the row: the message, and Pagecall's answer to a refusal.

    The body of a 2xx answer that could not be read is left out: it may be a user object with
    its access token.
    """
    text = str(exc)
    if exc.body and not (exc.status is not None and 200 <= exc.status < 300):
        text += f"\n{exc.body}"
    return text


def _mirror(remote: RemoteRoom) -> dict[str, Any]:
    """The local fields of a Room that come from Pagecall's Room object."""
    return {
        "application_id": remote.application_id or "",
        "layout": remote.layout or "",
        "thumbnail_url": remote.thumbnail_url or "",
        "meeting_time": remote.meeting_time,
        "started_at": remote.started_at,
        "terminated_at": remote.terminated_at,
        "pagecall_created_at": remote.created_at,
        "pagecall_updated_at": remote.updated_at,
    }


def user_id_for(site_user: AbstractBaseUser) -> str:
    """A site user's Pagecall user id: ``PAGECALL["USER_ID_FUNCTION"]`` or ``str(user.pk)``."""
    func = pagecall_settings.USER_ID_FUNCTION
    if func is None:
        return str(site_user.pk)
    resolved: Callable[[Any], Any] = import_string(func) if isinstance(func, str) else func
    return str(resolved(site_user))


def register_user(user_id: str, name: str = "", *, using: str = "default") -> PagecallUser:
    """``POST /users`` (an upsert at Pagecall) and keep the access token."""
    remote = get_client().create_user(user_id=user_id, name=name or None)
    user, _ = PagecallUser.objects.using(using).update_or_create(
        user_id=user_id,
        defaults={"name": remote.name or name, "access_token": remote.access_token or ""},
    )
    logger.info("Registered Pagecall user %s", user_id)
    return user


def _ensure_registered(members: list[Member], using: str) -> None:
    known = set(
        PagecallUser.objects.using(using)
        .filter(user_id__in=[m.user_id for m in members])
        .values_list("user_id", flat=True)
    )
    for member in members:
        if member.user_id not in known:
            register_user(member.user_id, member.name, using=using)


def access_token_for(room: Room, user: AbstractBaseUser | Member | str) -> str:
    """The access token of ``user``, registering them with Pagecall the first time."""
    using = room._state.db or "default"
    name = ""
    if isinstance(user, Member):
        user_id, name = user.user_id, user.name
    elif isinstance(user, str):
        user_id = user
    else:
        user_id = user_id_for(user)
        name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    known = (
        PagecallUser.objects.using(using).filter(user_id=user_id).exclude(access_token="").first()
    )
    if known is None:
        known = register_user(user_id, name, using=using)
    return known.access_token


# -- rooms ------------------------------------------------------------------------------------


@dataclass
class _Claim:
    room: Room
    lease_until: Any
    members: list[Member] = field(default_factory=list)


def create_room(room_pk: int, using: str = "default") -> None:
    """Bring one room to Pagecall. Safe to call any number of times, from any number of workers.

    Raises :class:`RetryLater` when the room is not done yet and not failed.
    """
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
    # name can then tell this room's Pagecall room from a namesake's.
    namesake_in_flight = Exists(
        Room.objects.using(using)
        .filter(name=OuterRef("name"), sync_state=SyncState.CREATING)
        .exclude(pk=OuterRef("pk"))
    )
    claimed = (
        Room.objects.using(using)
        .filter(pk=room.pk, sync_state=SyncState.PENDING)
        .exclude(namesake_in_flight)
        .update(
            sync_state=SyncState.CREATING,
            sync_attempts=F("sync_attempts") + 1,
            attempt_started_at=now,
            lease_until=lease,
        )
    )
    if not claimed:
        return None
    # What the UPDATE wrote, without reading the row back.
    room.sync_state = SyncState.CREATING
    room.sync_attempts += 1
    room.attempt_started_at = now
    room.lease_until = lease
    members = list(
        Member.objects.using(using).filter(room_id=room.pk, is_blocked=False).order_by("pk")
    )
    logger.info(
        "Creating room %s %r on Pagecall (attempt %s)", room.pk, room.name, room.sync_attempts
    )
    return _Claim(room=room, lease_until=lease, members=members)


def may_have_happened(exc: PagecallError) -> bool:
    """Whether a failed create may still have created something at Pagecall.

    Besides the ambiguous outcomes proper, a 5xx answer proves nothing about a request that has
    no idempotency key, and neither does a 2xx answer that could not be read.
    """
    if isinstance(exc, PagecallAmbiguousError | PagecallResponseError):
        return True
    return isinstance(exc, PagecallTransientError) and exc.status is not None and exc.status >= 500


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
                logger.warning(
                    "Room %s: created on Pagecall as %s but the claim was lost; not stored",
                    room.pk,
                    remote.id,
                )
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


def _apply_waiting_webhooks(room: Room, using: str) -> None:
    """Webhooks that arrived before the room's Pagecall id was stored (someone joined at once)."""
    from .webhooks import apply_waiting

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
    client = get_client()
    try:
        candidates = [
            r
            for r in client.list_rooms(name=room.name)
            if r.name == room.name and r.created_at is not None and r.created_at >= since
        ]
        taken = set(
            Room.objects.using(using)
            .filter(pagecall_id__in=[c.id for c in candidates])
            .values_list("pagecall_id", flat=True)
        )
        candidates = sorted(
            (c for c in candidates if c.id not in taken), key=lambda c: c.created_at or since
        )
        if len(candidates) > 1 or (candidates and _namesakes_in_flight(room, using)):
            # Another room of this name was sent meanwhile: adopting one of its Pagecall rooms
            # would bind this row to webhooks that authenticate as the other. Ask a person.
            ids = ", ".join(c.id for c in candidates)
            error = (
                f"the outcome of creating it is unknown and several rooms named {room.name!r} "
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
    """Another room of the same name that was sent and has no Pagecall id yet."""
    return (
        Room.objects.using(using)
        .filter(name=room.name, sync_state=SyncState.CREATING)
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
        room.refresh_from_db(using=using)
        signals.room_creation_failed.send(sender=Room, room=room, error=error)

    transaction.on_commit(announce, using=using, robust=True)


def retry_room(room: Room) -> None:
    """Send a failed room again (admin action, or by hand)."""
    using = room._state.db or "default"
    Room.objects.using(using).filter(pk=room.pk, sync_state=SyncState.FAILED).update(
        sync_state=SyncState.PENDING, sync_attempts=0
    )
    _on_commit(using, "create_room", room.pk, using)


def _send_update(
    model: type[Room] | type[Member],
    pk: int,
    using: str,
    sent: dict[str, Any],
    call: Callable[[], T],
    stored: Callable[[T], dict[str, Any]],
) -> None:
    """One idempotent PUT of the values ``sent``, then ``needs_update`` cleared, but only if the
    row still holds those values: a change made while the PUT was in flight is sent after it.

    A refusal is recorded and not retried; anything else raises :class:`RetryLater`.
    """
    rows = model.objects.using(using).filter(pk=pk)
    try:
        answer = call()
    except PagecallRefused as exc:
        logger.error("Pagecall refused the update of %s %s: %s", model._meta.model_name, pk, exc)
        changes = {"needs_update": False, "sync_error": _error_text(exc)}
    except PagecallError as exc:
        rows.update(sync_error=_error_text(exc))
        raise RetryLater(str(exc)) from exc
    else:
        logger.info("%s %s updated on Pagecall", model._meta.model_name, pk)
        changes = {"needs_update": False, "sync_error": "", **stored(answer)}
    if not rows.filter(**sent).update(**changes) and rows.update(needs_update=True):
        # Changed while ours was in flight, and maybe sent already, before ours landed: the
        # row's values must reach Pagecall after ours.
        _enqueue(f"update_{model._meta.model_name}", pk, using)


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


# -- members ----------------------------------------------------------------------------------


def create_member(member_pk: int, using: str = "default") -> None:
    """Add a member to a room that already exists on Pagecall (``POST /rooms/{id}/members``)."""
    member = Member.objects.using(using).select_related("room").filter(pk=member_pk).first()
    if member is None or member.room.pagecall_id is None:
        return  # gone, or its room is not created yet: the room's creation sends it
    now = timezone.now()
    if member.sync_state == SyncState.CREATING and member.lease_until and member.lease_until > now:
        raise RetryLater(
            f"member {member_pk} is claimed until {member.lease_until}",
            countdown=_until(member.lease_until),
        )
    if member.sync_state not in (SyncState.PENDING, SyncState.CREATING):
        return
    if member.sync_attempts >= pagecall_settings.MAX_ATTEMPTS:
        Member.objects.using(using).filter(pk=member.pk).update(
            sync_state=SyncState.FAILED, lease_until=None
        )
        logger.error("Member %s: gave up after %s attempts", member.pk, member.sync_attempts)
        return
    lease = now + timedelta(seconds=lease_seconds())
    claimed = (
        Member.objects.using(using)
        .filter(pk=member.pk, sync_state=member.sync_state, lease_until=member.lease_until)
        .update(
            sync_state=SyncState.CREATING,
            sync_attempts=F("sync_attempts") + 1,
            attempt_started_at=now,
            lease_until=lease,
        )
    )
    if not claimed:
        raise RetryLater(f"member {member_pk} changed under us")
    room_id = member.room.pagecall_id
    client = get_client()
    try:
        if member.sync_state == SyncState.CREATING:  # an expired claim: it may be there already
            remote = _find_member(room_id, member.user_id)
        else:
            remote = None
        if remote is None:
            if member.room.type == RoomType.PRIVATE:
                _ensure_registered([member], using)
            remote = client.create_member(room_id, user_id=member.user_id, type=member.type)
    except PagecallRefused as exc:
        Member.objects.using(using).filter(pk=member.pk, lease_until=lease).update(
            sync_state=SyncState.FAILED, lease_until=None, sync_error=_error_text(exc)
        )
        logger.error("Pagecall refused member %s of room %s: %s", member.pk, member.room_id, exc)
        return
    except PagecallError as exc:
        if may_have_happened(exc):
            settled, grace = _settle()
            Member.objects.using(using).filter(pk=member.pk, lease_until=lease).update(
                lease_until=settled, sync_error=_error_text(exc)
            )
            raise RetryLater(str(exc), countdown=grace) from exc
        Member.objects.using(using).filter(pk=member.pk, lease_until=lease).update(
            sync_state=SyncState.PENDING, lease_until=None, sync_error=_error_text(exc)
        )
        raise RetryLater(str(exc)) from exc
    # Stored as soon as it exists; the display name (not part of the create) and any change
    # made meanwhile follow as an update, which is idempotent.
    Member.objects.using(using).filter(pk=member.pk, lease_until=lease).update(
        sync_state=SyncState.SYNCED,
        pagecall_id=remote.id,
        lease_until=None,
        synced_at=timezone.now(),
        sync_error="",
        needs_update=Case(When(~Q(name=""), then=Value(True)), default=F("needs_update")),
    )
    logger.info("Member %s added to room %s on Pagecall", member.user_id, room_id)
    if Member.objects.using(using).filter(pk=member.pk, needs_update=True).exists():
        _enqueue("update_member", member.pk, using)


def _find_member(room_id: str, user_id: str) -> Any:
    try:
        return get_client().get_member(room_id, user_id)
    except PagecallRefused:  # Pagecall answers 400 for an unknown member
        return None


def update_member(member_pk: int, using: str = "default") -> None:
    """Send a member's new type, name or block (``PUT /rooms/{id}/members/{member_id}``)."""
    member = Member.objects.using(using).select_related("room").filter(pk=member_pk).first()
    if member is None or not member.needs_update or member.sync_state != SyncState.SYNCED:
        return  # a member not yet created is sent whole by its creation
    room = member.room
    room_id = room.pagecall_id
    assert room_id is not None

    def put() -> RemoteMember | None:
        if not member.is_blocked:
            return get_client().update_member(
                room_id, member.user_id, name=member.name or None, type=member.type
            )
        if room.type == RoomType.PRIVATE:
            return get_client().update_member(room_id, member.user_id, is_blocked=True)
        logger.warning(
            "Member %s removed from %s room %s: Pagecall blocks members of private rooms only",
            member.user_id,
            room.type,
            room.pk,
        )
        return None

    sent = {"name": member.name, "type": member.type, "is_blocked": member.is_blocked}
    _send_update(Member, member.pk, using, sent, put, lambda _: {})


def run_action(action_pk: int, using: str = "default") -> None:
    """Make a call owed for a deleted row (:class:`PendingAction`), then forget it."""
    action = PendingAction.objects.using(using).filter(pk=action_pk).first()
    if action is None:
        return  # done already
    PendingAction.objects.using(using).filter(pk=action.pk).update(attempts=F("attempts") + 1)
    client = get_client()
    try:
        if action.kind == PendingAction.Kind.BLOCK_MEMBER:
            client.update_member(action.room_pagecall_id, action.user_id, is_blocked=True)
        else:
            client.delete_room(action.room_pagecall_id)
    except PagecallRefused as exc:  # e.g. gone already: nothing more to do
        logger.warning("Pagecall refused %s: %s", action, exc)
    except PagecallError as exc:
        PendingAction.objects.using(using).filter(pk=action.pk).update(last_error=_error_text(exc))
        raise RetryLater(str(exc)) from exc
    else:
        logger.info("Done on Pagecall: %s", action)
    PendingAction.objects.using(using).filter(pk=action.pk).delete()


# -- the sweep --------------------------------------------------------------------------------


@dataclass
class SweepResult:
    done: int = 0
    retry: int = 0
    errors: list[str] = field(default_factory=list)


def pending_work(using: str = "default") -> list[tuple[str, int]]:
    """Everything that should reach Pagecall and has not: (function name, primary key)."""
    now = timezone.now()
    stuck = Q(sync_state=SyncState.PENDING) | Q(sync_state=SyncState.CREATING, lease_until__lte=now)
    work: list[tuple[str, int]] = []
    work += [
        ("create_room", pk)
        for pk in Room.objects.using(using).filter(stuck).values_list("pk", flat=True)
    ]
    work += [
        ("update_room", pk)
        for pk in Room.objects.using(using)
        .filter(sync_state=SyncState.SYNCED, needs_update=True)
        .values_list("pk", flat=True)
    ]
    work += [
        ("create_member", pk)
        for pk in Member.objects.using(using)
        .filter(stuck, room__pagecall_id__isnull=False)
        .values_list("pk", flat=True)
    ]
    work += [
        ("run_action", pk) for pk in PendingAction.objects.using(using).values_list("pk", flat=True)
    ]
    work += [
        ("update_member", pk)
        for pk in Member.objects.using(using)
        .filter(sync_state=SyncState.SYNCED, needs_update=True)
        .values_list("pk", flat=True)
    ]
    return work


def run(name: str, pk: int, using: str = "default") -> bool:
    """Run one unit of work inline; True when it is done, False when it wants a retry."""
    func = {
        "create_room": create_room,
        "update_room": update_room,
        "create_member": create_member,
        "update_member": update_member,
        "run_action": run_action,
    }[name]
    try:
        func(pk, using)
    except RetryLater as exc:
        logger.info("%s(%s) will be retried: %s", name, pk, exc)
        return False
    return True


def sweep(
    using: str = "default", progress: Callable[[str, int], None] | None = None
) -> SweepResult:
    """Run every unit of :func:`pending_work` inline (``pagecall_sync`` and the periodic task)."""
    result = SweepResult()
    for name, pk in pending_work(using):
        try:
            ok = run(name, pk, using)
        except PagecallError as exc:  # e.g. refresh failures: counted, the sweep goes on
            result.errors.append(f"{name}({pk}): {exc}")
            ok = False
        if ok:
            result.done += 1
        else:
            result.retry += 1
        if progress is not None:
            progress(name, pk)
    return result
