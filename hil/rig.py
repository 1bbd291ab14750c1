"""Hardware rigs for the conformance suite: the simulated rig and a Raspberry Pi with the panel.

The same test bodies (``hil/test_conformance.py``) run over every rig that can load here, the
way gpiozero runs its tests over each pin factory. A rig hands out an opened ``Display`` and,
where it can, what the panel really holds: the simulator's glass, or the chip's frame memory
read back over MISO (RAMRD) on a Pi wired for it.

Environment:
    LOOP_RIG: ``all`` (default), ``sim`` or ``pi`` — which rigs to run.
    LOOP_HIL_CONFIG: a LOOP config file (TOML) with the Pi's wiring; default wiring otherwise.
    LOOP_HIL_MISO: ``1`` when MISO is wired, to verify drawing by reading frame memory back.
    LOOP_HIL_LOCK: the lock file that keeps two runs off the same panel
        (default ``/tmp/loop-hil.lock``).
"""

from __future__ import annotations

import fcntl
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

from libloop.display import Display
from libloop.ili9341 import Rotation

U8 = npt.NDArray[np.uint8]


class RigUnavailable(Exception):
    """This rig cannot run here; the message says why (the test is skipped with it)."""


class Rig(ABC):
    """A panel the suite can drive, and a way (perhaps) to see what it shows."""

    name: str
    #: SPI clock the throughput figure is measured at.
    speed_hz: int = 64_000_000

    @abstractmethod
    def open(self, rotation: Rotation = Rotation.R0) -> Display:
        """An opened, initialised display."""

    @abstractmethod
    def close(self) -> None:
        """Release the hardware."""

    def observe(self, display: Display, x0: int, y0: int, x1: int, y1: int) -> U8 | None:
        """The RGB the panel holds in a logical window (6 bits a channel kept), or None if unknowable."""
        return None

    @property
    def can_observe(self) -> bool:
        return False


def read_back(display: Display, x0: int, y0: int, x1: int, y1: int) -> U8:
    """Read a window of frame memory back (RAMRD/RAMRDC frames at the read clock).

    Returns (h, w, 3) RGB, each channel's 6 high bits.
    """
    raw = display.read_memory(x0, y0, x1, y1)
    w, h = x1 - x0 + 1, y1 - y0 + 1
    pixels = np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3)
    return np.bitwise_and(pixels, np.uint8(0xFC))


class SimRig(Rig):
    """The simulated panel behind the fake spidev device: always available.

    Its module is modelled as a typical one that loses bits above 70 MHz, on a Pi 4's divider
    (62.5 MHz is the fastest clock below that), so the clock sweep has a limit to find.
    """

    name = "sim"
    #: The simulated module's fastest reliable write clock.
    RELIABLE_HZ = 70e6

    def __init__(self) -> None:
        from sim.wiring import SimWiring

        self.wiring = SimWiring(strict=True, reliable_hz=self.RELIABLE_HZ)
        self.display: Display | None = None

    def open(self, rotation: Rotation = Rotation.R0) -> Display:
        self.close()
        self.display = self.wiring.display(rotation=rotation)
        self.display.open()
        return self.display

    def close(self) -> None:
        if self.display is not None:
            self.display.close()
            self.display = None

    @property
    def can_observe(self) -> bool:
        return True

    def observe(self, display: Display, x0: int, y0: int, x1: int, y1: int) -> U8 | None:
        return read_back(display, x0, y0, x1, y1)

    @property
    def violations(self) -> list[object]:
        return list(self.wiring.panel.violations)


def _pi_model() -> str | None:
    try:
        model = Path("/proc/device-tree/model").read_bytes().rstrip(b"\0").decode(errors="replace")
    except OSError:
        return None
    return model if "Raspberry Pi" in model else None


class PiRig(Rig):
    """A Raspberry Pi with the panel on SPI and GPIO, wired as the config says.

    Raises RigUnavailable (with the reason) off a Pi, without SPI, or when another run holds it.
    """

    name = "pi"

    def __init__(self) -> None:
        from loopapp.config import load_config
        from loopapp.hardware import pi_hardware

        model = _pi_model()
        if model is None:
            raise RigUnavailable("no Raspberry Pi here (/proc/device-tree/model does not name one)")
        config_path = os.environ.get("LOOP_HIL_CONFIG")
        self.config = load_config(Path(config_path) if config_path else None)
        w = self.config.wiring
        node = Path(f"/dev/spidev{w.spi_bus}.{w.spi_device}")
        if not node.exists():
            raise RigUnavailable(f"{model} has no {node}: enable SPI (sudo raspi-config nonint do_spi 0)")
        self._lock_file = self._take_lock()
        self.speed_hz = w.speed_hz
        self.hardware = pi_hardware(self.config)
        self.miso = os.environ.get("LOOP_HIL_MISO") == "1"
        self.display: Display | None = None

    @staticmethod
    def _take_lock() -> IO[str]:
        path = os.environ.get("LOOP_HIL_LOCK", "/tmp/loop-hil.lock")
        handle = open(path, "a+")  # noqa: SIM115 - held for the rig's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise RigUnavailable(f"another hardware run holds the panel (lock {path})") from None
        return handle

    def open(self, rotation: Rotation = Rotation.R0) -> Display:
        if self.display is not None:
            self.display.close()  # the lines can be requested by one Display at a time
        hw = self.hardware
        self.display = Display(
            hw.bus, hw.dc, hw.reset, hw.backlight, rotation=rotation, bgr=self.config.display.bgr,
            invert=self.config.display.invert,
        )  # fmt: skip
        self.display.open()
        return self.display

    def close(self) -> None:
        if self.display is not None:
            self.display.close()
        self._lock_file.close()

    @property
    def can_observe(self) -> bool:
        return self.miso

    def observe(self, display: Display, x0: int, y0: int, x1: int, y1: int) -> U8 | None:
        if not self.miso:
            return None
        return read_back(display, x0, y0, x1, y1)


RIGS: dict[str, type[Rig]] = {"sim": SimRig, "pi": PiRig}


def selected_rigs() -> list[str]:
    """The rig names LOOP_RIG asks for."""
    choice = os.environ.get("LOOP_RIG", "all")
    return list(RIGS) if choice == "all" else [name for name in choice.split(",") if name in RIGS]
