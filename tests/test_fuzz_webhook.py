"""Fuzzing the webhook endpoint, and holding its published OpenAPI description to the serializer.

Requests come from the served description (schemathesis, positive and negative modes), from
mutations of a valid body and from plain Hypothesis. Whatever comes in: no 5xx, every refusal a
JSON 4xx as the description documents it, nothing written without valid credentials.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import schemathesis
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker, validators
from schemathesis import GenerationMode

from django_pagecall.emulator import Emulator
from django_pagecall.models import Room, Session, WebhookDelivery
from django_pagecall.webhooks import serializers
from django_pagecall.webhooks.auth import ROOM_HEADER, SECRET_HEADER
from tests.test_webhook_support import WEBHOOK_PATH, PagecallRoom, make_room

pytestmark = pytest.mark.django_db(transaction=True)

OPENAPI_PATH = "/pagecall/webhook/openapi.json"

# Bounded so that the module runs in well under a minute; no deadline: the database sets the pace.
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the work tree; failures print their example
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,  # the room is shared by the examples on purpose
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


# -- the document --------------------------------------------------------------------------------


def served_document() -> dict[str, Any]:
    response = Client().get(OPENAPI_PATH)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return served_document()


@pytest.fixture(scope="module")
def operation(document: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_dict(document)["/webhook/"]["POST"]


@pytest.fixture(autouse=True)
def _no_failure_counts_left_behind() -> Iterator[None]:
    # The limiter counts failures in the cache, per address and minute: other modules' tests from
    # the same address must not inherit this module's hundreds of refusals.
    cache.clear()
    yield
    cache.clear()


def validator_for(document: dict[str, Any], ref: str) -> Draft202012Validator:
    """A validator of ``ref`` reading the document as the serializer does.

    Two readings are made explicit. JSON Schema's ``integer`` includes ``5.0``;
    the serializer (and the document's description) takes integers written as
    integers only. And ``format`` is only an annotation by default: date-times
    are checked here with the parser the serializer's leniency is measured
    against.
    """
    integer = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    strict = validators.extend(Draft202012Validator, type_checker=integer)
    formats = FormatChecker(formats=())

    @formats.checks("date-time", raises=ValueError)
    def date_time(value: object) -> bool:
        if isinstance(value, str):
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True

    schema = {"$ref": ref, "components": document["components"]}
    validator: Draft202012Validator = strict(schema, format_checker=formats)
    return validator


def response_schema(document: dict[str, Any], status: int) -> dict[str, Any] | None:
    responses = document["paths"]["/webhook/"]["post"]["responses"]
    answer = responses.get(str(status))
    if answer is None:
        return None
    schema: dict[str, Any] = answer["content"]["application/json"]["schema"]
    return schema


def check_answer(document: dict[str, Any], response: Any, *, method: str = "POST") -> Any:
    """The answer is one the document describes (or, for another method, a JSON refusal)."""
    status = response.status_code
    assert status < 500, response.content[:500]
    assert response["Content-Type"] == "application/json", response.content[:200]
    if method == "HEAD":
        return None
    body = response.json()
    if status >= 400:
        assert isinstance(body.get("error"), str) and body["error"], body
        assert isinstance(body.get("detail"), str), body
    if method != "POST":
        assert status in (401, 405, 429, 200 if method == "OPTIONS" else 405), (status, body)
        return body
    schema = response_schema(document, status)
    assert schema is not None, f"status {status} is not in the document: {body}"
    errors = list(validator_for(document, schema["$ref"]).iter_errors(body))
    assert not errors, (status, body, [e.message for e in errors])
    return body


def test_the_document_is_served_beside_the_endpoint(document: dict[str, Any]) -> None:
    assert reverse("pagecall:webhook-openapi") == OPENAPI_PATH
    response = Client().get(OPENAPI_PATH)
    assert response["Content-Type"] == "application/json"
    assert document["openapi"].startswith("3.1")
    # A path, not an absolute URL: the description never repeats a Host header it was sent.
    assert document["servers"] == [{"url": "/pagecall"}]
    assert document["servers"][0]["url"] + "/webhook/" == reverse("pagecall:webhook")
    schemes = document["components"]["securitySchemes"]
    (webhook_security,) = document["paths"]["/webhook/"]["post"]["security"]
    webhook_schemes = [schemes[name] for name in webhook_security]
    assert {s["name"] for s in webhook_schemes} == {ROOM_HEADER, SECRET_HEADER}
    assert all(s["in"] == "header" for s in webhook_schemes)
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    assert Client().post(OPENAPI_PATH).status_code == 405


def test_the_document_lists_every_field_the_serializer_reads(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert set(schemas["SessionWebhook"]["properties"]) == set(
        serializers.WebhookSerializer().fields
    )
    assert set(schemas["OtherWebhook"]["properties"]) == set(
        serializers.OtherWebhookSerializer().fields
    )
    action = schemas["OtherWebhook"]["properties"]["action"]
    assert action["maxLength"] == serializers.ACTION_MAX_LENGTH
    assert action["not"]["enum"] == list(serializers.ACTIONS)
    payload = serializers.PayloadSerializer()
    assert set(schemas["Payload"]["properties"]) == set(payload.fields)
    assert set(schemas["Payload"]["required"]) == {
        n for n, f in payload.fields.items() if f.required
    }
    assert schemas["SessionWebhook"]["properties"]["action"]["enum"] == list(serializers.ACTIONS)


def as_written(value: Any) -> Any:
    """``value`` with integral floats written as integers, as the description asks.

    JSON Schema cannot tell ``0`` from ``0.0`` (schemathesis generates both
    for ``integer``); the serializer refuses the second, and Pagecall
    (JavaScript's ``JSON.stringify``) never writes it.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: as_written(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_written(v) for v in value]
    return value


def positive_body(data: st.DataObject, operation: Any) -> Any:
    case = data.draw(operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    # A time further ahead than the serializer takes is refused, as documented.
    assume(not ahead_of_the_clock(case.body))
    return as_written(case.body)


@FUZZ
@given(data=st.data())
def test_every_body_the_document_allows_is_accepted(
    operation: Any, document: dict[str, Any], data: st.DataObject
) -> None:
    body = positive_body(data, operation)
    assert not list(validator_for(document, "#/components/schemas/Webhook").iter_errors(body))
    event = serializers.validate(body)
    assert event.action == body["action"]
    if isinstance(event, serializers.WebhookEvent):
        assert event.session_id == body["payload"]["sessionId"]


def ahead_of_the_clock(body: Any) -> bool:
    """Whether the body's timestamp is further ahead than the serializer takes (documented in
    the timestamp's description, which a schema cannot express)."""
    from django.utils import timezone as site_time
    from django.utils.dateparse import parse_datetime

    try:
        parsed = parse_datetime(body["payload"]["timestamp"])
    except (KeyError, TypeError, ValueError):
        return False
    if parsed is None:
        return False
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed > site_time.now() + serializers.MAX_CLOCK_AHEAD


def serializer_accepts(body: Any) -> bool:
    try:
        serializers.validate(body)
    except serializers.InvalidBody:
        return False
    return True


def assert_same_verdict(document: dict[str, Any], body: Any) -> None:
    errors = list(validator_for(document, "#/components/schemas/Webhook").iter_errors(body))
    accepted = serializer_accepts(body)
    if not errors:
        assert accepted or ahead_of_the_clock(body), (
            f"the document allows what the serializer refuses: {body!r}"
        )
    elif accepted:
        # Documented: the serializer also reads other ISO 8601 times (and none as UTC).
        paths = {tuple(e.absolute_path) for e in errors}
        assert paths == {("payload", "timestamp")}, (body, [e.message for e in errors])


@FUZZ
@given(data=st.data())
def test_bodies_outside_the_document_are_refused(
    operation: Any, document: dict[str, Any], data: st.DataObject
) -> None:
    case = data.draw(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    if isinstance(case.body, bytes):
        try:
            body = json.loads(case.body)
        except (ValueError, RecursionError):
            return  # not JSON: the view's own fuzzing below covers it
    else:
        body = case.body
    assert_same_verdict(document, body)


# -- mutations of a valid body ----------------------------------------------------------------------
# One field removed, retyped, stretched or replaced: the document and the serializer must give the
# same verdict.

# Strings the serializer could not store are not Pagecall's: no surrogates (the utf-8 codec), no NUL.
texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=80)
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=9)), timezone(-timedelta(hours=5, minutes=30))]
)
timestamps = st.builds(
    lambda moment, spec: moment.isoformat(timespec=spec).replace("+00:00", "Z"),
    st.datetimes(min_value=datetime(2, 1, 2), max_value=datetime(9998, 12, 30), timezones=zones),
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
)
ids = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=64)
counts = st.integers(0, 2**31 - 1)

