"""From an authenticated webhook request to a stored delivery and its effects, and replays.

:func:`receive` is where a webhook becomes a session: the delivery, its session and its
room's counters are written in one transaction; a failure is stored on its own, for replay.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from django.db import InterfaceError, OperationalError, connections, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from ..models import DeliveryResult, DeliveryState, Room, WebhookDelivery
from .effects import SessionOfAnotherRoom, announce_delivery, locked_room, record
from .serializers import Event, InvalidBody, OtherEvent, claimed_room_id, load_json, validate

logger = logging.getLogger(__name__)

MASK: Final = "********"
# Header names that may carry credentials (Django's own list for settings, plus cookies).
#: Headers stored as they came. Every other header's value is masked: a rule that errs toward
#: masking, since a header a proxy or Pagecall adds may carry a credential under any name.
PLAIN_HEADERS: Final = frozenset(
    {
        "accept",
        "accept-encoding",
        "connection",
        "content-encoding",
        "content-length",
        "content-type",
        "date",
        "host",
        "traceparent",
        "transfer-encoding",
        "user-agent",
        "via",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-pagecall-room",
        "x-real-ip",
        "x-request-id",
    }
)
MAX_ERROR: Final = 2000
UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")
#: A delivery still ``received`` after this long was abandoned by a process that died.
STALE_AFTER: Final = timedelta(minutes=1)
#: Results of deliveries refused for their body (400, 413): they fail whenever they run, so
#: :func:`replayable` leaves them out.
UNPROCESSABLE: Final[tuple[str, ...]] = (
    DeliveryResult.INVALID,
    DeliveryResult.TOO_LARGE,
    DeliveryResult.UNREADABLE,
)
#: Results whose delivery is announced with ``webhook_received`` (once: not a duplicate).
ANNOUNCED: Final[tuple[str, ...]] = (DeliveryResult.APPLIED, DeliveryResult.UNKNOWN_ACTION)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the view answers: an HTTP status and a JSON body."""

    status: int
    body: dict[str, Any]


def masked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        db_text(str(k)): db_text(str(v)) if str(k).lower() in PLAIN_HEADERS else MASK
        for k, v in headers.items()
    }


def db_text(value: str) -> str:
    """``value`` as the database can store it, unstorable characters shown as U+FFFD.

    PostgreSQL's text and jsonb refuse NUL, and no UTF-8 database takes a lone surrogate.
    """
    return UNSTORABLE.sub("\ufffd", value)


def parse(raw: bytes) -> tuple[Any, Event | None, InvalidBody | None]:
    """The decoded body (None when it is not JSON), and the event or why there is none."""
    try:
        data = load_json(raw)
    except InvalidBody as exc:
        return None, None, exc
    try:
        return data, validate(data), None
    except InvalidBody as exc:
        return data, None, exc


def new_delivery(
    room: Room | None,
    raw: bytes,
    headers: Mapping[str, str],
    remote_addr: str | None,
    event: Event | None,
) -> WebhookDelivery:
    known = event if event is not None and not isinstance(event, OtherEvent) else None
    return WebhookDelivery(
        room=room,
        action=event.action if event else "",
        session_id=known.session_id if known else "",
        event_at=known.timestamp if known else None,
        headers=masked_headers(headers),
        body=db_text(raw.decode("utf-8", errors="replace")),
        remote_addr=remote_addr or None,
    )


def error_fields(exc: BaseException) -> dict[str, Any]:
    return {
        "error": db_text(f"{type(exc).__name__}: {exc}"[:MAX_ERROR]),
        "traceback": db_text("".join(traceback.format_exception(exc))),
    }


def answer(delivery: WebhookDelivery, invalid: InvalidBody | None = None) -> Outcome:
    if invalid is not None:
        return Outcome(400, {**invalid.as_json(), "delivery": delivery.pk})
    if delivery.state == DeliveryState.WAITING:
        return Outcome(202, {"status": delivery.state, "delivery": delivery.pk})
    return Outcome(
        200, {"status": delivery.state, "result": delivery.result, "delivery": delivery.pk}
    )


# -- the view's path --------------------------------------------------------------------------


def refuse_oversized(
    room_pk: int, size: int, headers: Mapping[str, str], remote_addr: str | None, using: str
) -> Outcome:
    """A body over ``WEBHOOK_MAX_BODY_SIZE``: stored as failed (``too_large``) without its body,
    answered 413."""
    from ..conf import pagecall_settings

    limit = int(pagecall_settings.WEBHOOK_MAX_BODY_SIZE)
    error = f"body of {size} bytes is over the limit of {limit} (not read)"
    return refuse(
        room_pk, headers, remote_addr, using, 413, DeliveryResult.TOO_LARGE, error, limit=limit
    )


