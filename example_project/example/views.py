"""What host code looks like: the rooms the signed-in person may join, with links into the app's
own pages (``pagecall:room`` embeds the meeting, ``pagecall:replay`` opens its replay).

The list comes from ``django_pagecall.joining.joinable_rooms``, the rule the app's pages and API
use too; the page refreshes its "online" counts from the app's API (``pagecall:api-room-list``).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from django_pagecall.joining import joinable_rooms


@login_required
def my_rooms(request: HttpRequest) -> HttpResponse:
    rooms = joinable_rooms(request.user).order_by("-created_at", "-pk")
    return render(request, "example/my_rooms.html", {"rooms": rooms})
