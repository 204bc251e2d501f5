"""The app's models: Pagecall rooms, members and users mirrored locally, and the session records.

Import them from here (``from django_pagecall.models import Room``); the
submodules are an internal split.
"""

from .rooms import Member, MemberType, PagecallUser, Room, RoomType, SyncState
from .sessions import Session

__all__ = ["Member", "MemberType", "PagecallUser", "Room", "RoomType", "Session", "SyncState"]
