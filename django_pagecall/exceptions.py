"""Exceptions raised by the Pagecall client; callers decide from the class alone.
:class:`PagecallRefused`: Pagecall said no. :class:`PagecallTransientError`: not carried out,
try again. :class:`PagecallAmbiguousError`: may have been carried out, look before sending it
again. :class:`PagecallResponseError`: an answer that cannot be read. See docs/client.md.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class PagecallError(Exception):
    """Base class of every error the client raises."""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        status: int | None = None,
        body: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.status = status
        self.body = body

    def __str__(self) -> str:
        where = f"{self.method} {self.path}".strip()
        status = f" [{self.status}]" if self.status is not None else ""
        return f"{where}{status}: {self.message}" if where else self.message


class PagecallRefused(PagecallError):
    """Pagecall answered 4xx: the request was refused and carried out nothing."""


class PagecallTransientError(PagecallError):
    """The request was not carried out; sending it again is safe."""


class PagecallAmbiguousError(PagecallError):
    """The request may or may not have been carried out."""


class PagecallResponseError(PagecallError):
    """Pagecall answered 2xx with a body the client cannot read."""


class WorkspaceNotConfigured(PagecallRefused, ImproperlyConfigured):
    """A room names a workspace that ``PAGECALL`` does not configure; nothing was sent.

    A refusal, so every caller that handles Pagecall's refusals (a room marked failed, an
    update's error kept) handles it; and a configuration error, which it is.
    """
