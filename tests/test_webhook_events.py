"""Webhooks Pagecall may add later, and ``webhook_received``: an authenticated delivery with an
action the app does not know is stored, answered 200 and announced; every delivery processed for
the first time is announced once, after the commit, and a duplicate never."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from django_pagecall import signals
from django_pagecall.emulator import Emulator
from django_pagecall.models import DeliveryResult, DeliveryState, Session, WebhookDelivery
from django_pagecall.webhooks import apply_waiting, replay
from tests.test_webhook_support import WEBHOOK_PATH, PagecallRoom, make_room, post

pytestmark = pytest.mark.django_db(transaction=True)

DELIVERIES = "/admin/django_pagecall/webhookdelivery/"


@pytest.fixture
def received() -> Iterator[list[dict[str, Any]]]:
    """Every ``webhook_received`` sent, with its sender and arguments, and whether it was sent
    inside a transaction (it must not be)."""
    log: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        kwargs.pop("signal", None)
        log.append(
            {"sender": sender, "in_atomic": transaction.get_connection().in_atomic_block, **kwargs}
        )

    signals.webhook_received.connect(receiver, weak=False)
    yield log
    signals.webhook_received.disconnect(receiver)


def recording_started(room: PagecallRoom, **extra: Any) -> dict[str, Any]:
    return {
        "action": "recordingStarted",
        "payload": {"roomId": room.pagecall_id, "recordingId": "rec-1", **extra},
    }


def test_an_unknown_action_from_pagecall_is_stored_answered_and_announced(
    pagecall_emulator: Emulator, live_server: Any, received: list[dict[str, Any]]
) -> None:
    room = make_room(pagecall_emulator, webhook_url=live_server.url + WEBHOOK_PATH)
    body = recording_started(room)

    sent = pagecall_emulator.send_webhook(room.pagecall_id, body)

    assert sent is not None and sent["status"] == 200, sent
    delivery = WebhookDelivery.objects.get()
    assert (delivery.action, delivery.state, delivery.result) == (
        "recordingStarted",
        DeliveryState.PROCESSED,
        DeliveryResult.UNKNOWN_ACTION,
    )
    assert not Session.objects.exists()
    assert len(received) == 1
    (signal,) = received
    assert signal["sender"] is WebhookDelivery
    assert signal["delivery"].pk == delivery.pk
    assert signal["room"].pk == room.room.pk
    assert signal["action"] == "recordingStarted"
    assert signal["payload"] == body["payload"]
    assert signal["in_atomic"] is False


def test_known_actions_are_announced_once_and_duplicates_never(
    pagecall_emulator: Emulator, client: Client, received: list[dict[str, Any]]
) -> None:
    room = make_room(pagecall_emulator)
    joined = room.join("alice")
    assert post(client, joined, room.headers).status_code == 200
    assert post(client, joined, room.headers).json()["result"] == DeliveryResult.DUPLICATE

    assert [(r["action"], r["payload"]) for r in received] == [("sessionJoined", joined["payload"])]
    assert received[0]["delivery"].result == DeliveryResult.APPLIED


def test_invalid_or_refused_deliveries_are_not_announced(
    pagecall_emulator: Emulator, client: Client, received: list[dict[str, Any]]
) -> None:
    room = make_room(pagecall_emulator)
    other = make_room(pagecall_emulator, name="Other")
    assert post(client, {"action": "recordingStarted"}, room.headers).status_code == 400
    assert post(client, {"action": "x" * 65, "payload": {}}, room.headers).status_code == 400
    mismatch = recording_started(other)
    assert post(client, mismatch, room.headers).status_code == 403
    assert post(client, recording_started(room), {}).status_code == 401
    assert received == []
    assert WebhookDelivery.objects.filter(action="recordingStarted").count() == 0


def test_an_unknown_action_waits_for_its_room_and_is_announced_once(
    pagecall_emulator: Emulator, client: Client, received: list[dict[str, Any]]
) -> None:
    room = make_room(pagecall_emulator, store_id=False)
    response = post(client, recording_started(room), room.headers)
    assert response.status_code == 202
    assert received == []

    room.store_id()
    assert apply_waiting(room.room.pk) == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.result == DeliveryResult.UNKNOWN_ACTION
    assert [r["delivery"].pk for r in received] == [delivery.pk]

    # Replayed once processed, it is a duplicate: nothing is sent again.
    assert replay([delivery]).processed == 1
    assert len(received) == 1


def test_a_rolled_back_delivery_announces_nothing(
    pagecall_emulator: Emulator, received: list[dict[str, Any]]
) -> None:
    from django_pagecall.webhooks import processing

    room = make_room(pagecall_emulator)
    outcomes = []

    def receive_then_fail() -> None:
        with transaction.atomic():
            outcomes.append(
                processing.receive(
                    room.room.pk, b'{"action": "a", "payload": {}}', {}, None, "default"
                )
            )
            raise RuntimeError("the caller's transaction fails")

    with pytest.raises(RuntimeError):
        receive_then_fail()
    assert [o.status for o in outcomes] == [200]
    assert received == []
    assert not WebhookDelivery.objects.exists()


def test_the_admin_lists_unknown_actions_by_name(
    pagecall_emulator: Emulator, admin_client: Client
) -> None:
    room = make_room(pagecall_emulator)
    assert post(admin_client, recording_started(room), room.headers).status_code == 200
    assert post(admin_client, room.join("alice"), room.headers).status_code == 200
    assert post(admin_client, {"action": "x"}, room.headers).status_code == 400
    unknown = WebhookDelivery.objects.get(action="recordingStarted")

    page = admin_client.get(DELIVERIES).content.decode()
    assert "recordingStarted" in page
    assert "?action=%28unknown%29" in page
    filtered = admin_client.get(DELIVERIES, {"action": "(unknown)"}).content.decode()
    assert f"{DELIVERIES}{unknown.pk}/change/" in filtered
    others = WebhookDelivery.objects.exclude(pk=unknown.pk).values_list("pk", flat=True)
    assert all(f"{DELIVERIES}{pk}/change/" not in filtered for pk in others)
    detail = admin_client.get(f"{DELIVERIES}{unknown.pk}/change/").content.decode()
    assert "recordingStarted" in detail and "rec-1" in detail
