"""The security review, enforced: secrets never show in logs, answers, admin pages, stored rows,
errors, command output or reprs; every admin action needs its permission; the webhook refuses
another room's secret, forged headers, oversized bodies and floods of failed authentications.
The emulator's refusal of non-loopback addresses is tested in ``test_emulator_control``.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import models, transaction
from django.test import Client
from django.urls import reverse

import django_pagecall.admin  # noqa: F401  (registers the app's ModelAdmins)
from django_pagecall import signals
from django_pagecall.client import PagecallClient, get_client
from django_pagecall.conf import pagecall_settings
from django_pagecall.emulator import Emulator
from django_pagecall.exceptions import PagecallError
from django_pagecall.models import (
    DeliveryState,
    Member,
    PagecallUser,
    Room,
    Session,
    SyncState,
    WebhookDelivery,
)
from django_pagecall.webhooks import views as webhook_views
from django_pagecall.webhooks.auth import ROOM_HEADER, SECRET_HEADER, room_secret, server_keys
from tests.test_webhook_support import WEBHOOK_PATH, PagecallRoom, make_room, post

pytestmark = pytest.mark.django_db(transaction=True)

APP = "django_pagecall"


# -- shared fixtures -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_failure_counts_left_behind() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def keys(settings: Any) -> dict[str, str]:
    """Server keys of this test only, long and random, so that a leak cannot be a coincidence."""
    values = {
        "SECRET_KEY": secrets.token_urlsafe(40),
        "WEBHOOK_KEY": secrets.token_urlsafe(40),
        "OLD_WEBHOOK_KEY": secrets.token_urlsafe(40),
    }
    settings.SECRET_KEY = values["SECRET_KEY"]
    return values


@pytest.fixture
def private_emulator(settings: Any, keys: dict[str, str]) -> Iterator[Emulator]:
    """An emulator with a random API key, and the app configured for it."""
    with Emulator(api_key=secrets.token_urlsafe(32)) as emulator:
        settings.PAGECALL = {
            **settings.PAGECALL,
            "API_URL": emulator.url,
            "API_KEY": emulator.api_key,
            "WEBHOOK_SECRETS": [keys["WEBHOOK_KEY"], keys["OLD_WEBHOOK_KEY"]],
        }
        yield emulator


class RecordAll(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> list[str]:
        # The formatted record (message and traceback) and the raw arguments, in case a
        # formatter elsewhere would render them differently.
        return [f"{self.format(r)} {r.args!r}" for r in self.records]


@pytest.fixture
def all_logs() -> Iterator[RecordAll]:
    """Every record of every logger, at DEBUG."""
    handler = RecordAll()
    names = ["", APP, "django", "django.request", "urllib3", "requests", "celery"]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)
    for lg, level in zip(loggers, levels, strict=True):
        lg.setLevel(level)


def app_admins() -> list[tuple[type[models.Model], admin.ModelAdmin[Any]]]:
    return [(m, a) for m, a in admin.site._registry.items() if m._meta.app_label == APP]


def secrets_in_play(emulator: Emulator, keys: dict[str, str]) -> dict[str, str]:
    """What must never be shown, by name: API key, server keys, room secrets, access tokens."""
    found = {"API key": emulator.api_key, **keys}
    for key in server_keys():
        for pk in Room.objects.values_list("pk", flat=True):
            found[f"room {pk} secret"] = room_secret(pk, key)
    for user in emulator.users.values():
        found[f"access token of {user['user_id']}"] = user["access_token"]
    for user_id, token in PagecallUser.objects.values_list("user_id", "access_token"):
        if token:
            found[f"stored access token of {user_id}"] = token
    return found


def leaks(text: str, secret_values: dict[str, str]) -> list[str]:
    return [name for name, value in secret_values.items() if value and value in text]


def stored_text(*, skip: tuple[tuple[type[models.Model], str], ...] = ()) -> str:
    """Every value of every row of the app's tables and the admin's history, as one text."""
    chunks = []
    for model in [*apps.get_app_config(APP).get_models(), LogEntry]:
        for row in model.objects.values():
            for name, value in row.items():
                if (model, name) not in skip:
                    chunks.append(f"{model.__name__}.{name}={value}")
    return "\n".join(chunks)


# -- secrets ------------------------------------------------------------------------------------


def run_a_full_flow(emulator: Emulator, client: Client) -> list[str]:
    """Rooms, members, users, webhooks, with failures of every kind; returns texts it produced
    (error messages, answers, command output, reprs) for the caller to search."""
    texts: list[str] = []
    webhook_url = "http://testserver" + WEBHOOK_PATH

    with transaction.atomic():
        private = Room.objects.create(name="private", type="private")
        Member.objects.create(room=private, user_id="alice", type="host", name="Alice")
        Member.objects.create(room=private, user_id="bob")
    emulator.inject("POST", "/rooms", status=503, times=2)
    flaky = Room.objects.create(name="flaky", type="open")
    emulator.inject("POST", "/rooms", status=400, body={"message": "type is not allowed"})
    refused = Room.objects.create(name="refused", type="public")
    emulator.inject("POST", "/rooms", drop="after")
    Room.objects.create(name="dropped", type="public")
    emulator.inject("POST", "/rooms", status=502)
    Room.objects.create(name="bad gateway", type="public")
    out = _Output()
    call_command("pagecall_sync", stdout=out, stderr=out)
    texts.append(out.text)

    private.refresh_from_db()
    flaky.refresh_from_db()
    refused.refresh_from_db()
    assert private.sync_state == SyncState.SYNCED, private.sync_error
    assert refused.sync_state == SyncState.FAILED
    texts.append(refused.sync_error)

    alice = Member.objects.get(room=private, user_id="alice")
    private.join_url(alice)  # the link carries the token by design: it is the caller's to keep
    texts.append(repr(get_client().get_user("alice")))
    emulator.inject("POST", "/users", status=500, times=1)
    try:
        private.join_url("carol")
    except PagecallError as exc:
        texts += [str(exc), repr(exc)]
    private.join_url("carol")
    # Malformed answers that carry a real access token: the errors describe them, never quote.
    token = emulator.users["alice"]["access_token"]
    for body in (
        {"user": {"access_token": token, "name": "Alice"}},
        {"access_token": token, "user_id": "alice"},
        {"user": [token]},
    ):
        emulator.inject("GET", "/users/{user_id}", status=200, body=body)
        with pytest.raises(PagecallError) as malformed:
            get_client().get_user("alice")
        texts += [str(malformed.value), repr(malformed.value)]
    emulator.inject("GET", "/users", status=200, body={"users": {"access_token": token}})
    with pytest.raises(PagecallError) as listed:
        list(get_client().list_users())
    texts += [str(listed.value), repr(listed.value)]

    # Webhooks: valid, duplicate, and every kind of refusal.
    def receiver(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("a receiver of the site failed")

    signals.session_joined.connect(receiver)
    try:
        for room in (private, flaky):
            pagecall = PagecallRoom(
                room=room, pagecall_id=room.pagecall_id or "", emulator=emulator
            )
            headers = pagecall.headers
            joined = pagecall.join("alice" if room == private else None)
            answers = [
                post(client, joined, {**headers, "Authorization": f"Bearer {emulator.api_key}"}),
                post(client, joined, headers),
                post(client, joined, {**headers, SECRET_HEADER: headers[SECRET_HEADER][::-1]}),
                post(
                    client,
                    joined,
                    {ROOM_HEADER: str(refused.pk), SECRET_HEADER: headers[SECRET_HEADER]},
                ),
                post(client, {"action": "sessionJoined"}, headers),
                post(client, None, headers, raw=b"x" * 70_000),
                post(client, None, headers, raw=b"{not json"),
            ]
            texts += [a.content.decode() for a in answers]
            assert [a.status_code for a in answers] == [200, 200, 401, 401, 400, 413, 400]
    finally:
        signals.session_joined.disconnect(receiver)
    other = make_room(emulator, name="other", webhook_url=webhook_url)
    mismatch = post(
        client,
        other.join("eve"),
        PagecallRoom(private, private.pagecall_id or "", emulator).headers,
    )
    assert mismatch.status_code == 403
    texts.append(mismatch.content.decode())

    out = _Output()
    call_command("pagecall_replay", stdout=out, stderr=out)  # leaves the refused bodies out
    refused_ids: list[str] = []
    for pk in WebhookDelivery.objects.filter(state=DeliveryState.FAILED).values_list(
        "pk", flat=True
    ):
        refused_ids += ["--id", str(pk)]
    with pytest.raises(CommandError) as replay_failed:  # named, they fail again, rightly
        call_command("pagecall_replay", *refused_ids, stdout=out, stderr=out)
    texts.append(str(replay_failed.value))
    call_command("pagecall_sync", "--sessions", stdout=out, stderr=out)
    texts.append(out.text)

    client_repr = PagecallClient.from_settings()
    texts += [repr(client_repr), str(client_repr), repr(get_client())]
    for model in apps.get_app_config(APP).get_models():
        for obj in model.objects.all():
            texts += [repr(obj), str(obj)]
    return texts


class _Output:
    """A stream for call_command's stdout and stderr (``OutputWrapper`` needs ``write``)."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        return "".join(self.parts)


