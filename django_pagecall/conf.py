"""The ``PAGECALL`` settings dict: defaults, validation and the one accessor.

Everything in the app reads configuration through :data:`pagecall_settings`.
It owns no I/O: it never touches the database or the network, so the system
checks can use it freely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTING_NAME: Final = "PAGECALL"


@dataclass(frozen=True)
class Key:
    name: str
    default: Any
    doc: str
    required: bool = False


#: Every key of ``PAGECALL``, its default and what it means (the README's table is made from this).
KEYS: Final[tuple[Key, ...]] = (
    Key("API_KEY", None, "Pagecall API key of the workspace (Bearer token).", required=True),
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
        "WEBHOOK_MAX_BODY_SIZE",
        65536,
        "Largest webhook body accepted, in bytes; a larger one is answered 413 without being read.",
    ),
    Key(
        "WEBHOOK_AUTH_FAILURES_PER_MINUTE",
        60,
        "Webhook requests refused for their credentials that one remote address may get answered "
        "401 in a clock minute; past that they get 429 and are no longer logged. Counted in "
        "Django's default cache; deliveries with valid credentials are never counted nor refused. "
        "0: no limit.",
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


def _is_http_url(value: object) -> bool:
    if not isinstance(value, str) or not value:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _positive_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _non_negative_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


#: Validators for keys whose malformed values are errors (``pagecall.E...``), and the message.
VALIDATORS: Final[dict[str, tuple[Any, str]]] = {
    "API_KEY": (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string"),
    "API_URL": (_is_http_url, "an absolute http(s) URL"),
    "WEBHOOK_URL": (_is_http_url, "an absolute http(s) URL"),
    "APP_URL": (_is_http_url, "an absolute http(s) URL"),
    "CONNECT_TIMEOUT": (_positive_number, "a positive number of seconds"),
    "READ_TIMEOUT": (_positive_number, "a positive number of seconds"),
    "WEBHOOK_SECRETS": (
        lambda v: (
            isinstance(v, list | tuple)
            and len(v) > 0
            and all(isinstance(k, str) and len(k) >= 32 for k in v)
        ),
        "a non-empty list of strings of at least 32 characters",
    ),
    "MAX_ATTEMPTS": (lambda v: _non_negative_int(v) and v > 0, "a whole number >= 1"),
    "RETRY_BACKOFF": (_positive_number, "a positive number of seconds"),
    "RETRY_BACKOFF_MAX": (_positive_number, "a positive number of seconds"),
    "DELETE_REMOTE_ROOMS": (lambda v: isinstance(v, bool), "True or False"),
    "USER_ID_FUNCTION": (
        lambda v: callable(v) or (isinstance(v, str) and "." in v),
        "a dotted path to a function, or a function",
    ),
    "WEBHOOK_MAX_BODY_SIZE": (
        lambda v: _non_negative_int(v) and v > 0,
        "a whole number of bytes >= 1",
    ),
    "WEBHOOK_AUTH_FAILURES_PER_MINUTE": (_non_negative_int, "a whole number >= 0"),
    "DELIVERY_RETENTION_DAYS": (_non_negative_int, "a whole number of days >= 0"),
}


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
                f"{SETTING_NAME} must be a dict, not {type(value).__name__}."
            )
        return value

    def is_set(self, name: str) -> bool:
        return self.raw().get(name) not in (None, "")

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
                    f"{setting_label(name)} is not set; django-pagecall needs it ({key.doc})"
                )
            return key.default
        problem = validation_problem(name, value)
        if problem:
            raise ImproperlyConfigured(problem)
        if name in ("API_URL", "APP_URL"):
            value = value.rstrip("/")
        return value


def validation_problem(name: str, value: object) -> str | None:
    """A sentence naming the key when ``value`` is malformed for it, else ``None``."""
    check = VALIDATORS.get(name)
    if check is None or check[0](value):
        return None
    if name in SECRET_KEYS:
        return f"{setting_label(name)} must be {check[1]}."  # never echo a secret
    return f"{setting_label(name)} must be {check[1]}, not {value!r}."


#: Keys whose values are never repeated in messages.
SECRET_KEYS: Final = frozenset({"API_KEY", "WEBHOOK_SECRETS"})


pagecall_settings: Final = PagecallSettings()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        # Modules that cache objects built from settings (the HTTP client) listen here too.
        from . import client

        client.reset_client()
