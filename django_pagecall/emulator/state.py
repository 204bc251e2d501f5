"""The emulated Pagecall workspace, in memory: the operations behind the REST API (rooms, pages,
messages, members, users, snapshot). Every public method takes the store's one lock and does no
I/O: webhooks come back as :class:`~.webhooks.WebhookEvent` values to send once it is released.
How it reads what the spec leaves open: docs/testing.md.
"""

from __future__ import annotations

import secrets

from . import spec
from .model import EmulatorError, Json, NotFound, Room, User, new_id, now_iso
from .sessions import Sessions
from .webhooks import WebhookEvent

__all__ = ["EmulatorError", "State"]


class State(Sessions):
    """One workspace: what the emulator knows, behind one lock."""

    # -- rooms -------------------------------------------------------------------------------

    def list_rooms(
        self,
        *,
        name: str | None = None,
        layout: str | None = None,
        is_terminated: bool | None = None,
    ) -> list[Json]:
        with self.lock:
            return [
                self.room_api(r)
                for r in self._rooms.values()
                if (name is None or r.name == name)
                and (layout is None or r.layout == layout)
                and (is_terminated is None or (r.terminated_at is not None) == is_terminated)
            ]

    def room_count(self) -> int:
        with self.lock:
            return len(self._rooms)

    def create_room(self, body: Json) -> Json:
        """``body`` is a valid CreateRoomRequest; its ``members`` become members."""
        body = spec.apply_defaults(body, {"$ref": "#/components/schemas/CreateRoomRequest"})
        webhook = body.get("webhook")
        with self.lock:
            stamp = now_iso()
            room = Room(
                id=new_id(),
                type=body["type"],
                name=body["name"],
                record=body["record"],
                max_meeting_seconds=body.get("max_meeting_seconds"),
                webhook={"url": webhook["url"], "headers": dict(webhook.get("headers") or {})}
                if webhook
                else None,
                created_at=stamp,
                updated_at=stamp,
            )
            self._rooms[room.id] = room
            for invited in body.get("members", []):
                self._add_member(room, invited["user_id"], invited["type"], invited.get("name"))
            return self.room_api(room)

    def get_room(self, room_id: str) -> Json:
        with self.lock:
            return self.room_api(self._room(room_id))

    def update_room(self, room_id: str, body: Json) -> tuple[Json, list[WebhookEvent]]:
        with self.lock:
            room = self._room(room_id)
            events: list[WebhookEvent] = []
            if "name" in body:
                room.name = body["name"]
            if body.get("is_terminated") is True and room.terminated_at is None:
                room.terminated_at = now_iso()
                events = self._end_sessions(room, lambda s: True)
            elif body.get("is_terminated") is False:
                room.terminated_at = None
            room.updated_at = now_iso()
            return self.room_api(room), events

    def delete_room(self, room_id: str) -> tuple[Json, list[WebhookEvent]]:
        with self.lock:
            room = self._room(room_id)
            events = self._end_sessions(room, lambda s: True)
            answer = self.room_api(room)
            del self._rooms[room_id]
            for member_id in room.members:
                del self._members[member_id]
            self._sessions = {k: s for k, s in self._sessions.items() if s.room_id != room_id}
            return answer, events

    def create_pages(self, room_id: str, pages: list[Json]) -> list[Json]:
        """``pages`` is a valid array of Page; Image entities also need a ``src``."""
        page_list = {"type": "array", "items": {"$ref": "#/components/schemas/Page"}}
        pages = spec.apply_defaults(pages, page_list)
        for i, page in enumerate(pages):
            for j, entity in enumerate(page.get("entities", [])):
                if entity["type"] == "Image" and not entity.get("src"):
                    raise EmulatorError(f"body[{i}].entities[{j}].src is required for Image")
        with self.lock:
            room = self._room(room_id)
            created = []
            for page in pages:
                stored: Json = {
                    "id": new_id(),
                    "entities": page.get("entities", []),
                    "size": page["size"],
                    "index": page.get("index", len(room.pages)),
                }
                room.pages.append(stored)
                created.append({"id": stored["id"], "entities": stored["entities"]})
            return created

    def send_message(self, room_id: str, message: str) -> None:
        with self.lock:
            self._room(room_id).messages.append(message)

    def pages(self, room_id: str) -> list[Json]:
        with self.lock:
            return [dict(p) for p in self._room(room_id).pages]

    def messages(self, room_id: str) -> list[str]:
        with self.lock:
            return list(self._room(room_id).messages)

    def webhook_config(self, room_id: str) -> Json | None:
        with self.lock:
            hook = self._room(room_id).webhook
            return {"url": hook["url"], "headers": dict(hook["headers"])} if hook else None

    # -- members -----------------------------------------------------------------------------

    def list_members(self, room_id: str) -> list[Json]:
        with self.lock:
            room = self._room(room_id)
            return [m.as_api() for m in room.members.values() if m.user_id is not None]

    def create_member(self, room_id: str, body: Json) -> Json:
        """Without a ``type``, the user's ``default_member_type`` (else guest)."""
        with self.lock:
            room = self._room(room_id)
            user = self._users.get(body["user_id"])
            type_ = body.get("type", user.default_member_type if user else "guest")
            return self._add_member(room, body["user_id"], type_, None).as_api()

    def get_member(self, room_id: str, key: str) -> Json:
        with self.lock:
            member = self._member(self._room(room_id), key)
            if member.user_id is None:
                raise NotFound(f"Member {key!r} not found in room {room_id!r}")
            return member.as_api()

    def update_member(self, room_id: str, key: str, body: Json) -> tuple[Json, list[WebhookEvent]]:
        """``is_blocked: true`` (private rooms only) kicks and removes the member."""
        with self.lock:
            room = self._room(room_id)
            member = self._member(room, key)
            if body.get("is_blocked") is True and room.type != "private":
                raise EmulatorError("is_blocked works only on private rooms")
            if "type" in body:
                member.type = body["type"]
            if "name" in body:
                member.name = body["name"]
            events: list[WebhookEvent] = []
            if body.get("is_blocked") is True:
                events = self._end_sessions(room, lambda s: s.member_id == member.id)
                del self._members[member.id]
                del room.members[member.id]
            return member.as_api(), events

    # -- users -------------------------------------------------------------------------------

    def list_users(self, email_search_query: str | None = None) -> list[Json]:
        needle = (email_search_query or "").lower()
        with self.lock:
            return [
                u.as_api()
                for u in self._users.values()
                if not needle or needle in u.user_id.lower() or needle in (u.name or "").lower()
            ]

    def upsert_user(self, body: Json) -> Json:
        """Create the user, or update the one with that ``user_id`` (keeping its token)."""
        with self.lock:
            user = self._users.get(body["user_id"])
            if user is None:
                stamp = now_iso()
                user = User(
                    id=new_id(),
                    user_id=body["user_id"],
                    access_token=secrets.token_urlsafe(24),  # 32 url-safe characters
                    default_member_type="guest",
                    created_at=stamp,
                    updated_at=stamp,
                )
                self._users[user.user_id] = user
            return self._update_user(user, body)

    def _update_user(self, user: User, body: Json) -> Json:
        for name in ("name", "profile_url", "default_member_type"):
            if name in body:
                setattr(user, name, body[name])
        user.updated_at = now_iso()
        return user.as_api()

    def get_user(self, user_id: str) -> Json:
        with self.lock:
            return self._user(user_id).as_api()

    def user_by_token(self, access_token: str) -> Json | None:
        """The user whose ``access_token`` this is (what Pagecall's meeting links carry), or None."""
        with self.lock:
            given = access_token.encode("utf-8")  # bytes: compare_digest refuses non-ASCII str
            for user in self._users.values():
                if secrets.compare_digest(user.access_token.encode("utf-8"), given):
                    return user.as_api()
            return None

    def update_user(self, user_id: str, body: Json) -> Json:
        with self.lock:
            return self._update_user(self._user(user_id), body)

    def delete_user(self, user_id: str) -> Json:
        with self.lock:
            return self._users.pop(self._user(user_id).user_id).as_api()

    # -- inspection --------------------------------------------------------------------------

    def snapshot(self) -> Json:
        """Everything, for ``GET /_emulator/state`` (sessions and members of all rooms)."""
        with self.lock:
            rooms = []
            for room in self._rooms.values():
                extra = {"webhook": self.webhook_config(room.id), "pages": self.pages(room.id)}
                rooms.append({**self.room_api(room), **extra, "messages": list(room.messages)})
            return {
                "application_id": self.application_id,
                "rooms": rooms,
                "members": [{**m.as_api(), "name": m.name} for m in self._members.values()],
                "users": [u.as_api() for u in self._users.values()],
                "sessions": [{**s.as_api(), "room_id": s.room_id} for s in self._sessions.values()],
            }