valid_bodies = st.fixed_dictionaries(
    {
        "action": st.sampled_from(serializers.ACTIONS),
        "payload": st.fixed_dictionaries(
            {
                "roomId": ids,
                "memberId": ids,
                "sessionId": ids,
                "sessionsCount": counts,
                "membersCount": counts,
                "timestamp": timestamps,
            },
            optional={"userId": st.one_of(st.none(), texts.filter(lambda t: len(t) <= 255))},
        ),
    }
)

#: Values at and just past every limit, of every JSON type.
odd_values = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        -1,
        2**31 - 1,
        2**31,
        10**30,
        5.0,
        1.5,
        "",
        " ",
        "x" * 64,
        "x" * 65,
        "x" * 255,
        "x" * 256,
        "\x00",
        "a\x00b",
        [],
        {},
        ["sessionJoined"],
        "sessionjoined",
        "sessionJoined ",
        "2023-01-01T01:00:00.000Z",
        "2023-01-01T01:00:00",
        "2023-02-30T00:00:00Z",
        "2023-01-01T24:00:00Z",
        "2023-01-01T23:59:60Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:00:00-01:00",
        "yesterday",
        "12",
    ]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
fields = st.sampled_from(
    [
        ("action",),
        ("payload",),
        *[
            ("payload", name)
            for name in (
                "roomId",
                "userId",
                "memberId",
                "sessionId",
                "sessionsCount",
                "membersCount",
                "timestamp",
            )
        ],
    ]
)


