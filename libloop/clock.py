"""Clocks: the real monotonic clock and a fake one for deterministic tests.

Everything that waits or measures time takes a ``Clock`` so tests never sleep. The player
schedules frames on absolute deadlines (``sleep_until``), never on relative sleeps, so
scheduling error does not accumulate.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """A monotonic clock that can wait until a deadline, interruptibly."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    def sleep_until(self, deadline: float, wake: threading.Event | None = None) -> bool:
        """Wait until ``monotonic() >= deadline`` or ``wake`` is set.

        Returns True if woken by the event before the deadline, False when the deadline came.
        """
        ...


class MonotonicClock:
    """The real clock: ``time.monotonic`` and event waits with a timeout."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep_until(self, deadline: float, wake: threading.Event | None = None) -> bool:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return wake.is_set() if wake is not None else False
            if wake is None:
                time.sleep(remaining)
            elif wake.wait(remaining):
                return True


class FakeClock:
    """A clock that only moves when told to, or when someone sleeps on it (auto-advance).

    With ``auto_advance=True`` (the default) ``sleep_until`` jumps the time to the deadline
    at once, which runs a single-threaded loop through hours of schedule in milliseconds.
    ``cost`` lets a test model host work: ``advance`` it from inside a fake transport.
    """

    def __init__(self, start: float = 1000.0, *, auto_advance: bool = True) -> None:
        self._now = start
        self._lock = threading.Condition()
        self.auto_advance = auto_advance
        #: Every deadline slept on, in order (tests inspect the schedule).
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += seconds
            self._lock.notify_all()

    def set(self, now: float) -> None:
        with self._lock:
            if now < self._now:
                raise ValueError("a clock cannot go backwards")
            self._now = now
            self._lock.notify_all()

    def sleep_until(self, deadline: float, wake: threading.Event | None = None) -> bool:
        with self._lock:
            self.sleeps.append(deadline)
            if wake is not None and wake.is_set():
                return True
            if self.auto_advance:
                self._now = max(self._now, deadline)
                return False
            while self._now < deadline:
                if wake is not None and wake.is_set():
                    return True
                # Woken by advance()/set(); a short timed wait also notices `wake` being set.
                self._lock.wait(0.01)
            return False
