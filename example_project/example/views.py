"""What host code looks like: the rooms a logged-in user is a member of, and links into them.

``my_rooms`` lists the rooms where the user is a ``Member`` (through ``site_user``); ``join`` and
``replay`` check that, then redirect to ``room.join_url(request.user)`` / ``room.replay_url(...)``.
The link is made when it is clicked, not when the list is shown: making it registers the user
with Pagecall the first time (``POST /users``), and the access token in it is theirs alone.

``emulated_meeting`` stands in for Pagecall's meeting page in the demo's ``--serve`` mode (the
emulator has no meeting app): ``PAGECALL["APP_URL"]`` points here, and its buttons make the
person join or leave through the emulator's control API, which sends the webhooks a real meeting
would. It answers 404 unless ``EXAMPLE_EMULATOR_URL`` is set.
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from django_pagecall.models import Room

EMULATOR_TIMEOUT = 10  # seconds; the emulator is local, this only bounds a hang


def rooms_of(user: Any) -> QuerySet[Room]:
    online = Q(sessions__joined_at__isnull=False, sessions__left_at__isnull=True)
    return (
        Room.objects.filter(members__site_user=user)
        .distinct()
        .annotate(online=Count("sessions", filter=online, distinct=True))
        .order_by("-created_at", "-pk")
    )


@login_required
def my_rooms(request: HttpRequest) -> HttpResponse:
    return render(request, "example/my_rooms.html", {"rooms": rooms_of(request.user)})


def _room_for(request: HttpRequest, pk: int) -> Room:
    room = rooms_of(request.user).filter(pk=pk).first()
    if room is None:
        raise Http404("No such room among yours.")
    return room


@login_required
def join(request: HttpRequest, pk: int) -> HttpResponse:
    room = _room_for(request, pk)
    if not room.pagecall_id:
        messages.info(request, f"“{room}” is still being set up on Pagecall; try again shortly.")
        return redirect("my-rooms")
    if room.is_terminated:
        messages.info(request, f"“{room}” has ended.")
        return redirect("my-rooms")
    # The member was made from this site user, so the site user's Pagecall id is the member's.
    return redirect(room.join_url(request.user))


@login_required
def replay(request: HttpRequest, pk: int) -> HttpResponse:
    room = _room_for(request, pk)
    if not room.pagecall_id:
        raise Http404("Not on Pagecall yet.")
    return redirect(room.replay_url(request.user))


# -- the demo's stand-in for Pagecall's meeting page -------------------------------------------


def _control(method: str, path: str, **body: Any) -> Any:
    base = getattr(settings, "EXAMPLE_EMULATOR_URL", "")
    response = requests.request(
        method, f"{base}/_emulator/{path}", json=body or None, timeout=EMULATOR_TIMEOUT
    )
    response.raise_for_status()
    return response.json()


@require_http_methods(["GET", "POST"])
def emulated_meeting(request: HttpRequest, page: str) -> HttpResponse:
    if not getattr(settings, "EXAMPLE_EMULATOR_URL", "") or page not in ("meet", "replay"):
        raise Http404("Only in the demo (manage.py pagecall_demo --serve).")
    room_id = request.GET.get("room_id", "")
    token = request.GET.get("access_token", "")
    state = _control("GET", "state")
    user_id = next((u["user_id"] for u in state["users"] if u["access_token"] == token), None)
    room = Room.objects.filter(pagecall_id=room_id).first()
    if room is None or (page == "meet" and user_id is None and room.type != "open"):
        raise Http404("Unknown room, or a token the emulator did not issue.")
    mine = [
        s
        for s in state["sessions"]
        if s["room_id"] == room_id and s.get("user_id") == user_id and "disconnected_at" not in s
    ]
    if request.method == "POST" and page == "meet":
        if request.POST.get("do") == "join":
            _control("POST", f"rooms/{room_id}/join", **({"user_id": user_id} if user_id else {}))
        elif request.POST.get("do") == "leave" and mine:
            _control("POST", f"rooms/{room_id}/sessions/{mine[0]['id']}/leave")
        return redirect(request.get_full_path())
    context = {"room": room, "page": page, "user_id": user_id, "session": mine[0] if mine else None}
    return render(request, "example/emulated_meeting.html", context)
