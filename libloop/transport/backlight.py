"""Backlights: an on/off GPIO line, hardware PWM through ``/sys/class/pwm``, or whichever works.

Most ILI9341 breakouts switch the LEDs through a transistor on the LED/BL pin, so a plain
output line gives on/off and PWM gives dimming. On every Pi, GPIO18 is a hardware PWM output
once ``dtoverlay=pwm,pin=18,func=2`` is in ``config.txt`` (see ``libloop.transport.pwm`` for
the chip and channel per board). :class:`AutoBacklight` uses PWM when it is there and falls
back to the on/off line, saying why.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from pathlib import Path

from libloop.errors import DeviceNotFound, DevicePermissionError, TransportError
from libloop.transport.base import OutputPin
from libloop.transport.pwm import PWM_ROOT, PwmChannel, RealSysfs, SysfsFiles, find_pwm, overlay_line

__all__ = ["AutoBacklight", "PinBacklight", "SysfsPwmBacklight", "check_level"]

log = logging.getLogger(__name__)

_GROUP_FIX = "add this user to the gpio group ('sudo usermod -aG gpio $USER') and log in again"


def check_level(percent: int) -> int:
    """Validate a brightness in percent."""
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise ValueError(f"brightness must be an integer from 0 to 100, got {percent!r}")
    return percent


class PinBacklight:
    """A backlight on an output line: on for any level above 0, off at 0."""

    dimmable = False

    def __init__(self, pin: OutputPin) -> None:
        self.pin = pin
        self.level = 0

    def __repr__(self) -> str:
        return f"<PinBacklight {self.pin!r} level={self.level}>"

    def describe(self) -> str:
        return f"on/off line {self.pin!r}"

    def open(self) -> None:
        self.pin.open()

    def close(self) -> None:
        self.pin.close()

    def set_level(self, percent: int) -> None:
        self.pin.set(check_level(percent) > 0)
        self.level = percent


class SysfsPwmBacklight:
    """A dimmable backlight on a hardware PWM channel through the kernel's sysfs interface.

    Give either the header pin (``gpio``: the chip and channel are found when it is opened)
    or an explicit ``chip`` number and ``channel``.

    Args:
        chip: the ``pwmchipN`` number (with ``channel``).
        channel: the channel on that chip.
        gpio: the header pin the backlight is on; its PWM chip is found by device.
        period_ns: PWM period; 1 ms (1 kHz) is flicker-free for the eye and quiet for the LEDs.
        root: the sysfs class directory.
        files: how sysfs is read and written (the simulator passes its model of the kernel).
        sleep: how to wait for udev to hand a freshly exported channel to the gpio group.
    """

    dimmable = True
    #: How long to wait for udev after exporting a channel, in total.
    EXPORT_WAIT_S = 1.0

    def __init__(
        self,
        chip: int | None = None,
        channel: int | None = None,
        *,
        gpio: int | None = None,
        period_ns: int = 1_000_000,
        root: str | Path = PWM_ROOT,
        files: SysfsFiles | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if period_ns <= 0:
            raise ValueError(f"period_ns must be positive, got {period_ns}")
        if gpio is None and chip is None:
            chip, channel = 0, 0
        if gpio is not None and chip is not None:
            raise ValueError("give either the gpio pin or the chip and channel, not both")
        self.root = Path(root)
        self.gpio = gpio
        self._chip_dir = None if chip is None else self.root / f"pwmchip{chip}"
        self.channel = channel if channel is not None else 0
        self.period_ns = period_ns
        self.level = 0
        self.files: SysfsFiles = files or RealSysfs()
        self._sleep = sleep
        self._open = False

    @property
    def chip_dir(self) -> Path:
        return self._chip_dir if self._chip_dir is not None else self.root / "pwmchip?"

    @property
    def channel_dir(self) -> Path:
        return self.chip_dir / f"pwm{self.channel}"

    def __repr__(self) -> str:
        return f"<SysfsPwmBacklight {self.channel_dir} level={self.level}>"

    def describe(self) -> str:
        where = f"GPIO{self.gpio} on " if self.gpio is not None else ""
        return f"hardware PWM, {where}{self.chip_dir} channel {self.channel}"

    def _missing(self) -> DeviceNotFound:
        line = overlay_line(self.gpio if self.gpio is not None else 18) or "dtoverlay=pwm,pin=18,func=2"
        what = (
            f"No PWM chip drives GPIO{self.gpio}"
            if self.gpio is not None
            else f"The PWM chip {self.chip_dir} does not exist"
        )
        return DeviceNotFound(
            f"{what}; add '{line}' to /boot/firmware/config.txt and reboot, or use an on/off backlight pin."
        )

    def _locate(self) -> None:
        if self.gpio is None:
            if not self.files.is_dir(self.chip_dir):
                raise self._missing()
            return
        found: PwmChannel | None = find_pwm(self.gpio, root=self.root, files=self.files)
        if found is None:
            raise self._missing()
        self._chip_dir, self.channel = found.chip_dir, found.channel

    def _write(self, name: str, value: int | str) -> None:
        path = self.channel_dir / name
        try:
            self.files.write(path, f"{value}\n")
        except PermissionError:
            raise DevicePermissionError(f"Permission denied writing {path}; {_GROUP_FIX}.") from None
        except OSError as exc:
            raise TransportError(
                f"Writing {value} to {path} failed ({exc.strerror or exc}); check the PWM overlay."
            ) from exc

    def _read_text(self, name: str) -> str:
        try:
            return self.files.read(self.channel_dir / name).strip()
        except OSError:
            return ""

    def _read_int(self, name: str) -> int:
        try:
            return int(self._read_text(name) or 0)
        except ValueError:
            return 0

    def open(self) -> None:
        """Find the channel, export it if needed, and set it up with the LEDs off.

        A channel a previous program left behind may have any period, duty cycle and
        polarity; the writes are ordered so the kernel never sees a duty cycle longer than
        the period.

        Raises:
            DeviceNotFound: no PWM chip (no ``dtoverlay=pwm``).
            DevicePermissionError: the sysfs files are not writable by this user.
            TransportError: the kernel refused a setting.
        """
        if self._open:
            return
        self._locate()
        if not self.files.is_dir(self.channel_dir):
            try:
                self.files.write(self.chip_dir / "export", f"{self.channel}\n")
            except PermissionError:
                raise DevicePermissionError(
                    f"Permission denied exporting PWM channel {self.channel} of {self.chip_dir}; {_GROUP_FIX}."
                ) from None
            except OSError as exc:
                if exc.errno != errno.EBUSY:  # EBUSY: exported by someone else meanwhile
                    raise TransportError(
                        f"Exporting PWM channel {self.channel} of {self.chip_dir} failed ({exc.strerror or exc}); "
                        "check the overlay."
                    ) from exc
        self._wait_for_udev()
        if self._read_int("enable"):
            self._write("enable", 0)
        if self._read_text("polarity") not in ("", "normal"):
            self._write("polarity", "normal")  # only while disabled; inversed would invert our levels
        if self._read_int("period") > 0:
            self._write("duty_cycle", 0)  # first, so the new period is never below the duty
            self._write("period", self.period_ns)
        else:
            self._write("period", self.period_ns)  # a fresh channel: period 0 refuses any duty
            self._write("duty_cycle", 0)
        self._write("enable", 1)
        self._open = True

    def _wait_for_udev(self) -> None:
        """A new channel's files appear owned by root and udev fixes them shortly after."""
        waited = 0.0
        step = 0.05
        period = self.channel_dir / "period"
        while waited < self.EXPORT_WAIT_S and not (
            self.files.is_dir(self.channel_dir) and self.files.writable(period)
        ):
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


