"""Findings of reviews of a running site, each reproduced first: a request that made a
500, a value that forged a log line, a link that changed state. Each test names its finding."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from django_pagecall.client import get_client
from django_pagecall.emulator import Emulator
from django_pagecall.models import Member, Room, SyncState, WebhookDelivery
from django_pagecall.models.rooms import MAX_PK, parse_pk
from django_pagecall.webhooks.auth import ROOM_HEADER, SECRET_HEADER, room_secret, server_keys
from tests.test_webhook_support import make_room, post

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7", 7),
        (str(MAX_PK), MAX_PK),
        (str(MAX_PK + 1), None),
        ("9" * 20, None),
        ("abc", None),
        ("", None),
        ("²", None),
        ("-1", None),
        (" 7", None),
    ],
)
def test_parse_pk_takes_only_what_a_big_auto_field_holds(text: str, expected: int | None) -> None:
    assert parse_pk(text) == expected


def test_a_room_header_above_int64_with_a_valid_hmac_is_refused_not_a_500(client: Client) -> None:
    room_pk = MAX_PK + 5  # 19 digits, above what PostgreSQL's bigint holds
    headers = {
        f"HTTP_{ROOM_HEADER.upper().replace('-', '_')}": str(room_pk),
        f"HTTP_{SECRET_HEADER.upper().replace('-', '_')}": room_secret(room_pk, server_keys()[0]),
    }
    response = client.post(
        reverse("pagecall:webhook"), b"{}", content_type="application/json", **headers
    )
    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"


def test_a_non_numeric_room_filter_answers_like_djangos_own(admin_client: Client) -> None:
    changelist = reverse("admin:django_pagecall_session_changelist")
    for value in ("abc", "9" * 25):
        response = admin_client.get(changelist, {"room__id__exact": value})
        assert response.status_code == 302
        assert response["Location"].endswith("?e=1")


def test_a_numeric_room_filter_still_filters(admin_client: Client, settings: Any) -> None:
    changelist = reverse("admin:django_pagecall_session_changelist")
    assert admin_client.get(changelist, {"room__id__exact": "12345"}).status_code == 200


@pytest.mark.parametrize("user_id", ["..", "."])
def test_a_dot_segment_user_id_is_refused_before_anything_is_sent(
    pagecall_emulator: Emulator, user_id: str
) -> None:
    room = Room.objects.create(name="Dots", type="private")
    with pytest.raises(ValueError, match="not in a URL path"):
        Member.objects.create(room=room, user_id=user_id, name="Dot")
    # The client's own guard, for ids that reach it another way: nothing is sent.
    pagecall_emulator.clear_requests()
    with pytest.raises(ValueError, match="segment of a Pagecall URL path"):
        get_client().update_member(room.pagecall_id, user_id, name="x")
    assert pagecall_emulator.requests == []


def test_the_admin_refuses_a_dot_segment_user_id(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:django_pagecall_room_add"),
        {
            "name": "Dots",
            "type": "private",
            "record": "on",
            "members-TOTAL_FORMS": "1",
            "members-INITIAL_FORMS": "0",
            "members-0-user_id": "..",
            "members-0-type": "guest",
        },
    )
    assert response.status_code == 200
    assert "cannot be “.” or “..”" in response.content.decode()
    assert not Room.objects.exists()


def test_a_body_with_a_lone_surrogate_shows_on_its_admin_page(
    pagecall_emulator: Emulator, client: Client, admin_client: Client
) -> None:
    room = make_room(pagecall_emulator)
    joined = room.join("alice")
    raw = json.dumps({**joined, "x": "\udc00"}).encode()  # the escape "\\udc00", valid JSON
    assert b"\\udc00" in raw
    assert post(client, None, room.headers, raw=raw).status_code == 200
    delivery = WebhookDelivery.objects.get()
    page = admin_client.get(
        reverse("admin:django_pagecall_webhookdelivery_change", args=[delivery.pk])
    )
    assert page.status_code == 200
    assert "&quot;x&quot;: &quot;\\udc00&quot;" in page.content.decode()


def test_join_as_a_member_is_a_csrf_protected_post(
    pagecall_emulator: Emulator, admin_user: Any
) -> None:
    room = Room.objects.create(name="Private", type="private")
    member = Member.objects.create(room=room, user_id="dora")
    pagecall_emulator.clear_requests()
    link = reverse("admin:django_pagecall_room_member_link", args=[room.pk, member.pk, "meet"])
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(admin_user)
    assert staff.get(link).status_code == 405  # a cross-site link changes nothing
    assert staff.post(link).status_code == 403  # nor does a cross-site form: no CSRF token
    assert pagecall_emulator.requests == []
    change = staff.get(reverse("admin:django_pagecall_room_change", args=[room.pk]))
    html = change.content.decode()
    assert f'formaction="{link}" formmethod="post"' in html
    token = staff.cookies["csrftoken"].value
    response = staff.post(link, {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert "access_token=" in response["Location"]


def test_a_session_is_titled_with_its_rooms_name(pagecall_emulator: Emulator) -> None:
    from django_pagecall.models import Session

    room = Room.objects.create(name="Algebra", type="open")
    session = Session.objects.create(room=room, session_id="s1", user_id="alice", member_id="m")
    assert str(session) == "alice in Algebra"


def test_the_add_room_page_has_no_sessions_table(admin_client: Client) -> None:
    html = admin_client.get(reverse("admin:django_pagecall_room_add")).content.decode()
    assert 'id="members-group"' in html
    assert 'id="sessions-group"' not in html


@pytest.mark.parametrize("bad_key", ["key-with-newline\n", " padded-key", "“smart-quoted”"])
def test_an_api_key_headers_cannot_carry_is_a_check_error_and_never_leaks(
    pagecall_emulator: Emulator, settings: Any, bad_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    from django.core.management import CommandError, call_command

    from django_pagecall.checks import check_settings

    settings.PAGECALL = {**settings.PAGECALL, "API_KEY": bad_key}
    errors = [m for m in check_settings() if m.id == "pagecall.E002"]
    assert errors and bad_key.strip("“” \n") not in errors[0].msg
    pagecall_emulator.clear_requests()
    with caplog.at_level(logging.DEBUG, logger="django_pagecall"):
        room = Room.objects.create(name="Keyed", type="public")
    room.refresh_from_db()
    # A configuration error: the row waits, pending, with the error; nothing was sent.
    assert room.sync_state == SyncState.PENDING
    assert room.sync_attempts == 0
    assert room.sync_error.startswith('waiting for configuration: PAGECALL["API_KEY"] must be')
    assert pagecall_emulator.requests == []
    secret = bad_key.strip("“” \n")
    assert secret not in room.sync_error
    assert not any(secret in r.getMessage() for r in caplog.records)
    # pagecall_sync says it, and sends the room once the key is right.
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="wait for the configuration the errors above name"):
        call_command("pagecall_sync", stdout=out, stderr=err)
    assert 'PAGECALL["API_KEY"] must be' in err.getvalue()
    assert secret not in out.getvalue() + err.getvalue()
    settings.PAGECALL = {**settings.PAGECALL, "API_KEY": pagecall_emulator.api_key}
    call_command("pagecall_sync", stdout=io.StringIO(), stderr=io.StringIO())
    room.refresh_from_db()
    assert (room.sync_state, room.sync_error) == (SyncState.SYNCED, "")


def test_a_missing_api_key_is_recorded_on_the_row(
    pagecall_emulator: Emulator, settings: Any
) -> None:
    settings.PAGECALL = {k: v for k, v in settings.PAGECALL.items() if k != "API_KEY"}
    room = Room.objects.create(name="No key", type="public")
    room.refresh_from_db()
    assert room.sync_state == SyncState.PENDING
    assert room.sync_error == (
        'waiting for configuration: PAGECALL["API_KEY"] is not set; django-pagecall needs it '
        "(Pagecall API key of the workspace (Bearer token).)"
    )


def answered_room(**changes: Any) -> dict[str, Any]:
    """A Room object as Pagecall answers POST /rooms, with ``changes``."""
    body = {
        "id": "a" * 24,
        "name": "Odd",
        "type": "public",
        "record": True,
        "created_at": "2026-01-01T00:00:00.000Z",
        "updated_at": "2026-01-01T00:00:00.000Z",
    }
    return {"room": {**body, **changes}}


@pytest.mark.parametrize(
    ("changes", "blank"),
    [
        ({"thumbnail_url": "https://cdn.example/" + "x" * 1130}, "thumbnail_url"),
        ({"meeting_time": -5}, "meeting_time"),
        ({"layout": "L" * 100}, "layout"),
    ],
)
def test_a_value_that_does_not_fit_is_left_blank_and_the_room_synced(
    pagecall_emulator: Emulator, changes: dict[str, Any], blank: str
) -> None:
    pagecall_emulator.inject("POST", "/rooms", status=200, body=answered_room(**changes))
    room = Room.objects.create(name="Odd", type="public")
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert room.pagecall_id == "a" * 24
    assert getattr(room, blank) in ("", None)


def test_an_id_too_long_fails_its_room_and_the_sweep_goes_on(pagecall_emulator: Emulator) -> None:
    from django.core.management import call_command

    pagecall_emulator.inject("POST", "/rooms", status=200, body=answered_room(id="b" * 100))
    poison = Room.objects.create(name="Odd", type="public")
    poison.refresh_from_db()
    assert poison.sync_state == SyncState.FAILED
    assert "id of 100 characters" in poison.sync_error
    # Rooms saved after it still reach Pagecall through the sweep.
    (after,) = Room.objects.bulk_create([Room(name="After")])
    out = io.StringIO()
    call_command("pagecall_sync", stdout=out, stderr=io.StringIO())
    after.refresh_from_db()
    assert after.sync_state == SyncState.SYNCED
    assert "1 sent" in out.getvalue()


def kill_own_connection() -> None:
    """End this thread's database connection from another one, as a server restart would."""
    from django.db import connection, connections

    connection.ensure_connection()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_backend_pid()")
            kill = "SELECT pg_terminate_backend(%s)"
        else:
            cursor.execute("SELECT CONNECTION_ID()")
            kill = "KILL %s"
        (backend,) = cursor.fetchone()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute(kill, [backend])
    finally:
        other.close()


