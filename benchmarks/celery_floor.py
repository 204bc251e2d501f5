"""The Celery floor of the room benchmark (``benchmarks/rooms.py``): a task that only posts a room.

The worker of that benchmark imports this module (``celery worker -I benchmarks.celery_floor``).
:func:`post_room` sends the same body as the plain loop, through the app's own client, with the
app's task options (``acks_late``, ``ignore_result``), and touches no database: no claim, no
store, no follow-ups. Rooms per second through it, against the plain loop, is what any design
built on a Celery task per room can reach on this broker and machine; the app's own figure is
compared with it, so that the cost of Celery and the cost of the app's state machine are told
apart. Not part of the app.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from django_pagecall.client import get_client

NAME = "benchmarks.celery_floor.post_room"


def body(i: int) -> dict[str, Any]:
    """The body both the plain loop and this task post for room ``i``."""
    return {
        "name": f"bench room {i}",
        "type": "public",
        "record": True,
        "members": [{"user_id": f"u{i}", "type": "host"}, {"user_id": f"v{i}", "type": "guest"}],
        "webhook": {
            "url": "http://127.0.0.1:9/pagecall/webhook/",
            "headers": {"X-Pagecall-Room": str(i)},
        },
    }


@shared_task(name=NAME, acks_late=True, ignore_result=True)
def post_room(i: int) -> None:
    b = body(i)
    get_client().create_room(
        name=b["name"],
        type=b["type"],
        record=b["record"],
        members=b["members"],
        webhook_url=b["webhook"]["url"],
        webhook_headers=b["webhook"]["headers"],
    )