def refuse(
    room_pk: int,
    headers: Mapping[str, str],
    remote_addr: str | None,
    using: str,
    status: int,
    result: str,
    error: str,
    raw: bytes = b"",
    **extra: Any,
) -> Outcome:
    """A body the app does not read (too large, chunked without a length, an encoding it does
    not take): stored as failed with what was received and why, answered ``status``."""
    room = Room.objects.using(using).filter(pk=room_pk).first()
    delivery = new_delivery(room, raw, headers, remote_addr, None)
    delivery.state, delivery.result, delivery.error = DeliveryState.FAILED, result, error
    delivery.save(using=using)
    logger.warning("Webhook for room %s refused: %s", room_pk, error)
    return Outcome(status, {"error": result, "detail": error, **extra, "delivery": delivery.pk})


def receive(
    room_pk: int, raw: bytes, headers: Mapping[str, str], remote_addr: str | None, using: str
) -> Outcome:
    """Store one authenticated webhook for the local room ``room_pk`` and apply it.

    The delivery, its session and its room's counters are written in one transaction. If the
    database connection was lost (or the transaction deadlocked), that runs once more on a new
    connection. If it fails, nothing of it
    stays: the delivery is stored as failed, with the error and its traceback, on its own, and
    the error is logged and raised again.
    """
    data, event, invalid = parse(raw)
    for attempt in (1, 2):
        try:
            return store_and_apply(room_pk, raw, data, event, invalid, headers, remote_addr, using)
        except Exception as exc:
            if attempt == 1 and reconnected(using, exc):
                # Nothing was written (the transaction never committed): safe to run again.
                logger.warning(
                    "Webhook for room %s: %s from the database (a lost connection, or a "
                    "deadlock); trying once more on a new connection",
                    room_pk,
                    type(exc).__name__,
                )
                continue
            stored = store_failure(room_pk, raw, headers, remote_addr, event, exc, using)
            logger.exception(
                "Webhook for room %s (%r %r) failed; stored as failed delivery %s for replay",
                room_pk,
                event.action if event else "invalid",
                getattr(event, "session_id", ""),
                stored.pk if stored else None,
            )
            raise
    raise AssertionError("unreachable")


def reconnected(using: str, exc: BaseException) -> bool:
    """After a failure outside a caller's transaction, whether it was the connection's (an
    ``OperationalError`` or ``InterfaceError``: lost, or a deadlock): then the connection is
    closed, and the next query opens a new one."""
    connection = connections[using]
    if connection.in_atomic_block:
        return False  # the caller's transaction is not this function's to replace
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    connection.close()
    return True


def store_and_apply(
    room_pk: int,
    raw: bytes,
    data: Any,
    event: Event | None,
    invalid: InvalidBody | None,
    headers: Mapping[str, str],
    remote_addr: str | None,
    using: str,
) -> Outcome:
    """One transaction: the delivery, its session and its room's counters."""
    with transaction.atomic(using=using):
        room = locked_room(room_pk, using)
        claimed = claimed_room_id(data)
        if room is not None and room.pagecall_id and claimed not in (None, room.pagecall_id):
            # The secret is this room's, the payload another's: refused, and not stored.
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
        delivery = new_delivery(room, raw, headers, remote_addr, event)
        if invalid is not None:
            delivery.state, delivery.result = DeliveryState.FAILED, DeliveryResult.INVALID
            delivery.error = db_text(str(invalid))
        elif room is None:  # deleted here; Pagecall goes on calling while its room exists
            delivery.state, delivery.result = DeliveryState.PROCESSED, DeliveryResult.ROOM_GONE
            delivery.processed_at = timezone.now()
            delivery.error = f"room {room_pk} no longer exists"
        elif not room.pagecall_id:
            # Kept until Pagecall's answer to POST /rooms is stored: the room's lock makes
            # the storing wait for this transaction, then apply it (apply_waiting).
            delivery.state = DeliveryState.WAITING
        else:
            assert event is not None
            try:
                delivery.result = apply(room, event, using)
            except SessionOfAnotherRoom as clash:  # nothing was written: kept, failed, flagged
                delivery.state, delivery.error = DeliveryState.FAILED, str(clash)
                logger.warning("Webhook for room %s: %s", room_pk, clash)
            else:
                delivery.state = DeliveryState.PROCESSED
                delivery.processed_at = timezone.now()
        delivery.save(using=using)
        if event is not None and delivery.result in ANNOUNCED:
            assert room is not None
            announce_delivery(delivery, room, event, data)
    log_received(delivery, room_pk, invalid)
    return answer(delivery, invalid)


def apply(room: Room, event: Event, using: str) -> str:
    """Apply ``event`` to ``room`` (under its lock) and send its signals on commit; the
    delivery's result."""
    if isinstance(event, OtherEvent):
        return DeliveryResult.UNKNOWN_ACTION
    return DeliveryResult.APPLIED if record(room, event, using) else DeliveryResult.DUPLICATE


def log_received(delivery: WebhookDelivery, room_pk: int, invalid: InvalidBody | None) -> None:
    if invalid is not None:
        # Values from the body are logged with repr: a line break in them forges no log line.
        logger.warning("Webhook %s for room %s is invalid: %r", delivery.pk, room_pk, str(invalid))
    elif delivery.result == DeliveryResult.ROOM_GONE:
        logger.info("Webhook %s: room %s no longer exists; ignored", delivery.pk, room_pk)
    elif delivery.state == DeliveryState.WAITING:
        logger.info(
            "Webhook %s for room %s kept until its Pagecall id is stored (%r)",
            delivery.pk,
            room_pk,
            delivery.action,
        )
    else:
        logger.debug(
            "Webhook %s: %r %r %s",
            delivery.pk,
            delivery.action,
            delivery.session_id,
            delivery.result,
        )


