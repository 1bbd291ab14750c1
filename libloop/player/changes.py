"""Change notification for other faces (MQTT): a counter that moves when what ``status()``
reports (other than the statistics) changes, and a wait on it that never slows the loop.

The loop calls :meth:`Changes.note` every turn with a small key of its state; a changed key
bumps the counter under its own condition. The loop only ever *tries* the condition's lock:
a waiter holding it right now (checking the counter, or descheduled on a busy machine) is
told on the next turn instead, so a slow face never delays a frame. ``on_version`` (the
player process publishes the counter in its shared framebuffer) is called with each new value.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Changes"]


class Changes:
    """The counter, its condition and the last key seen."""

    def __init__(self, on_version: Callable[[int], None] | None = None) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.version = 0
        self._key: tuple[object, ...] | None = None
        self.on_version = on_version

    def note(self, key: tuple[object, ...]) -> None:
        """Bump the counter if ``key`` differs from the last one (cheap: called every turn)."""
        if key == self._key:
            return
        if not self.cond.acquire(blocking=False):
            return
        try:
            self._key = key
            self.version += 1
            version = self.version
            self.cond.notify_all()
        finally:
            self.cond.release()
        if self.on_version is not None:
            self.on_version(version)

    def current(self) -> int:
        with self.cond:
            return self.version

    def wait(self, since: int, timeout: float) -> int:
        """Wait until the counter differs from ``since`` (or ``timeout`` passes); return it."""
        with self.cond:
            self.cond.wait_for(lambda: self.version != since, timeout)
            return self.version
