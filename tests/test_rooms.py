"""From a save to Pagecall and back, on the fast layer: tasks run eagerly in the test's thread,
Pagecall is the emulator over real HTTP, and transactions commit for real (transaction=True),
so ``on_commit`` and the compare-and-set claims behave as in production."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from django_pagecall import signals, sync
from django_pagecall.emulator import Emulator
from django_pagecall.models import Member, PagecallUser, Room, SyncState
from django_pagecall.sync import outcomes
from django_pagecall.webhooks.auth import ROOM_HEADER, SECRET_HEADER, authenticated_room_pk
from tests.conftest import requires_server_database, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def posts(emu: Emulator, route: str = "/rooms") -> list[dict[str, Any]]:
    return [r for r in emu.requests if r["method"] == "POST" and r["route"] == route]


def calls(emu: Emulator, method: str, route: str) -> list[dict[str, Any]]:
    return [r for r in emu.requests if r["method"] == method and r["route"] == route]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, **kwargs: Any) -> None:
        kwargs.pop("signal", None)
        self.calls.append((name, kwargs))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [kw for n, kw in self.calls if n == name]


@pytest.fixture
def fired() -> Iterator[Recorder]:
    recorder = Recorder()
    receivers = {}
    for name in ("room_created", "room_creation_failed"):
        signal = getattr(signals, name)

        def receiver(sender: Any, _name: str = name, **kwargs: Any) -> None:
            recorder(_name, sender=sender, **kwargs)

        receivers[name] = receiver
        signal.connect(receiver, weak=False)
    yield recorder
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def make_room(**fields: Any) -> Room:
    fields.setdefault("name", "Weekly")
    return Room.objects.create(**fields)


def test_saving_a_room_with_members_sends_one_create(
    pagecall_emulator: Emulator, fired: Recorder
) -> None:
    with transaction.atomic():
        room = make_room(
            name="Design review", type="private", record=False, max_meeting_seconds=600
        )
        Member.objects.create(room=room, user_id="alice", type="host", name="Alice")
        Member.objects.create(room=room, user_id="bob")
        assert posts(pagecall_emulator) == []  # nothing leaves before the commit

    (post,) = posts(pagecall_emulator)
    body = post["body"]
    assert body["name"] == "Design review"
    assert body["type"] == "private"
    assert body["record"] is False
    assert body["max_meeting_seconds"] == 600
    assert body["members"] == [
        {"user_id": "alice", "type": "host", "name": "Alice"},
        {"user_id": "bob", "type": "guest"},
    ]
    assert body["webhook"]["url"] == "http://testserver/pagecall/webhook/"
    headers = body["webhook"]["headers"]
    assert headers[ROOM_HEADER] == str(room.pk)
    assert len(headers[SECRET_HEADER]) == 64
    assert authenticated_room_pk(headers) == room.pk
    # Private rooms invite registered workspace users: both were registered before the room.
    assert [r["body"]["user_id"] for r in posts(pagecall_emulator, "/users")] == ["alice", "bob"]
    assert (
        PagecallUser.objects.filter(user_id__in=["alice", "bob"]).exclude(access_token="").count()
        == 2
    )

    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert re.fullmatch(r"[0-9a-f]{24}", room.pagecall_id or "")
    remote = pagecall_emulator.rooms[room.pagecall_id or ""]
    assert room.layout == remote["layout"]
    assert room.pagecall_created_at is not None
    assert room.sync_attempts == 1
    assert set(room.members.values_list("sync_state", flat=True)) == {SyncState.SYNCED}
    assert {m["user_id"] for m in pagecall_emulator.members(room.pagecall_id or "")} == {
        "alice",
        "bob",
    }
    (created,) = fired.named("room_created")
    assert created["room"].pk == room.pk
    assert created["room"].pagecall_id == room.pagecall_id
    assert created["sender"] is Room


def test_members_saved_with_their_room_queue_no_task_of_their_own(
    pagecall_emulator: Emulator,
) -> None:
    from celery.signals import task_prerun

    ran: list[str] = []

    def record(sender: Any = None, **kwargs: Any) -> None:
        ran.append(sender.name)

    task_prerun.connect(record, weak=False)
    try:
        with transaction.atomic():
            room = make_room(name="Together")
            Member.objects.create(room=room, user_id="ann")
            Member.objects.create(room=room, user_id="bob")
        assert ran == ["django_pagecall.tasks.create_room"]  # the members went in its POST
        Member.objects.create(room=room, user_id="cy")  # after the commit: a task of its own
        assert ran[1:] == ["django_pagecall.tasks.create_member"]
    finally:
        task_prerun.disconnect(record)
    room.refresh_from_db()
    assert {m["user_id"] for m in pagecall_emulator.members(room.pagecall_id or "")} == {
        "ann",
        "bob",
        "cy",
    }
    assert len(posts(pagecall_emulator)) == 1


def test_a_rolled_back_save_sends_nothing(pagecall_emulator: Emulator) -> None:
    def save_then_fail() -> None:
        with transaction.atomic():
            room = make_room()
            Member.objects.create(room=room, user_id="alice")
            raise RuntimeError("rollback")

    with pytest.raises(RuntimeError):
        save_then_fail()
    assert Room.objects.count() == 0
    assert pagecall_emulator.requests == []


def test_no_webhook_url_creates_the_room_without_webhook(
    pagecall_emulator: Emulator, settings: Any
) -> None:
    settings.PAGECALL = {**settings.PAGECALL, "WEBHOOK_URL": None}
    make_room()
    (post,) = posts(pagecall_emulator)
    assert "webhook" not in post["body"]


def test_transient_failures_are_retried_then_one_room(
    pagecall_emulator: Emulator, fired: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    pagecall_emulator.inject("POST", "/rooms", status=500, times=2)
    with caplog.at_level(logging.DEBUG, logger="django_pagecall.sync"):
        room = make_room()
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert room.sync_attempts == 3
    assert [r["status"] for r in posts(pagecall_emulator)] == [500, 500, 200]
    assert len(pagecall_emulator.rooms) == 1
    assert len(fired.named("room_created")) == 1
    # The first attempt is routine (DEBUG); retries and the outcome are what an operator reads.
    attempts = [
        (r.levelno, r.getMessage())
        for r in caplog.records
        if r.getMessage().startswith(f"Creating room {room.pk} ")
    ]
    assert attempts == [
        (logging.DEBUG, f"Creating room {room.pk} 'Weekly' on Pagecall (attempt 1)"),
        (logging.INFO, f"Creating room {room.pk} 'Weekly' on Pagecall (attempt 2)"),
        (logging.INFO, f"Creating room {room.pk} 'Weekly' on Pagecall (attempt 3)"),
    ]
    (created,) = [r for r in caplog.records if "is on Pagecall as" in r.getMessage()]
    assert created.levelno == logging.INFO
    assert created.getMessage() == f"Room {room.pk} 'Weekly' is on Pagecall as {room.pagecall_id}"


def test_created_then_connection_dropped_adopts_the_room(
    pagecall_emulator: Emulator, fired: Recorder
) -> None:
    pagecall_emulator.inject("POST", "/rooms", drop="after")
    room = make_room(name="Dropped")
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    (remote_id,) = pagecall_emulator.rooms
    assert room.pagecall_id == remote_id
    assert len(posts(pagecall_emulator)) == 1  # looked up, never posted again
    (lookup,) = calls(pagecall_emulator, "GET", "/rooms")
    assert lookup["query"]["name"] == "Dropped"
    assert len(fired.named("room_created")) == 1


def test_dropped_before_carrying_out_is_looked_up_then_sent_again(
    pagecall_emulator: Emulator,
) -> None:
    pagecall_emulator.inject("POST", "/rooms", drop="before")
    room = make_room()
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert len(posts(pagecall_emulator)) == 2
    assert len(calls(pagecall_emulator, "GET", "/rooms")) == 1
    assert len(pagecall_emulator.rooms) == 1


def test_read_timeout_is_ambiguous_and_adopts(
    pagecall_emulator: Emulator, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pagecall answers after the client gave up; the lookup waits until it must have landed.
    settings.PAGECALL = {**settings.PAGECALL, "READ_TIMEOUT": 0.3}
    monkeypatch.setattr(outcomes, "AMBIGUOUS_GRACE", 1.0)
    pagecall_emulator.inject("POST", "/rooms", delay=0.8)
    room = make_room()
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert len(posts(pagecall_emulator)) == 1
    assert len(pagecall_emulator.rooms) == 1


def test_a_refusal_fails_the_room_once(pagecall_emulator: Emulator, fired: Recorder) -> None:
    pagecall_emulator.inject(
        "POST", "/rooms", status=400, body={"message": "name is too long"}, times=None
    )
    room = make_room()
    room.refresh_from_db()
    assert room.sync_state == SyncState.FAILED
    assert "400" in room.sync_error
    assert "name is too long" in room.sync_error
    (failed,) = fired.named("room_creation_failed")
    assert failed["room"].pk == room.pk
    assert "name is too long" in failed["error"]
    # The receiver gets the whole row as stored, with nothing left to load.
    assert failed["room"].get_deferred_fields() == set()
    assert (failed["room"].sync_state, failed["room"].sync_error) == (
        SyncState.FAILED,
        room.sync_error,
    )
    assert failed["room"].created_at == room.created_at
    # Running the task again, or the sweep, sends nothing more.
    sync.create_room(room.pk)
    call_command("pagecall_sync", stdout=None)
    assert len(posts(pagecall_emulator)) == 1
    assert len(fired.named("room_creation_failed")) == 1
    assert fired.named("room_created") == []


def test_gives_up_after_max_attempts(
    pagecall_emulator: Emulator, settings: Any, fired: Recorder
) -> None:
    settings.PAGECALL = {**settings.PAGECALL, "MAX_ATTEMPTS": 3}
    pagecall_emulator.inject("POST", "/rooms", status=503, times=None)
    room = make_room()
    room.refresh_from_db()
    assert len(posts(pagecall_emulator)) == 3
    assert room.sync_state == SyncState.FAILED
    assert "gave up after 3 attempts" in room.sync_error
    assert len(fired.named("room_creation_failed")) == 1


def _stale_claim(room: Room, started: Any) -> None:
    Room.objects.filter(pk=room.pk).update(
        sync_state=SyncState.CREATING,
        sync_attempts=1,
        attempt_started_at=started,
        lease_until=timezone.now() - timedelta(seconds=1),
    )


def test_expired_claim_adopts_what_the_dead_worker_created(pagecall_emulator: Emulator) -> None:
    with transaction.atomic():
        room = Room(name="Killed mid-call")
        Room.objects.bulk_create([room])  # no save(): no task, as if the worker died
    room = Room.objects.get(name="Killed mid-call")
    started = timezone.now()
    from django_pagecall.client import get_client

    created = get_client().create_room(name="Killed mid-call", type="public")  # what it sent
    _stale_claim(room, started)
    sync.create_room(room.pk)
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert room.pagecall_id == created.id
    assert len(pagecall_emulator.rooms) == 1


def test_expired_claim_with_nothing_created_sends_again(pagecall_emulator: Emulator) -> None:
    Room.objects.bulk_create([Room(name="Never sent")])
    room = Room.objects.get(name="Never sent")
    _stale_claim(room, timezone.now())
    sync.create_room(room.pk)
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert room.sync_attempts == 2
    assert len(posts(pagecall_emulator)) == 1


def test_a_live_claim_is_left_alone(pagecall_emulator: Emulator) -> None:
    Room.objects.bulk_create([Room(name="Busy")])
    room = Room.objects.get(name="Busy")
    Room.objects.filter(pk=room.pk).update(
        sync_state=SyncState.CREATING, lease_until=timezone.now() + timedelta(minutes=1)
    )
    with pytest.raises(sync.RetryLater):
        sync.create_room(room.pk)
    assert pagecall_emulator.requests == []


def test_adoption_skips_rooms_that_belong_to_another_row(pagecall_emulator: Emulator) -> None:
    first = make_room(name="Same name")
    first.refresh_from_db()
    Room.objects.bulk_create([Room(name="Same name")])
    second = Room.objects.exclude(pk=first.pk).get()
    _stale_claim(second, timezone.now() - timedelta(seconds=5))
    sync.create_room(second.pk)
    second.refresh_from_db()
    assert second.sync_state == SyncState.SYNCED
    assert second.pagecall_id != first.pagecall_id
    assert len(pagecall_emulator.rooms) == 2


def test_member_added_later_is_posted(pagecall_emulator: Emulator) -> None:
    room = make_room(type="public")
    room.refresh_from_db()
    member = Member.objects.create(room=room, user_id="carol", type="host", name="Carol")
    member.refresh_from_db()
    assert member.sync_state == SyncState.SYNCED
    assert member.pagecall_id
    (post,) = posts(pagecall_emulator, "/rooms/{room_id}/members")
    assert post["body"] == {"user_id": "carol", "type": "host"}
    names = {m["user_id"]: m for m in pagecall_emulator.members(room.pagecall_id or "")}
    assert names["carol"]["type"] == "host"


def test_member_of_private_room_is_registered_first(pagecall_emulator: Emulator) -> None:
    room = make_room(type="private")
    Member.objects.create(room=room, user_id="dave")
    order = [(r["method"], r["route"]) for r in pagecall_emulator.requests]
    assert order.index(("POST", "/users")) < order.index(("POST", "/rooms/{room_id}/members"))
    assert PagecallUser.objects.get(user_id="dave").access_token


def test_member_from_site_user_derives_user_id(pagecall_emulator: Emulator, settings: Any) -> None:
    user = get_user_model().objects.create(username="erin")
    room = make_room()
    member = Member.objects.create(room=room, site_user=user)
    assert member.user_id == str(user.pk)
    settings.PAGECALL = {**settings.PAGECALL, "USER_ID_FUNCTION": "tests.test_rooms.user_id_rule"}
    other = Member.objects.create(room=make_room(), site_user=user)
    assert other.user_id == "site-erin"
    with pytest.raises(ValueError, match="user_id or a site_user"):
        Member.objects.create(room=room)


def user_id_rule(user: Any) -> str:
    return f"site-{user.username}"


def test_rename_and_terminate_send_updates(pagecall_emulator: Emulator) -> None:
    room = make_room(name="Old")
    room.refresh_from_db()
    room.name = "New"
    room.save()
    (put,) = calls(pagecall_emulator, "PUT", "/rooms/{id}")
    assert put["body"] == {"application_id": room.application_id, "name": "New"}
    assert pagecall_emulator.rooms[room.pagecall_id or ""]["name"] == "New"
    room.refresh_from_db()
    assert room.needs_update is False
    room.record = False
    room.save()  # not a rename: nothing to send
    assert len(calls(pagecall_emulator, "PUT", "/rooms/{id}")) == 1
    room.terminate()
    puts = calls(pagecall_emulator, "PUT", "/rooms/{id}")
    assert puts[-1]["body"] == {
        "application_id": room.application_id,
        "name": "New",
        "is_terminated": True,
    }
    room.refresh_from_db()
    assert room.terminated_at is not None
    assert room.is_terminated


def test_member_changes_and_removal(pagecall_emulator: Emulator) -> None:
    room = make_room(type="private")
    with transaction.atomic():
        keep = Member.objects.create(room=room, user_id="m1")
        gone = Member.objects.create(room=room, user_id="m2")
        blocked = Member.objects.create(room=room, user_id="m3")
    room = make_room(type="private", name="R")  # a second room: does not interfere
    keep.refresh_from_db()
    keep.type = "host"
    keep.name = "Main"
    keep.save()
    blocked.refresh_from_db()
    blocked.remove()
    gone.refresh_from_db()
    gone.delete()
    puts = calls(pagecall_emulator, "PUT", "/rooms/{room_id}/members/{member_id}")
    bodies = {r["path"].rsplit("/", 1)[-1]: r["body"] for r in puts}
    assert bodies["m1"] == {"name": "Main", "type": "host"}
    assert bodies["m3"] == {"is_blocked": True}
    assert bodies["m2"] == {"is_blocked": True}
    keep.refresh_from_db()
    assert keep.needs_update is False


def test_join_and_replay_urls(pagecall_emulator: Emulator, settings: Any) -> None:
    room = make_room(type="open")
    with pytest.raises(ValueError, match="no Pagecall id"):
        Room(name="unsaved").join_url()
    room.refresh_from_db()
    app = pagecall_emulator.app_url  # the fixture points PAGECALL["APP_URL"] at the emulator
    assert room.join_url() == f"{app}/meet?room_id={room.pagecall_id}"
    url = room.join_url("frank")
    token = pagecall_emulator.users["frank"]["access_token"]
    assert url == f"{app}/meet?room_id={room.pagecall_id}&access_token={token}"
    assert room.replay_url("frank").startswith(f"{app}/replay?")
    settings.PAGECALL = {**settings.PAGECALL, "APP_URL": "https://app.pagecall.com"}
    assert room.join_url() == f"https://app.pagecall.com/meet?room_id={room.pagecall_id}"
    assert len(posts(pagecall_emulator, "/users")) == 1  # registered once, then remembered
    assert "access_token" not in repr(PagecallUser.objects.get(user_id="frank"))
    assert token not in repr(PagecallUser.objects.get(user_id="frank"))


def test_a_site_user_joins_as_their_member_of_the_room(pagecall_emulator: Emulator) -> None:
    from django.contrib.auth.models import AnonymousUser

    teacher = get_user_model().objects.create(username="teacher")
    stranger = get_user_model().objects.create(username="stranger")
    room = make_room(type="private")
    # A member given its own user id beside its site user (the admin's inline allows both).
    Member.objects.create(room=room, site_user=teacher, user_id="teacher-7", type="host")
    room.refresh_from_db()
    url = room.join_url(teacher)
    assert url.endswith(f"access_token={pagecall_emulator.users['teacher-7']['access_token']}")
    assert str(teacher.pk) not in pagecall_emulator.users  # nobody else was registered
    # A site user who is no member of the room: the id the rule derives.
    assert room.join_url(stranger).endswith(
        f"access_token={pagecall_emulator.users[str(stranger.pk)]['access_token']}"
    )
    with pytest.raises(ValueError, match="anonymous site user"):
        room.join_url(AnonymousUser())


def test_deleting_a_room_keeps_it_at_pagecall_unless_asked(
    pagecall_emulator: Emulator, settings: Any
) -> None:
    room = make_room()
    room.refresh_from_db()
    room.delete()
    assert len(pagecall_emulator.rooms) == 1
    settings.PAGECALL = {**settings.PAGECALL, "DELETE_REMOTE_ROOMS": True}
    room = make_room(name="Temporary")
    room.refresh_from_db()
    remote_id = room.pagecall_id
    room.delete()
    assert remote_id not in pagecall_emulator.rooms


def test_broker_down_at_save_leaves_a_pending_row_and_the_sweep_sends_it(
    pagecall_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.celery_app import app
    from tests.conftest import use_broker
    from tests.redis_server import free_port

    app.conf.task_always_eager = False
    previous = use_broker(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        with caplog.at_level(logging.DEBUG, logger="django_pagecall"):
            room = make_room(name="Broker down")
    finally:
        use_broker(previous)
    room.refresh_from_db()
    assert room.sync_state == SyncState.PENDING
    assert pagecall_emulator.requests == []
    # One warning line that says what follows, without the traceback; the traceback at DEBUG.
    (logged,) = [r for r in caplog.records if "pagecall_sync" in r.getMessage()]
    assert logged.levelno == logging.WARNING
    assert logged.exc_info is None
    assert "the broker is unreachable (" in logged.getMessage()
    (debug,) = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    # The broker's refusal, not some other failure to call Celery.
    assert isinstance(debug.exc_info[1], OperationalError | OSError), debug.exc_info[1]

    call_command("pagecall_sync", "--dry-run")
    assert pagecall_emulator.requests == []
    call_command("pagecall_sync")
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert len(posts(pagecall_emulator)) == 1


def test_a_transport_that_cannot_be_imported_is_named_not_blamed_on_the_broker() -> None:
    from django_pagecall.sync.scheduling import publish_failure

    try:
        try:
            raise ModuleNotFoundError("No module named 'packaging'")
        except ImportError as missing:
            raise RuntimeError("could not load transport") from missing
    except RuntimeError as exc:
        said = publish_failure(exc)
    assert "cannot load the broker's transport" in said
    assert "No module named 'packaging'" in said
    assert "celery[redis]" in said
    assert "unreachable" not in said


def test_sweep_sends_pending_members_and_updates(pagecall_emulator: Emulator) -> None:
    room = make_room()
    room.refresh_from_db()
    Member.objects.bulk_create([Member(room=room, user_id="late")])  # no task queued
    Room.objects.filter(pk=room.pk).update(name="Renamed", needs_update=True)
    work = sync.pending_work()
    assert ("update_room", room.pk) in work
    assert any(name == "create_member" for name, _ in work)
    result = sync.sweep()
    assert result.done == 2
    assert result.retry == 0
    assert pagecall_emulator.rooms[room.pagecall_id or ""]["name"] == "Renamed"
    assert sync.pending_work() == []


def test_migrations_are_complete() -> None:
    call_command("makemigrations", "django_pagecall", "--check", "--dry-run", verbosity=0)


def test_a_rename_while_the_room_is_being_created_is_sent_afterwards(
    pagecall_emulator: Emulator,
) -> None:
    import threading

    requires_server_database()  # SQLite's shared in-memory database locks whole tables
    Room.objects.bulk_create([Room(name="First name")])  # no task: this test runs it
    room = Room.objects.get()
    pagecall_emulator.inject("POST", "/rooms", delay=0.5)
    worker = threading.Thread(target=sync.create_room, args=(room.pk,))
    worker.start()
    wait_for(lambda: Room.objects.get(pk=room.pk).sync_state == SyncState.CREATING)
    room.name = "Second name"
    room.save()  # no Pagecall id yet: nothing can be sent now
    worker.join(10)
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert posts(pagecall_emulator)[0]["body"]["name"] == "First name"
    assert pagecall_emulator.rooms[room.pagecall_id or ""]["name"] == "Second name"
    assert room.needs_update is False


def test_saving_a_stale_instance_keeps_what_the_worker_stored(pagecall_emulator: Emulator) -> None:
    Room.objects.bulk_create([Room(name="Edited in the admin")])
    stale = Room.objects.get()  # loaded while pending, like an admin form
    sync.create_room(stale.pk)
    stale.record = False
    stale.save()
    fresh = Room.objects.get()
    assert fresh.sync_state == SyncState.SYNCED
    assert fresh.pagecall_id in pagecall_emulator.rooms
    assert fresh.record is False
    stale.name = "Renamed from a stale form"
    stale.save()  # the rename still reaches Pagecall
    assert pagecall_emulator.rooms[fresh.pagecall_id or ""]["name"] == "Renamed from a stale form"


def test_a_join_before_the_room_id_is_stored_is_applied_once_it_is(
    pagecall_emulator: Emulator, live_server: Any, settings: Any
) -> None:
    from django_pagecall.models import Session
    from django_pagecall.models.webhooks import WebhookDelivery

    settings.PAGECALL = {**settings.PAGECALL, "WEBHOOK_URL": f"{live_server.url}/pagecall/webhook/"}
    pagecall_emulator.inject("POST", "/rooms", drop="after")
    Room.objects.bulk_create([Room(name="Joined at once")])
    room = Room.objects.get()
    with pytest.raises(sync.RetryLater):
        sync.create_room(room.pk)  # created at Pagecall, answer lost: no id stored
    (remote_id,) = pagecall_emulator.rooms
    joined = pagecall_emulator.join(remote_id, user_id="early")
    assert 200 <= joined["delivery"]["status"] < 300
    (waiting,) = WebhookDelivery.objects.all()
    assert waiting.state == "waiting"
    assert Session.objects.count() == 0

    wait_for(lambda: Room.objects.get(pk=room.pk).lease_until < timezone.now(), timeout=5)
    sync.create_room(room.pk)  # adopts the room, then applies what waited
    room.refresh_from_db()
    assert room.pagecall_id == remote_id
    session = Session.objects.get()
    assert session.user_id == "early"
    assert session.session_id == joined["session"]["id"]
    assert session.joined_at is not None
    assert WebhookDelivery.objects.get().state == "processed"


def test_update_refusals_are_recorded_and_transient_failures_retried(
    pagecall_emulator: Emulator,
) -> None:
    room = make_room(name="Before", type="private")
    member = Member.objects.create(room=room, user_id="m")
    room.refresh_from_db()
    member.refresh_from_db()

    pagecall_emulator.inject("PUT", "/rooms/{id}", status=503, times=1)
    room.name = "After"
    room.save()
    room.refresh_from_db()
    assert pagecall_emulator.rooms[room.pagecall_id or ""]["name"] == "After"
    assert (room.needs_update, room.sync_error) == (False, "")

    pagecall_emulator.inject("PUT", "/rooms/{id}", status=400, body={"message": "locked"})
    room.name = "Refused"
    room.save()
    room.refresh_from_db()
    assert room.needs_update is False
    assert "locked" in room.sync_error
    assert pagecall_emulator.rooms[room.pagecall_id or ""]["name"] == "After"

    pagecall_emulator.inject(
        "PUT", "/rooms/{room_id}/members/{member_id}", status=400, body={"message": "no such type"}
    )
    member.type = "monitor"
    member.save()
    member.refresh_from_db()
    assert member.needs_update is False
    assert "no such type" in member.sync_error


def test_a_drf_serializer_save_is_dispatched_like_any_other(pagecall_emulator: Emulator) -> None:
    from rest_framework import serializers

    class RoomSerializer(serializers.ModelSerializer[Room]):
        class Meta:
            model = Room
            fields = ["name", "type", "record"]

    serializer = RoomSerializer(data={"name": "From an API", "type": "open", "record": False})
    assert serializer.is_valid(), serializer.errors
    room = serializer.save()
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    (post,) = posts(pagecall_emulator)
    assert (post["body"]["name"], post["body"]["type"], post["body"]["record"]) == (
        "From an API",
        "open",
        False,
    )


def test_retries_go_past_celerys_default_limit_up_to_max_attempts(
    pagecall_emulator: Emulator,
) -> None:
    pagecall_emulator.inject("POST", "/rooms", status=503, times=5)  # Celery's default allows 3
    room = make_room(name="Stubborn")
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert [r["status"] for r in posts(pagecall_emulator)] == [503] * 5 + [200]


def test_an_unreadable_2xx_is_looked_up_not_sent_again(pagecall_emulator: Emulator) -> None:
    # A 200 whose body is not JSON: the room may well exist, so a second POST could duplicate it.
    pagecall_emulator.inject("POST", "/rooms", status=200, body="<html>gateway</html>")
    Room.objects.bulk_create([Room(name="Garbled")])
    garbled = Room.objects.get(name="Garbled")
    with pytest.raises(sync.RetryLater):
        sync.create_room(garbled.pk)
    garbled.refresh_from_db()
    assert garbled.sync_state == SyncState.CREATING  # waiting to look, not pending to resend
    assert garbled.lease_until is not None
    assert "answer is not JSON" in garbled.sync_error
    assert "gateway" not in garbled.sync_error  # an unreadable 2xx body may hold a token


def test_a_500_on_create_is_looked_up_before_sending_again(pagecall_emulator: Emulator) -> None:
    pagecall_emulator.inject("POST", "/rooms", status=500, times=1)
    room = make_room(name="Five hundred")
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    methods = [(r["method"], r["route"]) for r in pagecall_emulator.requests]
    assert methods[:3] == [("POST", "/rooms"), ("GET", "/rooms"), ("POST", "/rooms")]
    assert len(pagecall_emulator.rooms) == 1


def test_rooms_of_the_same_name_are_sent_one_at_a_time(pagecall_emulator: Emulator) -> None:
    Room.objects.bulk_create([Room(name="Consult"), Room(name="Consult"), Room(name="Other")])
    first, second = Room.objects.filter(name="Consult").order_by("pk")
    other = Room.objects.get(name="Other")
    Room.objects.filter(pk=first.pk).update(  # as a claim leaves it
        sync_state=SyncState.CREATING,
        lease_until=timezone.now() + timedelta(minutes=1),
        name_in_flight="Consult",
    )
    with pytest.raises(sync.RetryLater, match="same name"):
        sync.create_room(second.pk)
    sync.create_room(other.pk)  # another name is not held up
    assert [r["body"]["name"] for r in posts(pagecall_emulator)] == ["Other"]


def test_namesakes_in_flight_together_fail_instead_of_guessing(
    pagecall_emulator: Emulator, fired: Recorder
) -> None:
    from django_pagecall.client import get_client

    Room.objects.bulk_create([Room(name="Consult"), Room(name="Consult")])
    a, b = Room.objects.order_by("pk")
    started = timezone.now()
    get_client().create_room(name="Consult", type="public")  # both POSTs landed,
    get_client().create_room(name="Consult", type="public")  # neither answer was read
    _stale_claim(a, started)
    _stale_claim(b, started)
    sync.create_room(a.pk)
    a.refresh_from_db()
    assert a.sync_state == SyncState.FAILED
    assert a.pagecall_id is None
    assert "cannot tell which" in a.sync_error
    assert [r.pk for r in (kw["room"] for kw in fired.named("room_creation_failed"))] == [a.pk]


def test_adoption_marks_only_the_members_pagecall_has(pagecall_emulator: Emulator) -> None:
    from django_pagecall.client import get_client

    Room.objects.bulk_create([Room(name="Adopted")])
    room = Room.objects.get()
    Member.objects.bulk_create(
        [Member(room=room, user_id="sent"), Member(room=room, user_id="late")]
    )
    started = timezone.now()
    get_client().create_room(
        name="Adopted", type="public", members=[{"user_id": "sent", "type": "guest"}]
    )
    _stale_claim(room, started)
    sync.create_room(room.pk)  # adopts; "late" was not in the POST and is added after
    room.refresh_from_db()
    assert room.sync_state == SyncState.SYNCED
    assert {m["user_id"] for m in pagecall_emulator.members(room.pagecall_id or "")} == {
        "sent",
        "late",
    }
    assert set(Member.objects.values_list("sync_state", flat=True)) == {SyncState.SYNCED}
    assert len(posts(pagecall_emulator, "/rooms/{room_id}/members")) == 1


def test_two_quick_renames_end_with_the_newest_name(pagecall_emulator: Emulator) -> None:
    import threading

    requires_server_database()  # SQLite's shared in-memory database locks whole tables
    room = make_room(name="A")
    room.refresh_from_db()
    pagecall_emulator.inject("PUT", "/rooms/{id}", delay=0.5)  # the PUT for B is slow
    Room.objects.filter(pk=room.pk).update(name="B", needs_update=True)
    slow = threading.Thread(target=sync.update_room, args=(room.pk,))
    slow.start()
    wait_for(lambda: pagecall_emulator.faults == [])  # B's PUT has been taken by the server
    stale = Room.objects.get(pk=room.pk)
    stale.name = "C"
    stale.save()  # C's PUT goes through at once
    slow.join(10)
    room.refresh_from_db()
    assert room.name == "C"
    assert pagecall_emulator.rooms[room.pagecall_id or ""]["name"] == "C"
    assert room.needs_update is False


def test_a_members_name_is_sent_after_it_is_stored(pagecall_emulator: Emulator) -> None:
    room = make_room(type="public")
    pagecall_emulator.inject("PUT", "/rooms/{room_id}/members/{member_id}", status=503, times=1)
    member = Member.objects.create(room=room, user_id="named", name="Named One")
    member.refresh_from_db()
    assert member.sync_state == SyncState.SYNCED
    assert member.needs_update is False
    assert len(posts(pagecall_emulator, "/rooms/{room_id}/members")) == 1  # never re-posted
    puts = calls(pagecall_emulator, "PUT", "/rooms/{room_id}/members/{member_id}")
    assert [p["status"] for p in puts] == [503, 200]
    assert puts[-1]["body"]["name"] == "Named One"


def test_terminate_from_an_instance_loaded_before_creation(pagecall_emulator: Emulator) -> None:
    Room.objects.bulk_create([Room(name="Closing")])
    stale = Room.objects.get()
    sync.create_room(stale.pk)
    stale.terminate()  # this instance has no Pagecall id; the row does
    fresh = Room.objects.get()
    assert fresh.terminated_at is not None
    assert calls(pagecall_emulator, "PUT", "/rooms/{id}")[-1]["body"]["is_terminated"] is True


def test_a_rename_of_a_deferred_name_is_detected(pagecall_emulator: Emulator) -> None:
    room = make_room(name="Deferred")
    loaded = Room.objects.defer("name").get(pk=room.pk)
    loaded.name = "Renamed"
    loaded.save()
    room.refresh_from_db()
    assert pagecall_emulator.rooms[room.pagecall_id or ""]["name"] == "Renamed"


def test_a_member_change_of_a_deferred_field_is_detected(pagecall_emulator: Emulator) -> None:
    room = make_room()
    Member.objects.create(room=room, user_id="ann", name="Ann")
    room.refresh_from_db()
    loaded = Member.objects.only("id", "room", "user_id").get(user_id="ann")
    loaded.type = "host"  # type and name were deferred: compared with the database's
    loaded.save()
    assert {m["user_id"]: m["type"] for m in pagecall_emulator.members(room.pagecall_id or "")} == {
        "ann": "host"
    }
    assert sync.pending_work() == []


def test_refresh_from_db_is_the_new_baseline_for_changes(pagecall_emulator: Emulator) -> None:
    room = make_room(name="A")
    room.refresh_from_db()
    other = Room.objects.get(pk=room.pk)
    other.name = "B"
    other.save()  # sent
    room.refresh_from_db()
    room.name = "A"  # back to A: a change from what the database holds now
    room.save()
    assert pagecall_emulator.rooms[room.pagecall_id or ""]["name"] == "A"
    member = Member.objects.create(room=room, user_id="bob", name="Bob")
    Member.objects.filter(pk=member.pk).update(name="Robert", needs_update=True)
    sync.update_member(member.pk)  # "Robert" sent, as another process would have
    member.refresh_from_db(fields=["name"])
    member.name = "Bob"
    member.save()
    sent = [
        r["body"] for r in calls(pagecall_emulator, "PUT", "/rooms/{room_id}/members/{member_id}")
    ]
    # The name after the add, the other process's change, and the change back.
    assert [body.get("name") for body in sent] == ["Bob", "Robert", "Bob"]


def test_a_block_that_cannot_be_sent_now_is_kept_and_swept(pagecall_emulator: Emulator) -> None:
    from django_pagecall.models import PendingAction

    room = make_room(type="private")
    member = Member.objects.create(room=room, user_id="leaving")
    room.refresh_from_db()
    route = "/rooms/{room_id}/members/{member_id}"
    pagecall_emulator.inject("PUT", route, status=503, times=None)
    Member.objects.filter(pk=member.pk).delete()  # a queryset delete, as the admin's bulk action
    (owed,) = PendingAction.objects.all()  # retries ran out: the call is still owed
    assert (owed.kind, owed.room_pagecall_id, owed.user_id) == (
        "block_member",
        room.pagecall_id,
        "leaving",
    )
    assert owed.attempts >= 2
    assert "503" in owed.last_error
    assert ("run_action", owed.pk) in sync.pending_work()

    pagecall_emulator.clear_faults()
    call_command("pagecall_sync")
    assert PendingAction.objects.count() == 0
    assert calls(pagecall_emulator, "PUT", route)[-1]["body"] == {"is_blocked": True}
    assert pagecall_emulator.members(room.pagecall_id or "") == []  # blocked: no longer listed


def test_members_deleted_with_their_room_are_not_blocked(pagecall_emulator: Emulator) -> None:
    from django_pagecall.models import PendingAction

    room = make_room(type="private")
    Member.objects.create(room=room, user_id="stays")
    room.refresh_from_db()
    room.delete()
    assert PendingAction.objects.count() == 0
    assert calls(pagecall_emulator, "PUT", "/rooms/{room_id}/members/{member_id}") == []


def test_the_first_save_through_celerys_default_app_logs_a_warning_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery import Celery

    from django_pagecall.sync import publishing
    from django_pagecall.sync.scheduling import enqueue
    from tests.redis_server import free_port

    monkeypatch.setattr(publishing, "_app_checked", False)
    # What a site gets when its project's __init__.py does not import its Celery app.
    fallback = Celery("default", set_as_current=False)
    fallback.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    fallback.conf.broker_transport_options = {"socket_timeout": 1, "socket_connect_timeout": 1}

    def nothing(pk: int) -> None:
        pass

    task = fallback.task(name="django_pagecall.tests.fallback")(nothing)
    with caplog.at_level(logging.WARNING, logger="django_pagecall"):
        enqueue(task, 1)
        publishing.resume()
        enqueue(task, 2)
    warned = [r for r in caplog.records if "pagecall.W006" in r.getMessage()]
    assert len(warned) == 1
    assert warned[0].levelno == logging.WARNING
    assert "Celery's default app" in warned[0].getMessage()


def test_the_sites_own_celery_app_is_not_warned_about(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_pagecall.sync import publishing

    monkeypatch.setattr(publishing, "_app_checked", False)
    with caplog.at_level(logging.WARNING, logger="django_pagecall"):
        make_room(name="Bound")
    assert not [r for r in caplog.records if "pagecall.W006" in r.getMessage()]
