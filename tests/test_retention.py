"""Retention: processed webhook deliveries older than ``DELIVERY_RETENTION_DAYS`` are deleted by
the periodic task and ``manage.py pagecall_prune``, in primary-key batches; failed and waiting
ones are kept unless asked; sessions are kept unless asked; pruning goes on beside webhooks."""

from __future__ import annotations

import io
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_pagecall import tasks
from django_pagecall.conf import pagecall_settings
from django_pagecall.emulator import Emulator
from django_pagecall.models import DeliveryState, Session, WebhookDelivery
from django_pagecall.webhooks.retention import prune_deliveries
from tests.test_webhook_support import (
    WEBHOOK_PATH,
    PagecallRoom,
    make_room,
    post,
    requires_server,
)

pytestmark = pytest.mark.django_db(transaction=True)


def deliveries_of(room: PagecallRoom, client: Client, users: list[str]) -> list[int]:
    """Deliveries as Pagecall makes them: one join per user, posted to the webhook."""
    pks = []
    for user in users:
        response = post(client, room.join(user), room.headers)
        assert response.status_code == 200
        pks.append(response.json()["delivery"])
    return pks


def age(pks: list[int], days: int) -> None:
    WebhookDelivery.objects.filter(pk__in=pks).update(
        received_at=timezone.now() - timedelta(days=days)
    )


