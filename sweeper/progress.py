"""A progress line on stderr: done, failed, running and time left."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Redraws one line in a terminal; prints a line every 10% (or 30 s) elsewhere.

    Args:
        total: Trials to run.
        stream: Where to draw; stderr by default.
        enabled: False silences it (``--quiet``).
    """

    WIDTH = 24

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True):
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled and total > 0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = self.failed = self.running = 0
        self.start = time.time()
        self._last_draw = 0.0
        self._last_decile = -1

    def result(self, ok: bool) -> None:
        """Counts one trial that ended; ``ok`` is False for failed/diverged/timed out."""
        self.done += 1
        self.failed += 0 if ok else 1
        self.draw()

    def set_running(self, n: int) -> None:
        """Records how many trials are running."""
        self.running = n
        self.draw()

    def line(self) -> str:
        """The progress line as it would be drawn now."""
        elapsed = time.time() - self.start
        frac = self.done / self.total if self.total else 1.0
        fill = int(round(frac * self.WIDTH))
        bar = "#" * fill + "-" * (self.WIDTH - fill)
        left = "--:--" if self.done == 0 else _clock(elapsed / self.done * (self.total - self.done))
        return (
            f"[{bar}] {self.done}/{self.total} done, {self.failed} failed, "
            f"{self.running} running, {_clock(elapsed)} elapsed, {left} left"
        )

    def draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.time()
        if self.tty:
            if force or now - self._last_draw > 0.2 or self.done == self.total:
                self.stream.write("\r" + self.line() + "\x1b[K")
                self.stream.flush()
                self._last_draw = now
            return
        decile = int(10 * self.done / self.total)
        if force or decile > self._last_decile or now - self._last_draw > 30:
            self._last_decile = decile
            self._last_draw = now
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
