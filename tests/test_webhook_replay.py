"""Stored deliveries replayed (``manage.py pagecall_replay``), and sessions the webhooks missed
filled in from Pagecall's list (``manage.py pagecall_sync --sessions``)."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError
from django.test import Client
from django.utils import timezone

from django_pagecall.emulator import Emulator
from django_pagecall.models import DeliveryResult, DeliveryState, Room, Session, WebhookDelivery
from django_pagecall.remote import parse_datetime
from django_pagecall.webhooks import processing, reconcile_sessions
from tests.test_webhook_support import (
    PagecallRoom,
    SignalLog,
    failing_processing,
    make_room,
    post,
    session_id_of,
    session_signals,
)

pytestmark = pytest.mark.django_db(transaction=True)

__all__ = ["session_signals"]  # a fixture, imported to be registered here


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# -- pagecall_replay -------------------------------------------------------------------------


def test_replay_applies_failed_deliveries_once(
    pagecall_emulator: Emulator,
    client: Client,
    session_signals: SignalLog,
) -> None:
    room = make_room(pagecall_emulator)
    joined = room.join("alice")
    left = room.leave(session_id_of(joined))
    with failing_processing():
        for body in (left, joined):
            with pytest.raises(DatabaseError):
                post(client, body, room.headers)
    assert WebhookDelivery.objects.filter(state=DeliveryState.FAILED).count() == 2

    out, err = run("pagecall_replay")
    assert "2 processed, 0 waiting for their room's Pagecall id, 0 failed" in out
    assert "pagecall_replay 2/2" in err  # the progress bar
    session = Session.objects.get()
    assert session.joined_at is not None
    assert session.left_at is not None
    assert len(session_signals.sent) == 2

    assert run("pagecall_replay")[0].strip() == "Nothing to replay."
    first = WebhookDelivery.objects.order_by("pk").first()
    assert first is not None
    out, _ = run("pagecall_replay", "--id", str(first.pk))  # a processed one: a duplicate
    assert "1 processed" in out
    assert len(session_signals.sent) == 2


def test_replay_leaves_waiting_deliveries_until_the_room_id_is_known(
    pagecall_emulator: Emulator, client: Client
) -> None:
    room = make_room(pagecall_emulator, store_id=False)
    assert post(client, room.join("alice"), room.headers).status_code == 202
    out, _ = run("pagecall_replay")
    assert "0 processed, 1 waiting" in out
    room.store_id()
    out, _ = run("pagecall_replay")
    assert "1 processed, 0 waiting" in out
    assert Session.objects.count() == 1


def test_replay_takes_up_deliveries_abandoned_mid_way(
    pagecall_emulator: Emulator, client: Client
) -> None:
    room = make_room(pagecall_emulator)
    assert post(client, room.join("alice"), room.headers).status_code == 200
    delivery = WebhookDelivery.objects.get()
    Session.objects.all().delete()
    # As a process killed between storing and applying would leave it.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(state=DeliveryState.RECEIVED)
    assert list(processing.replayable()) == []  # maybe still in progress: not yet
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        received_at=timezone.now() - processing.STALE_AFTER - timedelta(seconds=1)
    )
    assert [d.pk for d in processing.replayable()] == [delivery.pk]
    run("pagecall_replay")
    assert Session.objects.count() == 1


def test_replay_fails_loudly_for_what_still_fails(
    pagecall_emulator: Emulator, client: Client
) -> None:
    room = make_room(pagecall_emulator)
    with failing_processing():
        with pytest.raises(DatabaseError):
            post(client, room.join("alice"), room.headers)
        dry, _ = run("pagecall_replay", "--dry-run")
        assert "1 to replay" in dry
        with pytest.raises(CommandError, match="1 failed"):
            run("pagecall_replay")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.result, delivery.attempts) == (DeliveryState.FAILED, "", 2)
    assert "broken for the test" in delivery.error


def _refused_deliveries(room: PagecallRoom, client: Client, settings: Any) -> list[WebhookDelivery]:
    assert post(client, {"action": "sessionJoined"}, room.headers).status_code == 400
    settings.PAGECALL = {**settings.PAGECALL, "WEBHOOK_MAX_BODY_SIZE": 400}
    padded = {**room.join("alice"), "padding": "x" * 500}
    assert post(client, padded, room.headers).status_code == 413
    invalid, too_large = WebhookDelivery.objects.order_by("pk")
    assert (invalid.state, invalid.result) == (DeliveryState.FAILED, DeliveryResult.INVALID)
    assert (too_large.state, too_large.result) == (DeliveryState.FAILED, DeliveryResult.TOO_LARGE)
    return [invalid, too_large]


def test_deliveries_refused_for_their_body_are_not_replayed_by_default(
    pagecall_emulator: Emulator, client: Client, settings: Any
) -> None:
    room = make_room(pagecall_emulator)
    _refused_deliveries(room, client, settings)

    assert list(processing.replayable()) == []
    assert run("pagecall_replay", "--dry-run")[0].strip() == "0 to replay"
    for _ in range(2):  # every run succeeds, and leaves them as they are
        assert run("pagecall_replay")[0].strip() == "Nothing to replay."
    assert set(WebhookDelivery.objects.values_list("attempts", flat=True)) == {1}

    # Next to them, a delivery that can be processed still is.
    settings.PAGECALL = {**settings.PAGECALL, "WEBHOOK_MAX_BODY_SIZE": 65536}
    assert post(client, room.join("bob"), room.headers).status_code == 200
    assert Session.objects.count() == 1


def test_deliveries_refused_for_their_body_replayed_by_id_fail_again_and_say_why(
    pagecall_emulator: Emulator, client: Client, settings: Any
) -> None:
    room = make_room(pagecall_emulator)
    invalid, too_large = _refused_deliveries(room, client, settings)

    dry, _ = run("pagecall_replay", "--dry-run", "--id", str(invalid.pk), "--id", str(too_large.pk))
    assert "2 to replay" in dry
    assert f"{invalid.pk} failed (invalid)" in dry
    assert f"{too_large.pk} failed (too_large)" in dry
    with pytest.raises(CommandError) as caught:
        run("pagecall_replay", "--id", str(invalid.pk), "--id", str(too_large.pk))
    assert "0 processed, 0 waiting for their room's Pagecall id, 2 failed" in str(caught.value)
    assert "2 refused for an invalid or too large body" in str(caught.value)

    invalid.refresh_from_db()
    too_large.refresh_from_db()
    assert (invalid.state, invalid.result, invalid.attempts) == (
        DeliveryState.FAILED,
        DeliveryResult.INVALID,
        2,
    )
    assert "payload" in invalid.error  # the validation error names the missing field
    assert (too_large.state, too_large.result, too_large.attempts) == (
        DeliveryState.FAILED,
        DeliveryResult.TOO_LARGE,
        2,
    )
    assert "over the limit of 400" in too_large.error  # kept: the body was never read
    assert Session.objects.count() == 0
    # Still not part of the default run.
    assert run("pagecall_replay")[0].strip() == "Nothing to replay."


def test_an_invalid_delivery_stored_without_its_result_is_marked_on_replay(
    pagecall_emulator: Emulator, client: Client
) -> None:
    # As stored before the ``invalid`` result existed: one last failing run, then left out.
    room = make_room(pagecall_emulator)
    assert post(client, {"action": "sessionJoined"}, room.headers).status_code == 400
    WebhookDelivery.objects.update(result="")
    with pytest.raises(CommandError, match="1 failed"):
        run("pagecall_replay")
    assert WebhookDelivery.objects.get().result == DeliveryResult.INVALID
    assert run("pagecall_replay")[0].strip() == "Nothing to replay."


# -- reconciliation --------------------------------------------------------------------------


def test_pagecall_sync_sessions_fills_in_what_webhooks_missed(
    pagecall_emulator: Emulator, client: Client, session_signals: SignalLog
) -> None:
    room = make_room(pagecall_emulator, type="public")
    emu = pagecall_emulator
    # Alice's join came through, her leave was lost; Bob's and Carol's webhooks were all lost.
    alice = room.join("alice")
    assert post(client, alice, room.headers).status_code == 200
    emu.leave(room.pagecall_id, session_id_of(alice), deliver=False)
    bob = room.join("bob")
    emu.leave(room.pagecall_id, session_id_of(bob), deliver=False)
    carol = room.join("carol")
    signals_before = len(session_signals.sent)

    out, err = run("pagecall_sync", "--sessions")
    assert "1 room(s) reconciled: 2 session(s) added, 1 completed" in out
    assert "sessions 1/1" in err

    remote = {s["id"]: s for s in emu.sessions(room.pagecall_id)}
    sessions = {s.session_id: s for s in Session.objects.all()}
    assert set(sessions) == set(remote)
    for session_id, session in sessions.items():
        assert session.joined_at == parse_datetime(remote[session_id]["connected_at"])
        assert session.left_at == parse_datetime(remote[session_id].get("disconnected_at"))
    assert sessions[session_id_of(alice)].source == Session.Source.WEBHOOK
    assert sessions[session_id_of(bob)].source == Session.Source.RECONCILED
    assert sessions[session_id_of(carol)].is_online
    assert len(session_signals.sent) == signals_before  # reconciliation is not a webhook

    again, _ = run("pagecall_sync", "--sessions")
    assert "0 session(s) added, 0 completed" in again
    # Carol's join arriving late: already known, so a duplicate.
    assert post(client, carol, room.headers).json()["result"] == "duplicate"


def test_reconciliation_skips_terminated_rooms_and_counts_failures(
    pagecall_emulator: Emulator,
) -> None:
    open_room = make_room(pagecall_emulator, name="Open")
    open_room.join("alice")
    closed = make_room(pagecall_emulator, name="Closed")
    closed.join("bob")
    Room.objects.filter(pk=closed.room.pk).update(terminated_at=timezone.now())
    unknown = make_room(pagecall_emulator, name="Gone from Pagecall")
    Room.objects.filter(pk=unknown.room.pk).update(pagecall_id="0" * 24)

    result = reconcile_sessions()
    assert result.rooms == 2
    assert result.created == 1
    assert len(result.errors) == 1
    assert str(unknown.room.pk) in result.errors[0]
    assert list(Session.objects.values_list("user_id", flat=True)) == ["alice"]

    dry, _ = run("pagecall_sync", "--sessions", "--dry-run")
    assert "2 room(s) to reconcile" in dry