def test_no_secret_in_logs_answers_errors_rows_or_reprs_across_a_full_flow(
    private_emulator: Emulator, keys: dict[str, str], client: Client, all_logs: RecordAll
) -> None:
    """The API key, the server keys, every room's webhook secret and every access token, across
    Pagecall 5xx, refusals and dropped connections, every kind of refused webhook and a signal
    receiver that raises."""
    texts = run_a_full_flow(private_emulator, client)
    secret_values = secrets_in_play(private_emulator, keys)
    assert len([n for n in secret_values if "access token" in n]) >= 4  # alice, bob, carol
    assert len(all_logs.records) > 20  # the flow logged: warnings, errors, tracebacks
    assert any(r.exc_info for r in all_logs.records)  # the receiver's traceback, at least

    for text in all_logs.texts():
        assert not leaks(text, secret_values), text
    for text in texts:
        assert not leaks(text, secret_values), text
    # Stored rows: only the access token's own column holds a token (and the search sees it there).
    assert not leaks(stored_text(skip=((PagecallUser, "access_token"),)), secret_values)
    assert leaks(stored_text(), secret_values)
    stored_headers = [h for h in WebhookDelivery.objects.values_list("headers", flat=True)]
    assert any(h.get(SECRET_HEADER) == "********" for h in stored_headers)
    assert all(h.get("Authorization") in (None, "********") for h in stored_headers)


