"""Parsing Pagecall's answers: the resources' ``from_api`` (unit) and the client over HTTP.

Pagecall answers deprecated fields with the literal ``"#DEPRECATED#"`` (even where the spec
says boolean) and may add fields the spec does not list: neither may break parsing. A field
of the wrong type reads as ``None``; only a missing identifier is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from django_pagecall.client import PagecallClient
from django_pagecall.emulator import Emulator
from django_pagecall.exceptions import PagecallResponseError
from django_pagecall.remote import DEPRECATED, Member, Page, Room, Session, User, parse_datetime

ROOM_ID = "000585f36eed9e8fb6b655b4"


@pytest.fixture
def pagecall(pagecall_emulator: Emulator) -> Iterator[PagecallClient]:
    client = PagecallClient.from_settings()
    yield client
    client.close()


# -- parse_datetime ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-01-01T01:00:00.000Z", datetime(2023, 1, 1, 1, 0, tzinfo=UTC)),
        ("2023-01-01T01:30:15.250Z", datetime(2023, 1, 1, 1, 30, 15, 250_000, tzinfo=UTC)),
        ("2023-01-01T01:00:00Z", datetime(2023, 1, 1, 1, 0, tzinfo=UTC)),
        ("2023-01-01T01:00:00.000z", datetime(2023, 1, 1, 1, 0, tzinfo=UTC)),
        ("2023-01-01T01:00:00.000+00:00", datetime(2023, 1, 1, 1, 0, tzinfo=UTC)),
        ("2023-01-01T10:00:00.000+09:00", datetime(2023, 1, 1, 1, 0, tzinfo=UTC)),
    ],
)
def test_parse_datetime_reads_aware_times(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text)

    assert parsed == expected
    assert parsed is not None and parsed.tzinfo is not None


def test_parse_datetime_of_pagecall_format_is_utc() -> None:
    parsed = parse_datetime("2023-01-01T01:00:00.000Z")

    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        DEPRECATED,
        "yesterday",
        "2023-13-01T01:00:00.000Z",
        "2023-01-01T01:00:00.000",  # naive: the zone is unknown, so it is not guessed
        "2023-01-01",
        1672534800,
        1672534800.0,
        True,
        ["2023-01-01T01:00:00.000Z"],
        {"at": "2023-01-01T01:00:00.000Z"},
    ],
)
def test_parse_datetime_reads_anything_else_as_none(value: object) -> None:
    assert parse_datetime(value) is None


# -- from_api (unit) -----------------------------------------------------------------------------


def pagecall_room(**overrides: Any) -> dict[str, Any]:
    """A Room as Pagecall answers it, deprecated fields included."""
    room: dict[str, Any] = {
        "id": ROOM_ID,
        "application_id": "000585f36eed9e8fb6b655b5",
        "type": "public",
        "created_user_id": DEPRECATED,
        "name": "Weekly Meet",
        "thumbnail_url": "https://example.url/thumbnail.png",
        "last_thumbnail_updated_at": DEPRECATED,
        "room_template_id": DEPRECATED,
        "layout": "SixAll",
        "record": True,
        "meeting_time": 42,
        "is_terminated": DEPRECATED,
        "is_ephemeral": DEPRECATED,
        "is_recurring": DEPRECATED,
        "started_at": "2023-01-01T01:00:00.000Z",
        "updated_at": "2023-01-01T01:30:00.000Z",
        "created_at": "2023-01-01T00:00:00.000Z",
    }
    room.update(overrides)
    return room


def test_room_from_api_with_deprecated_fields() -> None:
    room = Room.from_api(pagecall_room())

    assert room.id == ROOM_ID
    assert (room.name, room.type, room.layout, room.record, room.meeting_time) == (
        "Weekly Meet",
        "public",
        "SixAll",
        True,
        42,
    )
    assert room.started_at == datetime(2023, 1, 1, 1, 0, tzinfo=UTC)
    assert room.created_at == datetime(2023, 1, 1, 0, 0, tzinfo=UTC)
    assert room.terminated_at is None
    assert room.is_terminated is False  # not the deprecated string, which is truthy
    assert room.raw["is_terminated"] == DEPRECATED
    assert room.raw["created_user_id"] == DEPRECATED


def test_room_is_terminated_comes_from_terminated_at() -> None:
    closed = Room.from_api(pagecall_room(terminated_at="2023-01-01T02:00:00.000Z"))
    # Even a real boolean in the deprecated field is not believed over terminated_at.
    claims = Room.from_api(pagecall_room(is_terminated=True))

    assert closed.is_terminated is True
    assert closed.terminated_at == datetime(2023, 1, 1, 2, 0, tzinfo=UTC)
    assert claims.is_terminated is False


def test_deprecated_in_any_typed_field_reads_as_none() -> None:
    room = Room.from_api(
        pagecall_room(
            name=DEPRECATED,
            record=DEPRECATED,
            meeting_time=DEPRECATED,
            started_at=DEPRECATED,
            terminated_at=DEPRECATED,
            layout=DEPRECATED,
        )
    )

    assert (room.name, room.record, room.meeting_time, room.layout) == (None, None, None, None)
    assert (room.started_at, room.terminated_at) == (None, None)
    assert room.is_terminated is False


def test_fields_the_spec_does_not_list_are_kept_in_raw() -> None:
    data = pagecall_room(brand_new_field={"nested": [1, 2]}, another=None)

    room = Room.from_api(data)

    assert room.raw == data
    assert room.raw["brand_new_field"] == {"nested": [1, 2]}
    assert "another" in room.raw
    assert room.raw is not data  # a copy: later changes to the answer do not leak in


def test_raw_does_not_take_part_in_equality() -> None:
    assert Room.from_api(pagecall_room()) == Room.from_api(pagecall_room(extra=1))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", 42),
        ("name", None),
        ("name", ["Weekly"]),
        ("type", {"open": True}),
        ("record", "true"),
        ("record", 1),
        ("meeting_time", "42"),
        ("meeting_time", True),
        ("meeting_time", 42.5),
        ("created_at", 1672531200),
        ("created_at", "not a date"),
        ("thumbnail_url", False),
    ],
)
def test_a_wrong_typed_field_reads_as_none(field: str, value: object) -> None:
    room = Room.from_api(pagecall_room(**{field: value}))

    assert getattr(room, field) is None
    assert room.raw[field] == value


def test_a_whole_float_is_an_int() -> None:
    assert Room.from_api(pagecall_room(meeting_time=42.0)).meeting_time == 42


@pytest.mark.parametrize(
    "data",
    [
        {"name": "no id"},
        {"id": None},
        {"id": ""},
        {"id": 12345},
        {"id": DEPRECATED},
    ],
)
def test_room_without_a_usable_id_is_a_response_error(data: dict[str, Any]) -> None:
    with pytest.raises(PagecallResponseError, match="room object without 'id'"):
        Room.from_api(data)


@pytest.mark.parametrize("value", [None, [], "room", 1, [("id", ROOM_ID)]])
def test_a_room_that_is_not_an_object_is_a_response_error(value: object) -> None:
    with pytest.raises(PagecallResponseError, match="expected a room object"):
        Room.from_api(value)


def test_member_from_api() -> None:
    member = Member.from_api(
        {
            "id": "642d103ce95bc9dc22ef789f",
            "user_id": "u1",
            "room_id": ROOM_ID,
            "type": "host",
            "x": 1,
        }
    )

    assert (member.id, member.user_id, member.room_id, member.type, member.name) == (
        "642d103ce95bc9dc22ef789f",
        "u1",
        ROOM_ID,
        "host",
        None,
    )
    assert member.raw["x"] == 1
    assert Member.from_api({"id": "m", "user_id": 5, "type": None}).user_id is None
    with pytest.raises(PagecallResponseError, match="member object without 'id'"):
        Member.from_api({"user_id": "u1"})


def test_user_from_api_needs_user_id_not_id() -> None:
    user = User.from_api({"user_id": "ext-1", "access_token": "tok", "created_at": "x"})

    assert (user.user_id, user.id, user.access_token, user.created_at) == (
        "ext-1",
        None,
        "tok",
        None,
    )
    assert "tok" not in repr(user)
    with pytest.raises(PagecallResponseError, match="user object without 'user_id'"):
        User.from_api({"id": "642d103ce95bc9dc22ef789f", "name": "Ann"})


TOKEN = "eyJhbGciOiJIUzI1NiJ9.secret-access-token"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            {"name": "Ann", "access_token": TOKEN},
            "user object without 'user_id': object with keys ['access_token', 'name']",
        ),
        (
            {"user_id": None, "access_token": TOKEN},
            "user object without 'user_id': 'user_id' is null in object with keys "
            "['access_token', 'user_id']",
        ),
        ([{"access_token": TOKEN}], "expected a user object, got array of 1 item(s)"),
        (TOKEN, "expected a user object, got string"),
    ],
    ids=["no-user_id", "null-user_id", "array", "string"],
)
def test_errors_about_a_malformed_object_name_its_keys_never_its_values(
    value: object, expected: str
) -> None:
    # These messages reach Room.sync_error (shown in the admin), admin messages and logs.
    with pytest.raises(PagecallResponseError) as caught:
        User.from_api(value)

    assert str(caught.value) == expected
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value)


def test_errors_name_at_most_twenty_keys() -> None:
    data = {f"k{i:02}": TOKEN for i in range(25)}
    with pytest.raises(PagecallResponseError) as caught:
        Room.from_api(data)
    assert "'k19', ... 5 more]" in str(caught.value)
    assert "'k20'" not in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_session_from_api() -> None:
    online = Session.from_api(
        {"id": "s1", "member_id": "m1", "connected_at": "2023-01-01T01:00:00.000Z"}
    )
    left = Session.from_api(
        {
            "id": "s2",
            "member_id": "m1",
            "user_id": "u1",
            "connected_at": "2023-01-01T01:00:00.000Z",
            "disconnected_at": "2023-01-01T01:30:00.000Z",
        }
    )

    assert online.is_connecting and online.user_id is None
    assert online.connected_at == datetime(2023, 1, 1, 1, 0, tzinfo=UTC)
    assert not left.is_connecting
    assert left.disconnected_at == datetime(2023, 1, 1, 1, 30, tzinfo=UTC)
    with pytest.raises(PagecallResponseError, match="session object without 'id'"):
        Session.from_api({"member_id": "m1"})


def test_page_from_api_keeps_only_object_entities() -> None:
    page = Page.from_api({"id": "p1", "entities": [{"type": "Image", "src": "s"}, "junk", 3, None]})
    no_list = Page.from_api({"id": "p2", "entities": "Image"})

    assert page.entities == ({"type": "Image", "src": "s"},)
    assert no_list.entities == ()
    assert Page.from_api({"id": "p3"}).entities == ()
    with pytest.raises(PagecallResponseError):
        Page.from_api({"entities": []})


# -- over HTTP -----------------------------------------------------------------------------------


def test_the_emulators_deprecated_fields_do_not_break_parsing(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    created = pagecall.create_room(name="Deprecated", type="open")
    closed = pagecall.update_room(
        created.id, application_id=created.application_id or "", is_terminated=True
    )

    for room in (created, closed):
        assert room.raw["is_terminated"] == DEPRECATED
        assert room.raw["created_user_id"] == DEPRECATED
    assert created.is_terminated is False
    assert closed.is_terminated is True


def test_odd_fields_in_an_answer(pagecall: PagecallClient, pagecall_emulator: Emulator) -> None:
    odd = pagecall_room(
        name=42,
        record=DEPRECATED,
        meeting_time="12",
        created_at="yesterday",
        terminated_at=DEPRECATED,
        brand_new_field={"x": 1},
    )
    pagecall_emulator.inject("GET", "/rooms/{id}", status=200, body={"room": odd, "extra": True})

    room = pagecall.get_room(ROOM_ID)

    assert room.id == ROOM_ID
    assert (room.name, room.record, room.meeting_time, room.created_at) == (None, None, None, None)
    assert room.is_terminated is False
    assert room.type == "public"
    assert room.raw == odd


def test_an_answer_item_without_id_is_a_response_error(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    pagecall_emulator.inject("GET", "/rooms/{id}", status=200, body={"room": {"name": "x"}})
    pagecall_emulator.inject(
        "GET",
        "/rooms",
        status=200,
        body={"rooms": [pagecall_room(), {"name": "x"}], "paging": {"total": 2}},
    )

    with pytest.raises(PagecallResponseError, match="without 'id'"):
        pagecall.get_room(ROOM_ID)
    rooms = pagecall.list_rooms()
    assert next(rooms).id == ROOM_ID  # the good one comes through before the bad one
    with pytest.raises(PagecallResponseError, match="without 'id'"):
        next(rooms)


@pytest.mark.parametrize("body", [{}, {"rooms": []}, {"room": None}, [], "null", ["room"]])
def test_an_answer_without_the_object_is_a_response_error(
    pagecall: PagecallClient, pagecall_emulator: Emulator, body: Any
) -> None:
    # "null" is sent as text/plain but is valid JSON: the client decodes it to None.
    pagecall_emulator.inject("GET", "/rooms/{id}", status=200, body=body)

    with pytest.raises(PagecallResponseError) as caught:
        pagecall.get_room(ROOM_ID)

    assert "room" in caught.value.message


@pytest.mark.parametrize("body", [{}, {"rooms": None}, {"rooms": {"a": 1}}, [], "null"])
def test_a_list_answer_without_the_list_is_a_response_error(
    pagecall: PagecallClient, pagecall_emulator: Emulator, body: Any
) -> None:
    pagecall_emulator.inject("GET", "/rooms", status=200, body=body)
    pagecall_emulator.inject("GET", "/rooms/{room_id}/sessions", status=200, body=body)
    pagecall_emulator.inject("POST", "/rooms/{room_id}/pages/create_many", status=200, body=body)

    with pytest.raises(PagecallResponseError, match="answer has no list 'rooms'") as caught:
        list(pagecall.list_rooms())
    assert (caught.value.method, caught.value.path) == ("GET", "/rooms")
    with pytest.raises(PagecallResponseError, match="answer has no list 'sessions'"):
        pagecall.list_room_sessions(ROOM_ID)
    with pytest.raises(PagecallResponseError, match="answer has no list 'pages'"):
        pagecall.create_pages(ROOM_ID, [{}])


def test_a_malformed_answer_with_an_access_token_does_not_put_it_in_the_error(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    user = {"id": "642d103ce95bc9dc22ef789f", "access_token": TOKEN, "name": "Ann"}
    cases: list[tuple[str, str, Any, Any, str]] = [
        # the object without its envelope
        (
            "POST",
            "/users",
            user,
            lambda: pagecall.create_user(user_id="ann"),
            "POST /users: answer has no 'user': object with keys ['access_token', 'id', 'name']",
        ),
        # the envelope, the object without its identifier
        (
            "GET",
            "/users/{user_id}",
            {"user": user},
            lambda: pagecall.get_user("ann"),
            "user object without 'user_id': object with keys ['access_token', 'id', 'name']",
        ),
        # a list answer whose list is an object
        (
            "GET",
            "/users",
            {"users": user, "paging": {"total": 1}},
            lambda: list(pagecall.list_users()),
            "GET /users: answer has no list 'users': 'users' is object with keys "
            "['access_token', 'id', 'name'] in object with keys ['paging', 'users']",
        ),
        (
            "GET",
            "/rooms/{room_id}/sessions",
            [{"access_token": TOKEN}],
            lambda: pagecall.list_room_sessions(ROOM_ID),
            f"GET /rooms/{ROOM_ID}/sessions: answer has no list 'sessions': array of 1 item(s)",
        ),
        (
            "POST",
            "/rooms/{room_id}/pages/create_many",
            {"pages": TOKEN},
            lambda: pagecall.create_pages(ROOM_ID, [{}]),
            f"POST /rooms/{ROOM_ID}/pages/create_many: answer has no list 'pages': "
            "'pages' is string in object with keys ['pages']",
        ),
    ]
    for method, path, body, call, expected in cases:
        pagecall_emulator.inject(method, path, status=200, body=body)
        with pytest.raises(PagecallResponseError) as caught:
            call()
        assert str(caught.value) == expected
        assert TOKEN not in str(caught.value)
        assert TOKEN not in caught.value.message


def test_a_page_without_paging_ends_the_iteration(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    pagecall_emulator.inject("GET", "/rooms", status=200, body={"rooms": [pagecall_room()]})

    assert [r.id for r in pagecall.list_rooms()] == [ROOM_ID]
    assert len(pagecall_emulator.requests) == 1


def test_an_empty_page_ends_the_iteration_whatever_total_says(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    pagecall_emulator.inject(
        "GET", "/rooms", status=200, body={"rooms": [], "paging": {"offset": 0, "total": 5}}
    )

    assert list(pagecall.list_rooms()) == []
    assert len(pagecall_emulator.requests) == 1


def test_a_short_page_is_followed_by_the_next_offset(
    pagecall: PagecallClient, pagecall_emulator: Emulator
) -> None:
    # A server that caps the page below the asked limit: offsets follow what was received.
    second = pagecall_room(id="000585f36eed9e8fb6b655b6")
    pagecall_emulator.inject(
        "GET", "/rooms", status=200, body={"rooms": [pagecall_room()], "paging": {"total": 2.0}}
    )
    pagecall_emulator.inject(
        "GET", "/rooms", status=200, body={"rooms": [second], "paging": {"total": 2.0}}
    )

    assert [r.id for r in pagecall.list_rooms()] == [ROOM_ID, second["id"]]
    assert [r["query"]["offset"] for r in pagecall_emulator.requests] == ["0", "1"]
