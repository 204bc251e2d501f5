"""Several Pagecall workspaces in one site: settings and checks, and every call about a room going
to the room's workspace with its key. Fast layer: tasks run eagerly, each workspace is an emulator
of its own (``pagecall_workspace``) over real HTTP, and transactions commit for real."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.checks import Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import Client

from django_pagecall import signals, sync
from django_pagecall.checks import check_settings
from django_pagecall.client import get_client
from django_pagecall.conf import pagecall_settings
from django_pagecall.emulator import Emulator
from django_pagecall.exceptions import PagecallRefused, WorkspaceNotConfigured
from django_pagecall.models import Member, PagecallUser, PendingAction, Room, Session, SyncState
from django_pagecall.webhooks import reconcile
from django_pagecall.webhooks.auth import headers_for_room
from tests.conftest import WorkerProcess, wait_for
from tests.test_webhook_support import post

pytestmark = pytest.mark.django_db(transaction=True)

SCHOOL_KEY = "test-api-key-school"


def authorizations(emu: Emulator) -> set[str]:
    """Every ``Authorization`` header the emulator received."""
    return {
        value
        for record in emu.requests
        for name, value in record["headers"].items()
        if name.lower() == "authorization"
    }


def routes(emu: Emulator) -> list[tuple[str, str | None]]:
    return [(r["method"], r["route"]) for r in emu.requests]


@pytest.fixture
def school(pagecall_workspace: Any) -> Emulator:
    emulator: Emulator = pagecall_workspace("school")
    return emulator


@pytest.fixture
def failures() -> Iterator[list[str]]:
    errors: list[str] = []

    def receiver(sender: Any, room: Room, error: str, **kwargs: Any) -> None:
        errors.append(error)

    signals.room_creation_failed.connect(receiver)
    yield errors
    signals.room_creation_failed.disconnect(receiver)


# -- settings -----------------------------------------------------------------------------------


def test_the_top_level_keys_are_the_workspace_default(pagecall_emulator: Emulator) -> None:
    default = pagecall_settings.workspace("default")
    assert (default.api_url, default.api_key) == (pagecall_emulator.url, "test-api-key")
    assert pagecall_settings.workspace_names() == ["default"]
    assert "test-api-key" not in repr(default)


def test_a_workspace_takes_its_url_key_and_app_url(settings: Any) -> None:
    settings.PAGECALL = {
        **settings.PAGECALL,
        "APP_URL": "https://app.example/",
        "WORKSPACES": {
            "school": {"API_KEY": "k1", "API_URL": "https://school.example/v1/"},
            "clinic": {"API_KEY": "k2", "APP_URL": "https://meet.clinic.example/"},
        },
    }
    assert pagecall_settings.workspace_names() == ["default", "school", "clinic"]
    school = pagecall_settings.workspace("school")
    assert (school.api_url, school.api_key) == ("https://school.example/v1", "k1")
    clinic = pagecall_settings.workspace("clinic")
    assert clinic.api_url == "https://api.pagecall.com/v1"  # Pagecall's, not the top-level one
    assert pagecall_settings.app_url("school") == "https://app.example"
    assert pagecall_settings.app_url("clinic") == "https://meet.clinic.example"


def test_an_unknown_workspace_is_an_error_naming_the_setting(settings: Any) -> None:
    settings.PAGECALL = {**settings.PAGECALL, "WORKSPACES": {"school": {"API_KEY": "k"}}}
    with pytest.raises(WorkspaceNotConfigured, match=r'PAGECALL\["WORKSPACES"\]') as caught:
        pagecall_settings.workspace("clinic")
    assert "'clinic'" in str(caught.value) and '"default", "school"' in str(caught.value)
    assert isinstance(caught.value, ImproperlyConfigured)
    assert isinstance(caught.value, PagecallRefused)


def test_a_workspace_without_a_key_or_with_a_bad_url_names_it(settings: Any) -> None:
    settings.PAGECALL = {
        **settings.PAGECALL,
        "WORKSPACES": {
            "school": {"API_URL": "http://x/v1"},
            "clinic": {"API_KEY": "sekrit", "API_URL": "ftp://x"},
        },
    }
    with pytest.raises(
        ImproperlyConfigured, match=r'PAGECALL\["WORKSPACES"\]\["school"\]\["API_KEY"\] is not set'
    ):
        pagecall_settings.workspace("school")
    with pytest.raises(ImproperlyConfigured, match=r'\["clinic"\]\["API_URL"\] must be') as caught:
        pagecall_settings.workspace("clinic")
    assert "sekrit" not in str(caught.value)


# -- checks -------------------------------------------------------------------------------------


def messages_for(settings: Any, workspaces: object) -> list[tuple[str, str]]:
    settings.PAGECALL = {**settings.PAGECALL, "WORKSPACES": workspaces}
    return [(m.id or "", m.msg) for m in check_settings()]


def test_checks_pass_for_well_formed_workspaces(settings: Any) -> None:
    ok = {"school": {"API_KEY": "k", "API_URL": "https://school.example/v1"}}
    assert messages_for(settings, ok) == []


@pytest.mark.parametrize(
    "workspaces",
    [
        ["school"],
        {"default": {"API_KEY": "k"}},
        {"": {"API_KEY": "k"}},
        {"school": "k"},
        {"x" * 65: {}},
    ],
)
def test_a_malformed_workspaces_setting_is_e008(settings: Any, workspaces: object) -> None:
    found = messages_for(settings, workspaces)
    assert [id_ for id_, _ in found] == ["pagecall.E008"]
    assert 'PAGECALL["WORKSPACES"] must be' in found[0][1]
    assert "'k'" not in found[0][1]  # never the keys it holds


def test_each_workspace_is_checked_and_named(settings: Any) -> None:
    found = messages_for(
        settings,
        {
            "school": {"API_URL": "https://school.example/v1", "API_KY": "typo"},
            "clinic": {"API_KEY": " ", "API_URL": "nope", "APP_URL": "nope"},
        },
    )
    school, clinic = 'PAGECALL["WORKSPACES"]["school"]', 'PAGECALL["WORKSPACES"]["clinic"]'
    assert sorted(found) == [
        (
            "pagecall.E002",
            f'{clinic}["API_KEY"] must be a non-empty string of visible ASCII characters, with no '
            "space, line break or quote around it.",
        ),
        ("pagecall.E003", f"{clinic}[\"API_URL\"] must be an absolute http(s) URL, not 'nope'."),
        ("pagecall.E005", f"{clinic}[\"APP_URL\"] must be an absolute http(s) URL, not 'nope'."),
        ("pagecall.W003", f'{school}["API_KY"] is not a key of a workspace and is ignored.'),
        (
            "pagecall.W005",
            f"{school}[\"API_KEY\"] is not set: rooms of the workspace 'school' cannot be "
            "created on Pagecall.",
        ),
    ]
    levels = {m.id: type(m) for m in check_settings()}
    assert levels["pagecall.W005"] is Warning and levels["pagecall.E002"] is Error


# -- clients ------------------------------------------------------------------------------------


def test_one_pooled_client_per_workspace_each_with_its_key(
    pagecall_emulator: Emulator, school: Emulator
) -> None:
    assert get_client("school") is get_client("school")
    assert get_client("school") is not get_client()
    get_client("school").create_user(user_id="ann")
    get_client().create_user(user_id="ann")
    assert authorizations(school) == {f"Bearer {SCHOOL_KEY}"}
    assert authorizations(pagecall_emulator) == {"Bearer test-api-key"}
    assert {r["headers"]["Authorization"] for r in school.requests} == {f"Bearer {SCHOOL_KEY}"}
    with pytest.raises(WorkspaceNotConfigured):
        get_client("clinic")


# -- rooms, members, users ----------------------------------------------------------------------


def test_a_room_and_its_members_go_to_its_workspace_only(
    pagecall_emulator: Emulator, school: Emulator
) -> None:
    room = Room.objects.create(name="Maths", type="private", workspace="school")
    Member.objects.create(room=room, user_id="teacher", type="host")
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert room.pagecall_id in school.rooms
    later = Member.objects.create(room=room, user_id="pupil", name="Pupil")
    later.refresh_from_db()
    assert later.sync_state == SyncState.SYNCED
    assert {m["user_id"] for m in school.members(room.pagecall_id or "")} == {"teacher", "pupil"}
    assert pagecall_emulator.requests == []
    assert authorizations(school) == {f"Bearer {SCHOOL_KEY}"}
    assert ("POST", "/users") in routes(school)  # private: registered in the school workspace
    assert set(PagecallUser.objects.values_list("workspace", "user_id")) == {
        ("school", "teacher"),
        ("school", "pupil"),
    }


def test_a_person_in_two_workspaces_has_two_registrations_and_tokens(
    pagecall_emulator: Emulator, school: Emulator
) -> None:
    home = Room.objects.create(name="Home", type="public")
    lesson = Room.objects.create(name="Lesson", type="public", workspace="school")
    home.refresh_from_db()
    lesson.refresh_from_db()
    home_url, lesson_url = home.join_url("ann"), lesson.join_url("ann")
    tokens = dict(
        PagecallUser.objects.filter(user_id="ann").values_list("workspace", "access_token")
    )
    assert set(tokens) == {"default", "school"} and tokens["default"] != tokens["school"]
    assert tokens["default"] == pagecall_emulator.users["ann"]["access_token"]
    assert tokens["school"] == school.users["ann"]["access_token"]
    assert f"access_token={tokens['default']}" in home_url
    assert f"access_token={tokens['school']}" in lesson_url
    assert lesson.join_url("ann") == lesson_url  # known now: not registered again
    assert len([r for r in routes(school) if r == ("POST", "/users")]) == 1


def test_join_links_use_the_workspace_app_url(
    pagecall_emulator: Emulator, school: Emulator, settings: Any
) -> None:
    workspaces = settings.PAGECALL["WORKSPACES"]
    school_settings = {**workspaces["school"], "APP_URL": "https://meet.school.example"}
    settings.PAGECALL = {**settings.PAGECALL, "WORKSPACES": {"school": school_settings}}
    room = Room.objects.create(name="Open day", type="open", workspace="school")
    room.refresh_from_db()
    assert room.join_url().startswith("https://meet.school.example/meet?room_id=")
    assert room.replay_url().startswith("https://meet.school.example/replay?")


def test_rename_terminate_refresh_and_sessions_go_to_the_workspace(
    pagecall_emulator: Emulator, school: Emulator
) -> None:
    room = Room.objects.create(name="Science", type="open", workspace="school")
    room.refresh_from_db()
    room.name = "Physics"
    room.save()
    assert school.rooms[room.pagecall_id or ""]["name"] == "Physics"
    school.join(room.pagecall_id or "", user_id="ann", deliver=False)
    assert reconcile.reconcile_sessions(using="default").created == 1
    assert Session.objects.get().room_id == room.pk
    sync.refresh_room(room)
    room.terminate()
    room.refresh_from_db()
    assert room.is_terminated
    assert pagecall_emulator.requests == []
    assert {"PUT", "GET"} <= {method for method, _ in routes(school)}
    assert authorizations(school) == {f"Bearer {SCHOOL_KEY}"}


def test_deleting_blocks_and_deletes_in_the_workspace(
    pagecall_emulator: Emulator, school: Emulator, settings: Any
) -> None:
    settings.PAGECALL = {**settings.PAGECALL, "DELETE_REMOTE_ROOMS": True}
    room = Room.objects.create(name="Private", type="private", workspace="school")
    member = Member.objects.create(room=room, user_id="ann")
    room.refresh_from_db()
    pagecall_id = room.pagecall_id or ""
    member.delete()
    assert school.members(pagecall_id) == []  # blocked: no longer listed
    room.delete()
    assert pagecall_id not in school.rooms
    assert PendingAction.objects.count() == 0
    assert pagecall_emulator.requests == []
    assert authorizations(school) == {f"Bearer {SCHOOL_KEY}"}


def test_a_webhook_for_a_room_of_another_workspace_is_recorded(
    pagecall_emulator: Emulator, school: Emulator
) -> None:
    room = Room.objects.create(name="Webhooked", type="open", workspace="school")
    room.refresh_from_db()
    joined = school.join(room.pagecall_id or "", user_id="ann", deliver=False)
    headers = dict((school.webhook_config(room.pagecall_id or "") or {})["headers"])
    response = post(Client(), joined["body"], headers)
    assert response.status_code == 200, response.content
    session = Session.objects.get()
    assert (session.room_id, session.user_id) == (room.pk, "ann")


def test_a_room_on_pagecall_cannot_move_to_another_workspace(
    pagecall_emulator: Emulator, school: Emulator
) -> None:
    (pending,) = Room.objects.bulk_create([Room(name="Not sent yet")])
    pending = Room.objects.get(pk=pending.pk)
    pending.workspace = "school"
    pending.save()  # nothing is on Pagecall yet: it goes to the school when sent
    sync.create_room(pending.pk)
    pending.refresh_from_db()
    assert pending.pagecall_id in school.rooms
    room = Room.objects.create(name="Sent")
    room = Room.objects.get(pk=room.pk)
    room.workspace = "school"
    with pytest.raises(ValueError, match="cannot move to 'school'"):
        room.save()
    assert Room.objects.get(pk=room.pk).workspace == "default"
    room.workspace = "default"
    room.name = "Renamed"
    room.save()  # back where it is: saved as usual
    assert pagecall_emulator.rooms[room.pagecall_id or ""]["name"] == "Renamed"


# -- an unknown workspace -----------------------------------------------------------------------


def test_saving_a_room_of_an_unknown_workspace_is_refused_before_anything_is_sent(
    pagecall_emulator: Emulator,
) -> None:
    with pytest.raises(WorkspaceNotConfigured, match=r'PAGECALL\["WORKSPACES"\]'):
        Room.objects.create(name="Lost", workspace="nowhere")
    assert Room.objects.count() == 0
    assert pagecall_emulator.requests == []


def test_a_row_of_an_unknown_workspace_fails_with_the_error(
    pagecall_emulator: Emulator, failures: list[str]
) -> None:
    (room,) = Room.objects.bulk_create([Room(name="Imported", workspace="nowhere")])
    sync.create_room(room.pk)
    room.refresh_from_db()
    assert room.sync_state == SyncState.FAILED
    assert "'nowhere' is not configured" in room.sync_error
    assert len(failures) == 1 and 'PAGECALL["WORKSPACES"]' in failures[0]
    assert pagecall_emulator.requests == []


def test_the_sweep_fails_such_a_row_and_goes_on(pagecall_emulator: Emulator) -> None:
    Room.objects.bulk_create([Room(name="Orphan", workspace="gone")])
    fine = Room.objects.bulk_create([Room(name="Fine")])[0]
    result = sync.sweep()
    assert (result.done, result.failed) == (1, 1)
    fine.refresh_from_db()
    assert fine.sync_state == SyncState.SYNCED


def test_a_call_owed_to_an_unconfigured_workspace_is_kept(pagecall_emulator: Emulator) -> None:
    action = PendingAction.objects.create(
        kind=PendingAction.Kind.DELETE_ROOM, room_pagecall_id="abc", workspace="gone"
    )
    with pytest.raises(sync.RetryLater):
        sync.run_action(action.pk)
    action.refresh_from_db()
    assert "'gone' is not configured" in action.last_error
    assert pagecall_emulator.requests == []


# -- commands -----------------------------------------------------------------------------------


def test_pagecall_sync_takes_a_workspace(pagecall_emulator: Emulator, school: Emulator) -> None:
    Room.objects.bulk_create([Room(name="Home"), Room(name="Lesson", workspace="school")])
    out = StringIO()
    call_command("pagecall_sync", "--workspace", "school", stdout=out, stderr=StringIO())
    assert [(r.name, r.sync_state) for r in Room.objects.order_by("pk")] == [
        ("Home", SyncState.PENDING),
        ("Lesson", SyncState.SYNCED),
    ]
    assert pagecall_emulator.requests == []
    call_command("pagecall_sync", stdout=out, stderr=StringIO())  # every workspace
    assert set(Room.objects.values_list("sync_state", flat=True)) == {SyncState.SYNCED}
    with pytest.raises(CommandError, match="'nowhere' is not configured"):
        call_command("pagecall_sync", "--workspace", "nowhere")
    with pytest.raises(CommandError, match="'nowhere' is not configured"):
        call_command("pagecall_replay", "--workspace", "nowhere")


def test_pagecall_import_brings_each_workspaces_rooms_into_it(
    pagecall_emulator: Emulator, school: Emulator
) -> None:
    get_client().create_room(name="Home", type="open")
    lesson = get_client("school").create_room(
        name="Lesson", type="private", members=[{"user_id": "teacher", "type": "host"}]
    )
    # Each workspace's own names in flight: a room being created in "default" under the name
    # "Lesson" does not hide the school's room of that name.
    Room.objects.bulk_create([Room(name="Lesson", name_in_flight="Lesson")])
    for emulator in (pagecall_emulator, school):
        emulator.clear_requests()

    out = StringIO()
    call_command("pagecall_import", "--workspace", "school", "--dry-run", stdout=out)
    assert out.getvalue() == f"{lesson.id} Lesson\n1 to import\n"
    err = StringIO()
    call_command("pagecall_import", stdout=out, stderr=err)  # every workspace

    assert "pagecall_import default 1/1" in err.getvalue()
    assert "pagecall_import school 1/1" in err.getvalue()
    imported = Room.objects.get(pagecall_id=lesson.id)
    assert (imported.name, imported.workspace, imported.type) == ("Lesson", "school", "private")
    assert list(imported.members.values_list("user_id", "pagecall_id")) == [
        ("teacher", school.members(lesson.id)[0]["id"])
    ]
    assert Room.objects.get(name="Home", pagecall_id__isnull=False).workspace == "default"
    assert SCHOOL_KEY not in " ".join(authorizations(pagecall_emulator))
    assert authorizations(school) == {f"Bearer {SCHOOL_KEY}"}
    assert [m for emu in (pagecall_emulator, school) for m, _ in routes(emu) if m != "GET"] == []
    with pytest.raises(CommandError, match="'nowhere' is not configured"):
        call_command("pagecall_import", "--workspace", "nowhere")


def test_pagecall_replay_takes_a_workspace(pagecall_emulator: Emulator, school: Emulator) -> None:
    # Rows whose Pagecall id is not stored yet: their webhooks wait for it (replayable).
    rows = Room.objects.bulk_create([Room(name="Home"), Room(name="Lesson", workspace="school")])
    for room, emulator in zip(rows, (pagecall_emulator, school), strict=True):
        remote = get_client(room.workspace).create_room(
            name=room.name,
            type="open",
            webhook_url="http://testserver/pagecall/webhook/",
            webhook_headers=headers_for_room(room.pk),
        )
        joined = emulator.join(remote.id, user_id="ann", deliver=False)
        headers = dict((emulator.webhook_config(remote.id) or {})["headers"])
        assert post(Client(), joined["body"], headers).status_code == 202
    out = StringIO()
    call_command("pagecall_replay", "--workspace", "school", "--dry-run", stdout=out)
    assert out.getvalue().endswith("1 to replay\n")
    out = StringIO()
    call_command("pagecall_replay", "--dry-run", stdout=out)
    assert out.getvalue().endswith("2 to replay\n")


# -- the admin ----------------------------------------------------------------------------------


@pytest.fixture
def admin_client_of_site() -> Client:
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_the_admin_offers_and_filters_by_the_workspaces(
    pagecall_emulator: Emulator, school: Emulator, admin_client_of_site: Client
) -> None:
    page = admin_client_of_site.get("/admin/django_pagecall/room/add/")
    assert b'<option value="school">school</option>' in page.content
    response = admin_client_of_site.post(
        "/admin/django_pagecall/room/add/",
        {
            "name": "From the admin",
            "workspace": "school",
            "type": "public",
            "record": "on",
            **{
                f"{prefix}-{k}": "0"
                for prefix in ("members", "sessions")
                for k in ("TOTAL_FORMS", "INITIAL_FORMS")
            },
        },
    )
    assert response.status_code == 302, response.content.decode()
    room = Room.objects.get()
    assert room.workspace == "school" and room.pagecall_id in school.rooms
    Room.objects.create(name="At home")
    listed = admin_client_of_site.get("/admin/django_pagecall/room/?workspace=school")
    assert listed.context["cl"].result_count == 1
    assert b"?workspace=school" in listed.content  # the filter's link


def test_the_admin_lists_show_the_workspace_when_there_are_several(
    pagecall_emulator: Emulator, school: Emulator, admin_client_of_site: Client
) -> None:
    PendingAction.objects.create(kind=PendingAction.Kind.DELETE_ROOM, workspace="school")
    Room.objects.bulk_create([Room(name="Listed", workspace="school")])
    PagecallUser.objects.create(user_id="ann", workspace="school")
    for model in ("pendingaction", "room", "pagecalluser"):
        page = admin_client_of_site.get(f"/admin/django_pagecall/{model}/?workspace=school")
        assert page.status_code == 200
        assert "workspace" in page.context["cl"].list_display
        assert page.context["cl"].result_count == 1


def test_the_admin_refuses_an_unknown_workspace_with_a_form_error(
    pagecall_emulator: Emulator, school: Emulator, admin_client_of_site: Client
) -> None:
    (room,) = Room.objects.bulk_create(
        [Room(name="Stray", workspace="gone", sync_state=SyncState.FAILED)]
    )
    response = admin_client_of_site.post(
        f"/admin/django_pagecall/room/{room.pk}/change/",
        {
            "name": "Stray",
            "workspace": "gone",
            "type": "public",
            **{
                f"{prefix}-{k}": "0"
                for prefix in ("members", "sessions")
                for k in ("TOTAL_FORMS", "INITIAL_FORMS")
            },
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "is not configured" in str(errors["workspace"])
    assert pagecall_emulator.requests == [] and school.requests == []


# -- for real: two emulators, two keys, worker processes, PostgreSQL or MariaDB -------------------


def create_rooms_concurrently(plan: list[tuple[str, str, str]]) -> None:
    """Save the rooms of ``plan`` (name, workspace, type), each with a member, from threads."""
    failures: list[BaseException] = []

    def save(part: list[tuple[str, str, str]]) -> None:
        try:
            for name, workspace, type_ in part:
                with transaction.atomic():
                    room = Room.objects.create(name=name, workspace=workspace, type=type_)
                    Member.objects.create(room=room, user_id=f"host-{name}", type="host")
        except BaseException as exc:  # reported in the test's thread
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=save, args=(plan[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def all_settled() -> bool:
    return not Room.objects.exclude(sync_state__in=[SyncState.SYNCED, SyncState.FAILED]).exists()


@pytest.mark.integration
class TestWithWorkers:
    @pytest.fixture
    def workers(
        self,
        pagecall_emulator: Emulator,
        school: Emulator,
        worker_process_factory: Callable[..., WorkerProcess],
    ) -> list[WorkerProcess]:
        workspaces = {"school": {"API_KEY": school.api_key, "API_URL": school.url}}
        started = [
            worker_process_factory(
                pagecall_emulator.url, PAGECALL_WORKSPACES=json.dumps(workspaces)
            )
            for _ in range(2)
        ]
        for worker in started:
            worker.start()
        return started

    def test_rooms_of_two_workspaces_reach_each_their_own(
        self, pagecall_emulator: Emulator, school: Emulator, workers: list[WorkerProcess]
    ) -> None:
        plan = [
            (f"Room {i}", "school" if i % 2 else "default", "private" if i % 3 == 0 else "public")
            for i in range(16)
        ]
        create_rooms_concurrently(plan)
        wait_for(all_settled, timeout=90)
        assert set(Room.objects.values_list("sync_state", flat=True)) == {SyncState.SYNCED}
        assert set(Member.objects.values_list("sync_state", flat=True)) == {SyncState.SYNCED}
        for workspace, emulator, key in (
            ("default", pagecall_emulator, "test-api-key"),
            ("school", school, SCHOOL_KEY),
        ):
            rooms = Room.objects.filter(workspace=workspace)
            assert set(emulator.rooms) == set(rooms.values_list("pagecall_id", flat=True))
            assert authorizations(emulator) == {f"Bearer {key}"}
            assert {r["status"] for r in emulator.requests} == {200}
            posted = [r["body"]["name"] for r in emulator.requests if r["route"] == "/rooms"]
            assert sorted(posted) == sorted(rooms.values_list("name", flat=True))
        # Join tokens come from the room's workspace.
        for room in Room.objects.all():
            emulator = school if room.workspace == "school" else pagecall_emulator
            member = room.members.get()
            url = room.join_url(member)
            token = emulator.users[member.user_id]["access_token"]
            assert url.endswith(f"access_token={token}")
        assert set(PagecallUser.objects.values_list("workspace", "user_id")) == {
            (workspace, f"host-{name}") for name, workspace, _ in plan
        }

    def test_faults_in_one_workspace_leave_the_other_flowing(
        self, pagecall_emulator: Emulator, school: Emulator, workers: list[WorkerProcess]
    ) -> None:
        school.inject("POST", "/rooms", status=503, times=6)
        school.inject("POST", "/rooms", drop="after", times=2)
        school.inject("POST", "/rooms/{id}/members", status=500, times=2)
        plan = [(f"Room {i}", "school" if i % 2 else "default", "public") for i in range(12)]
        create_rooms_concurrently(plan)
        wait_for(all_settled, timeout=120)
        assert set(Room.objects.values_list("sync_state", flat=True)) == {SyncState.SYNCED}
        # The healthy workspace: one POST per room, every call answered, its key only.
        default_posts = [r for r in pagecall_emulator.requests if r["route"] == "/rooms"]
        assert len(default_posts) == Room.objects.filter(workspace="default").count()
        assert {r["status"] for r in pagecall_emulator.requests} == {200}
        assert authorizations(pagecall_emulator) == {"Bearer test-api-key"}
        # The faulty one: each of its rooms there once, despite the faults.
        school_rooms = Room.objects.filter(workspace="school")
        assert sorted(r["name"] for r in school.rooms.values()) == sorted(
            school_rooms.values_list("name", flat=True)
        )
        assert set(school.rooms) == set(school_rooms.values_list("pagecall_id", flat=True))
        assert any(r["status"] == 503 for r in school.requests)
        assert authorizations(school) == {f"Bearer {SCHOOL_KEY}"}


@pytest.mark.django_db(transaction=True)
def test_a_workspace_rooms_join_link_opens_its_own_emulators_meeting_page(
    pagecall_emulator: Emulator, pagecall_workspace: Any
) -> None:
    school = pagecall_workspace("school")
    room = Room.objects.create(name="Class", type="open", workspace="school")
    room.refresh_from_db()
    assert room.join_url().startswith(f"{school.app_url}/meet?room_id={room.pagecall_id}")
    assert school.app_url != pagecall_emulator.app_url
