"""The pages people use: ``pagecall:join`` and ``pagecall:replay`` redirect into Pagecall with the
person's access token; ``pagecall:room`` embeds the meeting in a page of the app. A room that
cannot be entered gets a page that says why (docs/joining.md).
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_safe

from .exceptions import PagecallError
from .joining import UNREACHABLE, Availability, availability, may_join
from .models import Room

logger = logging.getLogger(__name__)

#: Seconds after which a page about a room still being set up reloads itself.
REFRESH_SECONDS = 5

#: The status of a page about a room that cannot be entered, by the reason.
STATUS = {Availability.SETTING_UP: 200, Availability.FAILED: 409, Availability.ENDED: 410}


def status_page(
    request: HttpRequest, room: Room | None, title: str, message: str, status: int
) -> HttpResponse:
    context = {"room": room, "title": title, "message": message}
    return render(request, "django_pagecall/status.html", context, status=status)


def _unavailable(request: HttpRequest, room: Room, state: Availability) -> HttpResponse:
    response = status_page(request, room, room.name, state.message, STATUS[state])
    if state is Availability.SETTING_UP:
        response["Refresh"] = str(REFRESH_SECONDS)
    return response


def _refused(request: HttpRequest, room: Room) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    message = _("You are not invited to this room. Ask its organiser to add you.")
    return status_page(request, room, room.name, message, 403)


def _into_pagecall(request: HttpRequest, pk: int, page: str) -> HttpResponse:
    room = get_object_or_404(Room, pk=pk)
    if not may_join(request.user, room):
        return _refused(request, room)
    state = availability(room)
    if page == "replay" and state is Availability.ENDED and room.pagecall_id:
        state = Availability.READY  # a replay is what an ended meeting leaves
    if state is not Availability.READY:
        return _unavailable(request, room, state)
    if page == "replay" and not room.record:
        message = _("This room is not recorded, so it has no replay.")
        return status_page(request, room, room.name, message, 404)
    user: Any = request.user if request.user.is_authenticated else None
    try:
        link = room.join_url(user) if page == "meet" else room.replay_url(user)
    except PagecallError as exc:
        logger.warning("Could not get an access token for room %s: %s", room.pk, exc)
        response = status_page(request, room, room.name, str(UNREACHABLE), 503)
        response["Retry-After"] = str(REFRESH_SECONDS)
        return response
    return HttpResponseRedirect(link)


@require_safe
@never_cache
@xframe_options_sameorigin  # the meeting's frame shows these pages until it reaches Pagecall
def join(request: HttpRequest, pk: int) -> HttpResponse:
    """302 into the meeting with the person's access token, or a page that says why not."""
    return _into_pagecall(request, pk, "meet")


@require_safe
@never_cache
def replay(request: HttpRequest, pk: int) -> HttpResponse:
    """302 to the room's replay with the person's access token, or a page that says why not."""
    return _into_pagecall(request, pk, "replay")


@require_safe
@never_cache
def room(request: HttpRequest, pk: int) -> HttpResponse:
    """The app's page with the meeting embedded (``django_pagecall/room.html``)."""
    room = get_object_or_404(Room, pk=pk)
    if not may_join(request.user, room):
        return _refused(request, room)
    state = availability(room)
    if state in (Availability.FAILED, Availability.ENDED):
        return _unavailable(request, room, state)
    return render(request, "django_pagecall/room.html", {"room": room})
