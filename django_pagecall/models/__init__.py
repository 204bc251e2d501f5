"""The app's models: Pagecall rooms, members and users mirrored locally, the session records and
the webhook deliveries they come from.

Import them from here (``from django_pagecall.models import Room``); the
submodules are an internal split.
"""

from .pending_actions import PendingAction
from .rooms import DeletedRoom, Member, MemberType, PagecallUser, Room, RoomType, SyncState
from .sessions import Session, SessionQuerySet
from .usage import ActiveUser, MonthlyUsage
from .webhooks import DeliveryResult, DeliveryState, WebhookDelivery

__all__ = [
    "ActiveUser",
    "DeletedRoom",
    "DeliveryResult",
    "DeliveryState",
    "Member",
    "MemberType",
    "MonthlyUsage",
    "PagecallUser",
    "PendingAction",
    "Room",
    "RoomType",
    "Session",
    "SessionQuerySet",
    "SyncState",
    "WebhookDelivery",
]
