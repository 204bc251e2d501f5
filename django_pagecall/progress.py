"""A small progress bar for management commands (no dependency): redrawn in place on a terminal,
a line every tenth of the way otherwise, so logs from CI stay short. The total may grow on the
way (a sweep finds follow-ups as it runs)."""

from __future__ import annotations

from typing import TextIO


class Progress:
    def __init__(self, total: int, stream: TextIO, label: str = "", width: int = 30) -> None:
        self.total = total
        self.stream = stream
        self.label = label
        self.width = width
        self.count = 0
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last_tenth = -1

    def advance(self, step: int = 1, total: int | None = None) -> None:
        """Count ``step`` more done; ``total``, when given, is the total as now known (work
        found on the way makes it grow)."""
        self.count += step
        if total is not None:
            self.total = total
        if self._tty:
            done = self.width * self.count // max(self.total, 1)
            bar = "#" * done + "." * (self.width - done)
            self.stream.write(f"\r{self.label} [{bar}] {self.count}/{self.total}")
            if self.count >= self.total:
                self.stream.write("\n")
            self.stream.flush()
            return
        tenth = 10 * self.count // max(self.total, 1)
        if tenth != self._last_tenth or self.count >= self.total:
            self._last_tenth = tenth
            self.stream.write(f"{self.label} {self.count}/{self.total}\n")
