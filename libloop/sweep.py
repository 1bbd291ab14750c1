"""The SPI clock sweep: the fastest write clock this module takes without errors.

Modules differ: the chip itself is specified far below what most boards run it at, and what
works depends on the breakout, the wires and the Pi. With MISO wired, the sweep writes test
patterns at rising clocks (the ones the controller's divider can make) and reads each one back
at the slow, always-valid read clock; the fastest clock at which every byte came back is the
one to configure. It stops at the first clock that fails (faster ones only fail harder),
then puts the clock back as it was and re-initialises the panel (a link driven too fast may
have garbled commands as well as pixels).

A read that comes back all zeros or all ones at the slowest clock means nothing is answering
on MISO (not wired, or the module's SDO is not connected), not an unreliable link.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from libloop.color import rgb565_to_rgb888
from libloop.display import Display
from libloop.errors import TransportError
from libloop.transport.spiclock import SpiController, mhz

__all__ = ["ClockedBus", "SweepResult", "SweepStep", "candidate_clocks", "link_patterns", "sweep"]

U8 = npt.NDArray[np.uint8]

#: The range swept: below 20 MHz every module works; above 130 MHz the Pi's pads do not.
LOW_HZ, HIGH_HZ = 20_000_000, 130_000_000
_FALLBACK = (16, 24, 32, 40, 48, 56, 64, 72, 80, 100, 125)


class ClockedBus(Protocol):
    """A bus whose write clock can be changed (``SpidevBus``)."""

    speed_hz: int

    def set_clock(self, speed_hz: int) -> int: ...


@dataclass(frozen=True, slots=True)
class SweepStep:
    """One clock tried: how many bytes came back wrong out of how many."""

    request_hz: int
    clock_hz: int
    wrong: int
    total: int

    @property
    def ok(self) -> bool:
        return self.wrong == 0

    def to_dict(self) -> dict[str, object]:
        return {"request_hz": self.request_hz, "clock_hz": self.clock_hz, "ok": self.ok,
                "wrong_bytes": self.wrong, "bytes": self.total}  # fmt: skip


@dataclass(frozen=True)
class SweepResult:
    """The clocks tried, the fastest that worked, and why the sweep stopped."""

    steps: list[SweepStep] = field(default_factory=list)
    miso: bool = True
    stopped: str = ""

    @property
    def fastest(self) -> SweepStep | None:
        good = [s for s in self.steps if s.ok]
        return good[-1] if good else None

    def config_line(self) -> str | None:
        """The ``[wiring]`` setting that uses the fastest reliable clock."""
        best = self.fastest
        return None if best is None else f"speed_hz = {best.request_hz}"

    def summary(self) -> str:
        """One sentence for people."""
        if not self.miso:
            return (
                "Nothing answers on MISO (every byte read back is the same), so the sweep cannot judge the "
                "link; wire the module's SDO to GPIO9 (header pin 21) and run it again."
            )
        best = self.fastest
        if best is None:
            return f"Even {mhz(self.steps[0].clock_hz)} gave errors; check the wiring (short wires, common ground)."
        return (
            f"The fastest clock without errors is {mhz(best.clock_hz)} ({self.stopped}); "
            f"put '{self.config_line()}' in the [wiring] section of the config file to use it."
        )

    def to_dict(self) -> dict[str, object]:
        best = self.fastest
        return {
            "miso": self.miso,
            "fastest_hz": None if best is None else best.clock_hz,
            "config": self.config_line(),
            "stopped": self.stopped,
            "summary": self.summary(),
            "steps": [s.to_dict() for s in self.steps],
        }


def candidate_clocks(controller: SpiController | None) -> list[tuple[int, int]]:
    """``(request, effective)`` clocks to try, slowest first: the divider's own steps on a Pi."""
    if controller is None:
        return [(mhz * 1_000_000, mhz * 1_000_000) for mhz in _FALLBACK]
    return controller.clocks(LOW_HZ, HIGH_HZ)


def link_patterns(width: int, height: int, *, seed: int = 1) -> list[bytes]:
    """RGB565 frames that stress a link: toggling every bit, walking bits, and noise."""
    n = width * height
    words = np.empty(n, np.uint16)
    out: list[bytes] = []
    words[0::2], words[1::2] = 0xAAAA, 0x5555  # every bit toggles every clock
    out.append(words.astype(">u2").tobytes())
    words[:] = 1 << (np.arange(n) % 16)  # one bit walks through each position
    out.append(words.astype(">u2").tobytes())
    out.append(np.random.default_rng(seed).integers(0, 65536, n, dtype=np.uint16).astype(">u2").tobytes())
    return out


def _expected(pattern: bytes, width: int, height: int) -> U8:
    """What RAMRD answers for RGB565 pixels: 6-bit levels in the high bits (reset colour LUT)."""
    rgb = rgb565_to_rgb888(np.frombuffer(pattern, np.uint8), width, height).reshape(-1)
    return np.bitwise_and(rgb, np.uint8(0xFC))


def sweep(
    display: Display,
    bus: ClockedBus,
    clocks: Sequence[tuple[int, int]],
    *,
    rounds: int = 2,
    window: tuple[int, int, int, int] | None = None,
    progress: Callable[[SweepStep], None] | None = None,
) -> SweepResult:
    """Try each ``(request, effective)`` clock in order until one gives errors.

    Args:
        display: an opened display whose bus is ``bus`` (its MISO wired).
        bus: the bus, to change the write clock.
        clocks: slowest first (:func:`candidate_clocks`).
        rounds: how many times each pattern is written and read at each clock.
        window: the logical window drawn and read back (default: the whole panel).
        progress: called after each clock.
    """
    if not clocks:
        raise ValueError("there are no clocks to try")
    w, h = display.size
    x0, y0, x1, y1 = window or (0, 0, w - 1, h - 1)
    width, height = x1 - x0 + 1, y1 - y0 + 1
    patterns = link_patterns(width, height)
    expected = [_expected(p, width, height) for p in patterns]
    original = bus.speed_hz
    steps: list[SweepStep] = []
    stopped = "the fastest clock tried"
    miso = True
    try:
        for request, effective in clocks:
            bus.set_clock(request)
            wrong = total = 0
            for _ in range(rounds):
                for pattern, want in zip(patterns, expected, strict=True):
                    try:
                        display.blit(x0, y0, x1, y1, pattern)
                        got = np.frombuffer(display.read_memory(x0, y0, x1, y1), np.uint8) & 0xFC
                    except TransportError:
                        got = np.zeros_like(want)
                    if not steps and len(np.unique(got)) == 1:
                        miso = False
                    wrong += int(np.count_nonzero(got != want))
                    total += len(want)
            step = SweepStep(request, effective, wrong, total)
            steps.append(step)
            if progress is not None:
                progress(step)
            if not miso:
                stopped = "nothing answers on MISO"
                break
            if not step.ok:
                stopped = f"{mhz(effective)} gave errors"
                break
    finally:
        bus.set_clock(original)
        display.reinit()
    return SweepResult(steps, miso, stopped)
