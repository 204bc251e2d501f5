"""``python -m django_pagecall.emulator``: run the Pagecall emulator as a process.

Prints ``Pagecall emulator listening on http://HOST:PORT/v1`` once it accepts connections, then
``Pagecall emulator meeting pages at http://HOST:PORT`` (each URL the last word of its line),
and serves until SIGINT or SIGTERM. ``--port 0`` picks a free port.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from . import control
from .server import DEFAULT_API_KEY, Emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m django_pagecall.emulator",
        description=__doc__,
        epilog="control API (no key needed):\n"
        + control.route_list()
        + "\n\nmeeting pages: /meet and /replay ?room_id=...&access_token=...",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--port", type=int, default=8790, help="port to listen on (0: any free port)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (loopback only by default)"
    )
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the API key clients must send")
    parser.add_argument(
        "--allow-remote", action="store_true", help="allow binding a non-loopback address"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    try:
        emulator = Emulator(
            api_key=args.api_key,
            host=args.host,
            port=args.port,
            allow_remote=args.allow_remote,
            verbose=args.verbose,
        )
        emulator.start()
    except (ValueError, OSError) as exc:
        print(f"pagecall emulator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"Pagecall emulator listening on {emulator.url}", flush=True)
    print(f"Pagecall emulator meeting pages at {emulator.app_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
