"""Helpers and fixtures shared by the webhook tests (``tests/test_webhook*.py``); no tests here.

Rooms are made as the app makes them (``make_room``); webhook bodies and headers come from the
emulator's participants, sent by the emulator itself or taken (``deliver=False``) and posted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from django_pagecall import signals
from django_pagecall.client import get_client
from django_pagecall.emulator import Emulator
from django_pagecall.models import Room, Session, SyncState, WebhookDelivery
from django_pagecall.webhooks.auth import headers_for_room

WEBHOOK_PATH = "/pagecall/webhook/"


def requires_postgres(reason: str) -> None:
    if connection.vendor != "postgresql":
        pytest.skip(f"needs PostgreSQL: {reason}")


def requires_server(reason: str) -> None:
    if connection.vendor not in ("postgresql", "mysql"):
        pytest.skip(f"needs PostgreSQL or MariaDB: {reason}")


def lock_waits() -> int:
    """How many of the test database's transactions wait for a row lock."""
    if connection.vendor == "postgresql":
        query = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    else:
        query = "SELECT count(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'"
    with connection.cursor() as cursor:
        cursor.execute(query)
        return int(cursor.fetchone()[0])


@dataclass
class PagecallRoom:
    """A local room and its twin on the emulator."""

    room: Room
    pagecall_id: str
    emulator: Emulator

    @property
    def headers(self) -> dict[str, str]:
        """The ``webhook.headers`` Pagecall holds for the room, as it sends them back."""
        config = self.emulator.webhook_config(self.pagecall_id)
        assert config is not None
        return dict(config["headers"])

    def store_id(self) -> None:
        """What sync does once Pagecall has answered ``POST /rooms``."""
        Room.objects.filter(pk=self.room.pk).update(
            pagecall_id=self.pagecall_id, sync_state=SyncState.SYNCED
        )
        self.room.refresh_from_db()

    def join(self, user_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """A participant joins; returns the emulator's webhook body (not sent)."""
        result = self.emulator.join(self.pagecall_id, user_id=user_id, deliver=False, **kwargs)
        return dict(result["body"])

    def leave(self, session_id: str) -> dict[str, Any]:
        result = self.emulator.leave(self.pagecall_id, session_id, deliver=False)
        return dict(result["body"])


def make_room(
    emulator: Emulator,
    *,
    name: str = "Standup",
    type: str = "open",
    webhook_url: str = "http://testserver" + WEBHOOK_PATH,
    store_id: bool = True,
) -> PagecallRoom:
    """A room made as the app makes it: a local row, and a room on the emulator created with that
    row's webhook headers (``headers_for_room``)."""
    # bulk_create: a row without the save() hook, so the test decides when the id is stored.
    (room,) = Room.objects.bulk_create([Room(name=name, type=type)])
    remote = get_client().create_room(
        name=name, type=type, webhook_url=webhook_url, webhook_headers=headers_for_room(room.pk)
    )
    made = PagecallRoom(room=room, pagecall_id=remote.id, emulator=emulator)
    if store_id:
        made.store_id()
    return made


def post(
    client: Client, body: Any, headers: dict[str, str] | None = None, *, raw: bytes | None = None
) -> Any:
    data = raw if raw is not None else json.dumps(body).encode()
    return client.post(
        WEBHOOK_PATH, data=data, content_type="application/json", headers=headers or {}
    )


def session_id_of(body: dict[str, Any]) -> str:
    return str(body["payload"]["sessionId"])


class SignalLog:
    """Every session_joined / session_left sent, with its keyword arguments."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def of(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for n, kwargs in self.sent if n == name]

    def sessions(self, name: str) -> list[str]:
        return sorted(kw["session"].session_id for kw in self.of(name))


@pytest.fixture
def session_signals() -> Iterator[SignalLog]:
    log = SignalLog()
    connected = []
    for name in ("session_joined", "session_left"):

        def receiver(sender: Any, _name: str = name, **kwargs: Any) -> None:
            kwargs.pop("signal", None)
            assert sender is Session
            log.sent.append((_name, kwargs))  # list.append is atomic: safe from server threads

        getattr(signals, name).connect(receiver, weak=False)
        connected.append((name, receiver))
    yield log
    for name, receiver in connected:
        getattr(signals, name).disconnect(receiver)


@contextmanager
def failing_processing(message: str = "broken for the test") -> Iterator[None]:
    """While inside, no delivery can be marked processed: the database refuses it (a trigger).

    A real failure in the middle of processing, the view's and the replay's, where patching a
    Python function would skip the statement that production runs. Storing a delivery as received, waiting or failed still works.
    """
    table = connection.ops.quote_name(WebhookDelivery._meta.db_table)
    if connection.vendor == "postgresql":
        create = [
            "CREATE FUNCTION pagecall_test_refuse() RETURNS trigger LANGUAGE plpgsql"
            f" AS $$ BEGIN RAISE EXCEPTION '{message}'; END $$",
            f"CREATE TRIGGER pagecall_test_refuse BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW"
            " WHEN (NEW.state = 'processed') EXECUTE FUNCTION pagecall_test_refuse()",
        ]
        drop = [
            f"DROP TRIGGER IF EXISTS pagecall_test_refuse ON {table}",
            "DROP FUNCTION IF EXISTS pagecall_test_refuse()",
        ]
    elif connection.vendor == "mysql":
        create = [
            f"CREATE TRIGGER pagecall_test_refuse_{op} BEFORE {op} ON {table} FOR EACH ROW"
            f" BEGIN IF NEW.state = 'processed' THEN"
            f" SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{message}'; END IF; END"
            for op in ("INSERT", "UPDATE")
        ]
        drop = [f"DROP TRIGGER IF EXISTS pagecall_test_refuse_{op}" for op in ("INSERT", "UPDATE")]
    else:
        create = [
            f"CREATE TRIGGER pagecall_test_refuse_{op} BEFORE {op} ON {table}"
            f" WHEN NEW.state = 'processed' BEGIN SELECT RAISE(ABORT, '{message}'); END"
            for op in ("INSERT", "UPDATE")
        ]
        drop = [f"DROP TRIGGER IF EXISTS pagecall_test_refuse_{op}" for op in ("INSERT", "UPDATE")]
    with connection.cursor() as cursor:
        for statement in create:
            cursor.execute(statement)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for statement in drop:
                cursor.execute(statement)
