"""How an attempt ended, in the terms every part of the sync uses: retry later, refused,
never left, or unknown; and what of an error is kept on the row."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.utils import timezone

from .. import client
from ..conf import pagecall_settings
from ..exceptions import (
    PagecallAmbiguousError,
    PagecallError,
    PagecallResponseError,
    PagecallTransientError,
    WorkspaceNotConfigured,
)
from ..models import SyncState

logger = logging.getLogger("django_pagecall.sync")

#: After an unknown outcome, seconds to wait before looking the room up, so that a request
#: Pagecall is still processing lands first.
AMBIGUOUS_GRACE = 30.0
#: The lookup adopts a room created up to this many seconds before the attempt began (clock skew).
ADOPT_WINDOW = 120.0


class RetryLater(Exception):
    """The work is not done and should be tried again later (the row says so too).

    ``countdown``, when given, is the earliest time a retry can make progress (a claim that
    has yet to run out).
    """

    def __init__(self, message: str, countdown: float | None = None) -> None:
        super().__init__(message)
        self.countdown = countdown


def wait_for_configuration(rows: QuerySet[Any], pk: int, workspace: str) -> None:
    """Raise ``ImproperlyConfigured`` before a claim when a setting the call needs is missing
    or malformed, with the error kept on the pending row: the row waits for the settings (the
    sweep sends it once they are right), spending no attempt and sending nothing."""
    try:
        client.get_client(workspace)
        pagecall_settings.WEBHOOK_URL  # noqa: B018  (read to validate it)
    except WorkspaceNotConfigured:
        return  # refused when sent: the row fails with the error
    except ImproperlyConfigured as exc:
        error = f"waiting for configuration: {exc}"
        rows.filter(pk=pk, sync_state=SyncState.PENDING).update(sync_error=error)
        logger.warning("%s %s is %s", rows.model._meta.model_name, pk, error)
        raise


def lease_seconds() -> float:
    """How long a claim is valid: every transport attempt timing out, and then some."""
    s = pagecall_settings
    per_try = float(s.CONNECT_TIMEOUT) * (client.CONNECT_RETRIES + 1) + float(s.READ_TIMEOUT)
    return per_try * 2 + 1


def new_lease() -> Any:
    return timezone.now() + timedelta(seconds=lease_seconds())


def settled_at() -> tuple[Any, float]:
    """After an unknown outcome, when to look: once a request still in flight has landed."""
    return timezone.now() + timedelta(seconds=AMBIGUOUS_GRACE), AMBIGUOUS_GRACE


def seconds_until(moment: Any) -> float:
    return max(float((moment - timezone.now()).total_seconds()), 0.0)


def error_text(exc: PagecallError) -> str:
    """What is kept of a failure on the row: the message, and Pagecall's answer to a refusal.

    The body of a 2xx answer that could not be read is left out: it may be a user object with
    its access token.
    """
    text = str(exc)
    if exc.body and not (exc.status is not None and 200 <= exc.status < 300):
        text += f"\n{exc.body}"
    return text


def may_have_happened(exc: PagecallError) -> bool:
    """Whether a failed create may still have created something at Pagecall.

    Besides the ambiguous outcomes proper, a 5xx answer proves nothing about a request that has
    no idempotency key, and neither does a 2xx answer that could not be read.
    """
    if isinstance(exc, PagecallAmbiguousError | PagecallResponseError):
        return True
    return isinstance(exc, PagecallTransientError) and exc.status is not None and exc.status >= 500
