"""The ``PAGECALL`` settings dict: defaults, validation and the one accessor.

Everything in the app reads configuration through :data:`pagecall_settings`.
It owns no I/O: it never touches the database or the network, so the system
checks can use it freely.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.functional import lazy
from django.utils.translation import gettext, gettext_lazy

SETTING_NAME: Final = "PAGECALL"
#: The workspace the top-level ``API_KEY`` and ``API_URL`` make; a room's by default.
DEFAULT_WORKSPACE: Final = "default"
#: The keys of one entry of ``WORKSPACES``; ``API_KEY`` is required.
WORKSPACE_KEYS: Final = ("API_KEY", "API_URL", "APP_URL")
#: The longest workspace name (``Room.workspace`` and ``PagecallUser.workspace`` hold it).
WORKSPACE_NAME_LENGTH: Final = 64


@dataclass(frozen=True)
class Key:
    name: str
    default: Any
    doc: str
    required: bool = False


def gettext_noop(message: str) -> str:
    """Marks ``message`` for makemessages without reading the settings, which Django's does."""
    return message


#: Every key of ``PAGECALL``, its default and meaning (docs/settings.md's table is made from it).
KEYS: Final[tuple[Key, ...]] = (
    # Marked: the error for its absence quotes it.
    Key(
        "API_KEY",
        None,
        gettext_noop("Pagecall API key of the workspace (Bearer token)."),
        required=True,
    ),
    Key("API_URL", "https://api.pagecall.com/v1", "Base URL of Pagecall's REST API."),
    Key(
        "WEBHOOK_URL",
        None,
        "Absolute URL Pagecall calls on every join and leave (the app's `pagecall:webhook` view). "
        "When unset, rooms are created without a webhook and `manage.py check` warns.",
    ),
    Key(
        "APP_URL",
        "https://app.pagecall.com",
        "Base URL of Pagecall's meeting app (join and replay links).",
    ),
    Key("CONNECT_TIMEOUT", 3.05, "Seconds to wait for a TCP connection to Pagecall."),
    Key("READ_TIMEOUT", 10.0, "Seconds to wait for Pagecall's answer once the request is sent."),
    Key(
        "WEBHOOK_SECRETS",
        None,
        "Server keys from which each room's webhook secret is derived; the first signs new rooms, "
        "all are accepted (rotation). Default: `SECRET_KEY` then `SECRET_KEY_FALLBACKS`.",
    ),
    Key(
        "MAX_ATTEMPTS",
        10,
        "Attempts at creating a room or member before the app gives up, marks it failed and "
        "sends `room_creation_failed`.",
    ),
    Key(
        "RETRY_BACKOFF",
        2.0,
        "Seconds before the first retry of a transient failure; doubles each time.",
    ),
    Key("RETRY_BACKOFF_MAX", 300.0, "Longest wait between two retries, in seconds."),
    Key("DELETE_REMOTE_ROOMS", False, "Delete the room on Pagecall when it is deleted locally."),
    Key(
        "USER_ID_FUNCTION",
        None,
        "Dotted path of a function `(user) -> str` giving a site user's Pagecall user id. "
        "Default: `str(user.pk)`.",
    ),
    Key(
        "CAN_JOIN_FUNCTION",
        None,
        "Dotted path of a function `(user, room) -> bool` deciding who may join a room through "
        "the app's join, replay and room pages, its API and `{% pagecall_room %}`. Default: the "
        "room's members (through `site_user`, not blocked), and anyone for an `open` room.",
    ),
    Key(
        "WEBHOOK_MAX_BODY_SIZE",
        65536,
        "Largest webhook body accepted, in bytes; a larger one is answered 413 without being read.",
    ),
    Key(
        "WEBHOOK_AUTH_FAILURES_PER_MINUTE",
        60,
        "Webhook requests refused for their credentials that one remote address may get answered "
        "401 in a clock minute; past that they get 429 and are not logged. Counted in "
        "Django's default cache; deliveries with valid credentials are never counted nor refused. "
        "0: no limit.",
    ),
    Key(
        "WORKSPACES",
        None,
        "More Pagecall workspaces: a dict of names to dicts with `API_KEY` (required), `API_URL` "
        "(default: Pagecall's) and `APP_URL` (default: the top-level one). The top-level "
        "`API_KEY` and `API_URL` are the workspace named `default`. See docs/workspaces.md.",
    ),
    Key(
        "DELIVERY_RETENTION_DAYS",
        30,
        "Days a processed webhook delivery is kept; older ones are deleted by the periodic task "
        "and `manage.py pagecall_prune`. Failed and waiting ones are kept until replayed. "
        "0: keep them all.",
    ),
)

