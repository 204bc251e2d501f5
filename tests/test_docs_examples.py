"""The docs pages' Python examples, run against the emulator: the rooms, client, meetings,
signals, joining, workspaces and testing pages, and the settings they show, as a site would use
them. The quickstart's files run as a site in tests/test_docs.py.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.checks import ERROR
from django.shortcuts import redirect
from django.test import Client, RequestFactory
from django.urls import path, reverse

from django_pagecall import signals
from django_pagecall.api import RoomJoin
from django_pagecall.checks import check_settings
from django_pagecall.emulator import Emulator
from django_pagecall.models import Member, Room, Session, SyncState
from tests.test_docs import DOCS, code_blocks
from tests.test_webhook_support import post

pytestmark = pytest.mark.django_db(transaction=True)


def blocks(page: str) -> list[str]:
    return code_blocks(DOCS / page)


def run(block: str, **names: Any) -> dict[str, Any]:
    """Run one example with ``names`` defined, as the page's surrounding text assumes."""
    namespace: dict[str, Any] = {"__name__": "docs_example", **names}
    exec(compile(block, "docs example", "exec"), namespace)  # noqa: S102 (the page's own example)
    return namespace


def errors_of(pagecall: dict[str, Any], settings: Any) -> list[str]:
    settings.PAGECALL = pagecall
    return [m.id or "" for m in check_settings() if m.level >= ERROR]


@pytest.fixture
def teacher() -> Any:
    return get_user_model().objects.create_user("teacher", password="password")


@pytest.fixture
def lesson(pagecall_emulator: Emulator, teacher: Any) -> Room:
    """The room the rooms page's ``open_lesson`` makes, synced by the eager task."""
    (example, _) = blocks("rooms.md")
    room: Room = run(example)["open_lesson"](teacher)
    room.refresh_from_db()
    return room


# -- rooms, client, meetings ---------------------------------------------------------------------


def test_open_lesson_sends_one_post_with_both_members(
    pagecall_emulator: Emulator, lesson: Room, teacher: Any
) -> None:
    assert lesson.sync_state == SyncState.SYNCED
    (created,) = [
        r for r in pagecall_emulator.requests if (r["method"], r["route"]) == ("POST", "/rooms")
    ]
    assert created["body"]["max_meeting_seconds"] == 3600
    members = {m["user_id"] for m in pagecall_emulator.members(lesson.pagecall_id or "")}
    assert members == {str(teacher.pk), "student-42"}


def test_the_join_view_redirects_a_member_into_the_meeting(
    pagecall_emulator: Emulator, lesson: Room, teacher: Any
) -> None:
    (_, example) = blocks("rooms.md")
    request = RequestFactory().get("/")
    request.user = teacher
    response = run(example, redirect=redirect)["join"](request, lesson)
    assert response.status_code == 302
    assert response.url.startswith(f"{pagecall_emulator.app_url}/meet?room_id={lesson.pagecall_id}")


def test_the_client_example_finds_the_room_and_messages_it(
    pagecall_emulator: Emulator, lesson: Room
) -> None:
    (example,) = blocks("client.md")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        run(example)
    assert printed.getvalue().split()[0] == lesson.pagecall_id
    assert pagecall_emulator.messages(lesson.pagecall_id or "") == ["Five minutes left"]


def test_the_meetings_examples_read_a_real_meeting(
    pagecall_emulator: Emulator, lesson: Room
) -> None:
    pagecall_id = lesson.pagecall_id or ""
    headers = dict((pagecall_emulator.webhook_config(pagecall_id) or {})["headers"])
    joined = pagecall_emulator.join(pagecall_id, user_id="student-42", deliver=False)
    left = pagecall_emulator.leave(pagecall_id, joined["session"]["id"], deliver=False)
    for body in (joined["body"], left["body"]):
        assert post(Client(), body, headers).status_code == 200
    room_meetings, usage = blocks("meetings.md")

    namespace = run(room_meetings, room=lesson)
    assert namespace["meeting"].ended_at is not None
    namespace = run(usage)
    assert (namespace["row"].meetings, namespace["row"].sessions) == (1, 1)


# -- signals -------------------------------------------------------------------------------------


