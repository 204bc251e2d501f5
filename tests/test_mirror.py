"""A mirror that stays true: a room read back from Pagecall when its meeting ends, the admin's
"Refresh from Pagecall" on many rooms, and ``manage.py pagecall_import`` (run twice, and while
the sweep creates rooms)."""

from __future__ import annotations

import io
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import Client
from django.utils import timezone

from django_pagecall.admin import rooms as rooms_admin
from django_pagecall.client import get_client
from django_pagecall.emulator import Emulator
from django_pagecall.models import Member, Room, Session, SyncState
from tests.test_webhook_support import WEBHOOK_PATH, make_room, requires_server

pytestmark = pytest.mark.django_db(transaction=True)

ROOMS = "/admin/django_pagecall/room/"


def gets_of(emulator: Emulator, pagecall_id: str) -> int:
    return sum(
        1
        for r in emulator.requests
        if r["method"] == "GET" and r["route"] == "/rooms/{id}" and r["path"].endswith(pagecall_id)
    )


def run(command: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_room_is_refreshed_from_pagecall_when_its_meeting_ends(
    pagecall_emulator: Emulator, live_server: Any
) -> None:
    room = make_room(pagecall_emulator, webhook_url=live_server.url + WEBHOOK_PATH)
    emu, room_id = pagecall_emulator, room.pagecall_id
    alice = emu.join(room_id, user_id="alice")
    bob = emu.join(room_id, user_id="bob")
    emu.leave(room_id, alice["session"]["id"])
    assert gets_of(emu, room_id) == 0  # bob is still in: the meeting goes on
    assert Room.objects.get(pk=room.room.pk).started_at is None

    emu.leave(room_id, bob["session"]["id"])

    assert gets_of(emu, room_id) == 1
    stored = Room.objects.get(pk=room.room.pk)
    assert stored.started_at is not None  # mirrored from Pagecall's room
    assert stored.meeting_time == emu.rooms[room_id]["meeting_time"]


def rooms_on_pagecall(count: int) -> list[Room]:
    client = get_client()
    made = []
    for i in range(count):
        remote = client.create_room(name=f"Remote {i}", type="open")
        (room,) = Room.objects.bulk_create(
            [Room(name=f"Remote {i}", pagecall_id=remote.id, sync_state=SyncState.SYNCED)]
        )
        made.append(room)
    return made


def refresh(client: Client, rooms: list[Room]) -> Any:
    data = {"action": "refresh_from_pagecall", "_selected_action": [r.pk for r in rooms]}
    return client.post(ROOMS, data, follow=True)


def test_refreshing_a_few_rooms_reads_them_in_the_request(
    pagecall_emulator: Emulator, admin_client: Client
) -> None:
    rooms = rooms_on_pagecall(3)
    (pending,) = Room.objects.bulk_create([Room(name="Not yet")])
    page = refresh(admin_client, [*rooms, pending]).content.decode()
    assert "3 refreshed; 1 not on Pagecall yet." in page
    assert all(r.pagecall_id and gets_of(pagecall_emulator, r.pagecall_id) == 1 for r in rooms)
    assert all(Room.objects.get(pk=r.pk).pagecall_created_at is not None for r in rooms)


def test_refreshing_many_rooms_queues_a_task_per_room(
    pagecall_emulator: Emulator, admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rooms_admin, "REFRESH_INLINE", 2)
    monkeypatch.setattr(rooms_admin, "REFRESH_PAGE", 2)
    rooms = rooms_on_pagecall(5)
    page = refresh(admin_client, rooms).content.decode()
    assert "5 queued for a refresh; 0 not on Pagecall yet." in page
    # The tasks run eagerly in this layer: each room was read once, by its task.
    assert all(r.pagecall_id and gets_of(pagecall_emulator, r.pagecall_id) == 1 for r in rooms)
    assert all(Room.objects.get(pk=r.pk).pagecall_created_at is not None for r in rooms)


def test_import_brings_pagecall_rooms_in_once_and_never_posts_them(
    pagecall_emulator: Emulator,
) -> None:
    client = get_client()
    lecture = client.create_room(
        name="Lecture",
        type="private",
        record=False,
        members=[{"user_id": "teacher", "type": "host"}, {"user_id": "student", "type": "guest"}],
    )
    client.create_room(name="Lobby", type="open")
    done = client.create_room(name="Done", type="public")
    application_id = pagecall_emulator.rooms[done.id]["application_id"]
    client.update_room(done.id, application_id=application_id, is_terminated=True)
    (mine,) = Room.objects.bulk_create(
        [Room(name="Mine", pagecall_id=client.create_room(name="Mine", type="open").id)]
    )
    pagecall_emulator.clear_requests()

    out, err = run("pagecall_import")

    assert out == "2 room(s) imported with 2 member(s), 0 already in the site, 0 failed\n"
    assert "pagecall_import 2/2" in err
    imported = Room.objects.get(pagecall_id=lecture.id)
    assert (imported.name, imported.type, imported.record) == ("Lecture", "private", False)
    assert imported.sync_state == SyncState.SYNCED and imported.pagecall_created_at is not None
    members = {m.user_id: m for m in Member.objects.filter(room=imported)}
    assert set(members) == {"teacher", "student"}
    assert members["teacher"].type == "host"
    assert all(m.sync_state == SyncState.SYNCED and m.pagecall_id for m in members.values())
    assert Room.objects.filter(name="Lobby").count() == 1
    assert not Room.objects.filter(pagecall_id=done.id).exists()
    assert Room.objects.filter(name="Mine").get().pk == mine.pk
    assert [r["method"] for r in pagecall_emulator.requests if r["method"] != "GET"] == []

    # Twice: nothing changes, nothing is sent.
    rows = sorted(Room.objects.values_list("pk", "pagecall_id"))
    assert run("pagecall_import")[0].startswith("Nothing to import")
    assert sorted(Room.objects.values_list("pk", "pagecall_id")) == rows
    assert Member.objects.count() == 2

    out, _ = run("pagecall_import", "--include-terminated")
    assert out.startswith("1 room(s) imported")
    assert Room.objects.get(pagecall_id=done.id).is_terminated
    assert [r["method"] for r in pagecall_emulator.requests if r["method"] != "GET"] == []


def test_import_by_creation_date(pagecall_emulator: Emulator) -> None:
    get_client().create_room(name="Today", type="open")
    today = timezone.localdate()
    tomorrow, yesterday = today + timedelta(days=1), today - timedelta(days=1)
    assert run("pagecall_import", "--since", str(tomorrow))[0].startswith("Nothing")
    assert run("pagecall_import", "--until", str(yesterday))[0].startswith("Nothing")
    assert run("pagecall_import", "--since", str(today), "--dry-run")[0].endswith("1 to import\n")
    with pytest.raises(CommandError, match="before --since"):
        run("pagecall_import", "--since", str(today), "--until", str(yesterday))
    out, _ = run("pagecall_import", "--since", str(yesterday), "--until", str(today))
    assert out.startswith("1 room(s) imported")


def test_sessions_of_imported_rooms_come_with_pagecall_sync_sessions(
    pagecall_emulator: Emulator,
) -> None:
    remote = get_client().create_room(name="Elsewhere", type="open")
    run("pagecall_import")
    pagecall_emulator.join(remote.id, user_id="alice")  # its webhook is not this site's

    run("pagecall_sync", "--sessions")

    (session,) = Session.objects.all()
    assert session.room.pagecall_id == remote.id
    assert session.user_id == "alice" and session.is_online


def test_import_leaves_a_room_being_created_here_to_its_creator(
    pagecall_emulator: Emulator,
) -> None:
    from django_pagecall import sync as syncing

    (room,) = Room.objects.bulk_create([Room(name="In flight")])  # no task: sent step by step
    pagecall_emulator.inject("POST", "/rooms", drop="after")  # created there, the answer lost
    with pytest.raises(syncing.RetryLater):
        syncing.create_room(room.pk, "default")
    (created,) = pagecall_emulator.rooms
    assert Room.objects.get(pk=room.pk).pagecall_id is None

    assert run("pagecall_import")[0].startswith("Nothing to import")
    # Once the claim's lease has run out, the sweep's retry finds its room by the name in flight.
    Room.objects.filter(pk=room.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    syncing.create_room(room.pk, "default")
    assert Room.objects.get().pagecall_id == created
    assert run("pagecall_import")[0].startswith("Nothing to import")
    assert len(pagecall_emulator.rooms) == 1
    assert [r["method"] for r in pagecall_emulator.requests].count("POST") == 1


def test_import_while_the_sweep_creates_rooms_takes_none_of_the_sites_own(
    pagecall_emulator: Emulator,
) -> None:
    from django_pagecall import sync as syncing

    requires_server("concurrent transactions")
    elsewhere = {get_client().create_room(name=f"Elsewhere {i}", type="open").id for i in range(4)}
    here = Room.objects.bulk_create([Room(name=f"Here {i}") for i in range(12)])  # no task yet
    pagecall_emulator.clear_requests()
    # Three rooms are created on Pagecall and their answers lost: they stay in flight here, under
    # their names, for as long as a lease, while the imports go on.
    pagecall_emulator.inject("POST", "/rooms", drop="after", times=3)
    sweeping = threading.Event()
    errors: list[BaseException] = []
    swept: list[syncing.SweepResult] = []

    def sweep() -> None:
        try:
            sweeping.set()
            swept.append(syncing.sweep("default"))
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
        finally:
            sweeping.clear()
            connections.close_all()

    def import_until_the_sweep_ends() -> None:
        try:
            sweeping.wait(5)
            while sweeping.is_set():
                run("pagecall_import")
            run("pagecall_import")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep), threading.Thread(target=import_until_the_sweep_ends)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert (swept[0].done, swept[0].retry) == (9, 3)
    assert Room.objects.filter(pagecall_id__isnull=True).count() == 3
    Room.objects.filter(pagecall_id__isnull=True).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    run("pagecall_sync")  # each finds its room by the name it was sent with

    on_pagecall = set(pagecall_emulator.rooms)
    rows = list(Room.objects.values_list("pk", "pagecall_id", "name"))
    assert sorted(pagecall_id for _, pagecall_id, _ in rows) == sorted(on_pagecall)
    assert {pk for pk, _, name in rows if name.startswith("Here")} == {room.pk for room in here}
    assert {
        pagecall_id for _, pagecall_id, name in rows if name.startswith("Elsewhere")
    } == elsewhere
    posts = [
        r for r in pagecall_emulator.requests if (r["method"], r["route"]) == ("POST", "/rooms")
    ]
    assert len(posts) == len(here)
