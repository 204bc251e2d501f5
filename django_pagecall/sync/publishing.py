"""Whether :func:`~django_pagecall.sync.scheduling.enqueue` publishes a task to the broker:
not during an inline sweep (which runs the follow-ups itself), and not for
``PUBLISH_TIMEOUT`` after a publish failed in this process (the rows say what is left).
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: Seconds a save may spend retrying to queue a task while the broker is unreachable (on top of
#: the broker's own socket timeouts); after such a failure the process queues nothing for as long.
PUBLISH_TIMEOUT = 2.0

_inline_sweep: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "django_pagecall_inline_sweep", default=False
)


@contextmanager
def inline_sweep() -> Iterator[None]:
    """Within it (this thread or task only), tasks are not published: the sweep runs them."""
    token = _inline_sweep.set(True)
    try:
        yield
    finally:
        _inline_sweep.reset(token)


def in_inline_sweep() -> bool:
    return _inline_sweep.get()


_lock = threading.Lock()
_paused_until = 0.0  # time.monotonic() before which nothing is published


def pause(seconds: float) -> None:
    """A publish failed: publish nothing in this process for ``seconds``."""
    global _paused_until
    with _lock:
        _paused_until = max(_paused_until, time.monotonic() + seconds)


def paused_for() -> float:
    """Seconds left of the pause; 0.0 when tasks are published."""
    return max(_paused_until - time.monotonic(), 0.0)


def resume() -> None:
    """End the pause (a forked child starts without its parent's; tests start without one)."""
    global _paused_until
    with _lock:
        _paused_until = 0.0


os.register_at_fork(after_in_child=resume)
