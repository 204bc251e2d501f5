"""From an authenticated webhook request to a stored delivery and its effects, and replays of stored ones.

Owns the life of a :class:`~django_pagecall.models.WebhookDelivery`:

* :func:`receive` (the view's path). On PostgreSQL the common case (a valid
  event for a room whose Pagecall id is stored) is one statement, the
  function of migration 0005 (:func:`.queries.receive_postgresql`): the
  delivery is stored as processed in the same transaction as its effects, so
  neither is ever stored without the other. If that statement fails, nothing
  of it is written; the delivery is then stored as ``failed`` with the error
  and traceback, and the error is logged and raised again. Everything else
  (an invalid body, a room gone, waiting or not the payload's, and any other
  backend) takes the general path: look the room up, validate, store the
  delivery (committed, state ``received``), then apply it
  (:func:`.effects.apply_event`: the effects and the delivery marked
  ``processed``, all or nothing), a failure marking it ``failed``. A delivery
  still ``received`` later means the process died while applying it; the
  replay picks those up.
* A delivery for a room whose Pagecall id is not stored yet is stored as
  ``waiting``: the room itself is known (its primary key is authenticated),
  but the payload's ``roomId`` cannot be checked until Pagecall's answer to
  ``POST /rooms`` is stored. :func:`apply_waiting` applies them then.
* :func:`process_stored` and :func:`replay` run stored deliveries again (admin
  action, ``manage.py pagecall_replay``); effects are idempotent, so running
  one twice changes nothing the second time.
* A delivery refused for its body (answered 400, or 413 without being read) is
  stored as ``failed`` with the result ``invalid`` or ``too_large``. Running it
  again cannot help, so :func:`replayable` (what ``pagecall_replay`` runs by
  default) leaves it out; replayed by name, it fails again and says why.

A request refused for its credentials is never stored (the view refuses it
before this module is called), nor is one whose ``roomId`` belongs to
another room. Header values that look like secrets are masked before storage.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from django.db import connections
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from ..models import DeliveryResult, DeliveryState, Room, Session, WebhookDelivery
from .effects import announce, apply_event, has_receivers
from .queries import APPLIED, DUPLICATE, insert_delivery, load_room, receive_postgresql
from .serializers import InvalidBody, WebhookEvent, claimed_room_id, load_json, validate

logger = logging.getLogger(__name__)

MASK: Final = "********"
# Header names that may carry credentials (Django's own list for settings, plus cookies).
_SECRET_NAME: Final = re.compile(r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|COOKIE", re.IGNORECASE)
_MAX_ERROR: Final = 2000
_TEXT_FIELDS: Final = frozenset({"error", "traceback"})
_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")
#: A delivery still ``received`` after this long was abandoned by a process that died.
STALE_AFTER: Final = timedelta(minutes=1)
#: Results of deliveries refused for their body (400, 413): they fail whenever they run, so
#: :func:`replayable` leaves them out.
UNPROCESSABLE: Final[tuple[str, ...]] = (DeliveryResult.INVALID, DeliveryResult.TOO_LARGE)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the view answers: an HTTP status and a JSON body."""

    status: int
    body: dict[str, Any]


def masked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        db_text(str(k)): MASK if _SECRET_NAME.search(str(k)) else db_text(str(v))
        for k, v in headers.items()
    }


def db_text(value: str) -> str:
    """``value`` as the database can store it, unstorable characters shown as U+FFFD.

    PostgreSQL's text and jsonb refuse NUL, and no UTF-8 database takes a lone
    surrogate; a body or an error message quoting one (a stray byte, a
    ``\\u0000`` or ``\\ud800`` escape in a field) would otherwise fail the insert.
    """
    return _UNSTORABLE.sub("\ufffd", value)


def _store(
    using: str,
    room: Room | None,
    raw: bytes,
    headers: Mapping[str, str],
    remote_addr: str | None,
    event: WebhookEvent | None,
    **fields: Any,
) -> WebhookDelivery:
    delivery = WebhookDelivery(
        room=room,
        action=event.action if event else "",
        session_id=event.session_id if event else "",
        event_at=event.timestamp if event else None,
        headers=masked_headers(headers),
        body=db_text(raw.decode("utf-8", errors="replace")),
        remote_addr=remote_addr or None,
        **{k: db_text(v) if k in _TEXT_FIELDS else v for k, v in fields.items()},
    )
    insert_delivery(delivery, using)
    return delivery


def _answer(delivery: WebhookDelivery) -> Outcome:
    if delivery.state == DeliveryState.WAITING:
        return Outcome(202, {"status": delivery.state, "delivery": delivery.pk})
    return _processed(delivery.state, delivery.result, delivery.pk)


