"""The emulator's participants calling the webhook over HTTP on a live server, one by one and
all at once: the emulator sends every webhook itself, with the headers the room was created
with, to ``live_server`` (a threaded server, each request on its own database connection).
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from django_pagecall.client import get_client
from django_pagecall.emulator import Emulator
from django_pagecall.models import DeliveryResult, DeliveryState, Room, Session, WebhookDelivery
from django_pagecall.remote import parse_datetime
from tests.test_webhook_support import (
    WEBHOOK_PATH,
    PagecallRoom,
    SignalLog,
    make_room,
    requires_server,
    session_id_of,
    session_signals,
)

pytestmark = pytest.mark.django_db(transaction=True)

__all__ = ["session_signals"]  # a fixture, imported to be registered here


@pytest.fixture
def live_room(pagecall_emulator: Emulator, live_server: Any) -> PagecallRoom:
    return make_room(pagecall_emulator, webhook_url=live_server.url + WEBHOOK_PATH)


def stamp(body: dict[str, Any]) -> Any:
    return parse_datetime(body["payload"]["timestamp"])


def test_participants_joining_and_leaving_make_sessions(
    live_room: PagecallRoom, pagecall_emulator: Emulator, session_signals: SignalLog
) -> None:
    emu, room_id = pagecall_emulator, live_room.pagecall_id
    alice = emu.join(room_id, user_id="alice")
    bob = emu.join(room_id, user_id="bob")
    emu.leave(room_id, alice["session"]["id"])
    assert [d["status"] for d in emu.webhooks] == [200, 200, 200]

    sessions = {s.user_id: s for s in Session.objects.all()}
    assert set(sessions) == {"alice", "bob"}
    assert sessions["alice"].left_at is not None
    assert sessions["bob"].is_online
    assert sessions["bob"].joined_at == stamp(bob["body"])
    assert session_signals.sessions("session_joined") == sorted(
        [alice["session"]["id"], bob["session"]["id"]]
    )
    assert session_signals.sessions("session_left") == [alice["session"]["id"]]


def test_terminating_a_room_on_pagecall_ends_every_session(
    live_room: PagecallRoom, pagecall_emulator: Emulator
) -> None:
    emu, room_id = pagecall_emulator, live_room.pagecall_id
    for user in ("a", "b", "c"):
        emu.join(room_id, user_id=user)
    application_id = emu.rooms[room_id]["application_id"]
    get_client().update_room(room_id, application_id=application_id, is_terminated=True)
    assert len(emu.webhooks) == 6
    assert all(d["status"] == 200 for d in emu.webhooks)
    assert not Session.objects.online().exists()
    room = Room.objects.get(pk=live_room.room.pk)
    assert (room.sessions_count, room.members_count) == (0, 0)


def test_200_deliveries_at_once_with_duplicates_and_reorderings(
    live_room: PagecallRoom, pagecall_emulator: Emulator, session_signals: SignalLog
) -> None:
    """Eight threads send 200 deliveries for one room at once, duplicates and reorderings mixed
    in: exactly the right sessions, counters and signals result."""
    requires_server("SQLite allows one writer at a time; the live server's threads would queue")
    emu, room_id = pagecall_emulator, live_room.pagecall_id
    joins: dict[str, dict[str, Any]] = {}
    leaves: dict[str, dict[str, Any]] = {}
    for i in range(70):
        body = emu.join(room_id, user_id=f"user-{i}", deliver=False)["body"]
        joins[session_id_of(body)] = body
    for session_id in list(joins)[:49]:
        leaves[session_id] = emu.leave(room_id, session_id, deliver=False)["body"]
    time.sleep(0.003)  # the last event is then the only newest snapshot
    last_session = list(joins)[49]
    last = emu.leave(room_id, last_session, deliver=False)["body"]
    leaves[last_session] = last

    unique = list(joins.values()) + list(leaves.values())
    assert len(unique) == 120
    rng = random.Random(20240531)
    deliveries = unique + [rng.choice(unique) for _ in range(80)]
    rng.shuffle(deliveries)

    # Eight at a time: Django's live server listens with a backlog of 10 connections, and the
    # kernel resets what overflows it (a limit of the test server, not of the view).
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    statuses: list[int | None] = []

    def send(chunk: list[dict[str, Any]]) -> None:
        barrier.wait()
        for body in chunk:
            delivery = emu.send_webhook(room_id, body)
            assert delivery is not None
            statuses.append(delivery["status"])

    threads = [
        threading.Thread(target=send, args=(deliveries[i::threads_n],)) for i in range(threads_n)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert statuses == [200] * 200, [d["error"] for d in emu.webhooks if d["status"] != 200]

    sessions = {s.session_id: s for s in Session.objects.filter(room=live_room.room)}
    assert set(sessions) == set(joins)
    for session_id, body in joins.items():
        assert sessions[session_id].joined_at == stamp(body)
        expected_left = stamp(leaves[session_id]) if session_id in leaves else None
        assert sessions[session_id].left_at == expected_left
        assert sessions[session_id].user_id == body["payload"]["userId"]
    assert Session.objects.online().count() == 20

    room = Room.objects.get(pk=live_room.room.pk)
    assert room.counters_at == stamp(last)
    assert (room.sessions_count, room.members_count) == (20, 20)
    assert last["payload"]["sessionsCount"] == 20

    assert session_signals.sessions("session_joined") == sorted(joins)
    assert session_signals.sessions("session_left") == sorted(leaves)

    assert WebhookDelivery.objects.count() == 200
    assert not WebhookDelivery.objects.exclude(state=DeliveryState.PROCESSED).exists()
    assert WebhookDelivery.objects.filter(result=DeliveryResult.APPLIED).count() == 120
    assert WebhookDelivery.objects.filter(result=DeliveryResult.DUPLICATE).count() == 80
