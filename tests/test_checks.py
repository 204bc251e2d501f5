"""The PAGECALL accessor and the system checks: every id can fire, and each names its key."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings

from django_pagecall.checks import check_installed_apps, check_settings, check_time_zone_support
from django_pagecall.conf import KEYS, pagecall_settings

GOOD: dict[str, Any] = {"API_KEY": "k", "WEBHOOK_URL": "https://site.example/pagecall/webhook/"}


def ids(config: Any) -> list[str]:
    with override_settings(PAGECALL=config):
        return sorted(m.id or "" for m in check_settings())


def test_a_complete_configuration_passes() -> None:
    assert ids(GOOD) == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"WEBHOOK_URL": "https://x.example/w/"}, ["pagecall.W001"]),
        ({"API_KEY": ""}, ["pagecall.W001", "pagecall.W002"]),
        ({"API_KEY": "k"}, ["pagecall.W002"]),
        (None, ["pagecall.W001", "pagecall.W002"]),
        ("not a dict", ["pagecall.E001"]),
        ({**GOOD, "API_KEY": 123}, ["pagecall.E002"]),
        ({**GOOD, "API_URL": "api.pagecall.com/v1"}, ["pagecall.E003"]),
        ({**GOOD, "API_URL": "ftp://api.pagecall.com/v1"}, ["pagecall.E003"]),
        ({**GOOD, "WEBHOOK_URL": "/pagecall/webhook/"}, ["pagecall.E004"]),
        ({**GOOD, "READ_TIMEOUT": 0}, ["pagecall.E005"]),
        ({**GOOD, "CONNECT_TIMEOUT": "3"}, ["pagecall.E005"]),
        ({**GOOD, "MAX_ATTEMPTS": 0}, ["pagecall.E005"]),
        ({**GOOD, "APP_URL": "app.pagecall.com"}, ["pagecall.E005"]),
        ({**GOOD, "CAN_JOIN_FUNCTION": "can_join"}, ["pagecall.E005"]),
        ({**GOOD, "CAN_JOIN_FUNCTION": "myschool.pagecall.can_join"}, []),
        ({**GOOD, "API_KEYS": "typo"}, ["pagecall.W003"]),
        ({**GOOD, "WEBHOOK_URL": "http://site.example/pagecall/webhook/"}, ["pagecall.W004"]),
        ({**GOOD, "WEBHOOK_URL": "http://127.0.0.1:8000/pagecall/webhook/"}, []),
    ],
)
def test_check_ids(config: Any, expected: list[str]) -> None:
    assert ids(config) == expected


def test_messages_name_the_key_and_never_echo_the_api_key() -> None:
    with override_settings(PAGECALL={**GOOD, "API_KEY": ["s3cret-value"], "READ_TIMEOUT": -2}):
        messages = {m.id: m.msg for m in check_settings()}
    assert 'PAGECALL["API_KEY"]' in messages["pagecall.E002"]
    assert "s3cret-value" not in messages["pagecall.E002"]
    assert 'PAGECALL["READ_TIMEOUT"]' in messages["pagecall.E005"]


def test_rest_framework_missing_is_an_error() -> None:
    assert check_installed_apps() == []
    with override_settings(INSTALLED_APPS=["django.contrib.contenttypes", "django_pagecall"]):
        assert [m.id for m in check_installed_apps()] == ["pagecall.E006"]


def test_naive_datetimes_are_an_error() -> None:
    assert check_time_zone_support() == []
    with override_settings(USE_TZ=False):
        (error,) = check_time_zone_support()
        assert error.id == "pagecall.E007"
        assert "USE_TZ = True" in error.msg
        found = [m.id for m in run_checks() if (m.id or "").startswith("pagecall.E")]
        assert found == ["pagecall.E007"]


def test_checks_are_registered_with_django() -> None:
    with override_settings(PAGECALL={"API_KEY": "k"}):
        found = [m.id for m in run_checks() if (m.id or "").startswith("pagecall.")]
    assert found == ["pagecall.W002"]


def test_missing_secrets_do_not_block_migrate_checks(capsys: pytest.CaptureFixture[str]) -> None:
    # `check --fail-level ERROR` is what migrate and collectstatic effectively require.
    with override_settings(PAGECALL={}):
        call_command("check", fail_level="ERROR")
    assert "pagecall.W001" in capsys.readouterr().err


def test_accessor_defaults_and_errors() -> None:
    with override_settings(PAGECALL={"API_KEY": "k", "API_URL": "http://emu.example/v1/"}):
        assert pagecall_settings.API_URL == "http://emu.example/v1"  # trailing slash dropped
        assert pagecall_settings.READ_TIMEOUT == 10.0
        assert pagecall_settings.WEBHOOK_URL is None
    with override_settings(PAGECALL={}), pytest.raises(ImproperlyConfigured) as missing:
        _ = pagecall_settings.API_KEY
    assert 'PAGECALL["API_KEY"] is not set' in str(missing.value)
    with (
        override_settings(PAGECALL={"API_KEY": "k", "READ_TIMEOUT": "slow"}),
        pytest.raises(ImproperlyConfigured, match=r'PAGECALL\["READ_TIMEOUT"\] must be'),
    ):
        _ = pagecall_settings.READ_TIMEOUT
    with pytest.raises(AttributeError, match=r'PAGECALL\["NOPE"\]'):
        _ = pagecall_settings.NOPE


def test_every_key_has_a_doc_and_a_validator() -> None:
    from django_pagecall.conf import VALIDATORS

    for key in KEYS:
        assert key.doc
        assert key.name in VALIDATORS


@pytest.mark.parametrize(
    "config",
    [
        {**GOOD, "API_KEY": 7},
        {**GOOD, "API_URL": "api.pagecall.com"},
        {**GOOD, "WEBHOOK_URL": "/pagecall/webhook/"},
        {**GOOD, "READ_TIMEOUT": 0},
    ],
)
def test_every_malformed_value_error_has_a_hint(config: Any) -> None:
    with override_settings(PAGECALL=config):
        errors = [m for m in check_settings() if m.id.startswith("pagecall.E")]
    assert errors
    assert all(m.hint for m in errors), [m.id for m in errors]