BY_NAME: Final = {k.name: k for k in KEYS}


def setting_label(name: str) -> str:
    """How a key is named in errors: ``PAGECALL["API_KEY"]``."""
    return f'{SETTING_NAME}["{name}"]'


def workspace_label(workspace: str, name: str) -> str:
    """How a key of a workspace is named in errors: ``PAGECALL["WORKSPACES"]["b"]["API_KEY"]``."""
    return f'{setting_label("WORKSPACES")}["{workspace}"]["{name}"]'


def _is_workspace_name(value: object) -> bool:
    return (
        isinstance(value, str)
        and value.strip() != ""
        and len(value) <= WORKSPACE_NAME_LENGTH
        and value != DEFAULT_WORKSPACE
    )


def _is_workspaces(value: object) -> bool:
    return isinstance(value, Mapping) and all(
        _is_workspace_name(name) and isinstance(entry, Mapping) for name, entry in value.items()
    )


#: What an API key can be: it travels in a header, which takes no space, line break or non-ASCII.
HEADER_TOKEN: Final = re.compile(r"[\x21-\x7e]+")


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str) or not value:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _positive_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _non_negative_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _workspaces_expected() -> str:
    return gettext(
        "a dict whose keys are workspace names (strings of at most %(length)d characters, "
        'not "%(default)s") and whose values are dicts'
    ) % {"length": WORKSPACE_NAME_LENGTH, "default": DEFAULT_WORKSPACE}


AN_HTTP_URL: Final = gettext_lazy("an absolute http(s) URL")
SECONDS: Final = gettext_lazy("a positive number of seconds")
A_FUNCTION: Final = gettext_lazy("a dotted path to a function, or a function")

#: Validators for keys whose malformed values are errors (``pagecall.E...``), and what a value
#: must be (a noun phrase, translated when the message is made).
VALIDATORS: Final[dict[str, tuple[Any, Any]]] = {
    "API_KEY": (
        lambda v: isinstance(v, str) and HEADER_TOKEN.fullmatch(v) is not None,
        gettext_lazy(
            "a non-empty string of visible ASCII characters, with no space, line break or quote "
            "around it"
        ),
    ),
    "API_URL": (_is_http_url, AN_HTTP_URL),
    "WEBHOOK_URL": (_is_http_url, AN_HTTP_URL),
    "APP_URL": (_is_http_url, AN_HTTP_URL),
    "CONNECT_TIMEOUT": (_positive_number, SECONDS),
    "READ_TIMEOUT": (_positive_number, SECONDS),
    "WEBHOOK_SECRETS": (
        lambda v: (
            isinstance(v, list | tuple)
            and len(v) > 0
            and all(isinstance(k, str) and len(k) >= 32 for k in v)
        ),
        gettext_lazy("a non-empty list of strings of at least 32 characters"),
    ),
    "MAX_ATTEMPTS": (
        lambda v: _non_negative_int(v) and v > 0,
        gettext_lazy("a whole number >= 1"),
    ),
    "RETRY_BACKOFF": (_positive_number, SECONDS),
    "RETRY_BACKOFF_MAX": (_positive_number, SECONDS),
    "DELETE_REMOTE_ROOMS": (lambda v: isinstance(v, bool), gettext_lazy("True or False")),
    "USER_ID_FUNCTION": (
        lambda v: callable(v) or (isinstance(v, str) and "." in v),
        A_FUNCTION,
    ),
    "CAN_JOIN_FUNCTION": (
        lambda v: callable(v) or (isinstance(v, str) and "." in v),
        A_FUNCTION,
    ),
    "WEBHOOK_MAX_BODY_SIZE": (
        lambda v: _non_negative_int(v) and v > 0,
        gettext_lazy("a whole number of bytes >= 1"),
    ),
    "WEBHOOK_AUTH_FAILURES_PER_MINUTE": (_non_negative_int, gettext_lazy("a whole number >= 0")),
    "WORKSPACES": (_is_workspaces, lazy(_workspaces_expected, str)()),
    "DELIVERY_RETENTION_DAYS": (_non_negative_int, gettext_lazy("a whole number of days >= 0")),
}


@dataclass(frozen=True)
class Workspace:
    """One Pagecall workspace: where its API is, and the key that opens it."""

    name: str
    api_url: str
    api_key: str = field(repr=False)
    #: Its own ``APP_URL``; ``None``: the top-level one (see :meth:`PagecallSettings.app_url`).
    app_url: str | None = None


