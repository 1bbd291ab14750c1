"""``loop doctor``'s findings about the Pi's SPI clock, the backlight's PWM, GPIO chips and the sweep.

Each finding is a :class:`Check`: what was checked, whether it is fine, what was seen, and
what to do about it. The facts behind them live with the code that uses them
(``libloop.transport.spiclock``, ``libloop.transport.pwm``, ``libloop.sweep``).
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from libloop.transport.pwm import RealSysfs, SysfsFiles, find_pwm, overlay_line
from libloop.transport.spiclock import SpiController, controller_for_model, mhz

if TYPE_CHECKING:
    from libloop.sweep import SweepResult, SweepStep
    from loopapp.config import Config
    from loopapp.hardware import Hardware

Runner = Callable[..., "subprocess.CompletedProcess[str]"]

__all__ = [
    "Check",
    "check_clock",
    "check_link",
    "check_pwm",
    "gpio_chip_label",
    "spi_clock_info",
    "spi_sweep",
]

# linux/gpio.h: struct gpiochip_info { char name[32]; char label[32]; __u32 lines; } and
# GPIO_GET_CHIPINFO_IOCTL = _IOR(0xB4, 0x01, struct gpiochip_info).
_CHIPINFO = struct.Struct("32s32sI")
_GPIO_GET_CHIPINFO_IOCTL = (2 << 30) | (_CHIPINFO.size << 16) | (0xB4 << 8) | 0x01


@dataclass(frozen=True)
class Check:
    """One check's verdict; ``fix`` says what to do when ``ok`` is False."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, object]:
        """The JSON shape: ``{"check", "ok", "detail", "fix"}``."""
        return {"check": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}


# --- GPIO chip labels ---------------------------------------------------------------------


def gpio_chip_label(chip: Path, sysfs: Path) -> str | None:
    """A gpiochip's label: from libgpiod, else the character device itself, else sysfs.

    The sysfs fallback follows the chip's device: on 6.6+ kernels the legacy class entry is
    named after the chip's global base (``gpiochip512``), not after ``/dev/gpiochip0``, and it
    lives next to the chip under the same parent device.
    """
    try:
        import gpiod  # lazily: doctor must run where the pi extra is missing

        with gpiod.Chip(str(chip)) as handle:
            return str(handle.get_info().label)
    except Exception:
        pass
    label = _label_by_ioctl(chip)
    if label:
        return label
    device = sysfs / "bus/gpio/devices" / chip.name
    try:
        parent = Path(os.path.realpath(device)).parent
    except OSError:
        return None
    for entry in sorted(parent.glob("gpio/gpiochip*/label")):
        try:
            return entry.read_text().strip()
        except OSError:
            continue
    return None


