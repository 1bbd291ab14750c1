"""What SPI clock a Raspberry Pi really puts on the wire for a requested one.

An SPI controller divides a fixed source clock, so a requested ``speed_hz`` becomes the
fastest rate the divider can make that is not above it. The facts, per controller:

* **Pi Zero to Pi 4: ``spi-bcm2835``** (``drivers/spi/spi-bcm2835.c``, ``transfer_one``).
  The source is the VPU core clock; the divider is ``DIV_ROUND_UP(core, speed)`` rounded up
  to an even number (2 at most the fastest, 65536 the slowest), and the effective rate is
  ``core / divider``. The driver caches the core clock when it probes.
* **Pi 5: the RP1's DesignWare SSI, ``spi-dw``** (``drivers/spi/spi-dw-core.c``,
  ``dw_spi_update_config``): ``(DIV_ROUND_UP(ssi_clk, speed) + 1) & 0xfffe`` — also even, at
  most 0xfffe — over RP1's ``clk_sys`` of 200 MHz (``drivers/clk/clk-rp1.c``).
* **Core clocks** (Raspberry Pi ``config.txt`` documentation, overclocking options,
  ``core_freq`` defaults): 250 MHz on the Pi 1 and 2, 400 MHz on the Pi Zero, Zero 2 W and
  Pi 3, 500 MHz on the Pi 4 / 400 / CM4.

So the 64 MHz the config asks for by default is 62.5 MHz on a Pi 4 (500/8) and 50 MHz on a
Pi 3, a Zero 2 W (400/8) and a Pi 5 (200/4). The figures are nominal: an overclock, a
``core_freq`` line or ``enable_uart=1`` (which pins the core at 250 MHz on the Pi 3 family)
changes them, which is what ``loop doctor --spi-sweep`` is for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MODEL_PATH", "SpiController", "controller_for_model", "mhz", "read_model"]

MODEL_PATH = Path("/proc/device-tree/model")
MHZ = 1_000_000


def mhz(hz: float) -> str:
    """A clock for people: "62.5 MHz", "83.33 MHz", "5.952 MHz"."""
    return f"{hz / MHZ:.4g} MHz"


@dataclass(frozen=True, slots=True)
class SpiController:
    """An SPI controller: its driver, its source clock and how it divides it.

    Attributes:
        driver: the kernel driver (``spi-bcm2835`` or ``spi-dw``).
        source_hz: the clock the divider works on.
        model: the board this was chosen for (for messages).
    """

    driver: str
    source_hz: int
    model: str = ""

    @property
    def max_divider(self) -> int:
        return 65536 if self.driver == "spi-bcm2835" else 0xFFFE

    def divider(self, requested_hz: int) -> int:
        """The divider the driver programs for ``requested_hz`` (always even)."""
        if requested_hz <= 0:
            return self.max_divider
        ratio = -(-self.source_hz // requested_hz)  # DIV_ROUND_UP
        if self.driver == "spi-bcm2835":
            if requested_hz >= self.source_hz // 2:
                return 2
            ratio += ratio % 2
            return ratio if ratio < 65536 else 65536
        return max(2, min(ratio + 1, 0xFFFE) & 0xFFFE)

    def effective_hz(self, requested_hz: int) -> int:
        """The clock on the wire for a requested one (rounded down to a whole hertz)."""
        return self.source_hz // self.divider(requested_hz)

    def request_for(self, divider: int) -> int:
        """The smallest request that the driver turns into ``divider`` (an even number)."""
        if divider < 2 or divider % 2:
            raise ValueError(f"the divider is an even number of at least 2, not {divider}")
        return math.ceil(self.source_hz / divider)

    def clocks(self, low_hz: int, high_hz: int) -> list[tuple[int, int]]:
        """``(request, effective)`` for every clock the divider makes between the bounds, slowest first."""
        out: list[tuple[int, int]] = []
        for divider in range(self.max_divider - self.max_divider % 2, 1, -2):
            effective = self.source_hz // divider
            if low_hz <= effective <= high_hz:
                out.append((self.request_for(divider), effective))
        return out

    def describe(self) -> str:
        """One phrase: "spi-bcm2835 on a 500 MHz core clock (Raspberry Pi 4 Model B)"."""
        where = f" ({self.model})" if self.model else ""
        source = "RP1 clk_sys" if self.driver == "spi-dw" else "core clock"
        return f"{self.driver} on a {mhz(self.source_hz)} {source}{where}"


# Model-name prefixes (as /proc/device-tree/model spells them) -> (driver, source clock).
_MODELS: tuple[tuple[str, str, int], ...] = (
    ("Raspberry Pi 5", "spi-dw", 200 * MHZ),
    ("Raspberry Pi 500", "spi-dw", 200 * MHZ),
    ("Raspberry Pi Compute Module 5", "spi-dw", 200 * MHZ),
    ("Raspberry Pi 4", "spi-bcm2835", 500 * MHZ),
    ("Raspberry Pi 400", "spi-bcm2835", 500 * MHZ),
    ("Raspberry Pi Compute Module 4", "spi-bcm2835", 500 * MHZ),
    ("Raspberry Pi 3", "spi-bcm2835", 400 * MHZ),
    ("Raspberry Pi Compute Module 3", "spi-bcm2835", 400 * MHZ),
    ("Raspberry Pi Zero", "spi-bcm2835", 400 * MHZ),  # Zero, Zero W and Zero 2 W
    ("Raspberry Pi 2", "spi-bcm2835", 250 * MHZ),
    ("Raspberry Pi Model", "spi-bcm2835", 250 * MHZ),  # Pi 1 "Model B Rev 2", "Model A Plus"
    ("Raspberry Pi Compute Module", "spi-bcm2835", 250 * MHZ),
)


def controller_for_model(model: str | None) -> SpiController | None:
    """The SPI controller of a Raspberry Pi model name, or None for anything else."""
    if not model:
        return None
    for prefix, driver, source in sorted(_MODELS, key=lambda m: -len(m[0])):
        if model.startswith(prefix):
            return SpiController(driver, source, model)
    return None


def read_model(path: Path = MODEL_PATH) -> str | None:
    """This board's model name from the device tree, or None off a board that has one."""
    try:
        return path.read_bytes().rstrip(b"\0").decode(errors="replace").strip() or None
    except OSError:
        return None
