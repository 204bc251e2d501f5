"""Admin for rooms and members (placeholder: the room admin is being written separately).

It will use :class:`.sessions.SessionInline`, :func:`.sessions.with_online` and
:func:`.sessions.online_now` to show sessions and who is online.
"""