class PagecallSettings:
    """Read-only view of ``settings.PAGECALL`` with defaults.

    ``pagecall_settings.API_URL`` returns the value or its default; a key that
    is required and missing, or present and malformed, raises
    :class:`~django.core.exceptions.ImproperlyConfigured` naming the key.
    """

    def raw(self) -> Mapping[str, Any]:
        value = getattr(settings, SETTING_NAME, {})
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ImproperlyConfigured(
                gettext("%(setting)s must be a dict, not %(type)s.")
                % {"setting": SETTING_NAME, "type": type(value).__name__}
            )
        return value

    def is_set(self, name: str) -> bool:
        return self.raw().get(name) not in (None, "")

    def workspace_names(self) -> list[str]:
        """``"default"`` and the names of ``WORKSPACES``, in the order the setting gives them."""
        return [DEFAULT_WORKSPACE, *(self.WORKSPACES or {})]

    def ensure_workspace(self, name: str) -> None:
        """Raise :class:`~django_pagecall.exceptions.WorkspaceNotConfigured` unless the settings
        have a workspace of that name (its keys are not read: saving a room needs none)."""
        names = self.workspace_names()
        if name not in names:
            from .exceptions import WorkspaceNotConfigured

            configured = ", ".join(f'"{n}"' for n in names)
            raise WorkspaceNotConfigured(
                gettext(
                    "Pagecall workspace %(name)s is not configured: add it to %(label)s "
                    "(configured: %(configured)s)."
                )
                % {
                    "name": repr(name),
                    "label": setting_label("WORKSPACES"),
                    "configured": configured,
                }
            )

    def workspace(self, name: str) -> Workspace:
        """The workspace called ``name``: the one place a workspace name is resolved.

        Raises :class:`~django_pagecall.exceptions.WorkspaceNotConfigured` for a name the
        settings do not have, and ``ImproperlyConfigured`` naming the key for a missing or
        malformed value.
        """
        self.ensure_workspace(name)
        if name == DEFAULT_WORKSPACE:
            return Workspace(name, self.API_URL, self.API_KEY)
        entry = self.WORKSPACES[name]
        values: dict[str, Any] = {}
        for key in WORKSPACE_KEYS:
            value = entry.get(key)
            if value in (None, ""):
                if key == "API_KEY":
                    raise ImproperlyConfigured(
                        gettext(
                            "%(label)s is not set; django-pagecall needs it to call the "
                            "workspace %(name)s."
                        )
                        % {"label": workspace_label(name, key), "name": repr(name)}
                    )
                # API_URL: Pagecall's; APP_URL: None, the top-level one.
                values[key] = BY_NAME[key].default if key == "API_URL" else None
                continue
            problem = validation_problem(key, value, label=workspace_label(name, key))
            if problem:
                raise ImproperlyConfigured(problem)
            values[key] = value
        app_url = values["APP_URL"]
        return Workspace(
            name,
            values["API_URL"].rstrip("/"),
            values["API_KEY"],
            app_url.rstrip("/") if app_url else None,
        )

    def app_url(self, workspace: str) -> str:
        """The meeting app's base URL for the rooms of a workspace."""
        return self.workspace(workspace).app_url or self.APP_URL

    def __getattr__(self, name: str) -> Any:
        try:
            key = BY_NAME[name]
        except KeyError:
            raise AttributeError(
                f"{setting_label(name)} is not a django-pagecall setting."
            ) from None
        raw = self.raw()
        value = raw.get(name)
        if value in (None, ""):
            if key.required:
                raise ImproperlyConfigured(
                    gettext("%(label)s is not set; django-pagecall needs it (%(doc)s)")
                    % {"label": setting_label(name), "doc": gettext(key.doc)}
                )
            return key.default
        problem = validation_problem(name, value)
        if problem:
            raise ImproperlyConfigured(problem)
        if name in ("API_URL", "APP_URL"):
            value = value.rstrip("/")
        return value


def validation_problem(name: str, value: object, *, label: str | None = None) -> str | None:
    """A sentence naming the key (or ``label``) when ``value`` is malformed for it, else None."""
    check = VALIDATORS.get(name)
    if check is None or check[0](value):
        return None
    label = label or setting_label(name)
    if name in SECRET_KEYS:
        # Never echo a secret.
        return gettext("%(label)s must be %(expected)s.") % {"label": label, "expected": check[1]}
    return gettext("%(label)s must be %(expected)s, not %(value)s.") % {
        "label": label,
        "expected": check[1],
        "value": repr(value),
    }


#: Keys whose values are never repeated in messages.
SECRET_KEYS: Final = frozenset({"API_KEY", "WEBHOOK_SECRETS", "WORKSPACES"})


pagecall_settings: Final = PagecallSettings()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        # Modules that cache objects built from settings (the HTTP client) listen here too.
        from . import client

        client.reset_client()
