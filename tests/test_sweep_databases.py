"""The sweep on a site with several databases: the periodic task and ``pagecall_sync`` send what
is pending on every alias the app's tables are migrated on, unless told one alias.

Needs ``--ds tests.settings_databases`` (docs/contributing.md, "Services and databases").
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from django_pagecall import tasks
from django_pagecall.emulator import Emulator
from django_pagecall.models import Room, SyncState

pytestmark = [
    pytest.mark.skipif(
        "other" not in settings.DATABASES,
        reason="needs the aliases of tests.settings_databases (--ds tests.settings_databases)",
    ),
    # Not "reports": the router keeps the app off it, and with no test database a query sent
    # there fails the test.
    pytest.mark.django_db(transaction=True, databases=["default", "other"]),
]


def state(room: Room) -> str:
    return Room.objects.using(room._state.db).get(pk=room.pk).sync_state


@pytest.fixture
def saved_while_the_broker_was_down() -> tuple[Room, Room]:
    """A room saved on each alias while the broker refused its task: both pending."""
    from tests.celery_app import app
    from tests.conftest import use_broker
    from tests.redis_server import free_port

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    previous = use_broker(f"redis://127.0.0.1:{free_port()}/0")
    try:
        here = Room(name="On default")
        here.save()
        there = Room(name="On other")
        there.save(using="other")
    finally:
        use_broker(previous)
        app.conf.task_always_eager = eager
    assert (state(here), state(there)) == (SyncState.PENDING, SyncState.PENDING)
    return here, there


def test_the_periodic_task_sweeps_every_alias_the_app_is_migrated_on(
    pagecall_emulator: Emulator, saved_while_the_broker_was_down: tuple[Room, Room]
) -> None:
    here, there = saved_while_the_broker_was_down
    assert tasks.sync() == {"done": 2, "failed": 0, "retry": 0, "pruned": 0}
    assert (state(here), state(there)) == (SyncState.SYNCED, SyncState.SYNCED)
    assert sorted(r["name"] for r in pagecall_emulator.rooms.values()) == [
        "On default",
        "On other",
    ]


def test_the_periodic_task_given_an_alias_sweeps_that_one_only(
    pagecall_emulator: Emulator, saved_while_the_broker_was_down: tuple[Room, Room]
) -> None:
    here, there = saved_while_the_broker_was_down
    assert tasks.sync(using="other") == {"done": 1, "failed": 0, "retry": 0, "pruned": 0}
    assert (state(here), state(there)) == (SyncState.PENDING, SyncState.SYNCED)


def test_pagecall_sync_sweeps_every_alias_and_database_narrows_it(
    pagecall_emulator: Emulator, saved_while_the_broker_was_down: tuple[Room, Room]
) -> None:
    here, there = saved_while_the_broker_was_down
    out = StringIO()
    call_command("pagecall_sync", "--dry-run", stdout=out, stderr=StringIO())
    assert f"other: create_room {there.pk}" in out.getvalue()
    assert f"default: create_room {here.pk}" in out.getvalue()

    out = StringIO()
    call_command("pagecall_sync", "--database", "other", stdout=out, stderr=StringIO())
    assert "1 sent, 0 failed, 0 to retry" in out.getvalue()
    assert (state(here), state(there)) == (SyncState.PENDING, SyncState.SYNCED)

    out = StringIO()
    call_command("pagecall_sync", stdout=out, stderr=StringIO())
    assert "default: 1 sent, 0 failed, 0 to retry" in out.getvalue()
    assert "other: Nothing to send" in out.getvalue()
    assert state(here) == SyncState.SYNCED
