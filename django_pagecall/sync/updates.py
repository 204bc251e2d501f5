"""Sending a change of a row that is on Pagecall: one idempotent PUT, shared by rooms and
members."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from ..exceptions import PagecallError, PagecallRefused
from ..models import Member, Room
from .outcomes import RetryLater, error_text
from .scheduling import enqueue

logger = logging.getLogger("django_pagecall.sync")

T = TypeVar("T")


def send_update(
    model: type[Room] | type[Member],
    pk: int,
    using: str,
    sent: dict[str, Any],
    call: Callable[[], T],
    stored: Callable[[T], dict[str, Any]],
) -> None:
    """One PUT of the values ``sent``, then ``needs_update`` cleared, but only if the row still
    holds those values: a change made while the PUT was in flight is sent after it.

    A refusal is recorded and not retried; anything else raises :class:`RetryLater`.
    """
    from .. import tasks

    rows = model.objects.using(using).filter(pk=pk)
    try:
        answer = call()
    except PagecallRefused as exc:
        logger.error("Pagecall refused the update of %s %s: %s", model._meta.model_name, pk, exc)
        changes = {"needs_update": False, "sync_error": error_text(exc)}
    except PagecallError as exc:
        rows.update(sync_error=error_text(exc))
        raise RetryLater(str(exc)) from exc
    else:
        logger.info("%s %s updated on Pagecall", model._meta.model_name, pk)
        changes = {"needs_update": False, "sync_error": "", **stored(answer)}
    if not rows.filter(**sent).update(**changes) and rows.update(needs_update=True):
        # Changed while ours was in flight, and maybe sent already, before ours landed: the
        # row's values must reach Pagecall after ours.
        task = tasks.update_room if model is Room else tasks.update_member
        enqueue(task, pk, using)