def test_no_secret_in_the_admin_pages(
    private_emulator: Emulator, keys: dict[str, str], client: Client, admin_client: Client
) -> None:
    run_a_full_flow(private_emulator, client)
    secret_values = secrets_in_play(private_emulator, keys)
    pages = 0
    for model, _model_admin in app_admins():
        prefix = f"admin:{APP}_{model._meta.model_name}"
        urls = [reverse(f"{prefix}_changelist")]
        for pk in model._default_manager.values_list("pk", flat=True)[:5]:
            urls += [
                reverse(f"{prefix}_change", args=[pk]),
                reverse(f"{prefix}_history", args=[pk]),
            ]
        for url in urls:
            response = admin_client.get(url)
            assert response.status_code == 200, url
            assert not leaks(response.content.decode(), secret_values), url
            pages += 1
    registered = {m for m, _ in app_admins()}
    assert {Room, PagecallUser, Session, WebhookDelivery} <= registered
    assert pages > 20


def test_the_room_admin_join_as_link_keeps_the_token_out_of_pages_and_logs(
    private_emulator: Emulator,
    keys: dict[str, str],
    admin_client: Client,
    all_logs: RecordAll,
) -> None:
    with transaction.atomic():
        room = Room.objects.create(name="private", type="private")
        member = Member.objects.create(room=room, user_id="dora")
    room.refresh_from_db()
    change = admin_client.get(reverse("admin:django_pagecall_room_change", args=[room.pk]))
    link = reverse("admin:django_pagecall_room_member_link", args=[room.pk, member.pk, "meet"])
    assert link in change.content.decode()
    redirect = admin_client.post(link)
    assert redirect.status_code == 302
    token = PagecallUser.objects.get(user_id="dora").access_token
    assert token and token in redirect["Location"]  # the redirect is the token's only way out
    secret_values = secrets_in_play(private_emulator, keys)
    for text in all_logs.texts():
        assert not leaks(text, secret_values), text
    history = admin_client.get(reverse("admin:django_pagecall_room_history", args=[room.pk]))
    assert "Opened the meeting as member dora" in history.content.decode()
    assert not leaks(history.content.decode(), secret_values)


