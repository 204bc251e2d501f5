"""Fault injection: answers the emulator gives instead of (or on top of) the real one.

:class:`Fault` (which requests it hits, what it does) and :class:`FaultList`, consumed in the
order injected. Not thread-safe by itself: the emulator calls it under its state lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

DROPS = ("before", "after")


def normalize_path(path: str, base_path: str = "/v1") -> str:
    """``"/v1/rooms/abc/?x=1"`` and ``"rooms/abc"`` both become ``"/rooms/abc"``."""
    path = unquote(urlsplit(path).path) if "?" in path else unquote(path)
    path = "/" + path.strip("/")
    if base_path and (path == base_path or path.startswith(base_path + "/")):
        path = path[len(base_path) :] or "/"
    return path


@dataclass
class Fault:
    """One injected fault; ``times`` is how many more requests it hits (None: forever)."""

    id: int
    method: str
    path: str
    status: int | None
    delay: float
    drop: str | None
    times: int | None
    body: Any
    hits: int = 0

    def matches(self, method: str, template: str | None, path: str) -> bool:
        if self.method not in ("*", method):
            return False
        return self.path == path or (template is not None and self.path == template)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "delay": self.delay,
            "drop": self.drop,
            "times": self.times,
            "body": self.body,
            "hits": self.hits,
        }


class FaultList:
    """Pending faults, first injected first consumed."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(
        self,
        method: str,
        path: str,
        *,
        status: int | None = None,
        delay: float = 0.0,
        drop: str | None = None,
        times: int | None = 1,
        body: Any = None,
    ) -> Fault:
        """Validate and queue a fault; raises :class:`ValueError` on nonsense arguments."""
        if not isinstance(method, str) or not method:
            raise ValueError("method must be an HTTP method name or '*'")
        if not isinstance(path, str) or not path:
            raise ValueError("path must be a route template like '/rooms/{id}' or a concrete path")
        if status is not None and (
            isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599
        ):
            raise ValueError("status must be an HTTP status code (100-599) or None")
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise ValueError("delay must be a number of seconds >= 0")
        if drop is not None and drop not in DROPS:
            raise ValueError("drop must be 'before', 'after' or None")
        if drop is not None and status is not None:
            raise ValueError("give either status or drop, not both")
        if times is not None and (
            isinstance(times, bool) or not isinstance(times, int) or times < 1
        ):
            raise ValueError("times must be a whole number >= 1, or None for forever")
        if status is None and drop is None and not delay:
            raise ValueError("a fault needs a status, a drop or a delay")
        fault = Fault(
            id=self._next_id,
            method=method.upper(),
            path=normalize_path(path),
            status=status,
            delay=float(delay),
            drop=drop,
            times=times,
            body=body,
        )
        self._next_id += 1
        self._faults.append(fault)
        return fault

    def take(self, method: str, template: str | None, path: str) -> Fault | None:
        """The first pending fault hitting this request, consumed once."""
        for fault in self._faults:
            if fault.matches(method, template, path):
                fault.hits += 1
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def clear(self) -> int:
        count = len(self._faults)
        self._faults.clear()
        return count

    def pending(self) -> list[dict[str, Any]]:
        return [f.as_dict() for f in self._faults]
