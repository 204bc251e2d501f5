"""The Celery floor of the room benchmark: a task that only posts a room, through the app's
client with the app's task options, touching no database (the worker of ``benchmarks/rooms.py``
imports it). Against the plain loop it tells what Celery costs apart from the app's own work."""

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
