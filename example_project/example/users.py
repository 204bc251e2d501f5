"""How this site names its people at Pagecall (``PAGECALL["USER_ID_FUNCTION"]``).

The default is the user's primary key; usernames read better in the demo's output and the
admin. A real site would pick something that never changes (usernames can).
"""

from __future__ import annotations

from typing import Any


def pagecall_user_id(user: Any) -> str:
    return str(user.get_username())
