"""Webhook calls the emulator makes to a room's ``webhook.url``: the :class:`WebhookEvent`
(built under the state lock) and :func:`deliver` (sent with ``urllib.request`` outside any lock,
returning a :class:`Delivery`). Proxies from the environment are ignored.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, TypedDict
from urllib.parse import urlsplit


@dataclass(frozen=True)
class WebhookEvent:
    """A webhook to send: the room's configured URL and headers, and the JSON body."""

    room_id: str
    url: str
    headers: dict[str, str]
    body: dict[str, Any]


class Delivery(TypedDict):
    """What happened to one webhook call."""

    room_id: str
    url: str
    headers: dict[str, str]  # as sent, Content-Type included
    body: dict[str, Any]
    status: int | None  # HTTP status the target answered; None when it could not be reached
    error: str | None  # the exception text when there was no HTTP answer
    elapsed: float  # seconds
    time: float  # epoch seconds when sending started


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def deliver(event: WebhookEvent, timeout: float) -> Delivery:
    """POST ``event.body`` as JSON to ``event.url`` and report the outcome (never raises)."""
    headers = {str(k): str(v) for k, v in event.headers.items()}
    if not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"
    data = json.dumps(event.body).encode("utf-8")
    started = time.time()
    clock = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        if urlsplit(event.url).scheme not in ("http", "https"):
            raise ValueError(f"webhook URL {event.url!r} is not http(s)")
        request = urllib.request.Request(event.url, data=data, headers=headers, method="POST")  # noqa: S310
        with _OPENER.open(request, timeout=timeout) as response:
            response.read()
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
        exc.close()
    except (OSError, ValueError) as exc:  # URLError, timeouts, resets, malformed URLs
        error = f"{type(exc).__name__}: {exc}"
    return Delivery(
        room_id=event.room_id,
        url=event.url,
        headers=headers,
        body=event.body,
        status=status,
        error=error,
        elapsed=time.monotonic() - clock,
        time=started,
    )
