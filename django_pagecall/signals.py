"""The app's public signals. Each is sent once per change, after the transaction that recorded it commits.

Receivers take keyword arguments and ``**kwargs`` (more may be added)::

    from django.dispatch import receiver
    from django_pagecall.signals import room_created

    @receiver(room_created)
    def on_room_created(sender, room, **kwargs): ...

===================== ========= ======================= =====================================
signal                sender    arguments               when
===================== ========= ======================= =====================================
room_created          Room      room                    after ``pagecall_id`` is stored
room_creation_failed  Room      room, error             when the app gives up creating a room
session_joined        Session   session, room           after a ``sessionJoined`` is stored
session_left          Session   session, room           after a ``sessionLeft`` is stored
===================== ========= ======================= =====================================
"""

from django.dispatch import Signal

room_created = Signal()
room_creation_failed = Signal()
session_joined = Signal()
session_left = Signal()
