"""A Pagecall emulator: Pagecall's REST API in memory, over real HTTP on loopback.

Pagecall cannot be reached from tests, so django-pagecall ships this stand-in,
built from Pagecall's own OpenAPI spec (``openapi3.json``). Standard library
only. ::

    from django_pagecall.emulator import Emulator

    with Emulator(api_key="test-api-key") as emu:   # port 0: a free port
        emu.url                  # "http://127.0.0.1:54321/v1": the API base URL
        emu.inject("POST", "/rooms", status=500)    # next POST /v1/rooms answers 500
        ...                      # your code calls the API with "Authorization: Bearer test-api-key"
        emu.rooms                # {room_id: Room object}
        emu.requests             # every API request: method, path, query, headers, body, status...
        emu.join(room_id, user_id="u1")             # a participant joins: sessionJoined webhook

What it answers: the spec's operations under ``/v1`` (rooms, sessions, pages,
message, members, users), request bodies and query parameters validated
against the spec; every error is 400 ``{"message": ...}`` as Pagecall lumps
them (bad parameters, unknown ids, missing or wrong API key: "Unauthenticated"),
except unknown paths (404) and wrong methods (405). Creates answer 200.

Faults, ``emu.inject(method, path, *, status=None, delay=0.0, drop=None,
times=1, body=None)``: ``path`` is a route template (``"/rooms/{id}"``) or a
concrete path (``"/rooms/abc..."``), with or without ``/v1``; ``method`` may be
``"*"``. ``status`` answers it without doing anything (``body`` or
``{"message": "injected"}``; a str body is sent as text/plain); ``delay`` sleeps
first; ``drop="before"`` closes the connection without doing or answering;
``drop="after"`` does the work, then closes without answering. ``times=None``:
forever. Matching faults are consumed in the order injected;
``emu.clear_faults()`` forgets them.

Participants: ``emu.join(room_id, user_id=None, member_id=None)`` and
``emu.leave(room_id, session_id)`` change sessions and POST the Create Room
page's webhook body to the room's ``webhook.url`` with its ``webhook.headers``;
``emu.send_webhook(room_id, body)`` sends anything (duplicates, out of order);
``emu.webhooks`` lists deliveries. See :mod:`.state` for the readings of what
the spec leaves open, :mod:`.control` for the same helpers over HTTP
(``/_emulator/...``), ``python -m django_pagecall.emulator`` to run it as a
process, and :mod:`.pytest_plugin` for the ``pagecall_emulator`` fixture.
"""

from .model import DEPRECATED, EmulatorError
from .server import DEFAULT_API_KEY, Emulator
from .webhooks import Delivery

__all__ = ["DEFAULT_API_KEY", "DEPRECATED", "Delivery", "Emulator", "EmulatorError"]
