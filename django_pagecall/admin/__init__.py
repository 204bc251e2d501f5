"""The app's admin: rooms and members (:mod:`.rooms`), Pagecall users (:mod:`.users`), session
records (:mod:`.sessions`) and webhook deliveries (:mod:`.webhooks`). Importing the package
registers them all."""

from . import pending_actions, rooms, sessions, users, webhooks  # noqa: F401  (registers the ModelAdmins)
