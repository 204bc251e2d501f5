"""Pagecall's webhooks turned into session records: the endpoint (:mod:`.views`), what a valid
body is (:mod:`.serializers`), storing and applying deliveries (:mod:`.processing`,
:mod:`.effects`) and the sessions the webhooks missed (:mod:`.reconcile`).
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
