"""The secret that authenticates Pagecall's webhook calls, per room: HMAC-SHA256 of a server
key and the room's primary key, sent as headers when the room is created. The first key of
``WEBHOOK_SECRETS`` signs; every listed key is accepted (docs/webhooks.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Final

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

ROOM_HEADER: Final = "X-Pagecall-Room"
SECRET_HEADER: Final = "X-Pagecall-Secret"  # noqa: S105  (a header name)
_SALT: Final = "django_pagecall.webhook"


def server_keys() -> list[str]:
    from ..conf import pagecall_settings

    configured = pagecall_settings.WEBHOOK_SECRETS
    if configured:
        return [str(k) for k in configured]
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


@lru_cache(maxsize=4096)
def room_secret(room_pk: int, key: str) -> str:
    """64 hex characters (32 bytes) for one room under one server key.

    Kept for the rooms seen last, since every webhook needs it: the key it derives from is in
    memory anyway, and a rotated key is a new cache key.
    """
    return salted_hmac(_SALT, f"room:{room_pk}", secret=key, algorithm="sha256").hexdigest()


def headers_for_room(room_pk: int) -> dict[str, str]:
    """The ``webhook.headers`` sent to Pagecall when the room is created."""
    return {ROOM_HEADER: str(room_pk), SECRET_HEADER: room_secret(room_pk, server_keys()[0])}


def authenticated_room_pk(headers: Mapping[str, str]) -> int | None:
    """The local room primary key the headers authenticate, or ``None``.

    Every key is tried (constant-time comparisons) so that timing tells
    nothing about which one matched or how much of a secret was right.
    """
    from ..models.rooms import parse_pk

    room_pk = parse_pk(headers.get(ROOM_HEADER, ""))
    secret = headers.get(SECRET_HEADER, "")
    if room_pk is None or not secret:
        return None
    matched = False
    for key in server_keys():
        matched |= constant_time_compare(room_secret(room_pk, key), secret)
    return room_pk if matched else None