def mutate(body: dict[str, Any], where: tuple[str, ...], how: str, value: Any) -> Any:
    body = copy.deepcopy(body)
    parent: Any = body
    for key in where[:-1]:
        parent = parent[key]
    if how == "delete":
        parent.pop(where[-1], None)
    elif how == "extra":
        target = parent[where[-1]] if isinstance(parent.get(where[-1]), dict) else parent
        target[f"extra-{len(target)}"] = value
    else:
        parent[where[-1]] = value
    return body


#: Up to three mutations of a valid body: a field deleted, set to an odd value, or one added.
body_changes = st.lists(
    st.tuples(
        fields,
        st.sampled_from(["delete", "set", "extra"]),
        st.one_of(odd_values, json_values, timestamps, ids),
    ),
    max_size=3,
)


def _mutated(body: dict[str, Any], changes: list[tuple[tuple[str, ...], str, Any]]) -> Any:
    mutated: Any = body
    for where, how, value in changes:
        if not isinstance(mutated, dict) or (
            len(where) == 2 and not isinstance(mutated.get("payload"), dict)
        ):
            break
        mutated = mutate(mutated, where, how, value)
    return mutated


@pytest.mark.parametrize(
    "value",
    ["홍길동", "é" * 64, "é" * 65, "\ud800", "x\udfffy", "\x00", "a\x00b", " ", ""],
)
@pytest.mark.parametrize("name", ["roomId", "userId", "memberId", "sessionId"])
def test_odd_strings_in_ids(name: str, value: str) -> None:
    """Non-ASCII ids are ordinary; NUL and lone surrogates are refused (the generated ids above
    are UTF-8, so they have no surrogates)."""
    body = {
        "action": "sessionJoined",
        "payload": {
            "roomId": "r" * 24,
            "userId": "alice",
            "memberId": "m" * 24,
            "sessionId": "s" * 24,
            "sessionsCount": 1,
            "membersCount": 1,
            "timestamp": "2026-11-24T07:00:00.000Z",
        },
    }
    body["payload"][name] = value
    accepted = serializers.WebhookSerializer(data=body).is_valid()
    prohibited = "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if prohibited:
        assert not accepted
    if value in ("홍길동", "é" * 64):
        assert accepted
        assert serializers.validate(body).action == "sessionJoined"