class AutoBacklight:
    """Hardware PWM on the backlight pin when the kernel offers it, else the pin on and off.

    Decided when opened (constructors do no I/O): a missing PWM chip or files this user may not
    write mean on/off, with the reason in :attr:`why` and a warning in the log.

    Args:
        gpio: the backlight's header pin.
        pin: the on/off line for the same pin (claimed only when PWM is not used).
        root, files, sleep: passed to :class:`SysfsPwmBacklight`.
    """

    def __init__(
        self,
        gpio: int,
        pin: OutputPin,
        *,
        root: str | Path = PWM_ROOT,
        files: SysfsFiles | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.gpio = gpio
        self.pwm = SysfsPwmBacklight(gpio=gpio, root=root, files=files, sleep=sleep)
        self.pin = PinBacklight(pin)
        self.active: SysfsPwmBacklight | PinBacklight | None = None
        self.why: str | None = None

    @property
    def dimmable(self) -> bool:
        return isinstance(self.active, SysfsPwmBacklight)

    @property
    def level(self) -> int:
        return self.active.level if self.active is not None else 0

    def describe(self) -> str:
        if self.active is None:
            return f"GPIO{self.gpio} (not open)"
        text = self.active.describe()
        return text if self.why is None else f"{text}: {self.why}"

    def open(self) -> None:
        if self.active is not None:
            return
        try:
            self.pwm.open()
            self.active, self.why = self.pwm, None
            return
        except (DeviceNotFound, DevicePermissionError) as exc:
            self.why = f"brightness is on/off only because {str(exc)[0].lower()}{str(exc)[1:].rstrip('.')}"
            log.warning("backlight: %s", self.why)
        self.pin.open()
        self.active = self.pin

    def close(self) -> None:
        active, self.active = self.active, None
        if active is not None:
            active.close()

    def set_level(self, percent: int) -> None:
        if self.active is None:
            raise TransportError(f"The backlight on GPIO{self.gpio} is not open; call open() first.")
        self.active.set_level(percent)
