"""Deleting old webhook deliveries (and, when asked, old sessions) by primary-key batches, each
batch its own short transaction, so that no lock is held long (docs/webhooks.md#retention).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Final

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..models import DeliveryState, Session, WebhookDelivery

#: Rows deleted per statement: small enough that each DELETE holds its locks briefly.
BATCH_SIZE: Final = 500
#: After each batch, a rest this many times as long as the batch took: on a machine the
#: webhooks share, the prune then takes at most half of its time (docs/performance.md).
PAUSE: Final = 1.0
#: The longest rest, whatever a batch took.
MAX_PAUSE: Final = 1.0
#: What is pruned by default; the rest waits for a replay unless ``include_failed``.
PRUNED_BY_DEFAULT: Final = (DeliveryState.PROCESSED,)
KEPT_FOR_REPLAY: Final = (DeliveryState.FAILED, DeliveryState.WAITING, DeliveryState.RECEIVED)


def retention_days() -> int:
    from ..conf import pagecall_settings

    return int(pagecall_settings.DELIVERY_RETENTION_DAYS)


def prunable_deliveries(
    using: str, older_than: timedelta, *, include_failed: bool = False
) -> QuerySet[WebhookDelivery]:
    """Deliveries received before ``older_than`` ago: the processed ones, and with
    ``include_failed`` also those that failed or wait (kept for replaying otherwise)."""
    states = PRUNED_BY_DEFAULT + (KEPT_FOR_REPLAY if include_failed else ())
    cutoff = timezone.now() - older_than
    return WebhookDelivery.objects.using(using).filter(state__in=states, received_at__lt=cutoff)


def prunable_sessions(using: str, older_than: timedelta) -> QuerySet[Session]:
    """Sessions that joined and left before ``older_than`` ago (through the join time's index)."""
    cutoff = timezone.now() - older_than
    return Session.objects.using(using).filter(
        joined_at__lt=cutoff, left_at__isnull=False, left_at__lt=cutoff
    )


def delete_in_batches(
    queryset: QuerySet[WebhookDelivery] | QuerySet[Session],
    *,
    batch_size: int = BATCH_SIZE,
    pause: float = PAUSE,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Delete what ``queryset`` selects, ``batch_size`` primary keys at a time, resting ``pause``
    times as long as each batch took (at most ``MAX_PAUSE`` seconds) before the next; how many.

    Each batch's keys are read after the last batch's, then deleted by their range with the same
    condition in its own transaction, so a row that changed in between (a delivery replayed) is
    left alone. Reading on from the last key skips the rows already deleted, which a database
    that has not vacuumed yet would otherwise walk again for every batch."""
    using = queryset.db
    deleted, after = 0, None
    while True:
        started = time.monotonic()
        page = queryset if after is None else queryset.filter(pk__gt=after)
        pks = list(page.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not pks:
            return deleted
        with transaction.atomic(using=using):
            count, _ = queryset.filter(pk__gte=pks[0], pk__lte=pks[-1]).order_by().delete()
        deleted, after = deleted + count, pks[-1]
        if on_batch is not None:
            on_batch(count)
        if len(pks) < batch_size:
            return deleted
        if pause > 0:
            time.sleep(min(pause * (time.monotonic() - started), MAX_PAUSE))


def prune_deliveries(
    using: str = "default",
    *,
    days: int | None = None,
    include_failed: bool = False,
    batch_size: int = BATCH_SIZE,
    pause: float = PAUSE,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Delete the deliveries older than ``days`` (default ``DELIVERY_RETENTION_DAYS``; 0 keeps
    everything); how many were deleted."""
    days = retention_days() if days is None else days
    if days <= 0:
        return 0
    queryset = prunable_deliveries(using, timedelta(days=days), include_failed=include_failed)
    return delete_in_batches(queryset, batch_size=batch_size, pause=pause, on_batch=on_batch)
