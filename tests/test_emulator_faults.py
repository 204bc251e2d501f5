"""Fault injection in the Pagecall emulator: statuses, delays and dropped connections."""

from __future__ import annotations

import time

import pytest
import requests

from django_pagecall.emulator import Emulator
from tests.test_emulator import Api, api

__all__ = ["api"]  # fixtures, imported to be registered here


def test_status_fault_answers_without_doing_the_request(
    api: Api, pagecall_emulator: Emulator
) -> None:
    fault = pagecall_emulator.inject("POST", "/rooms", status=500)
    assert fault["times"] == 1 and fault["status"] == 500 and fault["path"] == "/rooms"
    response = api.post("/rooms", json={"name": "x", "type": "open"})
    assert response.status_code == 500
    assert response.json() == {"message": "injected"}
    assert pagecall_emulator.rooms == {}
    assert pagecall_emulator.faults == []  # consumed
    assert api.post("/rooms", json={"name": "x", "type": "open"}).status_code == 200
    assert [r["fault"] for r in pagecall_emulator.requests] == ["status", None]
    assert [r["status"] for r in pagecall_emulator.requests] == [500, 200]


def test_status_fault_with_a_custom_body(api: Api, pagecall_emulator: Emulator) -> None:
    pagecall_emulator.inject("GET", "/rooms", status=429, body={"message": "slow down"})
    pagecall_emulator.inject("GET", "/rooms", status=502, body="<html>Bad Gateway</html>")
    limited = api.get("/rooms", check=False)
    assert (limited.status_code, limited.json()) == (429, {"message": "slow down"})
    gateway = api.get("/rooms", check=False)
    assert gateway.status_code == 502
    assert gateway.text == "<html>Bad Gateway</html>"
    assert gateway.headers["Content-Type"].startswith("text/plain")


def test_faults_are_consumed_in_the_order_injected(api: Api, pagecall_emulator: Emulator) -> None:
    pagecall_emulator.inject("GET", "/rooms", status=500)
    pagecall_emulator.inject("*", "/v1/rooms", status=503, times=2)
    statuses = [api.get("/rooms", check=False).status_code for _ in range(4)]
    assert statuses == [500, 503, 503, 200]


def test_template_and_concrete_paths(api: Api, pagecall_emulator: Emulator) -> None:
    one = api.create_room(name="one")
    two = api.create_room(name="two")
    pagecall_emulator.inject("GET", f"/v1/rooms/{two['id']}", status=500, times=None)
    assert api.get(f"/rooms/{one['id']}").status_code == 200
    assert api.get(f"/rooms/{two['id']}").status_code == 500
    assert api.get(f"/rooms/{two['id']}").status_code == 500
    assert pagecall_emulator.faults[0]["hits"] == 2
    assert pagecall_emulator.clear_faults() == 1
    assert api.get(f"/rooms/{two['id']}").status_code == 200

    pagecall_emulator.inject("GET", "/rooms/{id}", status=500, times=None)
    assert api.get(f"/rooms/{one['id']}").status_code == 500
    assert api.get(f"/rooms/{two['id']}").status_code == 500
    assert api.get("/rooms").status_code == 200  # another route
    assert api.put(f"/rooms/{one['id']}", json={"application_id": "a"}).status_code == 200


def test_delay_then_carries_out_the_request(api: Api, pagecall_emulator: Emulator) -> None:
    pagecall_emulator.inject("POST", "/rooms", delay=0.3)
    started = time.monotonic()
    response = api.post("/rooms", json={"name": "slow", "type": "open"})
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200
    assert response.json()["room"]["id"] in pagecall_emulator.rooms


def test_delay_past_the_client_timeout_still_creates_the_room(
    api: Api, pagecall_emulator: Emulator
) -> None:
    pagecall_emulator.inject("POST", "/rooms", delay=0.5)
    with pytest.raises(requests.ReadTimeout):
        api.post("/rooms", json={"name": "ambiguous", "type": "open"}, timeout=0.1)
    deadline = time.monotonic() + 5
    while not pagecall_emulator.rooms and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [r["name"] for r in pagecall_emulator.rooms.values()] == ["ambiguous"]


