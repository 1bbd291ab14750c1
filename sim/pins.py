"""Fake output lines and a fake dimmable backlight that record what was done to them.

Like gpiozero's mock pins: every level change is kept with its timestamp (``states``) so a
test can check a reset pulse's width or that D/C was low for a command byte, and a pin can be
told to fail, the way a GPIO chip that went away would.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence

from libloop.clock import Clock, FakeClock
from libloop.errors import TransportError
from libloop.transport.backlight import check_level

__all__ = ["FakeBacklight", "FakePin"]


def _pin_error(name: str, code: int) -> TransportError:
    return TransportError(f"Fake line {name} failed ({os.strerror(code)}); injected by the test.")


class FakePin:
    """An ``OutputPin`` in memory.

    Args:
        name: for messages and reprs ("dc", "reset").
        initial: the level driven by ``open()``.
        clock: where timestamps come from (default: a private ``FakeClock``).
        on_change: called with the new level whenever the level changes (the wiring connects
            RESET and the backlight to the panel this way).
        history_limit: keep about this many of the newest ``states`` (None: all; a
            simulator that runs for days must not keep every D/C toggle).

    Attributes:
        states: ``(timestamp, level)`` for every level driven, including the one at open.
        opened: True between ``open()`` and ``close()``.
    """

    def __init__(
        self,
        name: str = "pin",
        *,
        initial: bool = False,
        clock: Clock | None = None,
        on_change: Callable[[bool], None] | None = None,
        history_limit: int | None = None,
    ) -> None:
        self.name = name
        self.initial = initial
        self.history_limit = history_limit
        self.value = initial
        self.clock: Clock = clock if clock is not None else FakeClock(0.0)
        self.on_change = on_change
        self.opened = False
        self.states: list[tuple[float, bool]] = []
        self.set_calls = 0
        self._fail_in: int | None = None
        self._fail_errno = errno.EIO
        self._fail_open: int | None = None

    def __repr__(self) -> str:
        return f"<FakePin {self.name} value={int(self.value)} {'open' if self.opened else 'closed'}>"

    def fail_next(self, n: int = 1, *, errno_: int = errno.EIO) -> None:
        """Make the ``n``-th ``set()`` from now fail with ``TransportError``, as a ``GpiodPin`` would."""
        if n < 1:
            raise ValueError("n counts from 1")
        self._fail_in = n
        self._fail_errno = errno_

    def fail_open(self, errno_: int = errno.EBUSY) -> None:
        """Make the next ``open()`` fail with ``TransportError`` (EBUSY: the line is in use)."""
        self._fail_open = errno_

    def open(self) -> None:
        if self._fail_open is not None:
            code, self._fail_open = self._fail_open, None
            raise _pin_error(self.name, code)
        if self.opened:
            return
        self.opened = True
        self._record(self.initial)

    def close(self) -> None:
        self.opened = False

    def set(self, value: bool) -> None:
        if not self.opened:
            raise TransportError(f"Fake line {self.name} is not open; call open() first.")
        self.set_calls += 1
        if self._fail_in is not None:
            self._fail_in -= 1
            if self._fail_in == 0:
                self._fail_in = None
                raise _pin_error(self.name, self._fail_errno)
        self._record(bool(value))

    def _record(self, value: bool) -> None:
        changed = value != self.value or not self.states
        self.value = value
        self.states.append((self.clock.monotonic(), value))
        limit = self.history_limit
        if limit is not None and len(self.states) > 2 * limit:
            del self.states[:-limit]  # amortised: trimmed once every `limit` records
        if changed and self.on_change is not None:
            self.on_change(value)

    def levels(self) -> list[bool]:
        """The levels driven so far, without timestamps."""
        return [v for _, v in self.states]

    def assert_states(self, expected: Sequence[bool]) -> None:
        """Check the levels driven so far, collapsing repeats of the same level."""
        collapsed: list[bool] = []
        for v in self.levels():
            if not collapsed or collapsed[-1] != v:
                collapsed.append(v)
        if collapsed != list(expected):
            raise AssertionError(f"{self.name}: expected levels {list(expected)}, got {collapsed}")


class FakeBacklight:
    """A dimmable ``Backlight`` in memory; ``levels`` records ``(timestamp, percent)``."""

    def __init__(self, *, clock: Clock | None = None, on_change: Callable[[int], None] | None = None) -> None:
        self.level = 0
        self.opened = False
        self.clock: Clock = clock if clock is not None else FakeClock(0.0)
        self.on_change = on_change
        self.levels: list[tuple[float, int]] = []

    def __repr__(self) -> str:
        return f"<FakeBacklight level={self.level}>"

    def open(self) -> None:
        self.opened = True

    def close(self) -> None:
        self.opened = False

    def set_level(self, percent: int) -> None:
        if not self.opened:
            raise TransportError("The fake backlight is not open; call open() first.")
        self.level = check_level(percent)
        self.levels.append((self.clock.monotonic(), percent))
        if self.on_change is not None:
            self.on_change(percent)
