"""System checks for the ``PAGECALL`` setting (``manage.py check``), with the stable ids that
docs/checks.md lists. A missing value is a warning (``pagecall.W...``), so that ``migrate`` and
``collectstatic`` run in build steps without secrets; a malformed value is an error
(``pagecall.E...``). No check touches the database or the network.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.urls import Resolver404, resolve
from django.utils.translation import gettext, gettext_lazy

from .conf import (
    BY_NAME,
    SETTING_NAME,
    WORKSPACE_KEYS,
    setting_label,
    validation_problem,
    workspace_label,
)

#: The error id for a malformed value of each key (keys not listed use E005).
MALFORMED_IDS = {
    "API_KEY": "pagecall.E002",
    "API_URL": "pagecall.E003",
    "WEBHOOK_URL": "pagecall.E004",
    "WORKSPACES": "pagecall.E008",
}
#: How to mend a malformed value of each key (keys not listed get the last one).
MALFORMED_HINTS = {
    "API_KEY": gettext_lazy(
        "Copy the key from the Pagecall workspace's settings, with nothing around it."
    ),
    "API_URL": gettext_lazy(
        'Use "https://api.pagecall.com/v1", or the emulator\'s ("http://127.0.0.1:8790/v1").'
    ),
    "WEBHOOK_URL": gettext_lazy(
        'Set it to the absolute URL of the "pagecall:webhook" view, such as '
        '"https://site.example/pagecall/webhook/".'
    ),
    "WORKSPACES": gettext_lazy('Set it to {"name": {"API_KEY": "...", "API_URL": "..."}, ...}.'),
}
OTHER_HINT = gettext_lazy("The Settings page of the docs says what each key takes.")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "testserver"})


def malformed(key: str, problem: str) -> Error:
    hint = str(MALFORMED_HINTS.get(key, OTHER_HINT))
    return Error(problem, hint=hint, id=MALFORMED_IDS.get(key, "pagecall.E005"))


@register(Tags.compatibility)
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    raw = getattr(settings, SETTING_NAME, None)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        return [
            Error(
                gettext("%(setting)s must be a dict, not %(type)s.")
                % {"setting": SETTING_NAME, "type": type(raw).__name__},
                hint=gettext('Set PAGECALL = {"API_KEY": "...", "WEBHOOK_URL": "https://..."}.'),
                id="pagecall.E001",
            )
        ]
    messages: list[CheckMessage] = []
    for name in sorted(raw):
        if name not in BY_NAME:
            messages.append(
                Warning(
                    gettext("%(label)s is not a django-pagecall setting and is ignored.")
                    % {"label": setting_label(name)},
                    hint=gettext("Check its spelling against the Settings page of the docs."),
                    id="pagecall.W003",
                )
            )
    for name, value in raw.items():
        if name not in BY_NAME or value in (None, ""):
            continue
        problem = validation_problem(name, value)
        if problem:
            messages.append(malformed(name, problem))
    workspaces = raw.get("WORKSPACES")
    if isinstance(workspaces, Mapping) and validation_problem("WORKSPACES", workspaces) is None:
        for name, entry in workspaces.items():
            messages += check_workspace(name, entry)
    if raw.get("API_KEY") in (None, ""):
        messages.append(
            Warning(
                gettext("%(label)s is not set: rooms cannot be created on Pagecall.")
                % {"label": setting_label("API_KEY")},
                hint=gettext("Set it to the API key from the Pagecall workspace settings."),
                id="pagecall.W001",
            )
        )
    webhook_url = raw.get("WEBHOOK_URL")
    if webhook_url in (None, ""):
        messages.append(
            Warning(
                gettext(
                    "%(label)s is not set: rooms are created without a webhook, "
                    "so no session records will be kept."
                )
                % {"label": setting_label("WEBHOOK_URL")},
                hint=gettext('Set it to the absolute URL of the "pagecall:webhook" view.'),
                id="pagecall.W002",
            )
        )
    elif isinstance(webhook_url, str) and validation_problem("WEBHOOK_URL", webhook_url) is None:
        parts = urlsplit(webhook_url)
        if parts.scheme == "http" and (parts.hostname or "") not in LOOPBACK_HOSTS:
            messages.append(
                Warning(
                    gettext(
                        "%(label)s uses http://: the secret that authenticates "
                        "Pagecall's calls would cross the network in clear."
                    )
                    % {"label": setting_label("WEBHOOK_URL")},
                    hint=gettext("Use an https:// URL."),
                    id="pagecall.W004",
                )
            )
        messages += check_webhook_route(parts.path)
    return messages


def check_webhook_route(path: str) -> list[CheckMessage]:
    """``pagecall.W007``: the path of ``WEBHOOK_URL`` must reach the app's webhook view."""
    from .webhooks.views import WebhookView

    script_name = (getattr(settings, "FORCE_SCRIPT_NAME", None) or "").rstrip("/")
    url_path = path
    match = None
    if script_name:
        # Django serves only the paths under FORCE_SCRIPT_NAME, and resolves what follows it.
        inside = path == script_name or path.startswith(script_name + "/")
        path = path[len(script_name) :] or "/" if inside else ""
    if path:
        with suppress(Resolver404):
            match = resolve(path)
    view_class = getattr(match.func, "view_class", None) if match is not None else None
    if isinstance(view_class, type) and issubclass(view_class, WebhookView):
        return []
    if match is None:
        message = gettext(
            "The path of %(label)s, %(path)s, leads to no view of the site's URLconf, not to "
            "django-pagecall's webhook: every call of Pagecall would be answered 404 and no "
            "session would be recorded."
        )
    else:
        message = gettext(
            "The path of %(label)s, %(path)s, leads to the view %(view)s of the site's URLconf, "
            "not to django-pagecall's webhook: every call of Pagecall would be answered 404 and "
            "no session would be recorded."
        )
    view = repr(match.view_name) if match is not None else ""
    return [
        Warning(
            message % {"label": setting_label("WEBHOOK_URL"), "path": repr(url_path), "view": view},
            hint=gettext(
                'Include the app\'s URLs (path("pagecall/", include("django_pagecall.urls"))) '
                'and set WEBHOOK_URL to the URL of the "pagecall:webhook" view, such as '
                '"https://site.example/pagecall/webhook/".'
            ),
            id="pagecall.W007",
        )
    ]