def _processed(state: str, result: str, delivery_pk: int | None) -> Outcome:
    return Outcome(200, {"status": state, "result": result, "delivery": delivery_pk})


# -- the view's path --------------------------------------------------------------------------


def refuse_oversized(
    room_pk: int, size: int, headers: Mapping[str, str], remote_addr: str | None, using: str
) -> Outcome:
    """A body over ``WEBHOOK_MAX_BODY_SIZE``: stored as failed (``too_large``) without its body,
    answered 413."""
    from ..conf import pagecall_settings

    limit = int(pagecall_settings.WEBHOOK_MAX_BODY_SIZE)
    room = load_room(room_pk, using)
    error = f"body of {size} bytes is over the limit of {limit} (not read)"
    delivery = _store(
        using,
        room,
        b"",
        headers,
        remote_addr,
        None,
        state=DeliveryState.FAILED,
        result=DeliveryResult.TOO_LARGE,
        error=error,
    )
    logger.warning("Webhook for room %s refused: %s", room_pk, error)
    return Outcome(
        413, {"error": "too_large", "detail": error, "limit": limit, "delivery": delivery.pk}
    )


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A body decoded and validated once, for whichever path takes it."""

    data: Any  # the decoded JSON; None when the body is not JSON
    event: WebhookEvent | None
    error: InvalidBody | None  # why there is no event

    @classmethod
    def of(cls, raw: bytes) -> _Parsed:
        try:
            data = load_json(raw)
        except InvalidBody as exc:
            return cls(None, None, exc)
        try:
            return cls(data, validate(data), None)
        except InvalidBody as exc:
            return cls(data, None, exc)


def receive(
    room_pk: int, raw: bytes, headers: Mapping[str, str], remote_addr: str | None, using: str
) -> Outcome:
    """Store and process one authenticated webhook for the local room ``room_pk``."""
    parsed = _Parsed.of(raw)
    if parsed.event is not None and connections[using].vendor == "postgresql":
        outcome = _receive_in_one_statement(room_pk, raw, parsed.event, headers, remote_addr, using)
        if outcome is not None:
            return outcome
    room = load_room(room_pk, using)
    claimed = claimed_room_id(parsed.data)
    if room is not None and room.pagecall_id and claimed not in (None, room.pagecall_id):
        # The secret is this room's, the payload another's: refused, and not stored. This is
        # answered before the body's own faults.
        logger.warning(
            "Webhook refused: room %s (%s) received an event for Pagecall room %r",
            room.pk,
            room.pagecall_id,
            (claimed or "")[:64],
        )
        return Outcome(
            403,
            {
                "error": "room_mismatch",
                "detail": "payload.roomId is not the room these credentials are for.",
            },
        )
    if parsed.error is not None:
        delivery = _store(
            using,
            room,
            raw,
            headers,
            remote_addr,
            None,
            state=DeliveryState.FAILED,
            result=DeliveryResult.INVALID,
            error=str(parsed.error),
        )
        logger.warning("Webhook %s for room %s is invalid: %s", delivery.pk, room_pk, parsed.error)
        return Outcome(400, {**parsed.error.as_json(), "delivery": delivery.pk})
    event = parsed.event
    assert event is not None  # no error, so validated

    if room is None:
        # Deleted here; Pagecall goes on calling as long as its room exists.
        delivery = _store(
            using,
            None,
            raw,
            headers,
            remote_addr,
            event,
            state=DeliveryState.PROCESSED,
            result=DeliveryResult.ROOM_GONE,
            processed_at=timezone.now(),
            error=f"room {room_pk} no longer exists",
        )
        logger.info("Webhook %s: room %s no longer exists; ignored", delivery.pk, room_pk)
        return _answer(delivery)

    if not room.pagecall_id:
        return _wait(room, raw, headers, remote_addr, event, using)

    # Stored (and committed) before it is applied: if this process dies now, the row says so.
    delivery = _store(using, room, raw, headers, remote_addr, event, state=DeliveryState.RECEIVED)
    try:
        apply_event(room, event, delivery, using)
    except Exception as exc:
        _record_failure(delivery, exc, using)
        logger.exception(
            "Webhook delivery %s for room %s (%s %s) failed; stored as failed for replay",
            delivery.pk,
            room.pk,
            event.action,
            event.session_id,
        )
        raise
    logger.debug(
        "Webhook %s: %s %s %s", delivery.pk, event.action, event.session_id, delivery.result
    )
    return _answer(delivery)


def _receive_in_one_statement(
    room_pk: int,
    raw: bytes,
    event: WebhookEvent,
    headers: Mapping[str, str],
    remote_addr: str | None,
    using: str,
) -> Outcome | None:
    """The common case on PostgreSQL: a valid event for a room with its Pagecall id, stored and
    applied by one statement (:func:`.queries.receive_postgresql`).

    ``None`` means nothing was written and the general path must take it: a room that is gone,
    has no Pagecall id yet, or is not the payload's. (An invalid body never comes here.)
    """
    body = db_text(raw.decode("utf-8", errors="replace"))
    now = timezone.now()
    try:
        received = receive_postgresql(
            room_pk,
            event,
            masked_headers(headers),
            body,
            remote_addr or None,
            now,
            using,
            rows=has_receivers(event),
        )
    except Exception as exc:
        # Nothing of it was written (one statement): store the delivery as failed, for replay.
        delivery = _store_failure(using, room_pk, raw, headers, remote_addr, event, exc)
        logger.exception(
            "Webhook delivery %s for room %s (%s %s) failed; stored as failed for replay",
            delivery.pk if delivery else None,
            room_pk,
            event.action,
            event.session_id,
        )
        raise
    if received.outcome not in (APPLIED, DUPLICATE):
        return None
    if received.session is not None and received.room is not None:
        announce(received.session, received.room, event, using)
    elif received.outcome == APPLIED and has_receivers(event):
        # Connected while the statement ran: the rows were not asked for, so read them now.
        session = Session.objects.using(using).get(session_id=event.session_id)
        announce(session, session.room, event, using)
    logger.debug(
        "Webhook %s: %s %s %s",
        received.delivery_pk,
        event.action,
        event.session_id,
        received.outcome,
    )
    return _processed(DeliveryState.PROCESSED.value, received.outcome, received.delivery_pk)


def _store_failure(
    using: str,
    room_pk: int,
    raw: bytes,
    headers: Mapping[str, str],
    remote_addr: str | None,
    event: WebhookEvent,
    exc: BaseException,
) -> WebhookDelivery | None:
    try:
        return _store(
            using,
            load_room(room_pk, using),
            raw,
            headers,
            remote_addr,
            event,
            state=DeliveryState.FAILED,
            **_error_fields(exc),
        )
    except Exception:  # e.g. the database is gone: the original error is what gets raised
        logger.exception("Could not store the failed webhook delivery for room %s", room_pk)
        return None


def _wait(
    room: Room,
    raw: bytes,
    headers: Mapping[str, str],
    remote_addr: str | None,
    event: WebhookEvent,
    using: str,
) -> Outcome:
    delivery = _store(using, room, raw, headers, remote_addr, event, state=DeliveryState.WAITING)
    logger.info(
        "Webhook %s for room %s kept until its Pagecall id is stored (%s)",
        delivery.pk,
        room.pk,
        event.action,
    )
    # The id may have been stored (and apply_waiting run) between our look-up and our insert:
    # look once more, so that no delivery is left waiting for a call that already happened.
    if Room.objects.using(using).filter(pk=room.pk, pagecall_id__isnull=False).exists():
        process_stored(delivery, using)
    return _answer(delivery)


def _error_fields(exc: BaseException) -> dict[str, Any]:
    return {
        "error": f"{type(exc).__name__}: {exc}"[:_MAX_ERROR],
        "traceback": "".join(traceback.format_exception(exc)),
    }


def _record_failure(delivery: WebhookDelivery, exc: BaseException, using: str) -> None:
    try:
        _mark(delivery, using, state=DeliveryState.FAILED, result="", **_error_fields(exc))
    except Exception:  # e.g. the database is gone: the original error is what gets raised
        logger.exception("Could not record the failure of webhook delivery %s", delivery.pk)


# -- stored deliveries ------------------------------------------------------------------------


def _mark(delivery: WebhookDelivery, using: str, *, replay: bool = False, **fields: Any) -> None:
    fields = {k: db_text(v) if k in _TEXT_FIELDS else v for k, v in fields.items()}
    extra: dict[str, Any] = {"attempts": F("attempts") + 1} if replay else {}
    WebhookDelivery.objects.using(using).filter(pk=delivery.pk).update(**fields, **extra)
    for name, value in fields.items():
        setattr(delivery, name, value)
    if replay:
        delivery.attempts += 1


def process_stored(delivery: WebhookDelivery, using: str | None = None) -> str:
    """Process a stored delivery again; returns its new state. Errors are recorded, not raised."""
    using = using or delivery._state.db or "default"
    if delivery.result == DeliveryResult.TOO_LARGE:
        # Its body was never read: there is nothing to process, and the error says why.
        logger.warning("Webhook delivery %s cannot be replayed: %s", delivery.pk, delivery.error)
        _mark(delivery, using, replay=True, state=DeliveryState.FAILED)
        return delivery.state
    room = (
        Room.objects.using(using).filter(pk=delivery.room_id).first() if delivery.room_id else None
    )
    try:
        event = validate(load_json(delivery.body.encode("utf-8")))
    except InvalidBody as exc:
        # Also marks the invalid deliveries stored before the ``invalid`` result existed.
        _mark(
            delivery,
            using,
            replay=True,
            state=DeliveryState.FAILED,
            result=DeliveryResult.INVALID,
            error=str(exc),
        )
        return delivery.state
    if room is None:
        _mark(
            delivery,
            using,
            replay=True,
            state=DeliveryState.PROCESSED,
            result=DeliveryResult.ROOM_GONE,
            processed_at=timezone.now(),
            error="the room no longer exists",
        )
        return delivery.state
    if not room.pagecall_id:
        if delivery.state != DeliveryState.WAITING:
            _mark(delivery, using, replay=True, state=DeliveryState.WAITING, result="")
        return delivery.state
    if event.room_id != room.pagecall_id:
        # Typically a room created twice on Pagecall by an ambiguous retry: both carry our headers.
        error = (
            f"payload.roomId {event.room_id!r} is not room {room.pk}'s "
            f"Pagecall id {room.pagecall_id!r}"
        )
        logger.warning("Webhook delivery %s not applied: %s", delivery.pk, error)
        _mark(delivery, using, replay=True, state=DeliveryState.FAILED, result="", error=error)
        return delivery.state
    try:
        apply_event(room, event, delivery, using, replay=True)
    except Exception as exc:
        logger.exception("Webhook delivery %s failed again", delivery.pk)
        _mark(
            delivery,
            using,
            replay=True,
            state=DeliveryState.FAILED,
            result="",
            **_error_fields(exc),
        )
    return delivery.state


def apply_waiting(room_pk: int, using: str = "default") -> int:
    """Apply the deliveries kept for ``room_pk`` until its Pagecall id was known; returns how many.

    Call it once the room's ``pagecall_id`` is committed (sync does, after
    storing Pagecall's answer to ``POST /rooms``). A delivery that fails is
    marked ``failed`` (error and traceback kept) and logged; the others still
    run. It raises only when the database itself fails; the deliveries then
    stay ``waiting`` for ``manage.py pagecall_replay``.
    """
    applied = 0
    waiting = WebhookDelivery.objects.using(using).filter(
        room_id=room_pk, state=DeliveryState.WAITING
    )
    for delivery in waiting.order_by("received_at", "pk"):
        if process_stored(delivery, using) == DeliveryState.PROCESSED:
            applied += 1
    if applied:
        logger.info(
            "Room %s: applied %s webhook(s) kept while it was being created", room_pk, applied
        )
    return applied


@dataclass
class ReplayResult:
    processed: int = 0
    waiting: int = 0
    failed: int = 0
    #: Of the failed: deliveries refused for their body, which no replay can process.
    unprocessable: int = 0

    def add(self, state: str, result: str = "") -> None:
        if state == DeliveryState.PROCESSED:
            self.processed += 1
        elif state == DeliveryState.WAITING:
            self.waiting += 1
        else:
            self.failed += 1
            if result in UNPROCESSABLE:
                self.unprocessable += 1

    def __str__(self) -> str:
        text = (
            f"{self.processed} processed, {self.waiting} waiting for their room's "
            f"Pagecall id, {self.failed} failed"
        )
        if self.unprocessable:
            text += (
                f" ({self.unprocessable} refused for an invalid or too large body: "
                "replaying cannot process them)"
            )
        return text


def replay(deliveries: Iterable[WebhookDelivery], using: str | None = None) -> ReplayResult:
    """Process each delivery again (any state: a processed one is a duplicate and changes nothing)."""
    result = ReplayResult()
    for delivery in deliveries:
        result.add(process_stored(delivery, using), delivery.result)
    return result


def replayable(using: str = "default") -> QuerySet[WebhookDelivery]:
    """What ``pagecall_replay`` runs again, oldest first: failed and waiting deliveries, and
    received ones abandoned by a process that died (older than :data:`STALE_AFTER`).

    Deliveries refused for their body (results in :data:`UNPROCESSABLE`) are left out: they
    fail whenever they run. They can still be replayed by name."""
    return WebhookDelivery.objects.using(using).filter(replayable_q()).order_by("received_at", "pk")


def replayable_q() -> Q:
    """The condition of :func:`replayable`, for filtering another queryset (the admin's)."""
    abandoned = Q(state=DeliveryState.RECEIVED, received_at__lt=timezone.now() - STALE_AFTER)
    return (Q(state__in=[DeliveryState.FAILED, DeliveryState.WAITING]) | abandoned) & ~Q(
        result__in=UNPROCESSABLE
    )
