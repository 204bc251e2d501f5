"""Participants in the Pagecall emulator: joins, leaves, their webhooks and the sessions API."""

from __future__ import annotations

import time
from typing import Any

import pytest

from django_pagecall.emulator import Emulator, EmulatorError
from tests.test_emulator import (
    ID,
    TIMESTAMP,
    Api,
    WebhookReceiver,
    api,
    receiver,
    validate_response,
)

__all__ = ["api", "receiver"]  # fixtures, imported to be registered here

SECRET = {"X-Pagecall-Secret": "s3cret", "X-Tenant": "acme"}


def hooked_room(api: Api, receiver: WebhookReceiver, **body: Any) -> dict[str, Any]:
    webhook = {"url": f"{receiver.url}/pagecall/webhook/?site=1", "headers": SECRET}
    return api.create_room(webhook=webhook, **body)


def sessions(api: Api, room_id: str, **params: str) -> list[dict[str, Any]]:
    response = api.get(f"/rooms/{room_id}/sessions", params=params)
    assert response.status_code == 200
    found: list[dict[str, Any]] = response.json()["sessions"]
    return found


def test_join_sends_the_documented_webhook(
    api: Api, pagecall_emulator: Emulator, receiver: WebhookReceiver
) -> None:
    room = hooked_room(api, receiver, type="private", members=[{"user_id": "u1", "type": "host"}])
    (member,) = pagecall_emulator.members(room["id"])

    joined = pagecall_emulator.join(room["id"], user_id="u1")

    session = joined["session"]
    assert ID.match(session["id"]) and session["member_id"] == member["id"]
    assert joined["member"] == member
    (call,) = receiver.calls
    assert call["path"] == "/pagecall/webhook/?site=1"
    assert call["headers"]["x-pagecall-secret"] == "s3cret"
    assert call["headers"]["x-tenant"] == "acme"
    assert call["headers"]["content-type"] == "application/json"
    assert call["body"] == {
        "action": "sessionJoined",
        "payload": {
            "roomId": room["id"],
            "userId": "u1",
            "memberId": member["id"],
            "sessionId": session["id"],
            "sessionsCount": 1,
            "membersCount": 1,
            "timestamp": session["connected_at"],
        },
    }
    assert list(call["body"]["payload"]) == [
        "roomId",
        "userId",
        "memberId",
        "sessionId",
        "sessionsCount",
        "membersCount",
        "timestamp",
    ]
    assert TIMESTAMP.match(call["body"]["payload"]["timestamp"])
    delivery = joined["delivery"]
    assert delivery["status"] == 200 and delivery["error"] is None
    assert delivery["body"] == call["body"] == joined["body"]
    assert (
        delivery["elapsed"] >= 0 and delivery["url"] == f"{receiver.url}/pagecall/webhook/?site=1"
    )
    assert pagecall_emulator.webhooks == [delivery]
    started = api.get(f"/rooms/{room['id']}").json()["room"]["started_at"]
    assert started == session["connected_at"]


def test_counts_follow_connected_sessions_and_members(
    api: Api, pagecall_emulator: Emulator, receiver: WebhookReceiver
) -> None:
    room = hooked_room(api, receiver, type="public")
    a1 = pagecall_emulator.join(room["id"], user_id="a")
    a2 = pagecall_emulator.join(room["id"], user_id="a")  # a second tab: same member
    b1 = pagecall_emulator.join(room["id"], user_id="b")
    pagecall_emulator.leave(room["id"], a1["session"]["id"])
    pagecall_emulator.leave(room["id"], b1["session"]["id"])
    pagecall_emulator.leave(room["id"], a2["session"]["id"])

    summary = [
        (
            c["body"]["action"],
            c["body"]["payload"]["userId"],
            c["body"]["payload"]["sessionsCount"],
            c["body"]["payload"]["membersCount"],
        )
        for c in receiver.calls
    ]
    assert summary == [
        ("sessionJoined", "a", 1, 1),
        ("sessionJoined", "a", 2, 1),
        ("sessionJoined", "b", 3, 2),
        ("sessionLeft", "a", 2, 2),
        ("sessionLeft", "b", 1, 1),
        ("sessionLeft", "a", 0, 0),
    ]
    assert a1["member"]["id"] == a2["member"]["id"] != b1["member"]["id"]
    # The started_at of the first join stays.
    assert (
        api.get(f"/rooms/{room['id']}").json()["room"]["started_at"]
        == a1["session"]["connected_at"]
    )
    # Members created on the fly for the public room are listed.
    assert [m["user_id"] for m in api.get(f"/rooms/{room['id']}/members").json()["members"]] == [
        "a",
        "b",
    ]


