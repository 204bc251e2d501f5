"""pytest fixtures for the Pagecall emulator (registered as the ``pagecall`` pytest11 plugin).

Installing django-pagecall makes these fixtures available to every test suite
in the environment, so a host site can test its Pagecall integration without
the network::

    def test_booking_opens_a_room(pagecall_emulator, client):
        client.post("/book/", {...})                  # your code calls Pagecall
        (room,) = pagecall_emulator.rooms.values()     # ...and hit the emulator
        assert room["type"] == "private"

    def test_pagecall_down(pagecall_emulator):
        pagecall_emulator.inject("POST", "/rooms", status=500, times=None)
        ...

``pagecall_emulator_server`` (session scope)
    One started :class:`~django_pagecall.emulator.Emulator` on a free loopback
    port, API key ``"test-api-key"``, stopped at the end of the session.

``pagecall_emulator`` (function scope)
    The same emulator, reset (no rooms, users, records or faults). When Django
    settings are configured, ``settings.PAGECALL`` is a copy of yours with
    ``API_URL`` set to ``emulator.url`` and ``API_KEY`` to its key, for this
    test only (through pytest-django's ``settings`` fixture when available,
    else ``override_settings``).

The module imports nothing from Django at import time, so it loads cleanly in
suites where Django is not configured.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .server import Emulator


def _django_configured() -> bool:
    try:
        from django.conf import settings
    except ImportError:
        return False
    return bool(settings.configured or os.environ.get("DJANGO_SETTINGS_MODULE"))


@pytest.fixture(scope="session")
def pagecall_emulator_server() -> Iterator[Emulator]:
    """One running emulator for the whole test session."""
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def pagecall_emulator(
    request: pytest.FixtureRequest, pagecall_emulator_server: Emulator
) -> Iterator[Emulator]:
    """The session's emulator, reset, with ``settings.PAGECALL`` pointing at it."""
    emulator = pagecall_emulator_server
    emulator.reset()
    if not _django_configured():
        yield emulator
        return
    from django.conf import settings

    pagecall = dict(getattr(settings, "PAGECALL", None) or {})
    pagecall.update(API_URL=emulator.url, API_KEY=emulator.api_key)
    try:
        settings_fixture = request.getfixturevalue("settings")
    except pytest.FixtureLookupError:
        from django.test.utils import override_settings

        with override_settings(PAGECALL=pagecall):
            yield emulator
        return
    settings_fixture.PAGECALL = pagecall
    yield emulator
