"""Whether :func:`~django_pagecall.sync.base._enqueue` publishes a task to the broker.

Not during an inline sweep (``pagecall_sync``, the periodic task): the sweep runs the
follow-ups itself, finding them from the rows with :func:`~django_pagecall.sync.pending_work`,
so that a broker that is down cannot hold them back.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

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
