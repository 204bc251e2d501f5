"""The app's public signals, each sent once per change after the transaction that recorded it
commits: rooms created or failed, sessions joined or left, webhooks received, meetings started
and ended. Receivers take ``(sender, **kwargs)``; senders, arguments and when: docs/signals.md.
"""

from django.dispatch import Signal

room_created = Signal()
room_creation_failed = Signal()
session_joined = Signal()
session_left = Signal()
webhook_received = Signal()
meeting_started = Signal()
meeting_ended = Signal()