def test_the_signals_pages_receivers_take_what_the_signals_send(
    pagecall_emulator: Emulator,
) -> None:
    sent: dict[Any, list[dict[str, Any]]] = {signals.room_created: [], signals.webhook_received: []}

    def record(signal: Any, **kwargs: Any) -> None:
        sent[signal].append({"signal": signal, **kwargs})

    for signal in sent:
        signal.connect(record, weak=False)  # first, so that it records whatever comes after
    room_receiver, webhook_receiver = [
        next(v for k, v in run(example).items() if k.startswith("on_"))
        for example in blocks("signals.md")
    ]
    try:
        room = Room.objects.create(name="Signals", type="open")
        room.refresh_from_db()
        pagecall_id = room.pagecall_id or ""
        headers = dict((pagecall_emulator.webhook_config(pagecall_id) or {})["headers"])
        joined = pagecall_emulator.join(pagecall_id, user_id="ada", deliver=False)
        assert post(Client(), joined["body"], headers).status_code == 200
    finally:
        for signal in sent:
            signal.disconnect(record)
        signals.room_created.disconnect(room_receiver)
        signals.webhook_received.disconnect(webhook_receiver)
    # The receivers get what the signals sent; the app sends them robustly, after the commit,
    # so a receiver that cannot take it would only be logged there: here it raises.
    (created,) = sent[signals.room_created]
    room_receiver(**created)
    (received,) = sent[signals.webhook_received]
    assert received["action"] == "sessionJoined"
    webhook_receiver(**received)


# -- joining, settings, workspaces ---------------------------------------------------------------


def test_the_can_join_function_and_its_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any, teacher: Any
) -> None:
    from django_pagecall.joining import may_join

    function, setting, throttle = blocks("joining.md")
    package = tmp_path / "myschool"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "pagecall.py").write_text(function)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "myschool", raising=False)
    pagecall = {**settings.PAGECALL, **run(setting)["PAGECALL"]}
    assert errors_of(pagecall, settings) == []

    teacher.is_staff = True
    assert may_join(teacher, Room(name="Any", type="private")) is True
    rates = run(throttle)["REST_FRAMEWORK"]["DEFAULT_THROTTLE_RATES"]
    assert set(rates) == {RoomJoin.throttle_scope}


@pytest.mark.parametrize(
    ("page", "index"), [("settings.md", 0), ("workspaces.md", 0), ("testing.md", 7)]
)
def test_the_settings_examples_pass_the_checks(page: str, index: int, settings: Any) -> None:
    pagecall = run(blocks(page)[index], env=lambda name: f"key-from-{name}")["PAGECALL"]
    assert errors_of(pagecall, settings) == []


def test_a_room_of_the_school_workspace(pagecall_workspace: Any) -> None:
    school = pagecall_workspace("school")
    run(blocks("workspaces.md")[1], Room=Room, Member=Member)
    room = Room.objects.get()
    room.refresh_from_db()
    assert room.workspace == "school" and room.pagecall_id in school.rooms
    assert [m["user_id"] for m in school.members(room.pagecall_id or "")] == ["teacher-12"]


# -- the testing page ----------------------------------------------------------------------------


def booking_urls() -> ModuleType:
    """The app's URLs and ``/book/``: a stand-in for the view the testing page's test posts to."""
    from tests import urls

    def book(request: Any) -> Any:
        from django.http import HttpResponse

        Room.objects.create(name=f"Booking {request.POST['slot']}", type="public")
        return HttpResponse(status=201)

    module = ModuleType("docs_booking_urls")
    module.urlpatterns = [*urls.urlpatterns, path("book/", book)]  # type: ignore[attr-defined]
    return module


def functions_of_the_testing_page() -> dict[str, Any]:
    """The test functions of the testing page, in one module as a site would put them."""
    examples = blocks("testing.md")
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    for index in (0, 1, 5):
        exec(compile(examples[index], "testing.md", "exec"), namespace)  # noqa: S102
    return {k: v for k, v in namespace.items() if k.startswith("test_")}


@pytest.mark.parametrize("name", sorted(functions_of_the_testing_page()))
def test_the_testing_pages_tests_pass(
    name: str, request: pytest.FixtureRequest, settings: Any
) -> None:
    settings.ROOT_URLCONF = booking_urls()
    function = functions_of_the_testing_page()[name]
    # Each with the fixtures it names, as pytest would give them.
    function(**{p: request.getfixturevalue(p) for p in inspect.signature(function).parameters})


def test_the_emulator_examples(pagecall_emulator: Emulator, client: Client) -> None:
    start, faults, participants = blocks("testing.md")[2:5]
    run(start)  # starts and stops an emulator of its own
    room = Room.objects.create(name="Examples", type="open")
    room.refresh_from_db()
    room_id = room.pagecall_id or ""

    run(faults, emu=pagecall_emulator)
    assert len(pagecall_emulator.faults) == 3
    pagecall_emulator.clear_faults()
    namespace = run(participants, emu=pagecall_emulator, room_id=room_id)
    assert namespace["joined"]["session"]["id"] in {
        s["id"] for s in pagecall_emulator.sessions(room_id)
    }

    namespace = run(
        blocks("testing.md")[6],
        pagecall_emulator=pagecall_emulator,
        room=room,
        client=client,
        reverse=reverse,
    )
    assert namespace["response"].status_code == 200
    assert Session.objects.filter(room=room, user_id="ada").exists()