def old_rows(count: int, state: str, days: int = 40) -> list[int]:
    """``count`` deliveries received ``days`` ago (written in bulk: a large old table)."""
    made = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            action="sessionJoined",
            session_id=f"old-{state}-{i}",
            state=state,
            received_at=timezone.now() - timedelta(days=days),
        )
        for i in range(count)
    )
    return [d.pk for d in made]


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("pagecall_prune", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_periodic_task_deletes_processed_deliveries_past_the_retention(
    pagecall_emulator: Emulator, client: Client
) -> None:
    room = make_room(pagecall_emulator)
    old = deliveries_of(room, client, ["alice", "bob"])
    recent = deliveries_of(room, client, ["carol"])
    age(old, 31)
    waiting, failed = old_rows(1, DeliveryState.WAITING), old_rows(1, DeliveryState.FAILED)

    assert tasks.sync()["pruned"] == 2
    left = set(WebhookDelivery.objects.values_list("pk", flat=True))
    assert left == {*recent, *waiting, *failed}
    assert Session.objects.count() == 3  # sessions are kept


def test_the_retention_is_a_setting(
    pagecall_emulator: Emulator, client: Client, settings: Any
) -> None:
    room = make_room(pagecall_emulator)
    pks = deliveries_of(room, client, ["alice"])
    age(pks, 8)
    settings.PAGECALL = {**settings.PAGECALL, "DELIVERY_RETENTION_DAYS": 0}
    assert tasks.sync()["pruned"] == 0  # 0 keeps them all
    settings.PAGECALL = {**settings.PAGECALL, "DELIVERY_RETENTION_DAYS": 10}
    assert tasks.sync()["pruned"] == 0
    settings.PAGECALL = {**settings.PAGECALL, "DELIVERY_RETENTION_DAYS": 7}
    assert tasks.sync()["pruned"] == 1
    settings.PAGECALL = {**settings.PAGECALL, "DELIVERY_RETENTION_DAYS": -1}
    with pytest.raises(ImproperlyConfigured, match="DELIVERY_RETENTION_DAYS"):
        pagecall_settings.DELIVERY_RETENTION_DAYS  # noqa: B018


def test_deletes_go_by_primary_key_batches() -> None:
    old = old_rows(7, DeliveryState.PROCESSED)
    with CaptureQueriesContext(connection) as captured:
        assert prune_deliveries(batch_size=3) == 7
    deletes = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 3 + 3 + 1
    assert all(" >= " in sql and " <= " in sql for sql in deletes)  # each batch's key range
    assert not WebhookDelivery.objects.filter(pk__in=old).exists()


def test_each_batch_is_followed_by_a_rest_as_long_as_it_took(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from django_pagecall.webhooks import retention

    old_rows(7, DeliveryState.PROCESSED)
    # A clock of its own: each reading 0.1 s after the last, so each batch "takes" 0.1 s.
    readings = iter(x / 10 for x in range(100))
    rests: list[float] = []
    clock = SimpleNamespace(monotonic=lambda: next(readings), sleep=rests.append)
    monkeypatch.setattr(retention, "time", clock)

    assert prune_deliveries(batch_size=3, pause=2) == 7
    assert rests == pytest.approx([0.2, 0.2])  # none after the last batch
    old_rows(7, DeliveryState.PROCESSED)
    assert prune_deliveries(batch_size=3, pause=20) == 7
    assert rests[2:] == [retention.MAX_PAUSE] * 2
    old_rows(4, DeliveryState.PROCESSED)
    assert prune_deliveries(batch_size=3, pause=0) == 4
    assert len(rests) == 4
    for refused in ("-1", "nan"):
        with pytest.raises(CommandError, match="--pause must be 0 or more"):
            call_command("pagecall_prune", "--pause", refused)


def test_the_command_prunes_and_keeps_failed_unless_asked() -> None:
    processed = old_rows(3, DeliveryState.PROCESSED)
    failed = old_rows(2, DeliveryState.FAILED) + old_rows(1, DeliveryState.WAITING)
    recent_failed = old_rows(1, DeliveryState.FAILED, days=1)

    out, _ = run("--dry-run")
    assert out == "3 webhook deliveries to delete\n"
    assert WebhookDelivery.objects.count() == 7

    out, err = run()
    assert out == "3 webhook deliveries deleted.\n"
    assert "pagecall_prune 3/3" in err
    assert not WebhookDelivery.objects.filter(pk__in=processed).exists()
    assert WebhookDelivery.objects.filter(pk__in=failed).count() == 3

    out, _ = run("--include-failed")
    assert out == "3 webhook deliveries deleted.\n"
    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == set(recent_failed)

    out, _ = run("--include-failed", "--days", "0")
    assert out.startswith("Nothing to prune")


def test_the_command_deletes_old_sessions_only_when_asked(
    pagecall_emulator: Emulator, client: Client
) -> None:
    room = make_room(pagecall_emulator)
    alice = room.join("alice")
    for body in (alice, room.leave(alice["payload"]["sessionId"]), room.join("bob")):
        assert post(client, body, room.headers).status_code == 200
    long_ago = timezone.now() - timedelta(days=400)
    Session.objects.update(joined_at=long_ago)
    Session.objects.filter(user_id="alice").update(left_at=long_ago + timedelta(hours=1))

    run()
    assert Session.objects.count() == 2
    out, _ = run("--sessions", "365")
    assert "1 session deleted." in out
    assert list(Session.objects.values_list("user_id", flat=True)) == ["bob"]  # still in


def test_pruning_while_webhooks_are_received(pagecall_emulator: Emulator, live_server: Any) -> None:
    requires_server("the live server's threads write while the test's connection deletes")
    room = make_room(pagecall_emulator, webhook_url=live_server.url + WEBHOOK_PATH)
    old = old_rows(600, DeliveryState.PROCESSED)
    statuses: list[int | None] = []

    def participants() -> None:
        for i in range(30):
            joined = pagecall_emulator.join(room.pagecall_id, user_id=f"user-{i}")
            statuses.append(joined["delivery"]["status"])

    sender = threading.Thread(target=participants)
    sender.start()
    deleted = prune_deliveries(batch_size=50)
    sender.join(timeout=120)

    assert deleted == 600
    assert statuses == [200] * 30
    assert not WebhookDelivery.objects.filter(pk__in=old).exists()
    kept = WebhookDelivery.objects.filter(state=DeliveryState.PROCESSED)
    assert kept.count() == 30
    assert Session.objects.filter(room=room.room).count() == 30
