"""Shorter waits than the app's own constants, so that the suite does not sit out a production
grace period: applied in the test process and in every worker it starts (tests.celery_app)."""

from __future__ import annotations


def shorten_waits() -> None:
    from django_pagecall import client
    from django_pagecall.sync import outcomes, publishing

    client.CONNECT_RETRIES = 0
    outcomes.AMBIGUOUS_GRACE = 0.3
    publishing.PUBLISH_TIMEOUT = 1.0
