"""Participants: sessions, joins and leaves, and the webhook bodies they produce.

Who may join which room, sessions ended by a termination, deletion or block, the
``meeting_time`` clock, and ``GET /rooms/{room_id}/sessions``. Events come back as
:class:`~.webhooks.WebhookEvent` for the caller to send outside the lock (docs/testing.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .model import (
    EmulatorError,
    Json,
    Member,
    NotFound,
    Refused,
    Room,
    Session,
    Store,
    new_id,
    now_iso,
)
from .webhooks import WebhookEvent

Joined = tuple[Json, Json, Json, WebhookEvent | None]  # session, member, webhook body, event


class Sessions(Store):
    """Session operations of the workspace."""

    def list_sessions(
        self, room_id: str, *, user_id: str | None = None, is_connecting: bool | None = None
    ) -> list[Json]:
        with self.lock:
            self._room(room_id)
            return [
                s.as_api()
                for s in self._sessions.values()
                if s.room_id == room_id
                and (user_id is None or s.user_id == user_id)
                and (is_connecting is None or (s.disconnected_at is None) == is_connecting)
            ]

    def _connected(self, room_id: str) -> list[Session]:
        return [
            s for s in self._sessions.values() if s.room_id == room_id and s.disconnected_at is None
        ]

    def _tick_meeting_clock(self, room: Room) -> None:
        """``meeting_time`` counts the seconds during which two or more sessions are connected."""
        now = time.monotonic()
        if room.multi_since is not None:
            room.meeting_seconds += now - room.multi_since
            room.multi_since = None
        if len(self._connected(room.id)) >= 2:
            room.multi_since = now

    def _event(
        self, action: str, room: Room, session: Session, at: str
    ) -> tuple[Json, WebhookEvent | None]:
        connected = self._connected(room.id)
        payload: Json = {"roomId": room.id}
        if session.user_id is not None:
            payload["userId"] = session.user_id
        payload.update(
            memberId=session.member_id,
            sessionId=session.id,
            sessionsCount=len(connected),
            membersCount=len({s.member_id for s in connected}),
            timestamp=at,
        )
        body: Json = {"action": action, "payload": payload}
        return body, self._webhook_event(room, body)

    @staticmethod
    def _webhook_event(room: Room, body: Json) -> WebhookEvent | None:
        hook = room.webhook
        return WebhookEvent(room.id, hook["url"], dict(hook["headers"]), body) if hook else None

    def _admission(
        self, room: Room, user_id: str | None, member_id: str | None
    ) -> tuple[Member | None, str]:
        """Whom :meth:`join` would connect: the member, or None and the type of a new one.

        ``member_id`` (a member id or ``user_id``) must be a member of the room;
        an unknown ``user_id`` becomes a member on the fly in open and public
        rooms (private ones need an invitation); anonymous participants
        (neither given) may join open rooms only. Monitors watch but never
        join, and terminated rooms refuse all.
        """
        if room.terminated_at is not None:
            raise Refused(f"Room {room.id!r} is terminated")
        member: Member | None = None
        if member_id is not None:
            member = self._member(room, member_id)
            if user_id is not None and member.user_id != user_id:
                raise EmulatorError(f"Member {member_id!r} is not user {user_id!r}")
        elif user_id is not None:
            try:
                member = self._member(room, user_id)
            except NotFound:
                if room.type == "private":
                    raise Refused(
                        f"User {user_id!r} is not invited to private room {room.id!r}"
                    ) from None
        elif room.type != "open":
            raise Refused(f"Anonymous participants can only join open rooms, not {room.type} ones")
        if member is not None:
            type_ = member.type
        else:
            user = self._users.get(user_id) if user_id is not None else None
            type_ = user.default_member_type if user else "guest"
        if type_ == "monitor":
            raise Refused(f"Monitors watch the meeting of room {room.id!r} but cannot join it")
        return member, type_

    def admission(self, room_id: str, user_id: str | None = None) -> str:
        """The member type :meth:`join` would connect ``user_id`` as; raises if it would not."""
        with self.lock:
            return self._admission(self._room(room_id), user_id, None)[1]

    def join(self, room_id: str, user_id: str | None, member_id: str | None) -> Joined:
        """Connect a participant :meth:`_admission` lets in."""
        with self.lock:
            room = self._room(room_id)
            member, type_ = self._admission(room, user_id, member_id)
            if member is None:
                member = self._add_member(room, user_id, type_, None)
            stamp = now_iso()
            session = Session(new_id(), room.id, member.id, member.user_id, stamp)
            self._sessions[session.id] = session
            if room.started_at is None:
                room.started_at = stamp
            self._tick_meeting_clock(room)
            body, event = self._event("sessionJoined", room, session, stamp)
            return session.as_api(), member.as_api(), body, event

    def leave(self, room_id: str, session_id: str) -> Joined:
        """Disconnect a connected session of the room."""
        with self.lock:
            room = self._room(room_id)
            session = self._sessions.get(session_id)
            if session is None or session.room_id != room_id:
                raise NotFound(f"Session {session_id!r} not found in room {room_id!r}")
            if session.disconnected_at is not None:
                raise EmulatorError(f"Session {session_id!r} already left")
            body, event = self._disconnect(room, session)
            member = self._members.get(session.member_id)
            member_api = member.as_api() if member else {"id": session.member_id}
            return session.as_api(), member_api, body, event

    def _disconnect(self, room: Room, session: Session) -> tuple[Json, WebhookEvent | None]:
        session.disconnected_at = now_iso()
        self._tick_meeting_clock(room)
        return self._event("sessionLeft", room, session, session.disconnected_at)

    def _end_sessions(self, room: Room, which: Callable[[Session], bool]) -> list[WebhookEvent]:
        """Disconnect the room's connected sessions ``which`` selects (Pagecall kicking them)."""
        events = []
        for session in self._connected(room.id):
            if which(session):
                _, event = self._disconnect(room, session)
                if event is not None:
                    events.append(event)
        return events

    def custom_event(self, room_id: str, body: Json) -> WebhookEvent | None:
        """Any ``body`` for the room's webhook config (None when it has none)."""
        with self.lock:
            return self._webhook_event(self._room(room_id), body)
