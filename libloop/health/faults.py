"""Recent faults: a bounded, thread-safe ring buffer shown by ``GET /api/health``.

A device that runs for months must not grow a list of every hiccup, so only the newest
``capacity`` faults are kept; ``total`` still counts every fault since start-up.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fault:
    """One thing that went wrong: when (wall clock), where, and what."""

    time: float
    component: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used by the health snapshot."""
        return {
            "time": self.time,
            "time_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.time)),
            "component": self.component,
            "message": self.message,
        }


class FaultLog:
    """Keeps the newest ``capacity`` faults; safe to record from any thread."""

    def __init__(self, capacity: int = 50, *, wall_clock: Callable[[], float] = time.time) -> None:
        if capacity < 1:
            raise ValueError("a fault log needs a capacity of at least 1")
        self._faults: deque[Fault] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._wall_clock = wall_clock
        self._total = 0

    @property
    def capacity(self) -> int:
        """How many faults are kept."""
        maxlen = self._faults.maxlen
        assert maxlen is not None
        return maxlen

    @property
    def total(self) -> int:
        """How many faults were recorded since start-up, including those dropped."""
        with self._lock:
            return self._total

    def record(self, component: str, message: str) -> Fault:
        """Remember a fault; the oldest one is dropped when the buffer is full."""
        fault = Fault(self._wall_clock(), component, message)
        with self._lock:
            self._faults.append(fault)
            self._total += 1
        return fault

    def recent(self, limit: int | None = None) -> list[Fault]:
        """The newest faults, oldest first (at most ``limit`` of them)."""
        with self._lock:
            faults = list(self._faults)
        return faults if limit is None else faults[-limit:] if limit > 0 else []

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)
