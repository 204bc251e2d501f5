"""The webhook endpoint: authentication, CSRF, ATOMIC_REQUESTS, validation, processing and signals.

Bodies and headers come from the emulator's participants and are posted with Django's test
client; ``test_webhook_live`` has the emulator send them itself over HTTP.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import DatabaseError, connection, connections, transaction
from django.test import Client
from django.urls import reverse

from django_pagecall import urls as pagecall_urls
from django_pagecall.emulator import Emulator
from django_pagecall.models import (
    DeliveryResult,
    DeliveryState,
    Member,
    Room,
    Session,
    WebhookDelivery,
)
from django_pagecall.remote import parse_datetime
from django_pagecall.webhooks import apply_waiting, processing
from django_pagecall.webhooks.auth import ROOM_HEADER, SECRET_HEADER, headers_for_room
from tests.conftest import at_most, wait_for
from tests.test_webhook_support import (
    WEBHOOK_PATH,
    SignalLog,
    failing_processing,
    lock_waits,
    make_room,
    post,
    requires_server,
    session_id_of,
    session_signals,
)

pytestmark = pytest.mark.django_db(transaction=True)

__all__ = ["session_signals"]  # a fixture, imported to be registered here

OLD_KEY = "o" * 40
NEW_KEY = "n" * 40


def ts(body: dict[str, Any]) -> datetime:
    value = parse_datetime(body["payload"]["timestamp"])
    assert value is not None
    return value


def secrets_of(headers: dict[str, str]) -> list[str]:
    return [v for k, v in headers.items() if k.lower() == SECRET_HEADER.lower()]


# -- the URL, CSRF and ATOMIC_REQUESTS ----------------------------------------------------------


def test_the_url_is_named_pagecall_webhook() -> None:
    assert reverse("pagecall:webhook") == WEBHOOK_PATH


def test_csrf_exempt_under_a_csrf_enforcing_client(pagecall_emulator: Emulator) -> None:
    room = make_room(pagecall_emulator)
    csrf_client = Client(enforce_csrf_checks=True)
    response = post(csrf_client, room.join("alice"), room.headers)
    assert response.status_code == 200, response.content
    assert Session.objects.filter(room=room.room).count() == 1


def test_only_the_webhook_view_and_the_drf_api_are_csrf_exempt() -> None:
    # DRF views leave CSRF to SessionAuthentication, which enforces it (tests/test_joining.py).
    exempt = [
        p.name for p in pagecall_urls.urlpatterns if getattr(p.callback, "csrf_exempt", False)
    ]
    assert exempt == ["webhook", "api-room-list", "api-room-detail", "api-room-join"]


def test_the_view_opts_out_of_atomic_requests_on_every_database() -> None:
    (pattern,) = [p for p in pagecall_urls.urlpatterns if p.name == "webhook"]
    assert set(pattern.callback._non_atomic_requests) == set(connections)  # type: ignore[attr-defined]


@pytest.fixture
def atomic_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    # The handler reads the connection's settings dict on every request.
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)


def test_works_when_the_host_sets_atomic_requests(
    pagecall_emulator: Emulator, client: Client, atomic_requests: None
) -> None:
    room = make_room(pagecall_emulator)
    joined = room.join("alice")
    assert post(client, joined, room.headers).status_code == 200
    assert post(client, room.leave(session_id_of(joined)), room.headers).status_code == 200
    session = Session.objects.get()
    assert (session.joined_at, session.left_at) == (ts(joined), session.left_at)
    assert session.left_at is not None


def test_a_failure_under_atomic_requests_still_leaves_the_delivery_stored(
    pagecall_emulator: Emulator, atomic_requests: None
) -> None:
    room = make_room(pagecall_emulator)
    with failing_processing("counters broke"):
        response = post(Client(raise_request_exception=False), room.join("alice"), room.headers)
    assert response.status_code == 500
    # Had the request been wrapped in a transaction, the failed delivery would be gone too.
    failed = WebhookDelivery.objects.get()
    assert failed.state == DeliveryState.FAILED
    assert "counters broke" in failed.traceback
    assert not Session.objects.exists()


# -- authentication --------------------------------------------------------------------------


def test_no_credentials_get_401_with_a_json_body_and_nothing_is_stored(
    pagecall_emulator: Emulator, client: Client
) -> None:
    room = make_room(pagecall_emulator)
    response = post(client, room.join("alice"))
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_authenticated"
    assert SECRET_HEADER in response["WWW-Authenticate"]
    assert not WebhookDelivery.objects.exists()
    assert not Session.objects.exists()


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h: {**h, SECRET_HEADER: "0" * 64}, id="wrong-secret"),
        pytest.param(lambda h: {ROOM_HEADER: h[ROOM_HEADER]}, id="no-secret"),
        pytest.param(lambda h: {SECRET_HEADER: h[SECRET_HEADER]}, id="no-room"),
        pytest.param(lambda h: {**h, ROOM_HEADER: "x1"}, id="room-not-a-number"),
        pytest.param(lambda h: {**h, SECRET_HEADER: h[SECRET_HEADER][:-1]}, id="truncated"),
    ],
)
def test_bad_credentials_are_refused_and_nothing_is_stored(
    pagecall_emulator: Emulator, client: Client, tamper: Any, caplog: pytest.LogCaptureFixture
) -> None:
    room = make_room(pagecall_emulator)
    secret = room.headers[SECRET_HEADER]
    with caplog.at_level(logging.DEBUG):
        response = post(client, room.join("alice"), tamper(room.headers))
    assert response.status_code in (401, 403)
    assert response.json()["error"] in ("authentication_failed", "not_authenticated")
    assert not WebhookDelivery.objects.exists()
    assert not Session.objects.exists()
    assert secret not in caplog.text


def test_the_secret_of_one_room_does_not_open_another(
    pagecall_emulator: Emulator, client: Client
) -> None:
    room_a = make_room(pagecall_emulator, name="A")
    room_b = make_room(pagecall_emulator, name="B")
    # A's secret presented as B's: refused by the credentials themselves.
    forged = {ROOM_HEADER: str(room_b.room.pk), SECRET_HEADER: room_a.headers[SECRET_HEADER]}
    assert post(client, room_b.join("mallory"), forged).status_code in (401, 403)
    # A's credentials with a payload about B: refused with 403, and nothing about it stored.
    response = post(client, room_b.join("mallory"), room_a.headers)
    assert response.status_code == 403
    assert response.json()["error"] == "room_mismatch"
    assert not WebhookDelivery.objects.exists()
    assert not Session.objects.exists()
    assert Room.objects.get(pk=room_b.room.pk).counters_at is None


def test_webhook_secrets_rotate(pagecall_emulator: Emulator, client: Client, settings: Any) -> None:
    settings.PAGECALL = {**settings.PAGECALL, "WEBHOOK_SECRETS": [OLD_KEY]}
    room = make_room(pagecall_emulator)  # its headers carry the old key's secret
    settings.PAGECALL = {**settings.PAGECALL, "WEBHOOK_SECRETS": [NEW_KEY, OLD_KEY]}
    assert post(client, room.join("alice"), room.headers).status_code == 200
    assert headers_for_room(room.room.pk) != room.headers  # new rooms get the new key
    settings.PAGECALL = {**settings.PAGECALL, "WEBHOOK_SECRETS": [NEW_KEY]}
    assert post(client, room.join("bob"), room.headers).status_code in (401, 403)
    assert Session.objects.count() == 1


def test_secret_key_fallbacks_keep_old_rooms_working(
    pagecall_emulator: Emulator, client: Client, settings: Any
) -> None:
    settings.SECRET_KEY = OLD_KEY
    room = make_room(pagecall_emulator)
    settings.SECRET_KEY = NEW_KEY
    settings.SECRET_KEY_FALLBACKS = [OLD_KEY]
    assert post(client, room.join("alice"), room.headers).status_code == 200
    settings.SECRET_KEY_FALLBACKS = []
    assert post(client, room.join("bob"), room.headers).status_code in (401, 403)


def test_stored_headers_mask_the_secret_and_nothing_shows_it(
    pagecall_emulator: Emulator, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    room = make_room(pagecall_emulator)
    secret = room.headers[SECRET_HEADER]
    with caplog.at_level(logging.DEBUG):
        post(client, room.join("alice"), {**room.headers, "Authorization": "Bearer t0ken"})
    delivery = WebhookDelivery.objects.get()
    assert delivery.headers[SECRET_HEADER] == processing.MASK
    assert delivery.headers["Authorization"] == processing.MASK
    assert delivery.headers[ROOM_HEADER] == str(room.room.pk)  # not a secret: kept
    everything = json.dumps(delivery.headers) + delivery.body + repr(delivery) + str(delivery)
    assert secret not in everything
    assert "t0ken" not in everything
    assert secret not in caplog.text


# -- validation ------------------------------------------------------------------------------


def _mutate(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    target = body
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return body


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("action", "", "action"),
        ("action", "x" * 65, "action"),
        ("action", 7, "action"),
        ("action", KeyError, "action"),
        ("payload", KeyError, "payload"),
        ("payload", "not an object", "payload.non_field_errors"),
        ("payload.sessionId", KeyError, "payload.sessionId"),
        ("payload.sessionId", 12345, "payload.sessionId"),
        ("payload.memberId", None, "payload.memberId"),
        ("payload.roomId", ["x"], "payload.roomId"),
        ("payload.userId", 42, "payload.userId"),
        ("payload.sessionsCount", "3", "payload.sessionsCount"),
        ("payload.membersCount", 1.5, "payload.membersCount"),
        ("payload.membersCount", True, "payload.membersCount"),
        ("payload.sessionsCount", -1, "payload.sessionsCount"),
        ("payload.timestamp", "yesterday", "payload.timestamp"),
        ("payload.timestamp", 1654000695059, "payload.timestamp"),
        ("payload.timestamp", KeyError, "payload.timestamp"),
    ],
)
def test_a_malformed_body_gets_400_naming_the_field(
    pagecall_emulator: Emulator, client: Client, path: str, value: Any, field: str
) -> None:
    room = make_room(pagecall_emulator)
    response = post(client, _mutate(room.join("alice"), path, value), room.headers)
    assert response.status_code == 400
    error = response.json()
    assert error["error"] == "invalid"
    assert field in error["fields"], error
    assert not Session.objects.exists()
    delivery = WebhookDelivery.objects.get()  # authenticated, so kept, as failed
    assert delivery.state == DeliveryState.FAILED
    assert field in delivery.error


@pytest.mark.parametrize(
    "raw", [b"", b"{not json", b"\xff\xfe", b"[" * 5000 + b"]" * 5000, b'["a list"]']
)
def test_a_body_that_is_not_a_json_object_gets_400(
    pagecall_emulator: Emulator, client: Client, raw: bytes
) -> None:
    room = make_room(pagecall_emulator)
    response = post(client, None, room.headers, raw=raw)
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_json", "invalid")
    assert WebhookDelivery.objects.get().state == DeliveryState.FAILED


def test_a_body_over_the_limit_gets_413_and_is_not_kept(
    pagecall_emulator: Emulator, client: Client, settings: Any
) -> None:
    room = make_room(pagecall_emulator)
    body = room.join("alice")
    settings.PAGECALL = {**settings.PAGECALL, "WEBHOOK_MAX_BODY_SIZE": 400}
    padded = {**body, "padding": "x" * 500}
    response = post(client, padded, room.headers)
    assert response.status_code == 413
    assert response.json() == {
        "error": "too_large",
        "detail": response.json()["detail"],
        "limit": 400,
        "delivery": WebhookDelivery.objects.get().pk,
    }
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.body) == (DeliveryState.FAILED, "")
    assert post(client, body, room.headers).status_code == 200  # a normal one still fits


def test_timestamps_are_read_as_utc(pagecall_emulator: Emulator, client: Client) -> None:
    room = make_room(pagecall_emulator)
    joined = _mutate(room.join("alice"), "payload.timestamp", "2024-03-01T10:00:00.250+09:00")
    assert post(client, joined, room.headers).status_code == 200
    left = _mutate(room.leave(session_id_of(joined)), "payload.timestamp", "2024-03-01T02:00:00")
    assert post(client, left, room.headers).status_code == 200
    session = Session.objects.get()
    assert session.joined_at == datetime(2024, 3, 1, 1, 0, 0, 250000, tzinfo=UTC)
    assert session.left_at == datetime(2024, 3, 1, 2, 0, 0, tzinfo=UTC)


# -- processing ------------------------------------------------------------------------------


def test_join_then_leave_records_one_session(
    pagecall_emulator: Emulator, client: Client, session_signals: SignalLog
) -> None:
    room = make_room(pagecall_emulator, type="public")
    alice = Member.objects.create(room=room.room, user_id="alice")
    joined = room.join("alice")
    response = post(client, joined, room.headers)
    assert response.status_code == 200
    assert response.json()["result"] == DeliveryResult.APPLIED
    time.sleep(0.003)  # the leave's timestamp is then the newer snapshot
    left = room.leave(session_id_of(joined))
    assert post(client, left, room.headers).status_code == 200

    session = Session.objects.get()
    assert session.room_id == room.room.pk
    assert session.session_id == session_id_of(joined)
    assert session.user_id == "alice"
    assert session.member_id == joined["payload"]["memberId"]
    assert session.room_member == alice
    assert (session.joined_at, session.left_at) == (ts(joined), ts(left))
    assert session.source == Session.Source.WEBHOOK
    assert not session.is_online

    room.room.refresh_from_db()
    assert (room.room.sessions_count, room.room.members_count) == (0, 0)
    assert room.room.counters_at == ts(left)

    assert session_signals.sessions("session_joined") == [session.session_id]
    assert session_signals.sessions("session_left") == [session.session_id]
    sent = session_signals.of("session_left")[0]
    assert sent["room"].pk == room.room.pk
    assert sent["session"].left_at == ts(left)
    assert [d.state for d in WebhookDelivery.objects.all()] == [DeliveryState.PROCESSED] * 2


def test_leave_before_join_ends_with_both_set(
    pagecall_emulator: Emulator, client: Client, session_signals: SignalLog
) -> None:
    room = make_room(pagecall_emulator)
    joined = room.join("alice")
    time.sleep(0.003)
    left = room.leave(session_id_of(joined))
    assert post(client, left, room.headers).status_code == 200
    assert post(client, joined, room.headers).status_code == 200
    session = Session.objects.get()
    assert (session.joined_at, session.left_at) == (ts(joined), ts(left))
    # Counters are those of the newest event (the leave), though it came first.
    room.room.refresh_from_db()
    assert room.room.counters_at == ts(left)
    assert room.room.sessions_count == left["payload"]["sessionsCount"] == 0
    assert len(session_signals.of("session_joined")) == len(session_signals.of("session_left")) == 1


def test_a_duplicate_changes_nothing_answers_2xx_and_sends_no_signal(
    pagecall_emulator: Emulator, client: Client, session_signals: SignalLog
) -> None:
    room = make_room(pagecall_emulator)
    joined = room.join("alice")
    left = room.leave(session_id_of(joined))
    for body in (joined, left):
        assert post(client, body, room.headers).json()["result"] == DeliveryResult.APPLIED
    before = Session.objects.values().get()
    room_before = Room.objects.values().get(pk=room.room.pk)
    for body in (joined, left, joined):
        response = post(client, body, room.headers)
        assert response.status_code == 200
        assert response.json()["result"] == DeliveryResult.DUPLICATE
    assert Session.objects.values().get() == before
    assert Room.objects.values().get(pk=room.room.pk) == room_before
    assert len(session_signals.sent) == 2
    assert WebhookDelivery.objects.filter(result=DeliveryResult.DUPLICATE).count() == 3


def test_counters_keep_the_newest_snapshot(pagecall_emulator: Emulator, client: Client) -> None:
    room = make_room(pagecall_emulator)
    bodies = []
    for user in ("a", "b", "c"):
        bodies.append(room.join(user))
        time.sleep(0.003)
    newest = bodies[-1]
    assert newest["payload"]["sessionsCount"] == 3
    for body in reversed(bodies):  # newest first
        assert post(client, body, room.headers).status_code == 200
    room.room.refresh_from_db()
    assert (room.room.sessions_count, room.room.members_count) == (3, 3)
    assert room.room.counters_at == ts(newest)
    assert Session.objects.filter(room=room.room).online().count() == 3


def test_the_session_is_linked_to_its_member_by_member_id_first(
    pagecall_emulator: Emulator, client: Client
) -> None:
    room = make_room(pagecall_emulator, type="public")
    joined = room.join("alice")
    # bulk_create: rows as sync would have left them, without sending them to Pagecall.
    by_user, by_member = Member.objects.bulk_create(
        [
            Member(room=room.room, user_id="alice"),
            # Its Pagecall member id is the payload's: it wins over a user id match.
            Member(room=room.room, user_id="alice-2", pagecall_id=joined["payload"]["memberId"]),
        ]
    )
    assert post(client, joined, room.headers).status_code == 200
    session = Session.objects.get()
    assert session.room_member_id == by_member.pk != by_user.pk


def test_an_anonymous_participant_has_no_user_id(
    pagecall_emulator: Emulator, client: Client
) -> None:
    room = make_room(pagecall_emulator, type="open")
    joined = room.join()
    assert "userId" not in joined["payload"]
    assert post(client, joined, room.headers).status_code == 200
    session = Session.objects.get()
    assert (session.user_id, session.room_member) == ("", None)
    assert session.member_id == joined["payload"]["memberId"]


def test_a_session_of_one_room_cannot_be_written_through_another(
    pagecall_emulator: Emulator, client: Client
) -> None:
    room_a = make_room(pagecall_emulator, name="A")
    room_b = make_room(pagecall_emulator, name="B")
    joined = room_a.join("alice")
    assert post(client, joined, room_a.headers).status_code == 200
    # Room B's own credentials and id, with A's session id and a newer time.
    hijack = room_b.join("mallory")
    hijack = _mutate(hijack, "payload.sessionId", session_id_of(joined))
    hijack = _mutate(hijack, "action", "sessionLeft")
    response = post(client, hijack, room_b.headers)
    assert response.status_code == 200
    # Not applied, and kept as failed (a clash to look at), never counted a duplicate.
    assert (response.json()["status"], response.json()["result"]) == (DeliveryState.FAILED, "")
    session = Session.objects.get()
    assert (session.room_id, session.left_at) == (room_a.room.pk, None)


def test_signals_are_sent_after_the_commit(pagecall_emulator: Emulator, client: Client) -> None:
    room = make_room(pagecall_emulator)
    seen: list[tuple[bool, bool]] = []

    def receiver(sender: Any, session: Session, room: Room, **kwargs: Any) -> None:
        committed = Session.objects.filter(pk=session.pk).exists()
        seen.append((connection.in_atomic_block, committed))

    from django_pagecall.signals import session_joined

    session_joined.connect(receiver)
    try:
        post(client, room.join("alice"), room.headers)
    finally:
        session_joined.disconnect(receiver)
    assert seen == [(False, True)]


def test_at_most_six_queries_and_one_commit_per_webhook(
    pagecall_emulator: Emulator, client: Client, session_signals: SignalLog
) -> None:
    room = make_room(pagecall_emulator, type="public")
    Member.objects.create(room=room.room, user_id="alice")
    joined = room.join("alice")
    left = room.leave(session_id_of(joined))
    for body in (left, joined, joined):  # out of order, then a duplicate
        with at_most(6, transactions=1):  # the delivery and its effects commit together
            assert post(client, body, room.headers).status_code == 200
    assert len(session_signals.sent) == 2  # receivers were connected, and cost no query


def test_the_signal_carries_the_session_and_room_as_stored(
    pagecall_emulator: Emulator, client: Client, session_signals: SignalLog
) -> None:
    room = make_room(pagecall_emulator, type="public")
    alice = Member.objects.create(room=room.room, user_id="alice", name="Alice")
    joined = room.join("alice")
    time.sleep(0.003)
    left = room.leave(session_id_of(joined))
    for body in (joined, left):
        assert post(client, body, room.headers).json()["result"] == "applied"
    stored_session = Session.objects.get()
    stored_room = Room.objects.get(pk=room.room.pk)
    assert stored_session.room_member == alice
    for name, body in (("session_joined", joined), ("session_left", left)):
        (sent,) = session_signals.of(name)
        session, signal_room = sent["session"], sent["room"]
        assert isinstance(session, Session) and isinstance(signal_room, Room)
        assert session.pk == stored_session.pk and signal_room.pk == stored_room.pk
        assert session.session_id == stored_session.session_id
        assert (session.member_id, session.user_id) == (
            stored_session.member_id,
            stored_session.user_id,
        )
        assert session.room_member_id == alice.pk
        assert signal_room.counters_at == ts(body)  # the counters this event stored
        assert signal_room.sessions_count == body["payload"]["sessionsCount"]
    # The last signal's rows are the stored rows, every field.
    (last,) = session_signals.of("session_left")
    last_session, last_room = last["session"], last["room"]
    for field in Session._meta.concrete_fields:
        assert getattr(last_session, field.attname) == getattr(stored_session, field.attname)
    # Alice's leave ended the meeting: the room's usage was then counted and the room read back
    # from Pagecall, after the signal.
    refreshed = {"application_id", "layout", "thumbnail_url", "meeting_time", "started_at"}
    refreshed |= {"terminated_at", "pagecall_created_at", "pagecall_updated_at"}
    refreshed |= {"usage_counted", "usage_counted_at", "usage_stale"}
    assert stored_room.pagecall_created_at is not None
    for field in Room._meta.concrete_fields:
        if field.attname not in refreshed:
            assert getattr(last_room, field.attname) == getattr(stored_room, field.attname), field


def test_a_webhook_for_a_room_deleted_here_is_kept_and_ignored(
    pagecall_emulator: Emulator, client: Client
) -> None:
    room = make_room(pagecall_emulator)
    body, headers = room.join("alice"), room.headers
    Room.objects.filter(pk=room.room.pk).delete()
    response = post(client, body, headers)
    assert response.status_code == 200
    assert response.json()["result"] == DeliveryResult.ROOM_GONE
    delivery = WebhookDelivery.objects.get()
    assert (delivery.room, delivery.state) == (None, DeliveryState.PROCESSED)
    assert not Session.objects.exists()


# -- a room whose Pagecall id is not stored yet ------------------------------------------------


def test_a_webhook_before_the_room_id_is_stored_waits_then_applies(
    pagecall_emulator: Emulator, client: Client, session_signals: SignalLog
) -> None:
    room = make_room(pagecall_emulator, store_id=False)
    joined = room.join("alice")
    response = post(client, joined, room.headers)
    assert response.status_code == 202
    assert response.json()["status"] == DeliveryState.WAITING
    assert not Session.objects.exists()
    assert session_signals.sent == []

    room.store_id()
    assert apply_waiting(room.room.pk) == 1
    session = Session.objects.get()
    assert session.joined_at == ts(joined)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.result) == (DeliveryState.PROCESSED, DeliveryResult.APPLIED)
    assert session_signals.sessions("session_joined") == [session.session_id]
    assert apply_waiting(room.room.pk) == 0  # nothing left waiting; no second signal
    assert len(session_signals.sent) == 1


def test_a_waiting_webhook_of_another_pagecall_room_fails_when_applied(
    pagecall_emulator: Emulator, client: Client
) -> None:
    """Two rooms on Pagecall with one local room's headers: the one not adopted is refused."""
    room = make_room(pagecall_emulator, store_id=False)
    twin = make_room(pagecall_emulator, store_id=False)  # stands in for the orphan duplicate
    orphan_body = twin.join("alice")
    assert post(client, orphan_body, room.headers).status_code == 202
    room.store_id()
    assert apply_waiting(room.room.pk) == 0
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    assert "roomId" in delivery.error
    assert not Session.objects.exists()