def check_workspace(name: str, entry: Mapping[str, Any]) -> list[CheckMessage]:
    """The checks of the top-level keys, for one entry of ``WORKSPACES``, naming it."""
    messages: list[CheckMessage] = []
    for key in sorted(entry):
        if key not in WORKSPACE_KEYS:
            messages.append(
                Warning(
                    gettext("%(label)s is not a key of a workspace and is ignored.")
                    % {"label": workspace_label(name, key)},
                    hint=gettext("A workspace takes %(keys)s.")
                    % {"keys": ", ".join(WORKSPACE_KEYS)},
                    id="pagecall.W003",
                )
            )
    for key in WORKSPACE_KEYS:
        value = entry.get(key)
        if value in (None, ""):
            continue
        problem = validation_problem(key, value, label=workspace_label(name, key))
        if problem:
            messages.append(malformed(key, problem))
    if entry.get("API_KEY") in (None, ""):
        messages.append(
            Warning(
                gettext(
                    "%(label)s is not set: rooms of the workspace %(name)s cannot be created on "
                    "Pagecall."
                )
                % {"label": workspace_label(name, "API_KEY"), "name": repr(name)},
                hint=gettext("Set it to the API key from that Pagecall workspace's settings."),
                id="pagecall.W005",
            )
        )
    return messages


