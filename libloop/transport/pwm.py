"""Hardware PWM on the Pi header through the kernel's sysfs interface: which chip, which channel.

Facts (Raspberry Pi ``dtoverlay`` README, ``pwm`` overlay; RP1 peripherals datasheet, GPIO
function table; ``pinctrl funcs`` output on each board):

* The same ``config.txt`` line enables PWM on a header pin on every Pi from the Zero 2 W to
  the Pi 5: ``dtoverlay=pwm,pin=18,func=2``. ``func`` is the BCM2835 function-select code
  (4 = ALT0, 2 = ALT5); the Pi 5's RP1 pin controller maps it to the RP1 function that plays
  the same part, so the line means "PWM on GPIO18" there too.
* Pi Zero to Pi 4: the SoC's PWM block (device ``<base>20c000.pwm``, two channels): GPIO12
  and GPIO18 are channel 0, GPIO13 and GPIO19 channel 1.
* Pi 5: RP1's first PWM block (device ``1f00098000.pwm``, four channels): GPIO12 and 13 are
  channels 0 and 1, GPIO14/15 and GPIO18/19 channels 2 and 3 (``PWM0_CHAN2`` on GPIO18). The
  second block (``...9c000.pwm``) drives the fan and is not ours.
* The ``pwmchipN`` numbers are handed out in probe order and differ between boards and
  kernels, so the chip is found by its device, never by its number.
* Linux sysfs PWM (``Documentation/driver-api/pwm.rst``, ``drivers/pwm/sysfs.c``): writing a
  channel number to ``export`` creates ``pwmN/`` with ``period``, ``duty_cycle``, ``enable``
  and ``polarity`` (EBUSY if already exported); every write is applied at once and refused
  with EINVAL when the period is 0 or the duty cycle is longer than the period; udev then
  gives the new files to the ``gpio`` group (Raspberry Pi OS's ``99-com.rules``), a moment
  after the export.

All file access goes through a :class:`SysfsFiles`, so the simulator runs this same code over
a model of the kernel's behaviour (``sim.pwm``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = [
    "PWM_ROOT",
    "PwmChannel",
    "RealSysfs",
    "SysfsFiles",
    "find_pwm",
    "overlay_line",
]

PWM_ROOT = Path("/sys/class/pwm")

# (suffix of the PWM block's device name, GPIO -> channel) for the blocks on the header.
_BLOCKS: tuple[tuple[str, dict[int, int]], ...] = (
    ("20c000.pwm", {12: 0, 13: 1, 18: 0, 19: 1}),  # BCM2835/6/7 and BCM2711
    ("98000.pwm", {12: 0, 13: 1, 14: 2, 15: 3, 18: 2, 19: 3}),  # RP1 PWM0 (Pi 5)
)
# GPIO -> the pwm overlay's func (BCM2835 function-select encoding: ALT0 = 4, ALT5 = 2).
_OVERLAY_FUNC = {12: 4, 13: 4, 18: 2, 19: 2}


class SysfsFiles(Protocol):
    """How sysfs is read and written (the real files, or the simulator's model of them)."""

    def read(self, path: Path) -> str: ...

    def write(self, path: Path, text: str) -> None:
        """Write ``text``; errors are ``OSError`` with the errno the kernel gives."""
        ...

    def is_dir(self, path: Path) -> bool: ...

    def writable(self, path: Path) -> bool: ...

    def children(self, path: Path) -> list[str]: ...

    def device_name(self, chip_dir: Path) -> str:
        """The name of the device behind a ``pwmchipN`` directory (``fe20c000.pwm``)."""
        ...


class RealSysfs:
    """The kernel's files."""

    def read(self, path: Path) -> str:
        return path.read_text()

    def write(self, path: Path, text: str) -> None:
        with open(path, "w") as out:  # one write(2): sysfs takes each write whole
            out.write(text)

    def is_dir(self, path: Path) -> bool:
        return path.is_dir()

    def writable(self, path: Path) -> bool:
        return os.access(path, os.W_OK)

    def children(self, path: Path) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except OSError:
            return []

    def device_name(self, chip_dir: Path) -> str:
        return Path(os.path.realpath(chip_dir / "device")).name


@dataclass(frozen=True, slots=True)
class PwmChannel:
    """A PWM channel wired to a header pin."""

    chip_dir: Path
    channel: int
    gpio: int
    device: str

    @property
    def channel_dir(self) -> Path:
        return self.chip_dir / f"pwm{self.channel}"

    def describe(self) -> str:
        return f"{self.chip_dir} channel {self.channel} ({self.device})"


def overlay_line(gpio: int) -> str | None:
    """The ``config.txt`` line that routes ``gpio`` to hardware PWM, or None if it cannot be."""
    func = _OVERLAY_FUNC.get(gpio)
    return None if func is None else f"dtoverlay=pwm,pin={gpio},func={func}"


def channel_for(device: str, gpio: int) -> int | None:
    """The channel of the PWM block ``device`` that drives ``gpio``, if that block drives it."""
    for suffix, pins in _BLOCKS:
        if device.endswith(suffix):
            return pins.get(gpio)
    return None


def find_pwm(gpio: int, *, root: Path = PWM_ROOT, files: SysfsFiles | None = None) -> PwmChannel | None:
    """The PWM channel that drives ``gpio``, or None when no enabled PWM block does.

    A block only appears once an overlay enabled it, so None means "add the overlay".
    """
    fs = files or RealSysfs()
    for name in fs.children(root):
        if not name.startswith("pwmchip"):
            continue
        chip_dir = root / name
        try:
            device = fs.device_name(chip_dir)
        except OSError:
            continue
        channel = channel_for(device, gpio)
        if channel is not None:
            return PwmChannel(chip_dir, channel, gpio, device)
    return None
