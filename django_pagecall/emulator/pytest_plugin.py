"""pytest fixtures for the Pagecall emulator (registered as the ``pagecall`` pytest11 plugin):
``pagecall_emulator_server`` (one per session) and ``pagecall_emulator`` (reset for each test,
with ``settings.PAGECALL`` pointed at it); see docs/testing.md. Nothing from Django is imported
at import time, so the plugin loads in suites where Django is not configured.
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
    """The session's emulator, reset, with ``settings.PAGECALL``'s API and app URLs at it."""
    emulator = pagecall_emulator_server
    emulator.reset()
    if not _django_configured():
        yield emulator
        return
    from django.conf import settings

    pagecall = dict(getattr(settings, "PAGECALL", None) or {})
    pagecall.update(API_URL=emulator.url, API_KEY=emulator.api_key, APP_URL=emulator.app_url)
    try:
        settings_fixture = request.getfixturevalue("settings")
    except pytest.FixtureLookupError:
        from django.test.utils import override_settings

        with override_settings(PAGECALL=pagecall):
            yield emulator
        return
    settings_fixture.PAGECALL = pagecall
    yield emulator