@register(Tags.compatibility)
def check_installed_apps(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if apps.is_installed("rest_framework"):
        return []
    return [
        Error(
            gettext(
                "django-pagecall's webhook view and its front-end API are Django REST framework "
                "views: without rest_framework installed they cannot answer."
            ),
            hint=gettext('Add "rest_framework" to INSTALLED_APPS.'),
            id="pagecall.E006",
        )
    ]


@register(Tags.compatibility)
def check_time_zone_support(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if getattr(settings, "USE_TZ", True):
        return []
    return [
        Error(
            gettext(
                "django-pagecall needs USE_TZ = True: Pagecall's timestamps (webhook events, room "
                "and session times) are instants in UTC, which naive local datetimes cannot hold "
                "through a change of daylight saving time, and the app compares them with its own."
            ),
            hint=gettext("Set USE_TZ = True (Django's default since 5.0)."),
            id="pagecall.E007",
        )
    ]


#: Broker URL schemes served by kombu's Redis transport, and by its AMQP one.
REDIS_SCHEMES = frozenset({"redis", "rediss", "sentinel"})
AMQP_SCHEMES = frozenset({"amqp", "amqps", "pyamqp"})
CELERY_APP_HINT = gettext_lazy(
    "Import the site's Celery app in the project's __init__.py (next to settings.py): "
    "from .celery import app as celery_app, as docs/quickstart.md shows; and set "
    "CELERY_BROKER_URL."
)


@register(Tags.compatibility)
def check_celery_app(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``pagecall.W006``, ``pagecall.W008`` and ``pagecall.W009``: the Celery app the app's tasks
    are queued with, and its broker."""
    from .sync.publishing import celery_app_problem, task_app

    app = task_app()
    problem = celery_app_problem(app)
    if problem:
        return [Warning(problem, hint=str(CELERY_APP_HINT), id="pagecall.W006")]
    return broker_client_warnings(app.conf) or broker_timeout_warnings(app.conf)


def broker_urls(conf: Any) -> list[str]:
    urls = conf.broker_url or []
    if isinstance(urls, str):
        urls = urls.split(";")
    return [str(url).strip() for url in urls if str(url).strip()]


def broker_client_warnings(conf: Any) -> list[CheckMessage]:
    """A broker whose client library is not installed: Django starts, and every task queued
    fails, so rooms stay pending."""
    from kombu.transport import resolve_transport

    messages: list[CheckMessage] = []
    for url in broker_urls(conf):
        scheme = urlsplit(url).scheme.partition("+")[0].lower()
        try:
            resolve_transport(scheme)
            # kombu's Redis transport imports without its client, and fails at the first use.
            if scheme in REDIS_SCHEMES:
                importlib.import_module("redis")
        except (ImportError, KeyError) as exc:
            messages.append(
                Warning(
                    gettext(
                        "The Celery broker (%(scheme)s://) cannot be used: %(error)s. No task "
                        "can be queued, so rooms and members stay pending."
                    )
                    % {"scheme": scheme, "error": exc},
                    hint=gettext(
                        'Install its client: for Redis, pip install "django-pagecall[redis]" '
                        "(docs/celery.md)."
                    ),
                    id="pagecall.W009",
                )
            )
    return messages


def broker_timeout_warnings(conf: Any) -> list[CheckMessage]:
    """Timeouts kombu leaves unset: a broker that accepts connections and never answers would
    hold a save (or a worker) until the operating system gives up."""
    options = dict(conf.broker_transport_options or {})
    messages: list[CheckMessage] = []
    for url in broker_urls(conf):
        parts = urlsplit(url)
        scheme = parts.scheme.partition("+")[0].lower()
        given = {**options, **dict(parse_qsl(parts.query))}
        if scheme in REDIS_SCHEMES:
            missing = [k for k in ("socket_timeout", "socket_connect_timeout") if not given.get(k)]
            if missing:
                options_missing = (
                    gettext("%(first)s or %(second)s") % {"first": missing[0], "second": missing[1]}
                    if len(missing) == 2
                    else missing[0]
                )
                messages.append(
                    Warning(
                        gettext(
                            "The Celery broker (%(scheme)s://) has no %(options)s: a broker that "
                            "accepts connections and never answers would hang every save that "
                            "queues a task."
                        )
                        % {"scheme": scheme, "options": options_missing},
                        hint=gettext(
                            'Set CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_timeout": 5, '
                            '"socket_connect_timeout": 5, ...} (docs/celery.md).'
                        ),
                        id="pagecall.W008",
                    )
                )
        elif scheme in AMQP_SCHEMES and not (
            conf.broker_connection_timeout or given.get("connect_timeout")
        ):
            messages.append(
                Warning(
                    gettext(
                        "The Celery broker (%(scheme)s://) has no connection timeout: a broker "
                        "that accepts connections and never answers would hang every save that "
                        "queues a task."
                    )
                    % {"scheme": scheme},
                    hint=gettext("Set CELERY_BROKER_CONNECTION_TIMEOUT = 5 (docs/celery.md)."),
                    id="pagecall.W008",
                )
            )
    return messages