def test_delay_with_a_status(api: Api, pagecall_emulator: Emulator) -> None:
    pagecall_emulator.inject("POST", "/rooms", delay=0.2, status=500)
    started = time.monotonic()
    assert api.post("/rooms", json={"name": "x", "type": "open"}).status_code == 500
    assert time.monotonic() - started >= 0.2
    assert pagecall_emulator.rooms == {}


def test_drop_before_closes_without_doing_anything(api: Api, pagecall_emulator: Emulator) -> None:
    api.get("/rooms")  # open a kept-alive connection first
    pagecall_emulator.inject("POST", "/rooms", drop="before")
    with pytest.raises(requests.ConnectionError) as caught:
        api.post("/rooms", json={"name": "lost", "type": "open"})
    assert "RemoteDisconnected" in repr(caught.value) or "reset" in repr(caught.value).lower()
    assert pagecall_emulator.rooms == {}
    record = pagecall_emulator.requests[-1]
    assert (record["status"], record["fault"]) == (None, "drop-before")
    assert record["body"] == {"name": "lost", "type": "open"}
    # The client's pool recovers on a new connection.
    assert api.post("/rooms", json={"name": "kept", "type": "open"}).status_code == 200


def test_drop_after_does_the_work_then_closes(api: Api, pagecall_emulator: Emulator) -> None:
    pagecall_emulator.inject("POST", "/rooms", drop="after")
    with pytest.raises(requests.ConnectionError):
        api.post("/rooms", json={"name": "created anyway", "type": "open"})
    (room,) = pagecall_emulator.rooms.values()
    assert room["name"] == "created anyway"
    record = pagecall_emulator.requests[-1]
    assert (record["status"], record["fault"], record["operation"]) == (
        None,
        "drop-after",
        "createRoom",
    )


def test_drop_after_on_users_upsert(api: Api, pagecall_emulator: Emulator) -> None:
    pagecall_emulator.inject("POST", "/users", drop="after", times=2)
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            api.post("/users", json={"user_id": "u1", "name": "N"})
    assert api.post("/users", json={"user_id": "u1"}).status_code == 200
    assert list(pagecall_emulator.users) == ["u1"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"status": 42},
        {"status": True},
        {"drop": "during"},
        {"status": 500, "drop": "before"},
        {"status": 500, "times": 0},
        {"status": 500, "delay": -1},
        {},
    ],
)
def test_inject_rejects_nonsense(pagecall_emulator: Emulator, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"status|drop|times|delay"):
        pagecall_emulator.inject("GET", "/rooms", **kwargs)  # type: ignore[arg-type]
    assert pagecall_emulator.faults == []


def test_reset_clears_faults(pagecall_emulator: Emulator) -> None:
    pagecall_emulator.inject("GET", "/rooms", status=500, times=None)
    pagecall_emulator.reset()
    assert pagecall_emulator.faults == []


def test_a_request_waiting_out_a_delay_is_dropped_by_a_reset(pagecall_emulator: Emulator) -> None:
    import threading

    import requests

    pagecall_emulator.inject("POST", "/rooms", delay=0.5)
    outcome: list[object] = []

    def send() -> None:
        try:
            requests.post(
                f"{pagecall_emulator.url}/rooms",
                json={"name": "late", "type": "open"},
                headers={"Authorization": f"Bearer {pagecall_emulator.api_key}"},
                timeout=5,
            )
            outcome.append("answered")
        except requests.ConnectionError:
            outcome.append("dropped")

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.1)
    pagecall_emulator.reset()  # the next test starts while the request still waits
    sender.join(5)
    assert outcome == ["dropped"]
    assert pagecall_emulator.rooms == {}
    assert pagecall_emulator.requests == []