def test_leave_sends_session_left_and_sessions_stay_consistent(
    api: Api, pagecall_emulator: Emulator, receiver: WebhookReceiver
) -> None:
    room = hooked_room(api, receiver, type="open")
    first = pagecall_emulator.join(room["id"], user_id="u1")["session"]
    second = pagecall_emulator.join(room["id"], user_id="u2")["session"]
    left = pagecall_emulator.leave(room["id"], first["id"])

    assert left["session"]["id"] == first["id"]
    assert TIMESTAMP.match(left["session"]["disconnected_at"])
    assert left["body"] == receiver.calls[-1]["body"]
    assert left["body"] == {
        "action": "sessionLeft",
        "payload": {
            "roomId": room["id"],
            "userId": "u1",
            "memberId": first["member_id"],
            "sessionId": first["id"],
            "sessionsCount": 1,
            "membersCount": 1,
            "timestamp": left["session"]["disconnected_at"],
        },
    }
    everyone = sessions(api, room["id"])
    assert [s["id"] for s in everyone] == [first["id"], second["id"]]
    assert everyone[0] == left["session"]
    assert "disconnected_at" not in everyone[1]
    assert [s["id"] for s in sessions(api, room["id"], is_connecting="true")] == [second["id"]]
    assert [s["id"] for s in sessions(api, room["id"], is_connecting="false")] == [first["id"]]
    assert [s["id"] for s in sessions(api, room["id"], user_id="u2")] == [second["id"]]
    assert sessions(api, room["id"], user_id="nobody") == []
    assert (
        api.get(f"/rooms/{room['id']}/sessions", params={"is_connecting": "1"}).status_code == 400
    )
    assert pagecall_emulator.sessions(room["id"]) == everyone
    with pytest.raises(EmulatorError, match="already left"):
        pagecall_emulator.leave(room["id"], first["id"])
    with pytest.raises(EmulatorError, match="not found"):
        pagecall_emulator.leave(room["id"], "f" * 24)


def test_anonymous_participant(
    api: Api, pagecall_emulator: Emulator, receiver: WebhookReceiver
) -> None:
    room = hooked_room(api, receiver, type="open")
    joined = pagecall_emulator.join(room["id"])
    payload = receiver.calls[0]["body"]["payload"]
    assert "userId" not in payload
    assert payload["memberId"] == joined["member"]["id"] and ID.match(payload["memberId"])
    (session,) = sessions(api, room["id"])
    assert "user_id" not in session  # "can be empty if the session represents an anonymous user"
    validate_response("GET", "/rooms/{room_id}/sessions", 200, {"sessions": [session]})
    assert api.get(f"/rooms/{room['id']}/members").json()["members"] == []
    pagecall_emulator.leave(room["id"], session["id"])
    assert "userId" not in receiver.calls[1]["body"]["payload"]
    # Another anonymous visitor is another member.
    assert pagecall_emulator.join(room["id"])["member"]["id"] != joined["member"]["id"]


def test_who_may_join(api: Api, pagecall_emulator: Emulator) -> None:
    private = api.create_room(type="private", members=[{"user_id": "invited", "type": "guest"}])
    public = api.create_room(type="public")
    with pytest.raises(EmulatorError, match="not invited"):
        pagecall_emulator.join(private["id"], user_id="stranger")
    with pytest.raises(EmulatorError, match="open rooms"):
        pagecall_emulator.join(public["id"])
    with pytest.raises(EmulatorError, match="not found"):
        pagecall_emulator.join(UNKNOWN_ROOM)
    member = pagecall_emulator.members(private["id"])[0]
    by_member_id = pagecall_emulator.join(private["id"], member_id=member["id"])
    assert by_member_id["session"]["user_id"] == "invited"
    assert by_member_id["delivery"] is None  # no webhook configured: nothing sent
    assert pagecall_emulator.webhooks == []
    with pytest.raises(EmulatorError, match="is not user"):
        pagecall_emulator.join(private["id"], user_id="other", member_id=member["id"])
    api.update_room(public["id"], is_terminated=True)
    with pytest.raises(EmulatorError, match="terminated"):
        pagecall_emulator.join(public["id"], user_id="late")