@pytest.mark.parametrize("key", ["API_KEY", "WEBHOOK_SECRETS"])
def test_malformed_secret_settings_are_named_never_repeated(settings: Any, key: str) -> None:
    leaked = "s3cr3t-" + secrets.token_urlsafe(16)
    settings.PAGECALL = {**settings.PAGECALL, key: [leaked] if key == "API_KEY" else [leaked[:20]]}
    with pytest.raises(ImproperlyConfigured) as raised:
        getattr(pagecall_settings, key)
    assert key in str(raised.value)
    assert leaked[:20] not in str(raised.value)
    out = _Output()
    with pytest.raises(Exception) as failed:  # noqa: PT011  (SystemCheckError, whatever its text)
        call_command("check", stdout=out, stderr=out)
    assert leaked[:20] not in str(failed.value) + out.text


# -- admin permissions ----------------------------------------------------------------------------


def staff_with(*codenames: str) -> Any:
    user = get_user_model().objects.create_user(
        f"staff-{secrets.token_hex(4)}", password="pw", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label=APP, codename__in=codenames)
    )
    return user


def view_codenames() -> list[str]:
    return [f"view_{m._meta.model_name}" for m in apps.get_app_config(APP).get_models()]


def test_every_admin_action_declares_the_permission_it_needs() -> None:
    actions = 0
    for model, model_admin in app_admins():
        for name in model_admin.actions or ():
            func = getattr(model_admin, name) if isinstance(name, str) else name
            needed = getattr(func, "allowed_permissions", None)
            assert needed, f"{model.__name__} action {name!r} needs no permission"
            for permission in needed:  # Django checks has_<permission>_permission(request)
                assert hasattr(model_admin, f"has_{permission}_permission"), (name, permission)
            actions += 1
    assert actions >= 1


def test_view_only_staff_are_offered_no_action_and_cannot_post_one(
    pagecall_emulator: Emulator, client: Client
) -> None:
    room = make_room(pagecall_emulator, type="public")
    post(client, room.join("alice"), room.headers)
    Room.objects.filter(pk=room.room.pk).update(sync_state=SyncState.FAILED)
    delivery = WebhookDelivery.objects.get()
    pagecall_emulator.clear_requests()

    staff = Client()
    staff.force_login(staff_with(*view_codenames()))
    selected = {Room: room.room.pk, WebhookDelivery: delivery.pk}
    posted = 0
    for model, model_admin in app_admins():
        changelist = reverse(f"admin:{APP}_{model._meta.model_name}_changelist")
        page = staff.get(changelist)
        assert page.status_code == 200, changelist
        offered = (
            page.context["action_form"].fields["action"].choices
            if page.context.get("action_form")
            else []
        )
        assert [c for c in offered if c[0]] == [], (model.__name__, offered)
        for name in [*(model_admin.actions or ()), "delete_selected"]:
            if model not in selected or not isinstance(name, str):
                continue
            data = {"action": name, "_selected_action": [selected[model]], "post": "yes"}
            staff.post(changelist, data)
            posted += 1
    assert posted >= 4
    # Nothing happened: no call to Pagecall, no replay, nothing terminated or retried or deleted.
    assert pagecall_emulator.requests == []
    assert WebhookDelivery.objects.get().attempts == delivery.attempts
    room.room.refresh_from_db()
    assert room.room.sync_state == SyncState.FAILED
    assert not room.room.terminate_requested
    assert not LogEntry.objects.exists()


