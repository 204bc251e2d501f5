"""The Pagecall client against the emulator over real HTTP: every operation of the spec.

Each test checks what came back (typed objects) and what the emulator received (method, path,
query and body as sent). Errors, parsing and the transport have their own modules:
``test_client_errors.py``, ``test_client_parsing.py`` and ``test_client_transport.py``.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from django_pagecall import client as client_module
from django_pagecall.client import PagecallClient
from django_pagecall.emulator import Emulator
from django_pagecall.emulator.api import RequestRecord
from django_pagecall.exceptions import PagecallRefused
from django_pagecall.remote import Member, Page, Room, Session, User

HEX_ID = re.compile(r"^[0-9a-f]{24}$")


@pytest.fixture
def pagecall(pagecall_emulator: Emulator) -> Iterator[PagecallClient]:
    """A client built from ``settings.PAGECALL`` (pointing at the emulator)."""
    client = PagecallClient.from_settings()
    yield client
    client.close()


@pytest.fixture
def small_pages(
    monkeypatch: pytest.MonkeyPatch, pagecall_emulator: Emulator
) -> Iterator[PagecallClient]:
    """A client built from settings with pages of 2."""
    monkeypatch.setattr(client_module, "PAGE_SIZE", 2)
    client = PagecallClient.from_settings()
    assert client.page_size == 2
    yield client
    client.close()


def calls(emulator: Emulator, operation: str | None = None) -> list[RequestRecord]:
    """The requests the emulator received, optionally only those of one ``operationId``."""
    return [r for r in emulator.requests if operation is None or r["operation"] == operation]


def last_call(emulator: Emulator) -> RequestRecord:
    records = emulator.requests
    assert records, "the emulator received nothing"
    return records[-1]


def assert_recent_utc(value: datetime | None) -> None:
    assert value is not None
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - value) < timedelta(minutes=1)


def make_rooms(client: PagecallClient, emulator: Emulator, *names: str) -> list[Room]:
    rooms = [client.create_room(name=name, type="open") for name in names]
    emulator.clear_requests()
    return rooms


# -- rooms ---------------------------------------------------------------------------------------


def test_list_rooms_iterates_lazily_across_pages(
    small_pages: PagecallClient, pagecall_emulator: Emulator
) -> None:
    made = make_rooms(small_pages, pagecall_emulator, *(f"room {i}" for i in range(5)))

    rooms = small_pages.list_rooms()
    assert calls(pagecall_emulator) == []  # nothing is sent before the caller iterates

    listed = list(rooms)
    assert [r.id for r in listed] == [r.id for r in made]
    assert all(isinstance(r, Room) for r in listed)
    gets = calls(pagecall_emulator)
    assert [(r["method"], r["path"]) for r in gets] == [("GET", "/v1/rooms")] * 3
    assert [r["query"] for r in gets] == [
        {"offset": "0", "limit": "2"},
        {"offset": "2", "limit": "2"},
        {"offset": "4", "limit": "2"},
    ]


def test_list_rooms_fetches_no_further_page_than_the_caller_reads(
    small_pages: PagecallClient, pagecall_emulator: Emulator
) -> None:
    made = make_rooms(small_pages, pagecall_emulator, *(f"room {i}" for i in range(5)))

    first = next(iter(small_pages.list_rooms()))

    assert first.id == made[0].id
    assert [r["query"] for r in calls(pagecall_emulator)] == [{"offset": "0", "limit": "2"}]


def test_list_rooms_of_an_empty_workspace_makes_one_request(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    assert list(pagecall.list_rooms()) == []
    assert [r["query"] for r in calls(pagecall_emulator)] == [{"offset": "0", "limit": "100"}]


def test_list_rooms_filters_are_sent_as_the_query_expects(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    alpha, beta = make_rooms(pagecall, pagecall_emulator, "alpha", "beta")
    pagecall.update_room(beta.id, application_id=beta.application_id or "", is_terminated=True)
    pagecall_emulator.clear_requests()

    assert [r.id for r in pagecall.list_rooms(name="alpha")] == [alpha.id]
    assert [r.id for r in pagecall.list_rooms(is_terminated=True)] == [beta.id]
    assert [r.id for r in pagecall.list_rooms(is_terminated=False)] == [alpha.id]
    assert [r.id for r in pagecall.list_rooms(layout="SixAll")] == [alpha.id, beta.id]
    assert list(pagecall.list_rooms(name="alpha", layout="NoSuchLayout")) == []

    page = {"offset": "0", "limit": "100"}
    assert [r["query"] for r in calls(pagecall_emulator)] == [
        {"name": "alpha", **page},
        {"is_terminated": "true", **page},
        {"is_terminated": "false", **page},
        {"layout": "SixAll", **page},
        {"name": "alpha", "layout": "NoSuchLayout", **page},
    ]


def test_list_rooms_name_filter_is_url_encoded(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    (room,) = make_rooms(pagecall, pagecall_emulator, "Q&A: 1+1=2 / café")

    assert [r.id for r in pagecall.list_rooms(name="Q&A: 1+1=2 / café")] == [room.id]
    assert calls(pagecall_emulator)[0]["query"]["name"] == "Q&A: 1+1=2 / café"


def test_create_room_sends_exactly_the_given_body(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    room = pagecall.create_room(
        name="Weekly meet",
        type="private",
        record=False,
        max_meeting_seconds=3600,
        members=[
            {"user_id": "u1", "type": "host", "name": "Ann"},
            {"user_id": "u2", "type": "guest", "name": None},  # None is left out
        ],
        webhook_url="https://example.invalid/pagecall/webhook/",
        webhook_headers={"X-Webhook-Token": "s3cret"},
    )

    call = last_call(pagecall_emulator)
    assert (call["method"], call["path"], call["operation"], call["status"]) == (
        "POST",
        "/v1/rooms",
        "createRoom",
        200,
    )
    assert call["body"] == {
        "name": "Weekly meet",
        "type": "private",
        "record": False,
        "max_meeting_seconds": 3600,
        "members": [
            {"user_id": "u1", "type": "host", "name": "Ann"},
            {"user_id": "u2", "type": "guest"},
        ],
        "webhook": {
            "url": "https://example.invalid/pagecall/webhook/",
            "headers": {"X-Webhook-Token": "s3cret"},
        },
    }
    assert pagecall_emulator.webhook_config(room.id) == {
        "url": "https://example.invalid/pagecall/webhook/",
        "headers": {"X-Webhook-Token": "s3cret"},
    }
    assert [(m["user_id"], m["type"]) for m in pagecall_emulator.members(room.id)] == [
        ("u1", "host"),
        ("u2", "guest"),
    ]


def test_create_room_returns_a_typed_room_with_aware_utc_datetimes(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    room = pagecall.create_room(name="Typed", type="public", record=True)

    assert isinstance(room, Room)
    assert HEX_ID.match(room.id)
    assert (room.name, room.type, room.record) == ("Typed", "public", True)
    assert room.application_id == pagecall_emulator.state.application_id
    assert room.layout == "SixAll"
    assert room.meeting_time == 0
    assert room.thumbnail_url is not None and room.thumbnail_url.startswith("https://")
    assert_recent_utc(room.created_at)
    assert_recent_utc(room.updated_at)
    assert room.started_at is None and room.terminated_at is None
    assert room.is_terminated is False
    assert room.raw == pagecall_emulator.rooms[room.id]


def test_create_room_minimal_body_has_no_empty_keys(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    pagecall.create_room(name="Minimal", type="open")
    # webhook headers without a url make no webhook
    pagecall.create_room(name="No hook", type="open", webhook_headers={"X-A": "b"})

    assert [c["body"] for c in calls(pagecall_emulator)] == [
        {"name": "Minimal", "type": "open"},
        {"name": "No hook", "type": "open"},
    ]


def test_create_room_with_a_webhook_url_and_no_headers_sends_empty_headers(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    room = pagecall.create_room(name="Hook", type="open", webhook_url="https://example.invalid/h")

    assert last_call(pagecall_emulator)["body"]["webhook"] == {
        "url": "https://example.invalid/h",
        "headers": {},
    }
    assert pagecall_emulator.webhook_config(room.id) == {
        "url": "https://example.invalid/h",
        "headers": {},
    }


def test_get_room(pagecall: PagecallClient, pagecall_emulator: Emulator) -> None:
    created = pagecall.create_room(name="Fetch me", type="open")

    fetched = pagecall.get_room(created.id)

    assert fetched == created
    call = last_call(pagecall_emulator)
    assert (call["method"], call["path"], call["body"]) == ("GET", f"/v1/rooms/{created.id}", None)


def test_get_unknown_room_is_refused(pagecall: PagecallClient) -> None:
    with pytest.raises(PagecallRefused) as caught:
        pagecall.get_room("0" * 24)

    assert caught.value.status == 400
    assert "not found" in json.loads(caught.value.body)["message"]


def test_update_room_renames_closes_and_reopens(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    room = pagecall.create_room(name="Before", type="open")
    app = pagecall_emulator.state.application_id

    renamed = pagecall.update_room(room.id, application_id=app, name="After")
    closed = pagecall.update_room(room.id, application_id=app, is_terminated=True)
    reopened = pagecall.update_room(room.id, application_id=app, is_terminated=False)

    assert [
        (c["method"], c["path"], c["body"]) for c in calls(pagecall_emulator, "updateRoom")
    ] == [
        ("PUT", f"/v1/rooms/{room.id}", {"application_id": app, "name": "After"}),
        ("PUT", f"/v1/rooms/{room.id}", {"application_id": app, "is_terminated": True}),
        ("PUT", f"/v1/rooms/{room.id}", {"application_id": app, "is_terminated": False}),
    ]
    assert renamed.name == "After" and not renamed.is_terminated
    assert closed.is_terminated
    assert_recent_utc(closed.terminated_at)
    assert not reopened.is_terminated and reopened.terminated_at is None
    assert pagecall_emulator.rooms[room.id]["name"] == "After"


def test_update_room_requires_application_id_as_the_spec_does(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    parameter = inspect.signature(PagecallClient.update_room).parameters["application_id"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
    assert parameter.default is inspect.Parameter.empty

    room = pagecall.create_room(name="Spec", type="open")
    with pytest.raises(PagecallRefused) as caught:  # what the API says to a body without it
        pagecall.request("PUT", f"/rooms/{room.id}", json={"name": "x"})
    assert "application_id" in caught.value.body
    assert pagecall_emulator.rooms[room.id]["name"] == "Spec"


def test_delete_room(pagecall: PagecallClient, pagecall_emulator: Emulator) -> None:
    room = pagecall.create_room(name="Doomed", type="open")

    deleted = pagecall.delete_room(room.id)

    assert isinstance(deleted, Room)
    assert (deleted.id, deleted.name) == (room.id, "Doomed")
    call = last_call(pagecall_emulator)
    assert (call["method"], call["path"]) == ("DELETE", f"/v1/rooms/{room.id}")
    assert room.id not in pagecall_emulator.rooms
    with pytest.raises(PagecallRefused):
        pagecall.get_room(room.id)


def test_room_ids_are_quoted_in_paths(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    with pytest.raises(PagecallRefused) as caught:
        pagecall.get_room("a b?c#d")

    call = last_call(pagecall_emulator)
    assert call["path"] == "/v1/rooms/a%20b%3Fc%23d"
    assert call["query"] == {}
    assert "'a b?c#d' not found" in json.loads(caught.value.body)["message"]


# -- sessions ------------------------------------------------------------------------------------


def test_list_room_sessions_and_its_filters(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    room = pagecall.create_room(name="Live", type="public")
    first = pagecall_emulator.join(room.id, user_id="u1")
    second = pagecall_emulator.join(room.id, user_id="u2")
    pagecall_emulator.leave(room.id, first["session"]["id"])
    pagecall_emulator.clear_requests()

    every = pagecall.list_room_sessions(room.id)
    online = pagecall.list_room_sessions(room.id, is_connecting=True)
    gone = pagecall.list_room_sessions(room.id, is_connecting=False)
    of_u1 = pagecall.list_room_sessions(room.id, user_id="u1")
    none = pagecall.list_room_sessions(room.id, user_id="nobody", is_connecting=True)

    assert all(isinstance(s, Session) for s in every)
    assert [s.id for s in every] == [first["session"]["id"], second["session"]["id"]]
    assert [s.user_id for s in online] == ["u2"]
    assert [s.user_id for s in gone] == ["u1"]
    assert [s.id for s in of_u1] == [first["session"]["id"]]
    assert none == []

    left, connected = every
    assert left.member_id == first["member"]["id"]
    assert not left.is_connecting and connected.is_connecting
    assert_recent_utc(left.connected_at)
    assert_recent_utc(left.disconnected_at)
    assert connected.disconnected_at is None

    records = calls(pagecall_emulator)
    assert {r["path"] for r in records} == {f"/v1/rooms/{room.id}/sessions"}
    assert [r["query"] for r in records] == [
        {},
        {"is_connecting": "true"},
        {"is_connecting": "false"},
        {"user_id": "u1"},
        {"user_id": "nobody", "is_connecting": "true"},
    ]


def test_list_room_sessions_of_an_anonymous_participant(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    room = pagecall.create_room(name="Open", type="open")
    joined = pagecall_emulator.join(room.id)

    (session,) = pagecall.list_room_sessions(room.id)

    assert session.id == joined["session"]["id"]
    assert session.user_id is None
    assert session.member_id == joined["member"]["id"]


# -- pages and messages --------------------------------------------------------------------------


def test_create_pages(pagecall: PagecallClient, pagecall_emulator: Emulator) -> None:
    room = pagecall.create_room(name="Board", type="open")
    pages: list[dict[str, Any]] = [
        {
            "entities": [
                {"type": "Image", "src": "https://picsum.photos/id/237/536/354", "fixed": True}
            ],
            "size": {"width": 800, "height": 600},
        },
        {"entities": [], "size": {"width": 100, "height": 100}, "index": 0},
    ]

    created = pagecall.create_pages(room.id, pages)

    call = last_call(pagecall_emulator)
    assert (call["method"], call["path"], call["body"]) == (
        "POST",
        f"/v1/rooms/{room.id}/pages/create_many",
        pages,
    )
    assert all(isinstance(p, Page) for p in created)
    assert [HEX_ID.match(p.id) is not None for p in created] == [True, True]
    assert created[0].entities == (pages[0]["entities"][0],)
    assert created[1].entities == ()
    stored = pagecall_emulator.pages(room.id)
    assert [p["id"] for p in stored] == [p.id for p in created]
    assert [p["size"] for p in stored] == [
        {"width": 800, "height": 600},
        {"width": 100, "height": 100},
    ]


def test_create_pages_with_an_image_without_src_is_refused(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    room = pagecall.create_room(name="Board", type="open")

    with pytest.raises(PagecallRefused) as caught:
        pagecall.create_pages(room.id, [{"entities": [{"type": "Image"}]}])

    assert "src" in caught.value.body
    assert pagecall_emulator.pages(room.id) == []


def test_send_room_message(pagecall: PagecallClient, pagecall_emulator: Emulator) -> None:
    room = pagecall.create_room(name="Chat", type="open")

    answer = pagecall.send_room_message(room.id, "The meeting ends in 5 minutes")

    assert isinstance(answer, str) and answer == "sent"  # the emulator's answer, passed on
    call = last_call(pagecall_emulator)
    assert (call["method"], call["path"], call["body"]) == (
        "POST",
        f"/v1/rooms/{room.id}/message",
        {"message": "The meeting ends in 5 minutes"},
    )
    assert pagecall_emulator.messages(room.id) == ["The meeting ends in 5 minutes"]


def test_send_room_message_answer_without_a_message_reads_as_empty(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    pagecall_emulator.inject("POST", "/rooms/{room_id}/message", status=200, body={})

    assert pagecall.send_room_message("0" * 24, "hi") == ""


# -- members -------------------------------------------------------------------------------------


def private_room(client: PagecallClient, *user_ids: str) -> Room:
    return client.create_room(
        name="Private", type="private", members=[{"user_id": u, "type": "guest"} for u in user_ids]
    )


def test_list_members_iterates_across_pages(
    small_pages: PagecallClient, pagecall_emulator: Emulator
) -> None:
    room = private_room(small_pages, "u1", "u2", "u3")
    pagecall_emulator.clear_requests()

    members = list(small_pages.list_members(room.id))

    assert all(isinstance(m, Member) for m in members)
    assert [(m.user_id, m.room_id, m.type) for m in members] == [
        ("u1", room.id, "guest"),
        ("u2", room.id, "guest"),
        ("u3", room.id, "guest"),
    ]
    records = calls(pagecall_emulator)
    assert {r["path"] for r in records} == {f"/v1/rooms/{room.id}/members"}
    assert [r["query"] for r in records] == [
        {"offset": "0", "limit": "2"},
        {"offset": "2", "limit": "2"},
    ]


def test_create_member(pagecall: PagecallClient, pagecall_emulator: Emulator) -> None:
    room = private_room(pagecall)

    host = pagecall.create_member(room.id, user_id="u1", type="host")
    guest = pagecall.create_member(room.id, user_id="u2")

    assert isinstance(host, Member)
    assert HEX_ID.match(host.id)
    assert (host.user_id, host.room_id, host.type) == ("u1", room.id, "host")
    assert (guest.user_id, guest.type) == ("u2", "guest")  # the default
    assert [(c["path"], c["body"]) for c in calls(pagecall_emulator, "CreateMember")] == [
        (f"/v1/rooms/{room.id}/members", {"user_id": "u1", "type": "host"}),
        (f"/v1/rooms/{room.id}/members", {"user_id": "u2"}),
    ]
    assert [m["user_id"] for m in pagecall_emulator.members(room.id)] == ["u1", "u2"]


def test_get_member_by_member_id_and_by_user_id(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    room = private_room(pagecall, "u1")
    (member,) = pagecall_emulator.members(room.id)

    by_id = pagecall.get_member(room.id, member["id"])
    by_user = pagecall.get_member(room.id, "u1")

    assert by_id == by_user
    assert (by_id.id, by_id.user_id, by_id.room_id) == (member["id"], "u1", room.id)
    assert [c["path"] for c in calls(pagecall_emulator, "GetMember")] == [
        f"/v1/rooms/{room.id}/members/{member['id']}",
        f"/v1/rooms/{room.id}/members/u1",
    ]


def test_get_unknown_member_is_refused(pagecall: PagecallClient) -> None:
    room = private_room(pagecall)

    with pytest.raises(PagecallRefused) as caught:
        pagecall.get_member(room.id, "nobody")

    assert caught.value.status == 400


def test_update_member_type_and_name(pagecall: PagecallClient, pagecall_emulator: Emulator) -> None:
    room = private_room(pagecall, "u1")

    updated = pagecall.update_member(room.id, "u1", type="host", name="Chair")

    assert (updated.user_id, updated.type) == ("u1", "host")
    call = last_call(pagecall_emulator)
    assert (call["method"], call["path"], call["body"]) == (
        "PUT",
        f"/v1/rooms/{room.id}/members/u1",
        {"name": "Chair", "type": "host"},
    )
    assert pagecall_emulator.members(room.id)[0]["type"] == "host"


def test_update_member_is_blocked_removes_a_member_of_a_private_room(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    room = private_room(pagecall, "u1", "u2")
    joined = pagecall_emulator.join(room.id, user_id="u1")

    blocked = pagecall.update_member(room.id, joined["member"]["id"], is_blocked=True)

    assert blocked.user_id == "u1"
    assert last_call(pagecall_emulator)["body"] == {"is_blocked": True}
    assert [m.user_id for m in pagecall.list_members(room.id)] == ["u2"]
    assert pagecall.list_room_sessions(room.id, is_connecting=True) == []  # kicked


def test_update_member_is_blocked_on_a_public_room_is_refused(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    room = pagecall.create_room(
        name="Public", type="public", members=[{"user_id": "u1", "type": "guest"}]
    )

    with pytest.raises(PagecallRefused) as caught:
        pagecall.update_member(room.id, "u1", is_blocked=True)

    assert caught.value.status == 400
    assert (caught.value.method, caught.value.path) == ("PUT", f"/rooms/{room.id}/members/u1")
    assert "private" in json.loads(caught.value.body)["message"]
    assert [m["user_id"] for m in pagecall_emulator.members(room.id)] == ["u1"]


# -- users ---------------------------------------------------------------------------------------


def test_create_user_returns_a_typed_user(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    user = pagecall.create_user(
        user_id="ext-1",
        name="Ann",
        profile_url="https://example.invalid/ann.png",
        default_member_type="host",
    )

    assert last_call(pagecall_emulator)["body"] == {
        "user_id": "ext-1",
        "name": "Ann",
        "profile_url": "https://example.invalid/ann.png",
        "default_member_type": "host",
    }
    assert isinstance(user, User)
    assert (user.user_id, user.name, user.profile_url, user.default_member_type) == (
        "ext-1",
        "Ann",
        "https://example.invalid/ann.png",
        "host",
    )
    assert user.access_token is not None and len(user.access_token) == 32
    assert user.access_token not in repr(user)
    assert user.id is not None and HEX_ID.match(user.id)
    assert_recent_utc(user.created_at)
    assert_recent_utc(user.updated_at)


def test_create_user_upserts_and_keeps_the_access_token(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    first = pagecall.create_user(user_id="ext-1", name="Ann", profile_url="https://a.invalid/p")
    again = pagecall.create_user(user_id="ext-1", name="Anna")

    assert last_call(pagecall_emulator)["body"] == {"user_id": "ext-1", "name": "Anna"}
    assert again.access_token == first.access_token
    assert again.id == first.id
    assert again.name == "Anna"
    assert again.profile_url == "https://a.invalid/p"  # not given: kept
    assert list(pagecall_emulator.users) == ["ext-1"]


def test_list_users_across_pages_and_search(
    small_pages: PagecallClient, pagecall_emulator: Emulator
) -> None:
    for user_id, name in [("ext-1", "Ann"), ("ext-2", "Bob"), ("ext-3", "Joanna")]:
        small_pages.create_user(user_id=user_id, name=name)
    pagecall_emulator.clear_requests()

    every = list(small_pages.list_users())
    anns = list(small_pages.list_users(email_search_query="ann"))

    assert all(isinstance(u, User) for u in every)
    assert [u.user_id for u in every] == ["ext-1", "ext-2", "ext-3"]
    assert [u.user_id for u in anns] == ["ext-1", "ext-3"]
    assert [(r["path"], r["query"]) for r in calls(pagecall_emulator)] == [
        ("/v1/users", {"offset": "0", "limit": "2"}),
        ("/v1/users", {"offset": "2", "limit": "2"}),
        ("/v1/users", {"email_search_query": "ann", "offset": "0", "limit": "2"}),
    ]


def test_get_user(pagecall: PagecallClient, pagecall_emulator: Emulator) -> None:
    created = pagecall.create_user(user_id="ann smith@example.com", name="Ann")

    fetched = pagecall.get_user("ann smith@example.com")

    assert fetched == created
    assert last_call(pagecall_emulator)["path"] == "/v1/users/ann%20smith%40example.com"


def test_update_user_sends_only_what_is_given(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    created = pagecall.create_user(user_id="ext-1", name="Ann")

    updated = pagecall.update_user("ext-1", default_member_type="monitor")

    call = last_call(pagecall_emulator)
    assert (call["method"], call["path"], call["body"]) == (
        "PUT",
        "/v1/users/ext-1",
        {"default_member_type": "monitor"},
    )
    assert (updated.name, updated.default_member_type) == ("Ann", "monitor")
    assert updated.access_token == created.access_token


def test_update_unknown_user_is_refused(pagecall: PagecallClient) -> None:
    with pytest.raises(PagecallRefused):
        pagecall.update_user("nobody", name="x")


def test_delete_user(pagecall: PagecallClient, pagecall_emulator: Emulator) -> None:
    pagecall.create_user(user_id="ext-1", name="Ann")

    deleted = pagecall.delete_user("ext-1")

    assert (deleted.user_id, deleted.name) == ("ext-1", "Ann")
    call = last_call(pagecall_emulator)
    assert (call["method"], call["path"]) == ("DELETE", "/v1/users/ext-1")
    assert pagecall_emulator.users == {}
    with pytest.raises(PagecallRefused):
        pagecall.get_user("ext-1")
