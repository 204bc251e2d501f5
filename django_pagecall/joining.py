"""Who may join a room, and whether the room can be joined now: the rules behind the join,
replay and room pages, the front-end API and ``{% pagecall_room %}`` (docs/joining.md).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from .conf import pagecall_settings
from .models import Member, Room, RoomType, SyncState
from .models.sessions import online_count


class Availability(enum.Enum):
    """Whether a room can be entered now, with what a person is told when it cannot."""

    READY = "ready"
    SETTING_UP = "setting_up"  # not on Pagecall yet: pending or being created
    FAILED = "failed"  # Pagecall refused it, or the app gave up
    ENDED = "ended"  # terminated on Pagecall, or a terminate is under way

    @property
    def message(self) -> str:
        return str(MESSAGES[self])


#: Why a room cannot be entered now, told to a person on a page.
MESSAGES = {
    Availability.SETTING_UP: _(
        "This room is still being set up on Pagecall. This page refreshes itself until it is ready."
    ),
    Availability.FAILED: _(
        "This room could not be created on Pagecall. The site's staff can see why in the admin."
    ),
    Availability.ENDED: _("This meeting has ended. The room is closed."),
}


#: When Pagecall cannot be reached to register the person, on a page or from the API.
UNREACHABLE = _("Pagecall could not be reached just now. Try again in a moment.")


def availability(room: Room) -> Availability:
    if room.terminated_at is not None or room.terminate_requested:
        return Availability.ENDED
    if room.pagecall_id:
        return Availability.READY
    if room.sync_state == SyncState.FAILED:
        return Availability.FAILED
    return Availability.SETTING_UP


def _is_member(user: Any, room: Room) -> bool:
    if not user.is_authenticated:
        return False
    return (
        Member.objects.using(room._state.db)
        .filter(room_id=room.pk, site_user_id=user.pk, is_blocked=False)
        .exists()
    )


def _rule() -> Callable[[Any, Room], bool] | None:
    func = pagecall_settings.CAN_JOIN_FUNCTION
    if func is None:
        return None
    resolved: Callable[[Any, Room], bool] = import_string(func) if isinstance(func, str) else func
    return resolved


def may_join(user: Any, room: Room) -> bool:
    """``PAGECALL["CAN_JOIN_FUNCTION"](user, room)``, or by default: a member of the room
    through ``site_user`` (not blocked), or anyone at all for an ``open`` room."""
    rule = _rule()
    if rule is not None:
        return bool(rule(user, room))
    return room.type == RoomType.OPEN or _is_member(user, room)


def joinable_rooms(user: Any) -> QuerySet[Room]:
    """The rooms ``user`` may join, with ``online``: how many sessions are open in each.

    By the default rule, in one query. With ``CAN_JOIN_FUNCTION``, the rooms the default rule
    admits are the candidates, and the function is asked about each of them.
    """
    rooms = Room.objects.filter(type=RoomType.OPEN)
    if user.is_authenticated:
        membership = Member.objects.filter(room=OuterRef("pk"), site_user=user, is_blocked=False)
        rooms = Room.objects.filter(Q(type=RoomType.OPEN) | Exists(membership))
    rule = _rule()
    if rule is not None:
        rooms = Room.objects.filter(pk__in=[room.pk for room in rooms if rule(user, room)])
    return rooms.annotate(online=online_count())
