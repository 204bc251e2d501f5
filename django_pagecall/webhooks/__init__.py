"""Pagecall's webhooks turned into session records: the endpoint, validation, processing, replay
and reconciliation.

Modules: :mod:`.views` (the ``pagecall:webhook`` endpoint and its
authentication), :mod:`.serializers` (what a valid body is), :mod:`.processing`
(deliveries stored, applied, replayed), :mod:`.effects` (the session and
counter writes, safe in any order and against duplicates) and
:mod:`.reconcile` (sessions the webhooks missed, from ``GET /rooms/{id}/sessions``).

The functions other parts of the app call are re-exported here::

    from django_pagecall.webhooks import apply_waiting, reconcile_sessions, replay
"""

from .processing import apply_waiting, process_stored, replay, replayable, replayable_q
from .reconcile import reconcile_room, reconcile_sessions, rooms_to_reconcile

__all__ = [
    "apply_waiting",
    "process_stored",
    "reconcile_room",
    "reconcile_sessions",
    "replay",
    "replayable",
    "replayable_q",
    "rooms_to_reconcile",
]
