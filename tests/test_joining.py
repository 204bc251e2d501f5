"""The pages and API people use to enter a meeting: who may, what a room that cannot be entered
answers, tokens kept out of caches, and the embedded meeting's tag; against the emulator."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from django_pagecall.conf import pagecall_settings
from django_pagecall.emulator import Emulator
from django_pagecall.models import Member, Room, Session, SyncState
from tests.conftest import at_most

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()


@pytest.fixture
def people() -> dict[str, Any]:
    return {name: User.objects.create_user(name, password="pw") for name in ("alice", "bob")}


@pytest.fixture
def room(pagecall_emulator: Emulator, people: dict[str, Any]) -> Room:
    """A private room on Pagecall (the emulator) whose one member is alice."""
    room = Room.objects.create(name="Algebra", type="private")
    Member.objects.create(room=room, site_user=people["alice"], name="Alice")
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    return room


@pytest.fixture
def as_alice(client: Client, people: dict[str, Any]) -> Client:
    client.force_login(people["alice"])
    return client


def token_of(emu: Emulator, user_id: str) -> str:
    return str(emu.users[user_id]["access_token"])


def posts_to_users(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r["method"] == "POST" and r["route"] == "/users")


# -- join and replay -------------------------------------------------------------------------


def test_a_member_is_sent_into_the_meeting_with_their_token(
    pagecall_emulator: Emulator, room: Room, as_alice: Client, people: dict[str, Any]
) -> None:
    response = as_alice.get(reverse("pagecall:join", args=[room.pk]))
    assert response.status_code == 302
    link = urlsplit(response["Location"])
    assert f"{link.scheme}://{link.netloc}" == pagecall_settings.APP_URL
    assert link.path == "/meet"
    query = parse_qs(link.query)
    assert query["room_id"] == [room.pagecall_id]
    assert query["access_token"] == [token_of(pagecall_emulator, str(people["alice"].pk))]
    assert "no-store" in response["Cache-Control"]


def test_a_non_member_is_refused_with_a_page(room: Room, client: Client, people: dict) -> None:
    client.force_login(people["bob"])
    for name in ("pagecall:join", "pagecall:replay", "pagecall:room"):
        response = client.get(reverse(name, args=[room.pk]))
        assert response.status_code == 403
        assert "not invited" in response.content.decode()
        assert "access_token" not in response.content.decode()


def test_an_anonymous_person_is_sent_to_log_in(room: Room, client: Client, settings: Any) -> None:
    settings.LOGIN_URL = "/accounts/login/"
    for name in ("pagecall:join", "pagecall:replay", "pagecall:room"):
        path = reverse(name, args=[room.pk])
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={path}"


def test_anyone_may_enter_an_open_room(pagecall_emulator: Emulator, client: Client) -> None:
    room = Room.objects.create(name="Lobby", type="open")
    room.refresh_from_db()
    response = client.get(reverse("pagecall:join", args=[room.pk]))
    assert response.status_code == 302
    assert parse_qs(urlsplit(response["Location"]).query) == {"room_id": [room.pagecall_id]}
    assert posts_to_users(pagecall_emulator) == 0  # an anonymous guest needs no registration


def test_a_blocked_member_may_not_join(room: Room, as_alice: Client) -> None:
    room.members.get().remove()
    assert as_alice.get(reverse("pagecall:join", args=[room.pk])).status_code == 403


def test_an_unknown_room_is_a_404(as_alice: Client, db: None) -> None:
    assert as_alice.get(reverse("pagecall:join", args=[999999])).status_code == 404


@pytest.mark.parametrize(
    ("change", "status", "text"),
    [
        ({"pagecall_id": None, "sync_state": SyncState.PENDING}, 200, "still being set up"),
        ({"pagecall_id": None, "sync_state": SyncState.CREATING}, 200, "still being set up"),
        ({"pagecall_id": None, "sync_state": SyncState.FAILED}, 409, "could not be created"),
        ({"terminate_requested": True}, 410, "has ended"),
    ],
)
def test_a_room_that_cannot_be_entered_says_why(
    room: Room, as_alice: Client, change: dict[str, Any], status: int, text: str
) -> None:
    Room.objects.filter(pk=room.pk).update(**change)
    for name in ("pagecall:join", "pagecall:room"):
        response = as_alice.get(reverse(name, args=[room.pk]))
        body = response.content.decode()
        if name == "pagecall:room" and status == 200:
            # The page frames the join view, which says so inside the frame and refreshes.
            assert reverse("pagecall:join", args=[room.pk]) in body
            continue
        assert response.status_code == status
        assert text in body
        assert "access_token" not in body
        assert ("Refresh" in response) == (status == 200)


def test_a_terminated_room_still_has_its_replay(
    pagecall_emulator: Emulator, room: Room, as_alice: Client
) -> None:
    room.terminate()
    room.refresh_from_db()
    assert room.is_terminated
    assert as_alice.get(reverse("pagecall:join", args=[room.pk])).status_code == 410
    response = as_alice.get(reverse("pagecall:replay", args=[room.pk]))
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == "/replay"
    assert "no-store" in response["Cache-Control"]


def test_a_room_that_is_not_recorded_has_no_replay(room: Room, as_alice: Client) -> None:
    Room.objects.filter(pk=room.pk).update(record=False)
    response = as_alice.get(reverse("pagecall:replay", args=[room.pk]))
    assert response.status_code == 404
    assert "not recorded" in response.content.decode()


def test_pagecall_unreachable_is_a_503_page_not_a_500(
    pagecall_emulator: Emulator, client: Client, people: dict[str, Any]
) -> None:
    lobby = Room.objects.create(name="Lobby", type="open")
    client.force_login(people["bob"])  # not registered with Pagecall yet
    pagecall_emulator.inject("POST", "/users", status=500, times=None)
    response = client.get(reverse("pagecall:join", args=[lobby.pk]))
    assert response.status_code == 503
    assert "could not be reached" in response.content.decode()
    assert response["Retry-After"]


def test_join_accepts_no_redirect_target(room: Room, as_alice: Client) -> None:
    path = reverse("pagecall:join", args=[room.pk]) + "?next=https://evil.example/"
    response = as_alice.get(path)
    assert response.status_code == 302
    assert not response["Location"].startswith("https://evil.example")


def test_join_is_get_only(room: Room, as_alice: Client) -> None:
    assert as_alice.post(reverse("pagecall:join", args=[room.pk])).status_code == 405


def test_a_site_rule_decides_who_may_join(
    room: Room, client: Client, people: dict[str, Any], settings: Any
) -> None:
    settings.PAGECALL = {**settings.PAGECALL, "CAN_JOIN_FUNCTION": "tests.test_joining.only_bob"}
    client.force_login(people["bob"])
    assert client.get(reverse("pagecall:join", args=[room.pk])).status_code == 302
    client.force_login(people["alice"])
    assert client.get(reverse("pagecall:join", args=[room.pk])).status_code == 403


def only_bob(user: Any, room: Room) -> bool:
    return bool(user.is_authenticated and user.get_username() == "bob")


# -- the embedded meeting --------------------------------------------------------------------


def render_tag(room: Room, user: Any) -> str:
    request = RequestFactory().get("/lesson/")
    request.user = user
    host = Template("{% load pagecall %}<main><h1>Lesson</h1>{% pagecall_room room %}</main>")
    return host.render(Context({"room": room, "request": request}))


def test_the_tag_embeds_the_meeting_in_a_host_template(
    pagecall_emulator: Emulator, room: Room, people: dict[str, Any]
) -> None:
    html = render_tag(room, people["alice"])
    join = reverse("pagecall:join", args=[room.pk])
    assert html.startswith("<main><h1>Lesson</h1>")
    assert f'src="{join}"' in html
    assert 'title="Meeting: Algebra"' in html
    origin = pagecall_settings.APP_URL
    for feature in ("camera", "microphone", "fullscreen", "display-capture"):
        assert f"{feature} {origin}" in html
    assert f'href="{join}" target="_blank" rel="noopener"' in html
    assert "pagecall-room.js" in html
    assert "access_token" not in html  # the token comes with the frame's redirect, never cached


def test_the_tag_renders_a_message_where_the_person_cannot_join(
    room: Room, people: dict[str, Any]
) -> None:
    assert "You are not invited" in render_tag(room, people["bob"])
    assert "Sign in to join" in render_tag(room, AnonymousUser())
    Room.objects.filter(pk=room.pk).update(sync_state=SyncState.FAILED, pagecall_id=None)
    room.refresh_from_db()
    html = render_tag(room, people["alice"])
    assert "could not be created" in html
    assert "<iframe" not in html


def test_the_room_page_escapes_the_room_name(pagecall_emulator: Emulator, as_alice: Client) -> None:
    room = Room.objects.create(name="<script>alert(1)</script>", type="open")
    response = as_alice.get(reverse("pagecall:room", args=[room.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "no-store" in response["Cache-Control"]


# -- the API for front ends ------------------------------------------------------------------


@pytest.fixture
def csrf_alice(people: dict[str, Any]) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(people["alice"])
    return client


def join_api(room: Room) -> str:
    return reverse("pagecall:api-room-join", args=[room.pk])


def csrf_token(client: Client) -> str:
    """The CSRF cookie a page with a form sets, which a front end sends back in a header."""
    client.get(reverse("admin:login"))
    return str(client.cookies["csrftoken"].value)


def test_the_join_api_answers_what_the_sdks_take(
    pagecall_emulator: Emulator, room: Room, csrf_alice: Client, people: dict[str, Any]
) -> None:
    response = csrf_alice.post(join_api(room), HTTP_X_CSRFTOKEN=csrf_token(csrf_alice))
    assert response.status_code == 200, response.content
    body = response.json()
    token = token_of(pagecall_emulator, str(people["alice"].pk))
    assert body == {
        "room_id": room.pagecall_id,
        "access_token": token,
        "url": f"{pagecall_settings.APP_URL}/meet?room_id={room.pagecall_id}&access_token={token}",
    }
    assert "no-store" in response["Cache-Control"]


def test_the_join_api_needs_the_csrf_token_with_session_auth(
    room: Room, csrf_alice: Client
) -> None:
    response = csrf_alice.post(join_api(room))
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_the_api_refuses_anonymous_people(room: Room, client: Client) -> None:
    for path in (
        reverse("pagecall:api-room-list"),
        reverse("pagecall:api-room-detail", args=[room.pk]),
    ):
        assert client.get(path).status_code in (401, 403)
    assert client.post(join_api(room)).status_code in (401, 403)


def test_the_api_hides_rooms_from_non_members(
    room: Room, client: Client, people: dict[str, Any]
) -> None:
    client.force_login(people["bob"])
    assert client.get(reverse("pagecall:api-room-list")).json() == []
    assert client.get(reverse("pagecall:api-room-detail", args=[room.pk])).status_code == 404
    assert client.post(join_api(room)).status_code == 404


def test_the_room_list_and_detail(
    pagecall_emulator: Emulator, room: Room, as_alice: Client, people: dict[str, Any]
) -> None:
    other = Room.objects.create(name="Not hers", type="private")
    lobby = Room.objects.create(name="Lobby", type="open")
    Session.objects.create(
        room=room, session_id="s1", user_id="a", member_id="m", joined_at=timezone.now()
    )
    Session.objects.create(
        room=room,
        session_id="s0",
        user_id="a",
        member_id="m",
        joined_at=timezone.now(),
        left_at=timezone.now(),
    )
    listed = as_alice.get(reverse("pagecall:api-room-list")).json()
    assert [r["name"] for r in listed] == ["Lobby", "Algebra"]
    algebra = listed[1]
    assert algebra["id"] == room.pk
    assert algebra["availability"] == "ready"
    assert algebra["sync_state"] == "synced"
    assert algebra["online"] == 1
    assert listed[0]["online"] == 0
    detail = as_alice.get(reverse("pagecall:api-room-detail", args=[lobby.pk])).json()
    assert detail["name"] == "Lobby"
    assert as_alice.get(reverse("pagecall:api-room-detail", args=[other.pk])).status_code == 404


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"pagecall_id": None, "sync_state": SyncState.PENDING}, 409, "room_not_ready"),
        ({"pagecall_id": None, "sync_state": SyncState.FAILED}, 409, "room_failed"),
        ({"terminate_requested": True}, 410, "room_ended"),
    ],
)
def test_the_join_api_says_why_a_room_cannot_be_entered(
    room: Room, as_alice: Client, change: dict[str, Any], status: int, code: str
) -> None:
    Room.objects.filter(pk=room.pk).update(**change)
    response = as_alice.post(join_api(room))
    assert response.status_code == status
    assert response.json()["detail"]
    assert "access_token" not in response.json()


def test_the_join_api_calls_pagecall_only_to_register_a_new_person(
    pagecall_emulator: Emulator, room: Room, as_alice: Client
) -> None:
    assert as_alice.post(join_api(room)).status_code == 200
    assert posts_to_users(pagecall_emulator) == 1
    pagecall_emulator.clear_requests()
    for _ in range(3):
        assert as_alice.post(join_api(room)).status_code == 200
    assert pagecall_emulator.requests == []  # already registered: no call to Pagecall at all


def test_the_join_api_is_throttled(room: Room, as_alice: Client, settings: Any) -> None:
    cache.clear()
    settings.REST_FRAMEWORK = {"DEFAULT_THROTTLE_RATES": {"pagecall-join": "2/minute"}}
    statuses = [as_alice.post(join_api(room)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    cache.clear()


def test_the_join_api_has_a_rate_without_configuration(
    room: Room, as_alice: Client, settings: Any
) -> None:
    from django_pagecall.api import DEFAULT_JOIN_RATE

    cache.clear()
    allowed = int(DEFAULT_JOIN_RATE.split("/")[0])
    statuses = [as_alice.post(join_api(room)).status_code for _ in range(allowed + 1)]
    assert statuses == [200] * allowed + [429]
    cache.clear()


def test_the_room_list_takes_the_same_queries_however_many_rooms(
    pagecall_emulator: Emulator, as_alice: Client, people: dict[str, Any]
) -> None:
    def make(count: int) -> None:
        for i in range(count):
            room = Room.objects.create(name=f"Room {i}", type="private")
            Member.objects.create(room=room, site_user=people["alice"])
            Member.objects.create(room=room, site_user=people["bob"])
            Session.objects.create(room=room, session_id=f"s-{room.pk}", user_id="x", member_id="m")

    def queries() -> int:
        with at_most(50, transactions=0) as sql:
            response = as_alice.get(reverse("pagecall:api-room-list"))
        assert response.status_code == 200
        return len(sql)

    make(2)
    few = queries()
    make(20)
    assert len(as_alice.get(reverse("pagecall:api-room-list")).json()) == 22
    assert queries() == few


def test_the_openapi_document_describes_the_api(
    pagecall_emulator: Emulator, room: Room, as_alice: Client
) -> None:
    document = json.loads(
        files("django_pagecall.webhooks").joinpath("openapi.json").read_text("utf-8")
    )
    for path in ("/api/rooms/", "/api/rooms/{id}/", "/api/rooms/{id}/join/"):
        assert path in document["paths"]

    def validate(schema_name: str, value: Any) -> None:
        schema = {"$ref": f"#/components/schemas/{schema_name}", **document}
        jsonschema.validate(value, schema)

    validate("RoomList", as_alice.get(reverse("pagecall:api-room-list")).json())
    validate("Join", as_alice.post(join_api(room)).json())