# -- stored with its effects -----------------------------------------------------------------


def test_a_delivery_is_stored_in_the_same_transaction_as_its_effects(
    pagecall_emulator: Emulator, client: Client
) -> None:
    """Seen from another connection, a delivery and the session it changed appear together."""
    requires_server("a row lock held by another connection")
    room = make_room(pagecall_emulator)
    joined = room.join("alice")
    assert post(client, joined, room.headers).status_code == 200
    locked, release = threading.Event(), threading.Event()
    answers: list[int] = []

    def hold_the_session() -> None:  # blocks the leave's write to the session row
        try:
            with transaction.atomic():
                Session.objects.select_for_update().get()
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    def post_the_leave() -> None:
        try:
            answers.append(
                post(Client(), room.leave(session_id_of(joined)), room.headers).status_code
            )
        finally:
            connections.close_all()

    holder, poster = (
        threading.Thread(target=hold_the_session),
        threading.Thread(target=post_the_leave),
    )
    holder.start()
    assert locked.wait(10)
    poster.start()
    try:
        # Until the leave waits for the session's lock; InnoDB refreshes the table it reads only
        # when it was not read for 0.1 s.
        wait_for(lock_waits, timeout=10, interval=0.2)
        assert WebhookDelivery.objects.count() == 1  # the leave's delivery is not there yet...
        assert Session.objects.get().left_at is None  # ...nor its effect
    finally:
        release.set()
        holder.join(10)
        poster.join(10)
    assert answers == [200]
    assert WebhookDelivery.objects.count() == 2
    assert Session.objects.get().left_at is not None