def test_replay_needs_the_change_permission_and_runs_with_it(
    pagecall_emulator: Emulator, client: Client
) -> None:
    room = make_room(pagecall_emulator)
    post(client, room.join("alice"), room.headers)
    delivery = WebhookDelivery.objects.get()
    changelist = reverse(f"admin:{APP}_webhookdelivery_changelist")
    data = {"action": "replay_selected", "_selected_action": [delivery.pk]}

    viewer = Client()
    viewer.force_login(staff_with("view_webhookdelivery"))
    viewer.post(changelist, data)
    assert WebhookDelivery.objects.get().attempts == delivery.attempts

    changer = Client()
    changer.force_login(staff_with("view_webhookdelivery", "change_webhookdelivery"))
    response = changer.post(changelist, data, follow=True)
    assert response.status_code == 200
    assert WebhookDelivery.objects.get().attempts == delivery.attempts + 1


def test_join_as_needs_the_change_permission(pagecall_emulator: Emulator) -> None:
    with transaction.atomic():
        room = Room.objects.create(name="private", type="private")
        member = Member.objects.create(room=room, user_id="dora")
    pagecall_emulator.clear_requests()
    link = reverse("admin:django_pagecall_room_member_link", args=[room.pk, member.pk, "meet"])
    viewer = Client()
    viewer.force_login(staff_with("view_room", "view_member"))
    assert viewer.post(link).status_code == 403
    anonymous = Client().post(link)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert pagecall_emulator.requests == []  # no POST /users: nobody was registered for them


def test_mirrored_records_cannot_be_added_or_edited_even_by_a_superuser(
    admin_client: Client,
) -> None:
    for model in (Session, WebhookDelivery, PagecallUser):
        add = reverse(f"admin:{APP}_{model._meta.model_name}_add")
        assert admin_client.get(add).status_code == 403


# -- the webhook endpoint -------------------------------------------------------------------------


def test_another_rooms_secret_is_refused_with_403_and_forged_headers_with_401(
    pagecall_emulator: Emulator, client: Client
) -> None:
    a = make_room(pagecall_emulator, name="A")
    b = make_room(pagecall_emulator, name="B")
    # A's own credentials, B's payload: authenticated as A, refused as not A's.
    mismatch = post(client, b.join("mallory"), a.headers)
    assert mismatch.status_code == 403
    assert mismatch.json()["error"] == "room_mismatch"
    # B's room header with A's secret, or a secret made with a key the site does not have.
    forged = [
        {ROOM_HEADER: str(b.room.pk), SECRET_HEADER: a.headers[SECRET_HEADER]},
        {ROOM_HEADER: str(b.room.pk), SECRET_HEADER: room_secret(b.room.pk, "k" * 50)},
        {ROOM_HEADER: str(b.room.pk), SECRET_HEADER: b.headers[SECRET_HEADER].upper()},
    ]
    for headers in forged:
        response = post(client, b.join("mallory"), headers)
        assert response.status_code == 401, headers
        assert response.json()["error"] == "authentication_failed"
        assert a.headers[SECRET_HEADER] not in response.content.decode()
    assert not WebhookDelivery.objects.exists()
    assert not Session.objects.exists()


