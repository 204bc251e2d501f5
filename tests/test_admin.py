"""The room and Pagecall user admin through Django's test client: the add page with inline
members, the change page's read-only rules, the actions and their confirmation page,
permissions, member links and masked tokens, filters and search, and the changelist's query
count.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_pagecall.admin.rooms import RoomAdmin
from django_pagecall.admin.users import PagecallUserAdmin, mask_token
from django_pagecall.emulator import Emulator
from django_pagecall.models import Member, PagecallUser, Room, Session, SyncState

ROOMS = "/admin/django_pagecall/room/"
USERS = "/admin/django_pagecall/pagecalluser/"


def change_url(room: Room) -> str:
    return f"{ROOMS}{room.pk}/change/"


def member_link(room: Room, member: Member, page: str = "meet") -> str:
    return f"{ROOMS}{room.pk}/members/{member.pk}/{page}/"


def room_posts(emu: Emulator) -> list[dict[str, Any]]:
    return [r for r in emu.requests if r["method"] == "POST" and r["route"] == "/rooms"]


def add_form(name: str, members: list[dict[str, str]], **room: str) -> dict[str, Any]:
    """The POST body of the room add page: the room, its member rows, the sessions inline."""
    data: dict[str, Any] = {
        "name": name,
        "type": "public",
        "record": "on",
        "max_meeting_seconds": "",
        "members-TOTAL_FORMS": str(len(members)),
        "members-INITIAL_FORMS": "0",
        "members-MIN_NUM_FORMS": "0",
        "members-MAX_NUM_FORMS": "1000",
        "sessions-TOTAL_FORMS": "0",
        "sessions-INITIAL_FORMS": "0",
        "sessions-MIN_NUM_FORMS": "0",
        "sessions-MAX_NUM_FORMS": "0",
        "_save": "Save",
        **room,
    }
    for i, member in enumerate(members):
        row = {"user_id": "", "name": "", "type": "guest", "site_user": "", **member}
        data.update({f"members-{i}-{key}": value for key, value in row.items()})
    return data


def change_form(room: Room, **changes: str) -> dict[str, Any]:
    """The POST body of a room's change page, its members as they are, with ``changes``."""
    members = list(room.members.order_by("pk"))
    data: dict[str, Any] = {
        "name": room.name,
        "type": room.type,
        "max_meeting_seconds": room.max_meeting_seconds or "",
        "members-TOTAL_FORMS": str(len(members)),
        "members-INITIAL_FORMS": str(len(members)),
        "members-MIN_NUM_FORMS": "0",
        "members-MAX_NUM_FORMS": "1000",
        "sessions-TOTAL_FORMS": "0",
        "sessions-INITIAL_FORMS": "0",
        "sessions-MIN_NUM_FORMS": "0",
        "sessions-MAX_NUM_FORMS": "0",
        "_continue": "Save and continue editing",
    }
    if room.record:
        data["record"] = "on"
    for i, member in enumerate(members):
        data.update(
            {
                f"members-{i}-id": str(member.pk),
                f"members-{i}-room": str(room.pk),
                f"members-{i}-user_id": member.user_id,
                f"members-{i}-name": member.name,
                f"members-{i}-type": member.type,
            }
        )
    data.update(changes)
    return data


def action(client: Client, name: str, rooms: list[Room], **extra: str) -> Any:
    return client.post(
        ROOMS, {"action": name, "_selected_action": [r.pk for r in rooms], **extra}, follow=True
    )


def staff(*permissions: str) -> AbstractUser:
    user = get_user_model().objects.create_user(
        username="-".join(["staff", *permissions]) or "staff", password="pw", is_staff=True
    )
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    assert isinstance(user, AbstractUser)
    return user


def synced_room(name: str = "Synced", type: str = "public", *user_ids: str) -> Room:
    room = Room.objects.create(name=name, type=type)
    for user_id in user_ids:
        Member.objects.create(room=room, user_id=user_id)
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    return room