def store_failure(
    room_pk: int,
    raw: bytes,
    headers: Mapping[str, str],
    remote_addr: str | None,
    event: Event | None,
    exc: BaseException,
    using: str,
) -> WebhookDelivery | None:
    """Keep a delivery whose processing failed, so that it can be replayed: Pagecall does not
    send it again. A connection the failure left unusable is replaced first."""
    connection = connections[using]
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()
    try:
        room = Room.objects.using(using).filter(pk=room_pk).first()
        delivery = new_delivery(room, raw, headers, remote_addr, event)
        delivery.state = DeliveryState.FAILED
        for name, value in error_fields(exc).items():
            setattr(delivery, name, value)
        delivery.save(using=using)
    except Exception:  # e.g. the database is gone: the original error is what gets raised
        logger.exception("Could not store the failed webhook delivery for room %s", room_pk)
        return None
    return delivery


# -- stored deliveries ------------------------------------------------------------------------


def mark(delivery: WebhookDelivery, using: str, **fields: Any) -> None:
    """Record a replay's outcome on the row and the instance (one more attempt)."""
    WebhookDelivery.objects.using(using).filter(pk=delivery.pk).update(
        **fields, attempts=F("attempts") + 1
    )
    for name, value in fields.items():
        setattr(delivery, name, value)
    delivery.attempts += 1


def process_stored(delivery: WebhookDelivery, using: str | None = None) -> str:
    """Process a stored delivery again; returns its new state. Errors are recorded, not raised."""
    using = using or delivery._state.db or "default"
    if delivery.result in (DeliveryResult.TOO_LARGE, DeliveryResult.UNREADABLE):
        # Its body was never read: there is nothing to process, and the error says why.
        logger.warning("Webhook delivery %s cannot be replayed: %r", delivery.pk, delivery.error)
        mark(delivery, using, state=DeliveryState.FAILED)
        return delivery.state
    try:
        data = load_json(delivery.body.encode("utf-8"))
        event = validate(data)
    except InvalidBody as exc:
        mark(
            delivery,
            using,
            state=DeliveryState.FAILED,
            result=DeliveryResult.INVALID,
            error=db_text(str(exc)),
        )
        return delivery.state
    try:
        with transaction.atomic(using=using):
            room = locked_room(delivery.room_id, using) if delivery.room_id else None
            if room is None:
                mark(
                    delivery,
                    using,
                    state=DeliveryState.PROCESSED,
                    result=DeliveryResult.ROOM_GONE,
                    processed_at=timezone.now(),
                    error="the room no longer exists",
                )
            elif not room.pagecall_id:
                if delivery.state != DeliveryState.WAITING:
                    mark(delivery, using, state=DeliveryState.WAITING, result="")
            elif event.room_id is not None and event.room_id != room.pagecall_id:
                # Typically a room created twice on Pagecall by an ambiguous retry.
                error = (
                    f"payload.roomId {event.room_id!r} is not room {room.pk}'s "
                    f"Pagecall id {room.pagecall_id!r}"
                )
                logger.warning("Webhook delivery %s not applied: %s", delivery.pk, error)
                mark(delivery, using, state=DeliveryState.FAILED, result="", error=error)
            else:
                result = apply(room, event, using)
                # Announced once: an unknown action has no session to tell a duplicate by.
                announced = result == DeliveryResult.APPLIED or (
                    result == DeliveryResult.UNKNOWN_ACTION
                    and delivery.state != DeliveryState.PROCESSED
                )
                mark(
                    delivery,
                    using,
                    state=DeliveryState.PROCESSED,
                    result=result,
                    processed_at=timezone.now(),
                    error="",
                    traceback="",
                )
                if announced:
                    announce_delivery(delivery, room, event, data)
    except Exception as exc:
        logger.exception("Webhook delivery %s failed again", delivery.pk)
        mark(delivery, using, state=DeliveryState.FAILED, result="", **error_fields(exc))
    return delivery.state


def apply_waiting(room_pk: int, using: str = "default") -> int:
    """Apply the deliveries kept for ``room_pk`` until its Pagecall id was known; how many.

    Call it once the room's ``pagecall_id`` is committed. A delivery that fails is marked
    ``failed`` and logged; the others still run.
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
        text = gettext(
            "%(processed)d processed, %(waiting)d waiting for their room's Pagecall id, "
            "%(failed)d failed"
        ) % {"processed": self.processed, "waiting": self.waiting, "failed": self.failed}
        if self.unprocessable:
            text += " " + gettext(
                "(%(count)d refused for an invalid or too large body: replaying cannot process "
                "them)"
            ) % {"count": self.unprocessable}
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
