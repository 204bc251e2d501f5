"""``{% load pagecall %}``: ``{% pagecall_room room %}`` embeds a room's meeting for the person of
``request`` (template ``django_pagecall/embed.html``; docs/joining.md)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django import template
from django.contrib.auth.models import AnonymousUser
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from ..conf import pagecall_settings
from ..joining import Availability, availability, may_join
from ..models import Room

register = template.Library()

#: What the frame may use, each granted to Pagecall's origin: the frame's ``src`` is the app's
#: join view, which redirects there, so the default allowlist (the ``src`` origin) would miss it.
FRAME_FEATURES = ("camera", "microphone", "fullscreen", "display-capture")


def frame_allow(room: Room) -> str:
    parts = urlsplit(pagecall_settings.app_url(room.workspace))
    origin = f"{parts.scheme}://{parts.netloc}"
    return "; ".join(f"{feature} {origin}" for feature in FRAME_FEATURES)


@register.simple_tag(takes_context=True)
def pagecall_room(context: template.Context, room: Room) -> SafeString:
    """The meeting in an ``<iframe>``, or a message where the person cannot join it now."""
    request = context.get("request")
    user: Any = getattr(request, "user", None) or AnonymousUser()
    state = availability(room)
    message = ""
    if not may_join(user, room):
        if user.is_authenticated:
            message = _("You are not invited to this room.")
        else:
            message = _("Sign in to join this meeting.")
    elif state in (Availability.FAILED, Availability.ENDED):
        message = state.message
    embed = {
        "room": room,
        "message": message,
        "join_url": reverse("pagecall:join", args=[room.pk]),
        "allow": frame_allow(room),
    }
    return render_to_string("django_pagecall/embed.html", embed, request=request)