@pytest.mark.django_db(transaction=True)
class TestAddAndChange:
    def test_the_add_page_creates_the_room_with_its_members_in_one_post(
        self, admin_client: Client, pagecall_emulator: Emulator
    ) -> None:
        page = admin_client.get(f"{ROOMS}add/")
        assert page.status_code == 200
        assert b"members-1-user_id" in page.content  # two blank member rows to start with
        response = admin_client.post(
            f"{ROOMS}add/",
            add_form(
                "Weekly",
                [
                    {"user_id": "alice", "name": "Alice", "type": "host"},
                    {"user_id": "bob", "name": "Bob"},
                ],
            ),
        )
        assert response.status_code == 302, response.content.decode()
        room = Room.objects.get(name="Weekly")
        assert room.sync_state == SyncState.SYNCED
        assert room.pagecall_id in pagecall_emulator.rooms
        assert sorted(room.members.values_list("user_id", "type")) == [
            ("alice", "host"),
            ("bob", "guest"),
        ]
        (post,) = room_posts(pagecall_emulator)  # one POST /rooms, carrying both members
        assert [m["user_id"] for m in post["body"]["members"]] == ["alice", "bob"]

        detail = admin_client.get(change_url(room)).content.decode()
        assert room.pagecall_id in detail
        assert "pagecall-synced" in detail
        assert "Alice" in detail

    def test_a_member_from_a_site_user_gets_their_id(
        self, admin_client: Client, pagecall_emulator: Emulator
    ) -> None:
        carol = get_user_model().objects.create_user(username="carol")
        response = admin_client.post(
            f"{ROOMS}add/", add_form("Carol's", [{"site_user": str(carol.pk)}])
        )
        assert response.status_code == 302
        member = Member.objects.get(room__name="Carol's")
        assert (member.user_id, member.site_user_id) == (str(carol.pk), carol.pk)

    def test_a_row_without_anyone_or_the_same_person_twice_is_refused(
        self, admin_client: Client, pagecall_emulator: Emulator
    ) -> None:
        nobody = admin_client.post(f"{ROOMS}add/", add_form("Empty row", [{"name": "Who?"}]))
        assert nobody.status_code == 200
        assert "Give a Pagecall user id or a site user." in nobody.content.decode()
        dave = get_user_model().objects.create_user(username="dave")
        twice = admin_client.post(
            f"{ROOMS}add/",
            add_form("Twice", [{"user_id": str(dave.pk)}, {"site_user": str(dave.pk)}]),
        )
        assert twice.status_code == 200
        assert "Please correct the duplicate data" in twice.content.decode()
        assert not Room.objects.exists()
        assert room_posts(pagecall_emulator) == []

    def test_creation_only_fields_are_read_only_once_sent_and_a_rename_is_sent(
        self, admin_client: Client, pagecall_emulator: Emulator
    ) -> None:
        room = synced_room("Before", "public", "alice")
        page = admin_client.get(change_url(room)).content.decode()
        assert 'name="name"' in page
        assert 'name="type"' not in page  # only POST /rooms carries the type
        # Disabled: Pagecall knows a member by this id, a change would never reach it.
        assert re.search(r'name="members-0-user_id"[^>]*disabled', page)
        response = admin_client.post(
            change_url(room),
            change_form(room, name="After", type="private", **{"members-0-user_id": "mallory"}),
        )
        assert response.status_code == 302
        room.refresh_from_db()
        assert (room.name, room.type) == ("After", "public")
        assert list(room.members.values_list("user_id", flat=True)) == ["alice"]
        assert pagecall_emulator.rooms[room.pagecall_id or ""]["name"] == "After"

    def test_a_failed_room_can_be_fixed_then_retried(
        self, admin_client: Client, pagecall_emulator: Emulator
    ) -> None:
        pagecall_emulator.inject("POST", "/rooms", status=400, body={"message": "bad type"})
        room = Room.objects.create(name="Refused")
        room.refresh_from_db()
        assert room.sync_state == SyncState.FAILED
        listed = admin_client.get(ROOMS, {"sync_state__exact": "failed"}).content.decode()
        assert "pagecall-failed" in listed
        assert re.search(r'class="pagecall-error">[^<]*400', listed)  # the error's start
        page = admin_client.get(change_url(room)).content.decode()
        assert "pagecall-failed" in page
        assert "bad type" in page  # the last error, in its own field
        assert 'name="type"' in page
        assert (
            admin_client.post(change_url(room), change_form(room, type="open")).status_code == 302
        )
        action(admin_client, "retry_sync", [room])
        room.refresh_from_db()
        assert room.sync_state == SyncState.SYNCED
        assert room_posts(pagecall_emulator)[-1]["body"]["type"] == "open"

    def test_a_save_the_broker_cannot_take_says_the_room_waits(
        self, admin_client: Client, pagecall_emulator: Emulator
    ) -> None:
        from tests.celery_app import app
        from tests.conftest import use_broker
        from tests.redis_server import free_port

        app.conf.task_always_eager = False
        previous = use_broker(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
        try:
            added = admin_client.post(
                f"{ROOMS}add/", add_form("Broker down", [{"user_id": "alice"}]), follow=True
            )
            room = Room.objects.get(name="Broker down")
            # A change saved while publishing is paused is not sent either.
            changed = admin_client.post(
                change_url(room), change_form(room, name="Still down"), follow=True
            )
        finally:
            use_broker(previous)
        for response in (added, changed):
            said = [(m.level_tag, str(m)) for m in response.context["messages"]]
            assert ("warning", WAITS_FOR_THE_BROKER) in said, said
        room.refresh_from_db()
        assert room.sync_state == SyncState.PENDING
        assert room_posts(pagecall_emulator) == []

    def test_a_save_the_broker_takes_says_nothing_of_it(
        self, admin_client: Client, pagecall_emulator: Emulator
    ) -> None:
        added = admin_client.post(
            f"{ROOMS}add/", add_form("Broker up", [{"user_id": "alice"}]), follow=True
        )
        said = [str(m) for m in added.context["messages"]]
        assert WAITS_FOR_THE_BROKER not in said
        assert Room.objects.get(name="Broker up").sync_state == SyncState.SYNCED


WAITS_FOR_THE_BROKER = (
    "The room was saved, but it could not be sent to Pagecall: Celery's broker is unreachable. "
    "It stays pending and will be sent when the broker is back (or by `manage.py pagecall_sync`)."
)


@pytest.mark.django_db(transaction=True)
class TestActions:
    def test_retry_leaves_synced_rooms_alone(
        self, admin_client: Client, pagecall_emulator: Emulator
    ) -> None:
        room = synced_room()
        response = action(admin_client, "retry_sync", [room])
        assert "0 queued for Pagecall; 1 already synced" in response.content.decode()
        assert len(room_posts(pagecall_emulator)) == 1

    def test_refresh_reads_the_room_back(
        self, admin_client: Client, pagecall_emulator: Emulator
    ) -> None:
        room = synced_room("Refreshed", "open")
        pending = Room.objects.create(name="Not yet")
        Room.objects.filter(pk=pending.pk).update(sync_state=SyncState.PENDING, pagecall_id=None)
        pagecall_emulator.join(room.pagecall_id or "", user_id="zoe")  # Pagecall starts the room
        assert room.started_at is None
        response = action(admin_client, "refresh_from_pagecall", [room, pending])
        assert "1 refreshed; 1 not on Pagecall yet." in response.content.decode()
        room.refresh_from_db()
        assert room.started_at is not None

    def test_refresh_reports_pagecall_errors(
        self, admin_client: Client, pagecall_emulator: Emulator
    ) -> None:
        room = synced_room()
        pagecall_emulator.inject("GET", "/rooms/{id}", status=400, body={"message": "gone"})
        response = action(admin_client, "refresh_from_pagecall", [room])
        assert "Refresh failed: Synced:" in response.content.decode()

    def test_terminate_asks_first_then_terminates(
        self, admin_client: Client, pagecall_emulator: Emulator
    ) -> None:
        room = synced_room("To end", "public", "alice")
        done = synced_room("Ended already")
        done.terminate()
        confirm = admin_client.post(
            ROOMS, {"action": "terminate_rooms", "_selected_action": [room.pk, done.pk]}
        )
        assert confirm.status_code == 200
        assert confirm.templates[0].name == (
            "admin/django_pagecall/room/terminate_confirmation.html"
        )
        html = confirm.content.decode()
        assert "Are you sure you want to terminate the selected room?" in html
        assert room.pagecall_id in html
        assert "Already terminated or being terminated" in html
        room.refresh_from_db()
        assert not room.terminate_requested  # nothing happens before the confirmation

        response = action(admin_client, "terminate_rooms", [room], post="yes")
        assert "1 room is being terminated." in response.content.decode()
        room.refresh_from_db()
        assert room.is_terminated
        assert pagecall_emulator.rooms[room.pagecall_id or ""]["terminated_at"] is not None
        assert LogEntry.objects.filter(
            object_id=str(room.pk), change_message="Terminated the room on Pagecall."
        ).exists()
        listed = admin_client.get(ROOMS, {"terminated": "yes"}).content.decode()
        assert "To end" in listed


@pytest.mark.django_db(transaction=True)
class TestPermissions:
    def test_without_change_permission_the_actions_are_not_offered_and_do_nothing(
        self, client: Client, pagecall_emulator: Emulator
    ) -> None:
        pagecall_emulator.inject("POST", "/rooms", status=400)
        failed = Room.objects.create(name="Failed")
        synced = synced_room("Live", "public", "alice")
        # Delete, so that the list has an action form at all (Django's delete_selected).
        client.force_login(staff("view_room", "delete_room", "view_member"))
        page = client.get(ROOMS).content.decode()
        assert 'value="delete_selected"' in page
        for name in ("retry_sync", "refresh_from_pagecall", "terminate_rooms"):
            assert f'value="{name}"' not in page
        for name, extra in [
            ("retry_sync", {}),
            ("terminate_rooms", {}),
            ("terminate_rooms", {"post": "yes"}),
        ]:
            response = action(client, name, [failed, synced], **extra)
            assert response.status_code == 200
            assert "No action selected." in response.content.decode()
        failed.refresh_from_db()
        synced.refresh_from_db()
        assert failed.sync_state == SyncState.FAILED
        assert not synced.terminate_requested
        # The member links are not shown, and their view refuses.
        detail = client.get(change_url(synced)).content.decode()
        alice = synced.members.get()
        assert re.search(r'field-user_id">\s*<p>alice</p>', detail)  # the members are shown...
        assert member_link(synced, alice) not in detail  # ...without their links
        assert client.post(member_link(synced, alice)).status_code == 403
        assert PagecallUser.objects.count() == 0

    def test_with_change_permission_the_actions_run(
        self, client: Client, pagecall_emulator: Emulator
    ) -> None:
        pagecall_emulator.inject("POST", "/rooms", status=400)
        failed = Room.objects.create(name="Failed")
        client.force_login(staff("view_room", "change_room", "view_member"))
        assert 'value="terminate_rooms"' in client.get(ROOMS).content.decode()
        action(client, "retry_sync", [failed])
        failed.refresh_from_db()
        assert failed.sync_state == SyncState.SYNCED
        # The member links need the room's change permission only (members are view-only here).
        member = Member.objects.create(room=failed, user_id="erin")
        assert member_link(failed, member) in client.get(change_url(failed)).content.decode()
        assert client.post(member_link(failed, member)).status_code == 302


@pytest.mark.django_db(transaction=True)
class TestLinksAndTokens:
    def test_member_links_register_and_redirect_without_showing_the_token(
        self, admin_client: Client, pagecall_emulator: Emulator
    ) -> None:
        room = synced_room("Private", "private", "alice")
        alice = room.members.get()
        detail = admin_client.get(change_url(room)).content.decode()
        assert member_link(room, alice) in detail
        assert member_link(room, alice, "replay") in detail
        assert "none without a token in a private room" in detail

        response = admin_client.post(member_link(room, alice))
        assert response.status_code == 302
        location = urlsplit(response["Location"])
        assert location.path == "/meet"
        query = parse_qs(location.query)
        token = pagecall_emulator.users["alice"]["access_token"]
        assert query == {"room_id": [room.pagecall_id], "access_token": [token]}
        replay = admin_client.post(member_link(room, alice, "replay"))
        assert urlsplit(replay["Location"]).path == "/replay"
        assert LogEntry.objects.filter(change_message="Opened the meeting as member alice.")

        user = PagecallUser.objects.get(user_id="alice")
        for page in (change_url(room), ROOMS, USERS, f"{USERS}{user.pk}/change/"):
            html = admin_client.get(page).content.decode()
            assert token not in html, page
        users_page = admin_client.get(f"{USERS}{user.pk}/change/").content.decode()
        assert mask_token(token) in users_page
        assert "(hidden)" in users_page
        assert 'name="access_token"' not in users_page
        assert admin_client.get(f"{USERS}add/").status_code == 403
        assert admin_client.post(f"{USERS}{user.pk}/change/", {}).status_code == 403

    def test_a_member_link_to_another_rooms_member_is_404(
        self, admin_client: Client, pagecall_emulator: Emulator
    ) -> None:
        room = synced_room("One", "public", "alice")
        other = synced_room("Two", "public", "bob")
        bob = other.members.get()
        assert admin_client.post(member_link(room, bob)).status_code == 404
        assert admin_client.post(member_link(room, bob, "delete")).status_code == 403

    def test_an_open_room_shows_its_anonymous_links(
        self, admin_client: Client, pagecall_emulator: Emulator
    ) -> None:
        room = synced_room("Open", "open")
        html = admin_client.get(change_url(room)).content.decode()
        app = pagecall_emulator.app_url  # the fixture points PAGECALL["APP_URL"] at the emulator
        assert f"{app}/meet?room_id={room.pagecall_id}" in html
        assert f"{app}/replay?room_id={room.pagecall_id}" in html
        assert "access_token" not in html
        assert PagecallUser.objects.count() == 0  # showing the page registered nobody


def test_masking_keeps_at_most_the_last_four_characters() -> None:
    assert mask_token("") == "-"
    assert mask_token("short-token") == "••••••••"
    assert mask_token("a" * 28 + "wxyz") == "••••••••wxyz"


def test_the_admin_registers_rooms_and_users() -> None:
    from django.contrib.admin import site

    import django_pagecall.admin  # noqa: F401

    assert isinstance(site._registry[Room], RoomAdmin)
    assert isinstance(site._registry[PagecallUser], PagecallUserAdmin)


# -- the changelist: filters, search, query count (no Pagecall needed: nothing is committed) ---


def make_rooms(count: int, prefix: str = "room") -> list[Room]:
    """Rooms with two members each and one online session, as the list would show them."""
    now = timezone.now()
    rooms = Room.objects.bulk_create(
        [
            Room(name=f"{prefix}-{i}", pagecall_id=f"{prefix}-pc-{i}", sync_state=SyncState.SYNCED)
            for i in range(count)
        ]
    )
    Member.objects.bulk_create(
        [Member(room=r, user_id=f"{r.name}-{who}") for r in rooms for who in ("host", "guest")]
    )
    Session.objects.bulk_create(
        [
            Session(room=r, session_id=f"s-{r.name}", user_id=f"{r.name}-host", joined_at=now)
            for r in rooms
        ]
    )
    return rooms


def changelist_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(ROOMS, {"all": ""})
    assert response.status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_the_changelist_query_count_does_not_grow_with_rooms(admin_client: Client) -> None:
    make_rooms(5, "few")
    few = changelist_queries(admin_client)
    make_rooms(45, "many")
    page = admin_client.get(ROOMS, {"all": ""}).content.decode()
    assert page.count("pagecall-synced") == 50
    assert "1: many-44-host" in page  # who is online, per row
    assert changelist_queries(admin_client) == few


@pytest.mark.django_db
def test_filters_search_and_date_hierarchy(admin_client: Client) -> None:
    quiet, _ = make_rooms(2, "fs")
    Session.objects.filter(room=quiet).update(left_at=timezone.now())
    Room.objects.filter(pk=quiet.pk).update(type="private", record=False)

    def names(**params: Any) -> set[str]:
        html = admin_client.get(ROOMS, params).content.decode()
        return set(re.findall(r"fs-\d(?=</a>)", html))

    assert names() == {"fs-0", "fs-1"}
    assert names(type__exact="private") == {"fs-0"}
    assert names(record__exact="0") == {"fs-0"}
    assert names(sync_state__exact="synced") == {"fs-0", "fs-1"}
    assert names(sync_state__exact="failed") == set()
    assert names(online="yes") == {"fs-1"}
    assert names(online="no") == {"fs-0"}
    assert names(terminated="no") == {"fs-0", "fs-1"}
    assert names(q="fs-1-guest") == {"fs-1"}  # a member's user id
    assert names(q="fs-pc-0") == {"fs-0"}  # the Pagecall id
    assert names(created_at__year=str(timezone.now().year)) == {"fs-0", "fs-1"}