def test_bodies_over_the_limit_are_refused_with_413(
    pagecall_emulator: Emulator, client: Client, settings: Any
) -> None:
    settings.PAGECALL = {**settings.PAGECALL, "WEBHOOK_MAX_BODY_SIZE": 1024}
    room = make_room(pagecall_emulator)
    body = room.join("alice")
    body["padding"] = "x" * 1024
    response = post(client, body, room.headers)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert response.json()["limit"] == 1024
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "failed" and delivery.body == ""
    # Without credentials it is a 401, not a 413, and nothing is stored.
    assert post(client, body).status_code == 401
    assert WebhookDelivery.objects.count() == 1


def test_an_oversized_body_is_answered_without_being_read(
    pagecall_emulator: Emulator, live_server: Any, settings: Any
) -> None:
    settings.PAGECALL = {**settings.PAGECALL, "WEBHOOK_MAX_BODY_SIZE": 1024}
    room = make_room(pagecall_emulator)
    address = urlsplit(live_server.url)
    with socket.create_connection((address.hostname, address.port), timeout=20) as sock:
        # 100 MB announced, 10 bytes sent: had the view read the body, no answer would come.
        head = (
            f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: {address.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {100 * 2**20}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in room.headers.items())
            + "\r\n"
        )
        sock.sendall(head.encode() + b'{"action":')
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


# -- the bound on failed authentications -------------------------------------------------------------


class CountingCache(LocMemCache):
    """Django's local-memory cache, counting every call the app makes to it."""

    calls: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        if name in {"get", "set", "add", "incr", "decr", "delete", "get_many", "set_many", "touch"}:
            CountingCache.calls.append(name)
        return super().__getattribute__(name)


