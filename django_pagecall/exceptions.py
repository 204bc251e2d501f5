"""Exceptions raised by the Pagecall client.

Callers decide what to do from the class alone:

* :class:`PagecallRefused` (4xx): Pagecall said no. Retrying the same request
  will not help; the status and Pagecall's raw body are kept.
* :class:`PagecallTransientError`: the request certainly was not carried out
  (connection refused, connect timeout) or Pagecall failed in a way that
  leaves nothing behind (a 5xx other than 502/504). Safe to retry.
* :class:`PagecallAmbiguousError`: the request was sent and its outcome is
  unknown (read timeout, connection reset, 502, 504). It may have been carried
  out: look before sending it again.
"""

from __future__ import annotations


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
