"""pytest fixtures for the Pagecall emulator (registered as the ``pagecall`` pytest11 plugin):
``pagecall_emulator_server`` (one per session) and ``pagecall_emulator`` (reset for each test,
with ``settings.PAGECALL`` pointed at it), and ``pagecall_workspace`` for more workspaces; see
docs/testing.md. Nothing from Django is imported at import time, so the plugin loads in suites
where Django is not configured.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

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


@pytest.fixture(scope="session")
def pagecall_workspace_servers() -> Iterator[dict[str, Emulator]]:
    """The emulators of named workspaces, started on first use: one per name for the session."""
    servers: dict[str, Emulator] = {}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def pagecall_workspace(
    request: pytest.FixtureRequest,
    pagecall_emulator: Emulator,
    pagecall_workspace_servers: dict[str, Emulator],
) -> Callable[[str], Emulator]:
    """A factory: ``pagecall_workspace("school")`` is an emulator of its own, reset, with the
    API key ``test-api-key-school``, and ``settings.PAGECALL["WORKSPACES"]["school"]`` pointing
    at it; ``pagecall_emulator`` stays the workspace ``"default"``."""

    def workspace(name: str) -> Emulator:
        emulator = pagecall_workspace_servers.get(name)
        if emulator is None:
            emulator = pagecall_workspace_servers[name] = Emulator(f"test-api-key-{name}")
            emulator.start()
        emulator.reset()
        if _django_configured():
            _add_workspace(request, name, emulator)
        return emulator

    return workspace


def _add_workspace(request: pytest.FixtureRequest, name: str, emulator: Emulator) -> None:
    from django.conf import settings

    pagecall = dict(getattr(settings, "PAGECALL", None) or {})
    workspaces = dict(pagecall.get("WORKSPACES") or {})
    workspaces[name] = {
        "API_KEY": emulator.api_key,
        "API_URL": emulator.url,
        "APP_URL": emulator.app_url,
    }
    pagecall["WORKSPACES"] = workspaces
    try:
        settings_fixture = request.getfixturevalue("settings")
    except pytest.FixtureLookupError:
        from django.test.utils import override_settings

        override = override_settings(PAGECALL=pagecall)
        override.enable()
        request.addfinalizer(override.disable)
        return
    settings_fixture.PAGECALL = pagecall