class BrokenCache(LocMemCache):
    def incr(self, *args: Any, **kwargs: Any) -> int:
        raise ConnectionError("the cache is down")

    def add(self, *args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("the cache is down")


@pytest.fixture
def limit_of_5(settings: Any) -> Callable[..., Any]:
    settings.PAGECALL = {**settings.PAGECALL, "WEBHOOK_AUTH_FAILURES_PER_MINUTE": 5}
    return lambda **changes: setattr(settings, "PAGECALL", {**settings.PAGECALL, **changes})


def wrong(room: PagecallRoom) -> dict[str, str]:
    return {**room.headers, SECRET_HEADER: "0" * 64}


def test_failed_authentications_past_the_limit_get_429_and_no_more_log_lines(
    pagecall_emulator: Emulator,
    client: Client,
    limit_of_5: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    room = make_room(pagecall_emulator)
    body = room.join("alice")
    with caplog.at_level(logging.INFO):
        statuses = [post(client, body, wrong(room)).status_code for _ in range(5)]
        statuses += [post(client, body).status_code]  # no credentials at all counts too
        limited = [post(client, body, wrong(room)) for _ in range(20)]
    assert statuses == [401] * 5 + [429]
    assert {r.status_code for r in limited} == {429}
    answer = limited[0].json()
    assert answer["error"] == "too_many_failed_authentications"
    assert isinstance(answer["detail"], str)
    assert 0 < int(limited[0]["Retry-After"]) <= 60
    refusals = [r for r in caplog.records if "invalid credentials" in r.getMessage()]
    assert len(refusals) == 5
    assert len([r for r in caplog.records if "failed authentications" in r.getMessage()]) == 1
    assert not [r for r in caplog.records if r.name == "django.request" and "429" in str(r.args)]
    assert len([r for r in caplog.records if r.name == "django.request"]) == 5
    assert not WebhookDelivery.objects.exists()


def test_genuine_deliveries_are_never_refused_nor_counted(
    pagecall_emulator: Emulator, client: Client, limit_of_5: Any
) -> None:
    room = make_room(pagecall_emulator)
    for _ in range(5):
        assert post(client, room.join("x"), wrong(room)).status_code == 401
    # The address is at its limit: Pagecall's deliveries from it still go through, and many of
    # them do not move the count (the next failure is still the sixth).
    for user in range(10):
        assert post(client, room.join(f"user-{user}"), room.headers).status_code == 200
    assert post(client, room.join("x"), wrong(room)).status_code == 429
    assert post(client, room.join("late"), room.headers).status_code == 200
    assert Session.objects.count() == 11


def test_the_limit_is_per_remote_address(
    pagecall_emulator: Emulator, client: Client, limit_of_5: Any
) -> None:
    room = make_room(pagecall_emulator)
    for _ in range(6):
        post(client, room.join("x"), wrong(room))
    assert post(client, room.join("x"), wrong(room)).status_code == 429
    other = client.post(
        WEBHOOK_PATH,
        data=json.dumps(room.join("x")),
        content_type="application/json",
        headers=wrong(room),
        REMOTE_ADDR="192.0.2.7",
    )
    assert other.status_code == 401


def test_the_count_starts_again_each_minute(
    pagecall_emulator: Emulator, client: Client, limit_of_5: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    room = make_room(pagecall_emulator)
    now = [1_700_000_000.0]  # a whole minute
    monkeypatch.setattr(webhook_views.failed_auth_limiter, "clock", lambda: now[0])
    for _ in range(5):
        post(client, room.join("x"), wrong(room))
    assert post(client, room.join("x"), wrong(room)).status_code == 429
    now[0] += 60
    assert post(client, room.join("x"), wrong(room)).status_code == 401


def test_a_limit_of_0_counts_nothing(
    pagecall_emulator: Emulator, client: Client, limit_of_5: Any, settings: Any
) -> None:
    limit_of_5(WEBHOOK_AUTH_FAILURES_PER_MINUTE=0)
    settings.CACHES = {"default": {"BACKEND": f"{__name__}.CountingCache"}}
    CountingCache.calls = []
    room = make_room(pagecall_emulator)
    assert {post(client, room.join("x"), wrong(room)).status_code for _ in range(20)} == {401}
    assert CountingCache.calls == []


def test_the_success_path_never_touches_the_cache(
    pagecall_emulator: Emulator, client: Client, settings: Any
) -> None:
    settings.CACHES = {"default": {"BACKEND": f"{__name__}.CountingCache"}}
    room = make_room(pagecall_emulator)
    CountingCache.calls = []
    first = room.join("alice")
    for body in (first, first, room.join("bob"), room.leave(first["payload"]["sessionId"])):
        assert post(client, body, room.headers).status_code == 200
    assert CountingCache.calls == []
    assert post(client, first, wrong(room)).status_code == 401
    assert CountingCache.calls  # the refusal was counted: the backend is the one in use


def test_a_failing_cache_leaves_refusals_as_401(
    pagecall_emulator: Emulator, client: Client, settings: Any, limit_of_5: Any
) -> None:
    settings.CACHES = {"default": {"BACKEND": f"{__name__}.BrokenCache"}}
    room = make_room(pagecall_emulator)
    assert {post(client, room.join("x"), wrong(room)).status_code for _ in range(8)} == {401}
    assert post(client, room.join("alice"), room.headers).status_code == 200


@pytest.mark.parametrize("value", [-1, "60/min", 1.5, True])
def test_the_limit_setting_is_validated(settings: Any, value: Any) -> None:
    settings.PAGECALL = {**settings.PAGECALL, "WEBHOOK_AUTH_FAILURES_PER_MINUTE": value}
    with pytest.raises(ImproperlyConfigured, match="WEBHOOK_AUTH_FAILURES_PER_MINUTE"):
        _ = pagecall_settings.WEBHOOK_AUTH_FAILURES_PER_MINUTE


def test_the_openapi_document_is_public_and_repeats_no_host(client: Client) -> None:
    url = reverse("pagecall:webhook-openapi")
    plain = client.get(url)
    spoofed = client.get(url, headers={"Host": "evil.example"})
    assert plain.status_code == spoofed.status_code == 200
    assert plain.content == spoofed.content
    assert b"evil.example" not in spoofed.content
