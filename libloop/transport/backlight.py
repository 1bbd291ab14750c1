"""Backlights: an on/off GPIO line, or hardware PWM through ``/sys/class/pwm``.

Most ILI9341 breakouts switch the LEDs through a transistor on the LED/BL pin, so a plain
output line gives on/off and PWM gives dimming. On a Pi, GPIO18 is PWM0 channel 0 once
``dtoverlay=pwm`` (or ``pwm-2chan``) is in ``config.txt``; the kernel then offers
``/sys/class/pwm/pwmchip0``.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

from libloop.errors import DeviceNotFound, DevicePermissionError, TransportError
from libloop.transport.base import OutputPin

__all__ = ["PinBacklight", "SysfsPwmBacklight", "check_level"]


def check_level(percent: int) -> int:
    """Validate a brightness in percent."""
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise ValueError(f"brightness must be an integer from 0 to 100, got {percent!r}")
    return percent


class PinBacklight:
    """A backlight on an output line: on for any level above 0, off at 0."""

    def __init__(self, pin: OutputPin) -> None:
        self.pin = pin
        self.level = 0

    def __repr__(self) -> str:
        return f"<PinBacklight {self.pin!r} level={self.level}>"

    def open(self) -> None:
        self.pin.open()

    def close(self) -> None:
        self.pin.close()

    def set_level(self, percent: int) -> None:
        self.pin.set(check_level(percent) > 0)
        self.level = percent


class SysfsPwmBacklight:
    """A dimmable backlight on a hardware PWM channel through the kernel's sysfs interface.

    Args:
        chip: the ``pwmchipN`` number.
        channel: the channel on that chip (GPIO18 is channel 0 of PWM0 on a Pi).
        period_ns: PWM period; 1 ms (1 kHz) is flicker-free for the eye and quiet for the LEDs.
        root: the sysfs class directory (tests pass a temporary directory).
        sleep: how to wait for udev to fix the permissions of a freshly exported channel.
    """

    #: How long to wait for udev after exporting a channel, in total.
    EXPORT_WAIT_S = 1.0

    def __init__(
        self,
        chip: int = 0,
        channel: int = 0,
        *,
        period_ns: int = 1_000_000,
        root: str | Path = "/sys/class/pwm",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if period_ns <= 0:
            raise ValueError(f"period_ns must be positive, got {period_ns}")
        self.chip_dir = Path(root) / f"pwmchip{chip}"
        self.channel = channel
        self.period_ns = period_ns
        self.level = 0
        self._sleep = sleep
        self._open = False

    @property
    def channel_dir(self) -> Path:
        return self.chip_dir / f"pwm{self.channel}"

    def __repr__(self) -> str:
        return f"<SysfsPwmBacklight {self.channel_dir} level={self.level}>"

    def _write(self, name: str, value: int) -> None:
        path = self.channel_dir / name
        try:
            path.write_text(f"{value}\n")
        except PermissionError:
            raise DevicePermissionError(
                f"Permission denied writing {path}; add this user to the gpio group "
                "('sudo usermod -aG gpio $USER') and log in again."
            ) from None
        except OSError as exc:
            raise TransportError(
                f"Writing {value} to {path} failed ({exc.strerror or exc}); check the PWM overlay."
            ) from exc

    def open(self) -> None:
        """Export the channel if needed, set the period and enable it with the LEDs off.

        Raises:
            DeviceNotFound: the PWM chip does not exist (no ``dtoverlay=pwm``).
            DevicePermissionError: the sysfs files are not writable by this user.
        """
        if self._open:
            return
        if not self.chip_dir.is_dir():
            raise DeviceNotFound(
                f"The PWM chip {self.chip_dir} does not exist; add 'dtoverlay=pwm,pin=18,func=2' to "
                "/boot/firmware/config.txt and reboot, or use an on/off backlight pin."
            )
        if not self.channel_dir.is_dir():
            try:
                (self.chip_dir / "export").write_text(f"{self.channel}\n")
            except PermissionError:
                raise DevicePermissionError(
                    f"Permission denied exporting PWM channel {self.channel} of {self.chip_dir}; "
                    "add this user to the gpio group ('sudo usermod -aG gpio $USER') and log in again."
                ) from None
            except OSError as exc:
                if exc.errno != errno.EBUSY:  # EBUSY: already exported by someone else
                    raise TransportError(
                        f"Exporting PWM channel {self.channel} failed ({exc}); check the overlay."
                    ) from exc
        self._wait_for_udev()
        self._write("duty_cycle", 0)  # duty must never exceed the period, so lower it first
        self._write("period", self.period_ns)
        self._write("enable", 1)
        self._open = True

    def _wait_for_udev(self) -> None:
        """A new channel's files appear owned by root and udev fixes them shortly after."""
        waited = 0.0
        step = 0.05
        period = self.channel_dir / "period"
        while waited < self.EXPORT_WAIT_S and not (period.exists() and _writable(period)):
            self._sleep(step)
            waited += step

    def set_level(self, percent: int) -> None:
        """Set the duty cycle to ``percent`` of the period."""
        check_level(percent)
        if not self._open:
            raise TransportError(f"The PWM backlight {self.channel_dir} is not open; call open() first.")
        self._write("duty_cycle", self.period_ns * percent // 100)
        self.level = percent

    def close(self) -> None:
        """Turn the LEDs off and disable the channel (it stays exported)."""
        if not self._open:
            return
        self._open = False
        try:
            self._write("duty_cycle", 0)
            self._write("enable", 0)
        except (TransportError, DevicePermissionError):
            pass
        self.level = 0


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)
