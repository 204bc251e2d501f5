"""Fuzzing the client's parsing: whatever Pagecall answers, the client returns typed objects or
raises one of its own errors, classified by status. In-process, the resources' ``from_api`` and
``parse_datetime`` get arbitrary JSON; over HTTP, the emulator's injected faults answer any
status with any JSON or text body.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_type_hints

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_pagecall import remote
from django_pagecall.client import AMBIGUOUS_STATUSES, RETRYABLE_CLIENT_STATUSES, PagecallClient
from django_pagecall.emulator import Emulator
from django_pagecall.exceptions import (
    PagecallAmbiguousError,
    PagecallError,
    PagecallRefused,
    PagecallResponseError,
    PagecallTransientError,
)
from django_pagecall.remote import DEPRECATED, parse_datetime

# Bounded so that the module runs in a few seconds.
FUZZ = settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

ROOM_ID = "000585f36eed9e8fb6b655b4"
RESOURCES = [remote.Room, remote.Member, remote.User, remote.Session, remote.Page]
#: The field each kind cannot do without (everything else reads as None when malformed).
IDENTIFIER = {
    remote.Room: "id",
    remote.Member: "id",
    remote.User: "user_id",
    remote.Session: "id",
    remote.Page: "id",
}

texts = st.text(max_size=30)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
    | st.just(DEPRECATED),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
iso_times = st.builds(
    lambda moment, spec: moment.isoformat(timespec=spec).replace("+00:00", "Z"),
    st.datetimes(
        min_value=datetime(1970, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=9))]),
    ),
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
)
field_values = st.one_of(json_values, iso_times, st.just(DEPRECATED))


def resource_bodies(kind: type[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with every field of ``kind`` present or not, each of any JSON type."""
    names = [f.name for f in fields(kind) if f.name != "raw"]
    return st.fixed_dictionaries(
        {}, optional={name: field_values for name in names}
    ) | st.dictionaries(texts, json_values, max_size=4)


def assert_typed(obj: Any) -> None:
    """Every field holds what its annotation says (or None where it is optional)."""
    hints = get_type_hints(type(obj), vars(remote))
    for f in fields(obj):
        value = getattr(obj, f.name)
        hint = str(hints[f.name])
        if value is None:
            assert "None" in hint, (f.name, hint)
        elif f.name in ("raw",):
            assert isinstance(value, dict)
        elif "tuple" in hint:
            assert all(isinstance(e, dict) for e in value), (f.name, value)
        elif "datetime" in hint:
            assert isinstance(value, datetime) and value.tzinfo is not None, (f.name, value)
        elif "bool" in hint:
            assert isinstance(value, bool), (f.name, value)
        elif "int" in hint:
            assert isinstance(value, int) and not isinstance(value, bool), (f.name, value)
        elif "str" in hint:
            assert isinstance(value, str) and value != DEPRECATED, (f.name, value)


@FUZZ
@given(value=st.one_of(json_values, iso_times, st.datetimes().map(str)))
def test_parse_datetime_never_raises(value: Any) -> None:
    parsed = parse_datetime(value)
    assert parsed is None or parsed.tzinfo is not None


@FUZZ
@given(moment=st.datetimes(timezones=st.just(UTC)))
def test_parse_datetime_reads_pagecall_times_back(moment: datetime) -> None:
    text = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")  # Pagecall's form
    assert parse_datetime(text) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@pytest.mark.parametrize("kind", RESOURCES, ids=lambda k: k.__name__)
@FUZZ
@given(data=st.data())
def test_from_api_returns_a_typed_object_or_a_response_error(
    kind: type[Any], data: st.DataObject
) -> None:
    value = data.draw(st.one_of(resource_bodies(kind), json_values))
    try:
        obj = kind.from_api(value)
    except PagecallResponseError:
        identifier = value.get(IDENTIFIER[kind]) if isinstance(value, dict) else None
        assert not (isinstance(identifier, str) and identifier and identifier != DEPRECATED)
        return
    assert isinstance(value, dict)
    assert_typed(obj)
    assert obj.raw == value  # nothing Pagecall sent is dropped


# -- over HTTP ----------------------------------------------------------------------------------


@pytest.fixture
def client(pagecall_emulator: Emulator) -> Iterator[PagecallClient]:
    made = PagecallClient.from_settings()
    yield made
    made.close()


#: Statuses an HTTP/1.1 answer with a body may carry (1xx, 204 and 304 have none).
statuses = st.integers(200, 599).filter(lambda s: s not in (204, 304))
answers = st.one_of(json_values, texts.map(lambda t: t or " "))


def expected_error(status: int) -> type[PagecallError]:
    if status in AMBIGUOUS_STATUSES:
        return PagecallAmbiguousError
    if status >= 500 or status in RETRYABLE_CLIENT_STATUSES:
        return PagecallTransientError
    if status >= 400:
        return PagecallRefused
    return PagecallResponseError


@FUZZ
@given(status=statuses, body=answers)
def test_any_answer_to_get_room_is_a_room_or_a_classified_error(
    pagecall_emulator: Emulator, client: PagecallClient, status: int, body: Any
) -> None:
    pagecall_emulator.clear_faults()
    pagecall_emulator.inject("GET", f"/rooms/{ROOM_ID}", status=status, body=body)
    if not 200 <= status < 300:
        with pytest.raises(PagecallError) as raised:
            client.get_room(ROOM_ID)
        assert type(raised.value) is expected_error(status)
        assert raised.value.status == status
        return
    try:
        room = client.get_room(ROOM_ID)
    except PagecallResponseError:
        return  # a 2xx without a readable room in it: the one error it may be
    assert_typed(room)


@FUZZ
@given(
    status=st.sampled_from([200, 201]),
    items=st.lists(st.one_of(resource_bodies(remote.Room), json_values), max_size=4),
    paging=st.one_of(json_values, st.fixed_dictionaries({"total": json_values})),
    wrapper=st.sampled_from(["rooms", "other", None]),
)
def test_any_page_of_rooms_ends_in_rooms_or_a_response_error(
    pagecall_emulator: Emulator,
    client: PagecallClient,
    status: int,
    items: list[Any],
    paging: Any,
    wrapper: str | None,
) -> None:
    pagecall_emulator.clear_faults()
    body: Any = items if wrapper is None else {wrapper: items, "paging": paging}
    pagecall_emulator.inject("GET", "/rooms", status=status, body=body)
    try:
        # The next pages come from the emulator itself, which has no rooms: the loop ends.
        rooms = list(client.list_rooms())
    except PagecallResponseError:
        return
    for room in rooms:
        assert_typed(room)
    assert len(rooms) == len(items)