def _label_by_ioctl(chip: Path) -> str | None:
    """GPIO_GET_CHIPINFO_IOCTL on the chip's character device (no library needed)."""
    try:
        fd = os.open(chip, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = bytearray(_CHIPINFO.size)
        fcntl.ioctl(fd, _GPIO_GET_CHIPINFO_IOCTL, info)
    except OSError:
        return None
    finally:
        os.close(fd)
    _, label, _ = _CHIPINFO.unpack(bytes(info))
    return label.split(b"\0", 1)[0].decode(errors="replace") or None


# --- the SPI clock ------------------------------------------------------------------------


def _measured_core_hz(run: Runner) -> int | None:
    """The VPU core clock now (``vcgencmd measure_clock core``), which the Pi 0-4 SPI divides."""
    try:
        done = run(
            ["vcgencmd", "measure_clock", "core"], capture_output=True, text=True, timeout=3, check=False
        )
        if done.returncode == 0:
            return int(done.stdout.strip().rpartition("=")[2])
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return None


def _controller(model: str | None, run: Runner) -> tuple[SpiController | None, str]:
    controller = controller_for_model(model)
    note = ""
    if controller is not None and controller.driver == "spi-bcm2835":
        measured = _measured_core_hz(run)
        if measured and abs(measured - controller.source_hz) > controller.source_hz // 100:
            note = f"; the core clock runs at {mhz(measured)}, not the usual {mhz(controller.source_hz)}"
            controller = SpiController(controller.driver, measured, controller.model)
    return controller, note


def spi_clock_info(model: str | None, speed_hz: int, read_hz: int, run: Runner) -> dict[str, object]:
    """The clocks a requested one becomes on this board, for ``loop doctor --json``."""
    controller, note = _controller(model, run)
    if controller is None:
        return {"model": model, "controller": None, "requested_hz": speed_hz, "clock_hz": speed_hz,
                "read_clock_hz": read_hz, "divider": None}  # fmt: skip
    return {
        "model": model,
        "controller": controller.describe() + note,
        "requested_hz": speed_hz,
        "clock_hz": controller.effective_hz(speed_hz),
        "read_clock_hz": controller.effective_hz(read_hz),
        "divider": controller.divider(speed_hz),
    }


def check_clock(model: str | None, speed_hz: int, run: Runner) -> Check:
    """What the requested SPI clock really is on this board."""
    controller, note = _controller(model, run)
    asked = mhz(speed_hz)
    if controller is None:
        return Check(
            "SPI clock", True, f"{asked} requested; not a Raspberry Pi, so the real clock is not known"
        )
    real = controller.effective_hz(speed_hz)
    detail = (
        f"{asked} requested runs at {mhz(real)}: {controller.describe()} divided by "
        f"{controller.divider(speed_hz)}{note}"
    )
    return Check("SPI clock", True, detail + "; loop doctor --spi-sweep finds the fastest this module takes")


def check_link(spi: Mapping[str, Any] | None) -> Check | None:
    """The running device's SPI state (None when no device is running)."""
    if spi is None:
        return None
    if spi.get("degraded"):
        return Check(
            "SPI transfers",
            False,
            f"the running device is degraded: {spi.get('reason')}",
            "Update the kernel and firmware (sudo apt full-upgrade) and reboot; the device tries full-size "
            "transfers again by itself meanwhile",
        )
    return Check(
        "SPI transfers", True, f"the running device sends up to {spi.get('max_transfer')} bytes a transfer"
    )


# --- the backlight ------------------------------------------------------------------------


def check_pwm(sysfs: Path, gpio: int, mode: str, *, files: SysfsFiles | None = None, user: str = "") -> Check:
    """Whether the backlight pin can dim through hardware PWM, and how to make it."""
    if mode == "pin":
        return Check(
            "backlight PWM", True, f'GPIO{gpio} is switched on and off (wiring.backlight_pwm = "pin")'
        )
    fs = files or RealSysfs()
    found = find_pwm(gpio, root=sysfs / "class/pwm", files=fs)
    line = overlay_line(gpio)
    if found is None:
        fix = (
            f"Add {line} to /boot/firmware/config.txt and reboot, for brightness 0-100"
            if line
            else f"GPIO{gpio} has no hardware PWM; move the backlight to GPIO18 (header pin 12) to dim it"
        )
        return Check("backlight PWM", False, f"no PWM chip drives GPIO{gpio}: brightness is on/off", fix)
    export = found.chip_dir / "export"
    if not fs.writable(export):
        who = user or "this user"
        return Check(
            "backlight PWM",
            False,
            f"{found.describe()} exists but {who} cannot write {export}",
            f"sudo usermod -aG gpio {user or '$USER'} and log in again (Raspberry Pi OS's udev rules give "
            "/sys/class/pwm to the gpio group)",
        )
    return Check("backlight PWM", True, f"GPIO{gpio} dims through {found.describe()}")


# --- the sweep ----------------------------------------------------------------------------


def spi_sweep(
    hardware: Hardware, config: Config, *, progress: Callable[[SweepStep], None] | None = None
) -> SweepResult:
    """Run the clock sweep on the panel (MISO wired): opens the display, sweeps, closes it."""
    from libloop.display import Display
    from libloop.sweep import ClockedBus, candidate_clocks, sweep
    from libloop.transport.spidev_bus import SpidevBus

    bus = hardware.bus
    if not isinstance(bus, SpidevBus):
        raise TypeError("the sweep needs a SpidevBus")
    display = Display(
        bus,
        hardware.dc,
        hardware.reset,
        hardware.backlight,
        bgr=config.display.bgr,
        invert=config.display.invert,
    )
    with display:
        clocked: ClockedBus = bus
        return sweep(display, clocked, candidate_clocks(bus.controller), progress=progress)


def print_step(step: SweepStep) -> None:
    """A progress line per clock tried, on standard error."""
    verdict = "ok" if step.ok else f"{step.wrong} of {step.total} bytes wrong"
    print(f"  {mhz(step.clock_hz):>10}: {verdict}", file=sys.stderr, flush=True)