UNKNOWN_ROOM = "0123456789abcdef01234567"


def test_failed_deliveries_are_recorded(
    api: Api, pagecall_emulator: Emulator, receiver: WebhookReceiver
) -> None:
    receiver.status = 500
    answering = hooked_room(api, receiver)
    unreachable = api.create_room(webhook={"url": "http://127.0.0.1:9/hook", "headers": {}})

    failed = pagecall_emulator.join(answering["id"], user_id="u")["delivery"]
    assert (failed["status"], failed["error"]) == (500, None)
    lost = pagecall_emulator.join(unreachable["id"], user_id="u")["delivery"]
    assert lost["status"] is None and "refused" in lost["error"].lower()
    assert [d["status"] for d in pagecall_emulator.webhooks] == [500, None]
    # The join happened regardless of the webhook.
    assert len(sessions(api, unreachable["id"], is_connecting="true")) == 1


def test_missed_duplicate_and_out_of_order_webhooks(
    api: Api, pagecall_emulator: Emulator, receiver: WebhookReceiver
) -> None:
    room = hooked_room(api, receiver)
    joined = pagecall_emulator.join(room["id"], user_id="u", deliver=False)
    left = pagecall_emulator.leave(room["id"], joined["session"]["id"], deliver=False)
    assert receiver.calls == [] and joined["delivery"] is None
    # The sessions API already knows (the way to recover missed events) ...
    (session,) = sessions(api, room["id"])
    assert session["disconnected_at"] == left["body"]["payload"]["timestamp"]
    # ... and the test sends the bodies late, out of order and twice.
    for body in (left["body"], joined["body"], joined["body"]):
        delivery = pagecall_emulator.send_webhook(room["id"], body)
        assert delivery is not None and delivery["status"] == 200
    assert [c["body"] for c in receiver.calls] == [left["body"], joined["body"], joined["body"]]
    assert all(c["headers"]["x-pagecall-secret"] == "s3cret" for c in receiver.calls)
    plain = api.create_room()
    assert pagecall_emulator.send_webhook(plain["id"], {"action": "x"}) is None


def test_terminating_a_room_ends_its_sessions(
    api: Api, pagecall_emulator: Emulator, receiver: WebhookReceiver
) -> None:
    room = hooked_room(api, receiver)
    for user in ("u1", "u2"):
        pagecall_emulator.join(room["id"], user_id=user)
    response = api.update_room(room["id"], is_terminated=True)
    assert response.status_code == 200
    assert sessions(api, room["id"], is_connecting="true") == []
    left = [c["body"]["payload"] for c in receiver.calls if c["body"]["action"] == "sessionLeft"]
    assert [(p["userId"], p["sessionsCount"]) for p in left] == [("u1", 1), ("u2", 0)]


def test_blocking_a_member_kicks_its_sessions(
    api: Api, pagecall_emulator: Emulator, receiver: WebhookReceiver
) -> None:
    room = hooked_room(
        api,
        receiver,
        type="private",
        members=[{"user_id": "u1", "type": "guest"}, {"user_id": "u2", "type": "guest"}],
    )
    kicked = pagecall_emulator.join(room["id"], user_id="u1")["session"]
    stays = pagecall_emulator.join(room["id"], user_id="u2")["session"]
    api.put(f"/rooms/{room['id']}/members/u1", json={"is_blocked": True})
    assert [s["id"] for s in sessions(api, room["id"], is_connecting="true")] == [stays["id"]]
    last = receiver.calls[-1]["body"]
    assert last["action"] == "sessionLeft" and last["payload"]["sessionId"] == kicked["id"]
    with pytest.raises(EmulatorError):
        pagecall_emulator.join(room["id"], user_id="u1")


def test_meeting_time_counts_two_or_more_connected(api: Api, pagecall_emulator: Emulator) -> None:
    room = api.create_room()
    alone = pagecall_emulator.join(room["id"], user_id="a")["session"]
    time.sleep(0.3)
    assert pagecall_emulator.rooms[room["id"]]["meeting_time"] == 0  # one person is no meeting
    pagecall_emulator.join(room["id"], user_id="b")
    time.sleep(1.1)
    pagecall_emulator.leave(room["id"], alone["id"])
    time.sleep(0.3)
    meeting_time = api.get(f"/rooms/{room['id']}").json()["room"]["meeting_time"]
    assert 1 <= meeting_time <= 2  # ~1.1 s together; the 0.6 s alone do not count
