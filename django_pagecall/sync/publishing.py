"""Whether :func:`~django_pagecall.sync.scheduling.enqueue` publishes a task to the broker:
not during an inline sweep (which runs the follow-ups itself), and not for
``PUBLISH_TIMEOUT`` after a publish failed in this process (the rows say what is left); which
Celery app it publishes with, and what a request left unpublished.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.utils import translation
from django.utils.translation import gettext

if TYPE_CHECKING:
    from celery import Celery

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


def task_app() -> Celery:
    """The Celery app the app's tasks are queued with: the site's current app."""
    from ..tasks import create_room

    app: Celery = create_room.app
    return app


def celery_app_problem(app: Celery) -> str | None:
    """Why ``app`` is not the site's Celery app, or None when it looks like it."""
    # Celery's fallback app, made when a task is used before any app of the site exists.
    if app.main == "default":
        return gettext(
            "django-pagecall's tasks would be queued with Celery's default app, which knows "
            "nothing of the site's Celery settings (it sends them to amqp://guest@localhost//): "
            "the project's Celery app is not imported when Django starts."
        )
    if not app.conf.broker_url:
        return gettext(
            "The Celery app %(app)s has no broker_url (CELERY_BROKER_URL): django-pagecall's "
            "tasks would go to Celery's default broker, amqp://guest@localhost//."
        ) % {"app": repr(app.main)}
    return None


_app_checked = False


def warn_once_about(app: Celery, logger: logging.Logger) -> None:
    """Log :func:`celery_app_problem` at the first publish of this process (the app the tasks
    are bound to does not change afterwards)."""
    global _app_checked
    if _app_checked:
        return
    _app_checked = True
    # The log is in English, like the app's other log records, whatever the request's language.
    with translation.override(None):
        problem = celery_app_problem(app)
    if problem:
        logger.warning("%s See the system check pagecall.W006.", problem)


_unsent: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "django_pagecall_unsent", default=None
)


@contextmanager
def unsent_tasks() -> Iterator[list[str]]:
    """Within it, the names of the tasks left unpublished (broker down) collect in the list."""
    collected: list[str] = []
    token = _unsent.set(collected)
    try:
        yield collected
    finally:
        _unsent.reset(token)


def note_unsent(task_name: str) -> None:
    collected = _unsent.get()
    if collected is not None:
        collected.append(task_name)
