"""A Pagecall emulator: Pagecall's REST API in memory, over real HTTP on loopback.

``with Emulator(api_key="test-api-key") as emu:`` serves it on a free port, ``emu.url`` being the
API base URL and ``emu.app_url`` that of the meeting pages. Faults, participants, the control API
and the ``pagecall_emulator`` pytest fixture: docs/testing.md.
"""

from .model import DEPRECATED, EmulatorError
from .server import DEFAULT_API_KEY, Emulator
from .webhooks import Delivery

__all__ = ["DEFAULT_API_KEY", "DEPRECATED", "Delivery", "Emulator", "EmulatorError"]
