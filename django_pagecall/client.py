"""The Pagecall REST client: the only code in the app that speaks HTTP to Pagecall.

One method per operation of Pagecall's spec, returning the typed objects of :mod:`.remote` and
raising the exceptions of :mod:`.exceptions`. Sessions, timeouts and retries: docs/client.md.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry

from . import __version__
from .exceptions import (
    PagecallAmbiguousError,
    PagecallError,
    PagecallRefused,
    PagecallResponseError,
    PagecallTransientError,
)
from .remote import Member, Page, Room, Session, User, describe_missing

logger = logging.getLogger(__name__)

#: Statuses after which the request may have been carried out (a gateway gave up waiting).
AMBIGUOUS_STATUSES: Final = frozenset({502, 504})
#: 4xx statuses that mean "not now" rather than "no".
RETRYABLE_CLIENT_STATUSES: Final = frozenset({408, 429})
#: How much of an error body is kept on the exception.
MAX_ERROR_BODY: Final = 10_000
#: Transport-level retries, for connection errors only (a request that never left).
CONNECT_RETRIES = 2
#: Items asked for per page when iterating over Pagecall's paged lists.
PAGE_SIZE = 100

T = TypeVar("T", Room, Member, User, Session, Page)


#: Ids that cannot travel in a URL path.
DOT_SEGMENTS = frozenset({".", ".."})


def _segment(value: object) -> str:
    text = str(value)
    if text in DOT_SEGMENTS:
        # URL normalisation (requests', then any proxy's) drops "." and climbs on "..", so the
        # call would reach another resource: refused before anything is sent.
        raise ValueError(f"{text!r} cannot be a segment of a Pagecall URL path")
    return quote(text, safe="")


def _path(template: str, *args: str) -> str:
    return template.format(*(_segment(a) for a in args))


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _query_value(value: Any) -> Any:
    return ("true" if value else "false") if isinstance(value, bool) else value


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection could not be opened, so the request never left."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


class PagecallClient:
    """A client for one Pagecall workspace (one API key)."""

    def __init__(
        self,
        api_key: str,
        api_url: str = "https://api.pagecall.com/v1",
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        connect_retries: int | None = None,
        page_size: int | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.connect_retries = CONNECT_RETRIES if connect_retries is None else connect_retries
        self.page_size = PAGE_SIZE if page_size is None else page_size
        self._api_key = api_key
        self._session: requests.Session | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<PagecallClient {self.api_url}>"  # never the key

    @classmethod
    def from_settings(cls, workspace: str = "default") -> PagecallClient:
        """A client for the workspace of that name (``"default"``: the top-level keys)."""
        from .conf import pagecall_settings as s

        found = s.workspace(workspace)
        return cls(
            found.api_key,
            found.api_url,
            connect_timeout=s.CONNECT_TIMEOUT,
            read_timeout=s.READ_TIMEOUT,
        )

    # -- transport ---------------------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        """This process's pooled session, made on first use and again after a fork."""
        pid = os.getpid()
        if self._session is None or self._pid != pid:
            if self._pid is not None and self._pid != pid:
                # A forked child: the parent's lock may have been held by a thread that is
                # not in this process; only one thread exists here right after the fork.
                self._lock = threading.Lock()
            with self._lock:
                if self._session is None or self._pid != pid:
                    self._session = self._new_session()
                    self._pid = pid
        return self._session

    def _new_session(self) -> requests.Session:
        retry = Retry(
            total=self.connect_retries,
            connect=self.connect_retries,
            read=False,  # a read error is raised as it is (a read timeout stays a ReadTimeout)
            status=0,
            other=0,
            redirect=0,
            allowed_methods=None,  # a connect error means nothing was sent, whatever the verb
            backoff_factor=0.2,
            raise_on_status=False,
        )
        session = requests.Session()
        # What requests would take from the environment for every request to the API (proxies
        # honouring NO_PROXY, the CA bundle), taken once; then it stops looking.
        environment = session.merge_environment_settings(self.api_url, {}, None, None, None)
        session.proxies.update(environment["proxies"])
        session.verify = environment["verify"]
        session.trust_env = False
        adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=32)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update(
            {
                "Authorization": f"Bearer {self._api_key}",
                "Accept": "application/json",
                "User-Agent": f"django-pagecall/{__version__}",
            }
        )
        return session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _send(
        self, method: str, url: str, query: Mapping[str, Any], json: Any
    ) -> requests.Response:
        """One request through the session's adapter, body read.

        What ``Session.request`` adds on top is not needed here and cost about a quarter of a
        call: merging the environment and per-call settings (read once, in
        :meth:`_new_session`), a cookie jar per call (Pagecall's API sets none), hooks and
        redirects (never followed: a redirected POST would silently become a GET).
        """
        session = self.session
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method)
        prepared.prepare_url(url, query or None)
        prepared.prepare_headers(session.headers)
        prepared.prepare_body(None, None, json)
        verify = True if session.verify is None else session.verify
        response = session.get_adapter(url).send(
            prepared, timeout=self.timeout, verify=verify, proxies=session.proxies
        )
        response.content  # noqa: B018  (read here: a connection lost mid-body is a ConnectionError)
        return response

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Send one request and return the decoded JSON body, or raise a :class:`PagecallError`."""
        url = self.api_url + path
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        started = time.monotonic()
        try:
            response = self._send(method, url, query, json)
        except requests.ConnectionError as exc:
            elapsed = time.monotonic() - started
            if _never_sent(exc):
                logger.warning(
                    "Pagecall %s %s: could not connect (%.2fs): %s", method, path, elapsed, exc
                )
                raise PagecallTransientError(
                    f"could not connect: {exc}", method=method, path=path
                ) from exc
            logger.warning(
                "Pagecall %s %s: connection lost (%.2fs): %s", method, path, elapsed, exc
            )
            raise PagecallAmbiguousError(
                f"connection lost after sending: {exc}", method=method, path=path
            ) from exc
        except requests.Timeout as exc:  # a read timeout: the request was sent
            logger.warning("Pagecall %s %s: no answer within %ss", method, path, self.timeout[1])
            raise PagecallAmbiguousError(
                f"no answer within {self.timeout[1]}s", method=method, path=path
            ) from exc
        except requests.RequestException as exc:
            raise PagecallAmbiguousError(str(exc), method=method, path=path) from exc
        elapsed = time.monotonic() - started
        status = response.status_code
        logger.debug("Pagecall %s %s -> %s (%.3fs)", method, path, status, elapsed)
        if 200 <= status < 300:
            try:
                return response.json()
            except ValueError as exc:
                raise PagecallResponseError(
                    "answer is not JSON",
                    method=method,
                    path=path,
                    status=status,
                    body=response.text[:MAX_ERROR_BODY],
                ) from exc
        body = response.text[:MAX_ERROR_BODY]
        logger.warning("Pagecall %s %s -> %s: %s", method, path, status, body[:500])
        error_class: type[PagecallError]
        if status in AMBIGUOUS_STATUSES:
            error_class = PagecallAmbiguousError
        elif status >= 500 or status in RETRYABLE_CLIENT_STATUSES:
            error_class = PagecallTransientError
        elif status >= 400:
            error_class = PagecallRefused
        else:
            error_class = PagecallResponseError
        raise error_class(
            f"Pagecall answered {status}", method=method, path=path, status=status, body=body
        )

    def _one(self, kind: type[T], method: str, path: str, key: str, **kwargs: Any) -> T:
        data = self.request(method, path, **kwargs)
        if not isinstance(data, Mapping) or key not in data:
            raise PagecallResponseError(
                f"answer has no {key!r}: {describe_missing(data, key)}", method=method, path=path
            )
        return kind.from_api(data[key])

    def _list(self, kind: type[T], path: str, key: str, params: Mapping[str, Any]) -> list[T]:
        data = self.request("GET", path, params=params)
        items = data.get(key) if isinstance(data, Mapping) else None
        if not isinstance(items, list):
            raise PagecallResponseError(
                f"answer has no list {key!r}: {describe_missing(data, key)}",
                method="GET",
                path=path,
            )
        return [kind.from_api(item) for item in items]

    def _paged(self, kind: type[T], path: str, key: str, params: Mapping[str, Any]) -> Iterator[T]:
        """Every item of a paged list, fetched one page at a time as the caller iterates."""
        offset = 0
        while True:
            data = self.request(
                "GET", path, params={**params, "offset": offset, "limit": self.page_size}
            )
            items = data.get(key) if isinstance(data, Mapping) else None
            if not isinstance(items, list):
                raise PagecallResponseError(
                    f"answer has no list {key!r}: {describe_missing(data, key)}",
                    method="GET",
                    path=path,
                )
            for item in items:
                yield kind.from_api(item)
            paging = data.get("paging")
            total = paging.get("total") if isinstance(paging, Mapping) else None
            offset += len(items)
            if not items or not isinstance(total, int | float) or offset >= total:
                return

    # -- rooms -------------------------------------------------------------------------------

    def list_rooms(
        self,
        *,
        name: str | None = None,
        layout: str | None = None,
        is_terminated: bool | None = None,
    ) -> Iterator[Room]:
        """``GET /rooms``: every room, lazily across pages; ``name`` matches exactly."""
        params = _drop_none({"name": name, "layout": layout, "is_terminated": is_terminated})
        return self._paged(Room, "/rooms", "rooms", params)

    def create_room(
        self,
        *,
        name: str,
        type: str,
        record: bool | None = None,
        max_meeting_seconds: int | None = None,
        members: Sequence[Mapping[str, Any]] | None = None,
        webhook_url: str | None = None,
        webhook_headers: Mapping[str, str] | None = None,
    ) -> Room:
        """``POST /rooms``. Not idempotent: after an ambiguous error, look the room up by name."""
        body: dict[str, Any] = _drop_none(
            {
                "name": name,
                "type": type,
                "record": record,
                "max_meeting_seconds": max_meeting_seconds,
            }
        )
        if members is not None:
            body["members"] = [_drop_none(m) for m in members]
        if webhook_url:
            body["webhook"] = {"url": webhook_url, "headers": dict(webhook_headers or {})}
        return self._one(Room, "POST", "/rooms", "room", json=body)

    def get_room(self, room_id: str) -> Room:
        return self._one(Room, "GET", _path("/rooms/{}", room_id), "room")

    def update_room(
        self,
        room_id: str,
        *,
        application_id: str,
        name: str | None = None,
        is_terminated: bool | None = None,
    ) -> Room:
        """``PUT /rooms/{id}``: rename, or close with ``is_terminated=True``.

        The spec requires the room's ``application_id`` (its workspace id) in the body.
        """
        body = _drop_none(
            {"application_id": application_id, "name": name, "is_terminated": is_terminated}
        )
        return self._one(Room, "PUT", _path("/rooms/{}", room_id), "room", json=body)

    def delete_room(self, room_id: str) -> Room:
        return self._one(Room, "DELETE", _path("/rooms/{}", room_id), "room")

    def list_room_sessions(
        self, room_id: str, *, user_id: str | None = None, is_connecting: bool | None = None
    ) -> list[Session]:
        """``GET /rooms/{id}/sessions``; ``is_connecting=True`` lists who is online."""
        params = _drop_none({"user_id": user_id, "is_connecting": is_connecting})
        return self._list(Session, _path("/rooms/{}/sessions", room_id), "sessions", params)

    def create_pages(self, room_id: str, pages: Sequence[Mapping[str, Any]]) -> list[Page]:
        """``POST /rooms/{id}/pages/create_many``: add whiteboard pages (image entities)."""
        path = _path("/rooms/{}/pages/create_many", room_id)
        data = self.request("POST", path, json=[dict(p) for p in pages])
        items = data.get("pages") if isinstance(data, Mapping) else None
        if not isinstance(items, list):
            raise PagecallResponseError(
                f"answer has no list 'pages': {describe_missing(data, 'pages')}",
                method="POST",
                path=path,
            )
        return [Page.from_api(item) for item in items]

    def send_room_message(self, room_id: str, message: str) -> str:
        """``POST /rooms/{id}/message``: a message to the live sessions of a room."""
        path = _path("/rooms/{}/message", room_id)
        data = self.request("POST", path, json={"message": message})
        answer = data.get("message") if isinstance(data, Mapping) else None
        return answer if isinstance(answer, str) else ""

    # -- members -----------------------------------------------------------------------------

    def list_members(self, room_id: str) -> Iterator[Member]:
        return self._paged(Member, _path("/rooms/{}/members", room_id), "members", {})

    def create_member(self, room_id: str, *, user_id: str, type: str | None = None) -> Member:
        body = _drop_none({"user_id": user_id, "type": type})
        return self._one(Member, "POST", _path("/rooms/{}/members", room_id), "member", json=body)

    def get_member(self, room_id: str, member_id: str) -> Member:
        return self._one(Member, "GET", _path("/rooms/{}/members/{}", room_id, member_id), "member")

    def update_member(
        self,
        room_id: str,
        member_id: str,
        *,
        name: str | None = None,
        type: str | None = None,
        is_blocked: bool | None = None,
    ) -> Member:
        """``PUT /rooms/{id}/members/{member_id}``; ``is_blocked=True`` removes a member (private rooms)."""
        body = _drop_none({"name": name, "type": type, "is_blocked": is_blocked})
        path = _path("/rooms/{}/members/{}", room_id, member_id)
        return self._one(Member, "PUT", path, "member", json=body)

    # -- users -------------------------------------------------------------------------------

    def list_users(self, *, email_search_query: str | None = None) -> Iterator[User]:
        params = _drop_none({"email_search_query": email_search_query})
        return self._paged(User, "/users", "users", params)

    def create_user(
        self,
        *,
        user_id: str,
        name: str | None = None,
        profile_url: str | None = None,
        default_member_type: str | None = None,
    ) -> User:
        """``POST /users``: registers or updates (upserts) a user; the answer has its access token."""
        body = _drop_none(
            {
                "user_id": user_id,
                "name": name,
                "profile_url": profile_url,
                "default_member_type": default_member_type,
            }
        )
        return self._one(User, "POST", "/users", "user", json=body)

    def get_user(self, user_id: str) -> User:
        return self._one(User, "GET", _path("/users/{}", user_id), "user")

    def update_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        profile_url: str | None = None,
        default_member_type: str | None = None,
    ) -> User:
        body = _drop_none(
            {"name": name, "profile_url": profile_url, "default_member_type": default_member_type}
        )
        return self._one(User, "PUT", _path("/users/{}", user_id), "user", json=body)

    def delete_user(self, user_id: str) -> User:
        return self._one(User, "DELETE", _path("/users/{}", user_id), "user")


_clients: dict[str, PagecallClient] = {}
_client_lock = threading.Lock()


def get_client(workspace: str = "default") -> PagecallClient:
    """The process-wide client of a workspace, built from ``settings.PAGECALL`` (rebuilt when
    the setting changes). A name the settings lack raises
    :class:`~django_pagecall.exceptions.WorkspaceNotConfigured`, before anything is sent."""
    client = _clients.get(workspace)
    if client is None:
        with _client_lock:
            client = _clients.get(workspace)
            if client is None:
                client = _clients[workspace] = PagecallClient.from_settings(workspace)
    return client


def reset_client() -> None:
    """Forget the process-wide clients; the next :func:`get_client` reads the settings again."""
    with _client_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
