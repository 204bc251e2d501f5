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
        ({"WEBHOOK_URL": "https://x.example/pagecall/webhook/"}, ["pagecall.W001"]),
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


def test_rest_framework_message_names_the_views_that_need_it() -> None:
    with override_settings(INSTALLED_APPS=["django.contrib.contenttypes", "django_pagecall"]):
        (error,) = check_installed_apps()
    assert "webhook view" in error.msg
    assert "front-end API" in error.msg
    # The views it names are Django REST framework views.
    from rest_framework.views import APIView

    from django_pagecall import api
    from django_pagecall.webhooks.views import WebhookView

    for view in (WebhookView, api.RoomList, api.RoomDetail, api.RoomJoin):
        assert issubclass(view, APIView), view


# The webhook URL against the URLconf ---------------------------------------------------------


@pytest.mark.parametrize(
    ("webhook_url", "expected"),
    [
        ("https://site.example/pagecall/webhook/", []),
        ("https://site.example/pagecall/webhok/", ["pagecall.W007"]),  # a typo
        ("https://site.example/pagecall/webhook", ["pagecall.W007"]),  # no trailing slash
        ("https://site.example/webhook/", ["pagecall.W007"]),  # the include's prefix left out
        ("https://site.example/admin/", ["pagecall.W007"]),  # another view
    ],
)
def test_webhook_url_must_resolve_to_the_webhook_view(
    webhook_url: str, expected: list[str]
) -> None:
    assert ids({**GOOD, "WEBHOOK_URL": webhook_url}) == expected


def test_webhook_url_without_the_apps_urls_included() -> None:
    with override_settings(ROOT_URLCONF="tests.urls_without_pagecall"):
        assert ids(GOOD) == ["pagecall.W007"]
        with override_settings(PAGECALL=GOOD):
            (warning,) = check_settings()
    assert "'/pagecall/webhook/'" in warning.msg
    assert 'include("django_pagecall.urls")' in (warning.hint or "")


def test_webhook_url_under_force_script_name() -> None:
    prefixed = {**GOOD, "WEBHOOK_URL": "https://site.example/site/pagecall/webhook/"}
    assert ids(prefixed) == ["pagecall.W007"]
    with override_settings(FORCE_SCRIPT_NAME="/site/"):
        assert ids(prefixed) == []
        assert ids(GOOD) == ["pagecall.W007"]  # outside the prefix: not served by this site


# The Celery app and its broker ---------------------------------------------------------------


def test_the_test_sites_celery_app_passes() -> None:
    from django_pagecall.checks import check_celery_app

    assert check_celery_app() == []


def test_celerys_default_app_or_no_broker_is_named() -> None:
    from celery import Celery

    from django_pagecall.sync.publishing import celery_app_problem

    default = Celery("default", set_as_current=False)
    assert "Celery's default app" in (celery_app_problem(default) or "")
    unconfigured = Celery("mysite", set_as_current=False)
    assert "has no broker_url" in (celery_app_problem(unconfigured) or "")
    unconfigured.conf.broker_url = "redis://127.0.0.1:6379/0"
    assert celery_app_problem(unconfigured) is None


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        ({"broker_url": "redis://h:6379/0"}, ["pagecall.W008"]),
        (
            {"broker_url": "redis://h/0", "broker_transport_options": {"socket_timeout": 5}},
            ["pagecall.W008"],
        ),
        (
            {
                "broker_url": "rediss://h/0",
                "broker_transport_options": {"socket_timeout": 5, "socket_connect_timeout": 5},
            },
            [],
        ),
        ({"broker_url": "redis://h/0?socket_timeout=5&socket_connect_timeout=5"}, []),
        ({"broker_url": "amqp://guest@h//"}, []),  # Celery's default connection timeout: 4 s
        ({"broker_url": "amqp://guest@h//", "broker_connection_timeout": None}, ["pagecall.W008"]),
        (
            {
                "broker_url": "pyamqp://guest@h//",
                "broker_connection_timeout": None,
                "broker_transport_options": {"connect_timeout": 5},
            },
            [],
        ),
        ({"broker_url": "memory://"}, []),
        ({"broker_url": "redis://a/0;redis://b/0"}, ["pagecall.W008", "pagecall.W008"]),
    ],
)
def test_broker_socket_timeouts(conf: dict[str, Any], expected: list[str]) -> None:
    from celery import Celery

    from django_pagecall.checks import broker_timeout_warnings

    app = Celery("mysite", set_as_current=False)
    app.conf.update(conf)
    assert [m.id for m in broker_timeout_warnings(app.conf)] == expected


def test_the_registered_check_reads_the_sites_celery_app() -> None:
    from tests.celery_app import app

    options = app.conf.broker_transport_options
    app.conf.broker_transport_options = {**options, "socket_timeout": None}
    try:
        found = [m.id for m in run_checks() if (m.id or "").startswith("pagecall.")]
    finally:
        app.conf.broker_transport_options = options
    assert found == ["pagecall.W008"]


def test_a_broker_whose_client_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from celery import Celery

    from django_pagecall.checks import broker_client_warnings

    app = Celery("mysite", set_as_current=False)
    app.conf.broker_url = "redis://127.0.0.1:6379/0"
    assert broker_client_warnings(app.conf) == []
    monkeypatch.setitem(sys.modules, "redis", None)  # as if the [redis] extra was left out
    (warning,) = broker_client_warnings(app.conf)
    assert warning.id == "pagecall.W009" and "redis://" in warning.msg
    assert "django-pagecall[redis]" in (warning.hint or "")
    app.conf.broker_url = "mongodb://127.0.0.1/0"  # kombu's transport needs pymongo
    assert "pymongo" in broker_client_warnings(app.conf)[0].msg