@FUZZ
@given(
    body=valid_bodies,
    changes=body_changes,
)
def test_the_document_and_the_serializer_agree(
    document: dict[str, Any],
    body: dict[str, Any],
    changes: list[tuple[tuple[str, ...], str, Any]],
) -> None:
    assert_same_verdict(document, body)
    assert_same_verdict(document, _mutated(body, changes))


@FUZZ
@given(value=st.one_of(json_values, odd_values))
def test_the_document_and_the_serializer_agree_on_other_documents(
    document: dict[str, Any], value: Any
) -> None:
    assert_same_verdict(document, value)


# -- through the view ------------------------------------------------------------------------------


@pytest.fixture
def room(pagecall_emulator: Emulator) -> PagecallRoom:
    return make_room(pagecall_emulator)


def send(
    client: Client,
    body: Any,
    headers: dict[str, str],
    *,
    method: str = "POST",
    content_type: str = "application/json",
) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.generic(method, WEBHOOK_PATH, raw, content_type=content_type, headers=headers)


def stored() -> tuple[int, int, list[Any]]:
    counters = list(Room.objects.values_list("sessions_count", "members_count", "counters_at"))
    return WebhookDelivery.objects.count(), Session.objects.count(), counters


@FUZZ
@given(data=st.data())
def test_valid_bodies_from_the_document_are_processed(
    operation: Any,
    document: dict[str, Any],
    room: PagecallRoom,
    client: Client,
    data: st.DataObject,
) -> None:
    body = positive_body(data, operation)
    body["payload"]["roomId"] = room.pagecall_id
    response = send(client, body, room.headers)
    answer = check_answer(document, response)
    assert response.status_code == 200, answer
    assert answer["status"] == "processed"
    if body["action"] not in serializers.ACTIONS:
        assert answer["result"] == "unknown_action"
        assert WebhookDelivery.objects.get(pk=answer["delivery"]).action == body["action"]
        return
    session = Session.objects.get(session_id=body["payload"]["sessionId"])
    assert session.room_id == room.room.pk


@FUZZ
@given(data=st.data())
def test_requests_from_the_document_without_valid_credentials_write_nothing(
    operation: Any,
    document: dict[str, Any],
    room: PagecallRoom,
    client: Client,
    data: st.DataObject,
) -> None:
    mode = data.draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]))
    case = data.draw(operation.as_strategy(generation_mode=mode))
    headers = {str(k): str(v) for k, v in (case.headers or {}).items()}
    # The generated room header may name the real room: only its secret is out of reach.
    if data.draw(st.booleans()):
        headers[ROOM_HEADER] = str(room.room.pk)
    before = stored()
    response = send(client, case.body, headers)
    check_answer(document, response)
    assert response.status_code in (401, 429)
    assert stored() == before