def test_a_webhook_survives_a_dropped_database_connection(pagecall_emulator: Emulator) -> None:
    from django.db import connection

    from django_pagecall.models import Session
    from django_pagecall.webhooks import processing
    from tests.conftest import requires_server_database

    requires_server_database()
    room = make_room(pagecall_emulator)
    joined = room.join("alice")
    kill_own_connection()
    outcome = processing.receive(
        room.room.pk, json.dumps(joined).encode(), room.headers, "127.0.0.1", "default"
    )
    assert outcome.status == 200, outcome.body
    assert Session.objects.filter(room=room.room).count() == 1
    assert connection.is_usable()


def test_a_line_break_in_a_body_forges_no_log_line(
    pagecall_emulator: Emulator, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    room = make_room(pagecall_emulator)
    joined = room.join("alice")
    forged = "x\n2026-01-01 00:00:00 CRITICAL forged line"
    bodies = [
        {**joined, "payload": {**joined["payload"], "sessionId": forged}},  # invalid: too odd
        {"action": forged, "payload": joined["payload"]},  # an action the app does not know
        {**joined, "payload": {**joined["payload"], "timestamp": forged}},  # invalid timestamp
    ]
    with caplog.at_level(logging.DEBUG, logger="django_pagecall"):
        for body in bodies:
            post(client, body, room.headers)
    messages = [r.getMessage() for r in caplog.records]
    assert any("forged line" in m for m in messages)  # the values were logged...
    assert not any("\n" in m for m in messages)  # ...without breaking the line


def test_a_session_id_taken_in_another_room_is_kept_and_flagged_not_dropped(
    pagecall_emulator: Emulator, client: Client
) -> None:
    from django_pagecall.models import DeliveryState, Session

    room_a = make_room(pagecall_emulator, name="A")
    room_b = make_room(pagecall_emulator, name="B")
    real = room_b.join("bob")  # what Pagecall will send room B
    session_id = real["payload"]["sessionId"]
    # With room A's secret, someone records that session id in room A first.
    squatted = {**real, "payload": {**real["payload"], "roomId": room_a.pagecall_id}}
    assert post(client, squatted, room_a.headers).status_code == 200
    # Room B's real event is not taken for a duplicate: its delivery is kept, failed, flagged.
    answer = post(client, real, room_b.headers)
    assert answer.status_code == 200
    assert answer.json()["status"] == DeliveryState.FAILED
    delivery = WebhookDelivery.objects.get(pk=answer.json()["delivery"])
    assert delivery.state == DeliveryState.FAILED
    assert f"session {session_id!r} is recorded in room {room_a.room.pk}" in delivery.error
    assert Session.objects.get(session_id=session_id).room_id == room_a.room.pk


def test_a_far_future_timestamp_is_refused_and_the_counters_go_on(
    pagecall_emulator: Emulator, client: Client
) -> None:
    room = make_room(pagecall_emulator)
    joined = room.join("alice")
    future = {**joined, "payload": {**joined["payload"], "timestamp": "9999-12-31T23:59:59Z"}}
    refused = post(client, future, room.headers)
    assert refused.status_code == 400
    assert "payload.timestamp" in refused.json()["fields"]
    assert WebhookDelivery.objects.get(pk=refused.json()["delivery"]).body  # kept, as received
    # The real event still moves the counters.
    assert post(client, joined, room.headers).status_code == 200
    room.room.refresh_from_db()
    assert room.room.sessions_count == joined["payload"]["sessionsCount"]


def settle(room_pk: int) -> None:
    """Run a room's creation as its task would, retries and their countdowns included."""
    import time

    from django_pagecall.sync import RetryLater, create_room

    for _ in range(20):
        try:
            create_room(room_pk)
        except RetryLater as exc:
            time.sleep(max(exc.countdown or 0.1, 0.1))
        else:
            return
    pytest.fail(f"room {room_pk} did not settle")


def test_a_deleted_rooms_pagecall_room_is_never_adopted_after_an_unknown_outcome(
    pagecall_emulator: Emulator,
) -> None:
    from django_pagecall.sync import RetryLater, create_room

    # 1. A private room is created at Pagecall, and the connection drops: the outcome is
    #    unknown, so the row stays `creating`.
    (deleted,) = Room.objects.bulk_create([Room(name="Tutoring", type="private")])
    Member.objects.bulk_create([Member(room=deleted, user_id="mallory")])
    pagecall_emulator.inject("POST", "/rooms", drop="after")
    with pytest.raises(RetryLater):
        create_room(deleted.pk)
    (orphan,) = pagecall_emulator.rooms  # Pagecall did create it
    # 2. Staff delete the row: its Pagecall id was never stored.
    Room.objects.filter(pk=deleted.pk).delete()
    # 3. A namesake gets a 502, which leaves its own outcome unknown too.
    (namesake,) = Room.objects.bulk_create([Room(name="Tutoring", type="private")])
    Member.objects.bulk_create([Member(room=namesake, user_id="alice")])
    pagecall_emulator.inject("POST", "/rooms", status=502)
    settle(namesake.pk)
    # 4. Its lookup does not adopt the deleted row's room: it creates its own.
    namesake.refresh_from_db()
    assert namesake.sync_state == SyncState.SYNCED
    assert namesake.pagecall_id != orphan
    headers = pagecall_emulator.webhook_config(namesake.pagecall_id)["headers"]
    assert headers[ROOM_HEADER] == str(namesake.pk)
    assert [m["user_id"] for m in pagecall_emulator.members(namesake.pagecall_id)] == ["alice"]


def test_stored_headers_are_masked_unless_known_to_be_plain(
    pagecall_emulator: Emulator, client: Client
) -> None:
    from django_pagecall.webhooks import processing

    room = make_room(pagecall_emulator)
    odd = {"X-Pagecall-Sig": "sig-value", "X-Session": "sess-value", "X-Credential": "cred"}
    assert post(client, room.join("alice"), {**room.headers, **odd}).status_code == 200
    headers = WebhookDelivery.objects.get().headers
    for name in (*odd, SECRET_HEADER):
        assert headers[name] == processing.MASK, name
    assert headers[ROOM_HEADER] == str(room.room.pk)  # known, and not a secret
    assert headers["Content-Type"] == "application/json"


def test_a_gzip_body_is_read(pagecall_emulator: Emulator, client: Client) -> None:
    import gzip

    from django_pagecall.models import Session

    room = make_room(pagecall_emulator)
    body = gzip.compress(json.dumps(room.join("alice")).encode())
    response = client.generic(
        "POST",
        reverse("pagecall:webhook"),
        body,
        content_type="application/json",
        headers={**room.headers, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.content
    assert Session.objects.filter(room=room.room).count() == 1


@pytest.mark.parametrize(
    ("extra", "body", "status"),
    [
        ({"CONTENT_LENGTH": "", "HTTP_TRANSFER_ENCODING": "chunked"}, b"", 411),
        ({"HTTP_CONTENT_ENCODING": "br"}, b"\x8b\x02\x80{}\x03", 415),
        ({"HTTP_CONTENT_ENCODING": "gzip"}, b"not gzip at all", 415),
    ],
)
def test_a_body_that_cannot_be_read_is_refused_and_kept_with_why(
    pagecall_emulator: Emulator, client: Client, extra: dict[str, str], body: bytes, status: int
) -> None:
    from django_pagecall.models import DeliveryResult

    room = make_room(pagecall_emulator)
    response = client.generic(
        "POST",
        reverse("pagecall:webhook"),
        body,
        content_type="application/json",
        headers=room.headers,
        **extra,
    )
    assert response.status_code == status
    assert response.json()["error"] == "unreadable"
    delivery = WebhookDelivery.objects.get(pk=response.json()["delivery"])
    assert delivery.result == DeliveryResult.UNREADABLE
    assert response.json()["detail"] == delivery.error


def test_a_gzip_bomb_is_not_inflated_past_the_limit(
    pagecall_emulator: Emulator, client: Client
) -> None:
    import gzip

    room = make_room(pagecall_emulator)
    bomb = gzip.compress(b" " * 10_000_000)  # ten megabytes of spaces, ten kilobytes sent
    assert len(bomb) < 65536  # WEBHOOK_MAX_BODY_SIZE
    response = client.generic(
        "POST",
        reverse("pagecall:webhook"),
        bomb,
        content_type="application/json",
        headers={**room.headers, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 415
    assert "inflates past 65536 bytes" in response.json()["detail"]
