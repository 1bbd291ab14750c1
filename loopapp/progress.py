"""A progress bar for the terminal: redrawn in place on a TTY, a line every 10 % otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Shows ``label [#####.....]  42 %`` on ``stream`` (standard error by default).

    Call the instance with a fraction 0..1; ``close()`` ends the line. Fractions going
    backwards are ignored, so the bar never jumps back.
    """

    def __init__(self, label: str, *, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self._shown = -1.0
        self._last_draw = 0.0

    def __call__(self, fraction: float) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        if fraction < self._shown:
            return
        if self.tty:
            now = time.monotonic()
            if fraction < 1.0 and now - self._last_draw < 0.05 and fraction - self._shown < 0.05:
                return
            self._last_draw = now
            filled = round(fraction * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {fraction * 100:3.0f} %")
            self.stream.flush()
            self._shown = fraction
        else:
            step = int(fraction * 10)
            if step > int(self._shown * 10) or self._shown < 0:
                self.stream.write(f"{self.label}: {step * 10} %\n")
                self.stream.flush()
                self._shown = fraction

    def close(self) -> None:
        if self.tty and self._shown >= 0:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
