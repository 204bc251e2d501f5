"""The app's public signals, each sent once per change after the transaction that recorded it
commits: ``room_created``, ``room_creation_failed``, ``session_joined`` and ``session_left``.
Receivers take ``(sender, **kwargs)``; senders, arguments and when: docs/signals.md.
"""

from django.dispatch import Signal

room_created = Signal()
room_creation_failed = Signal()
session_joined = Signal()
session_left = Signal()