@FUZZ
@given(data=st.data())
def test_invalid_requests_with_valid_credentials_are_refused_as_documented(
    operation: Any,
    document: dict[str, Any],
    room: PagecallRoom,
    client: Client,
    data: st.DataObject,
) -> None:
    case = data.draw(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    sessions = Session.objects.count()
    response = send(client, case.body, room.headers)
    answer = check_answer(document, response)
    # 403 when the body names a room (not this one: the strategy does not know its id), even
    # where schemathesis made only the headers invalid and the body is a valid one; a valid
    # body of another action without a roomId is stored and answered 200.
    body = case.body
    if isinstance(body, dict) and not list(
        validator_for(document, "#/components/schemas/OtherWebhook").iter_errors(body)
    ):
        assert response.status_code in (200, 403), answer
    else:
        assert response.status_code in (400, 403), answer
    assert Session.objects.count() == sessions


#: Inputs that once failed the server: each is sent every run, whatever Hypothesis draws.
EDGE_BODIES = [
    b"",
    b"\x00",
    b'{"a":\x00}',  # NUL: PostgreSQL's text refuses it in the stored body
    b"\xff\xfe\x00",
    b'{"action": "x\\u0000"}',  # NUL quoted back in the error message
    b'{"action": "\\ud800"}',  # a lone surrogate quoted back: no UTF-8 encoding exists
    b'{"action": "sessionJoined", "payload": {"roomId": "\\udfff"}}',
    b"[" * 5000,  # deeper than the JSON decoder recurses
    b"1" * 5000,  # more digits than int() converts
    b"NaN",
    b'{"action": "sessionJoined", "payload": null}',
    '{"action": "\u00e9"}'.encode("latin-1"),
]

#: Room header values Python calls digits but int() does not read, or reads as another script's.
EDGE_ROOM_HEADERS = ["\u00b2", "\u0663", "\uff11", "1\u00b2", "\u2460"]


@pytest.mark.parametrize("raw", EDGE_BODIES)
def test_edge_bodies_with_valid_credentials_get_a_stored_json_refusal(
    document: dict[str, Any], room: PagecallRoom, client: Client, raw: bytes
) -> None:
    response = send(client, raw, room.headers)
    answer = check_answer(document, response)
    if response.status_code == 403:  # a roomId, and not this room's: refused before storing
        assert answer["error"] == "room_mismatch"
        assert stored()[:2] == (0, 0)
        return
    assert response.status_code == 400, answer
    delivery = WebhookDelivery.objects.get(pk=answer["delivery"])
    assert delivery.state == "failed"
    assert "\x00" not in delivery.body + delivery.error


@pytest.mark.parametrize("room_header", EDGE_ROOM_HEADERS)
def test_edge_room_headers_are_refused(
    document: dict[str, Any], room: PagecallRoom, client: Client, room_header: str
) -> None:
    headers = {ROOM_HEADER: room_header, SECRET_HEADER: room.headers[SECRET_HEADER]}
    response = send(client, room.join("alice"), headers)
    check_answer(document, response)
    assert response.status_code == 401
    assert stored()[:2] == (0, 0)


header_values = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80),
    st.from_regex(r"\A[0-9]{1,25}\Z"),
    st.sampled_from(["", "0", "-1", "1e3", "0x10", "9" * 19, "9" * 20, " 1", "1 "]),
    st.sampled_from(EDGE_ROOM_HEADERS),
)
methods = st.sampled_from(["POST", "GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    valid_bodies.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(EDGE_BODIES),
)


@FUZZ
@given(
    method=methods,
    body=bodies,
    room_header=st.one_of(st.none(), header_values),
    secret_header=st.one_of(st.none(), header_values),
    content_type=st.sampled_from(["application/json", "text/plain", "", "multipart/form-data"]),
)
def test_arbitrary_requests_without_credentials_get_a_json_refusal_and_write_nothing(
    document: dict[str, Any],
    room: PagecallRoom,
    client: Client,
    method: str,
    body: bytes,
    room_header: str | None,
    secret_header: str | None,
    content_type: str,
) -> None:
    headers = {}
    if room_header is not None:
        headers[ROOM_HEADER] = room_header
    if secret_header is not None:
        headers[SECRET_HEADER] = secret_header
    before = stored()
    response = send(client, body, headers, method=method, content_type=content_type)
    check_answer(document, response, method=method)
    assert response.status_code in (401, 429)
    assert stored() == before


@FUZZ
@given(
    method=methods,
    body=bodies,
    content_type=st.sampled_from(["application/json", "text/plain", ""]),
    claim_the_room=st.booleans(),
)
def test_arbitrary_bodies_with_valid_credentials_never_fail_the_server(
    document: dict[str, Any],
    room: PagecallRoom,
    client: Client,
    method: str,
    body: bytes,
    content_type: str,
    claim_the_room: bool,
) -> None:
    if claim_the_room:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # as the view's own decoding does
            data = None
        if isinstance(data, dict) and isinstance(data.get("payload"), dict):
            data["payload"]["roomId"] = room.pagecall_id
            body = json.dumps(data).encode()
    response = send(client, body, room.headers, method=method, content_type=content_type)
    check_answer(document, response, method=method)