# -- unexpected errors -----------------------------------------------------------------------


def test_an_unexpected_error_is_stored_logged_and_raised_then_replayed(
    pagecall_emulator: Emulator,
    client: Client,
    session_signals: SignalLog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    room = make_room(pagecall_emulator)
    joined = room.join("alice")

    with (
        failing_processing("disk on fire"),
        caplog.at_level(logging.ERROR, logger="django_pagecall"),
        pytest.raises(DatabaseError),
    ):
        post(client, joined, room.headers)
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    assert "disk on fire" in delivery.error
    assert "Traceback" in delivery.traceback
    assert delivery.body == json.dumps(joined)
    assert (delivery.action, delivery.session_id) == ("sessionJoined", session_id_of(joined))
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)
    assert f"delivery {delivery.pk}" in caplog.text
    assert room.headers[SECRET_HEADER] not in caplog.text
    assert not Session.objects.exists()
    assert session_signals.sent == []

    assert processing.process_stored(delivery) == DeliveryState.PROCESSED
    assert Session.objects.get().joined_at == ts(joined)
    assert len(session_signals.of("session_joined")) == 1
    delivery.refresh_from_db()
    assert (delivery.error, delivery.traceback, delivery.attempts) == ("", "", 2)


def test_any_order_and_duplicates_end_right(
    pagecall_emulator: Emulator, client: Client, session_signals: SignalLog
) -> None:
    room = make_room(pagecall_emulator, type="public")
    alice = Member.objects.create(room=room.room, user_id="alice")
    joined = room.join("alice")
    time.sleep(0.003)
    left = room.leave(session_id_of(joined))
    results = [post(client, b, room.headers).json()["result"] for b in (left, joined, left, joined)]
    assert results == ["applied", "applied", "duplicate", "duplicate"]
    session = Session.objects.get()
    assert (session.joined_at, session.left_at) == (ts(joined), ts(left))
    assert (session.user_id, session.room_member) == ("alice", alice)
    assert len(session_signals.sent) == 2


# -- with the real sync ----------------------------------------------------------------------


def test_a_room_saved_normally_authenticates_its_webhooks(
    pagecall_emulator: Emulator, client: Client
) -> None:
    """The headers sync gives Pagecall at creation are the ones the view accepts."""
    room = Room.objects.create(name="Saved the usual way", type="open")
    room.refresh_from_db()
    assert room.pagecall_id is not None  # created on the emulator by the (eager) task
    result = pagecall_emulator.join(room.pagecall_id, user_id="alice", deliver=False)
    config = pagecall_emulator.webhook_config(room.pagecall_id)
    assert config is not None
    response = post(client, result["body"], config["headers"])
    assert response.status_code == 200
    assert Session.objects.get().room_id == room.pk
