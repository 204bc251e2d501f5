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
        "CONNECT_RETRIES",
        2,
        "Transport-level retries, for connection errors only (a request that never left).",
    ),
    Key("PAGE_SIZE", 100, "Items asked for per page when iterating over Pagecall's paged lists."),
)

_BY_NAME: Final = {k.name: k for k in KEYS}


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
    "CONNECT_RETRIES": (_non_negative_int, "a whole number >= 0"),
    "PAGE_SIZE": (lambda v: _non_negative_int(v) and v > 0, "a whole number >= 1"),
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
            key = _BY_NAME[name]
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
    return (
        f"{setting_label(name)} must be {check[1]}, not {value!r}."
        if name != "API_KEY"
        else (
            f"{setting_label(name)} must be {check[1]}."  # never echo a secret
        )
    )


pagecall_settings: Final = PagecallSettings()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        # Modules that cache objects built from settings (the HTTP client) listen here too.
        from . import client

        client.reset_client()
