"""A model of the kernel's sysfs PWM files, so the simulator's backlight runs the Pi's code.

``FakePwmSysfs`` implements ``libloop.transport.pwm.SysfsFiles`` in memory with the rules of
``drivers/pwm/sysfs.c`` and ``pwm_apply`` (``drivers/pwm/core.c``): a channel's files exist
only after its number is written to ``export`` (EBUSY if it already is, ENODEV past
``npwm``); ``period`` and ``duty_cycle`` writes are applied at once and refused with EINVAL
when the period would be 0 or the duty cycle longer than the period (the stricter rule of
5.x kernels, which newer ones keep for enabled channels); ``enable`` takes 0 or 1 and needs a
period; ``polarity`` takes ``normal`` or ``inversed`` and only while disabled (EBUSY). Files
can be made unwritable, the way they are before udev hands them to the ``gpio`` group.

The output is what a scope on the pin would show: ``duty`` (0..1) and a callback per change.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from libloop.transport.pwm import PWM_ROOT

__all__ = ["PI4_PWM", "PI5_PWM", "FakePwmSysfs"]

#: (device name, channels) of the PWM block on the header, per board family.
PI4_PWM = ("fe20c000.pwm", 2)
PI5_PWM = ("1f00098000.pwm", 4)


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


@dataclass
class _Channel:
    period: int = 0
    duty: int = 0
    enabled: bool = False
    polarity: str = "normal"


@dataclass
class _Chip:
    device: str
    npwm: int
    exported: dict[int, _Channel] = field(default_factory=dict)


class FakePwmSysfs:
    """``/sys/class/pwm`` with one or more PWM chips, as the kernel answers for them.

    Args:
        chips: ``(device name, npwm)`` per ``pwmchipN``, numbered in order.
        root: where the class directory is (``/sys/class/pwm``).
        on_change: called with ``(chip number, channel, duty 0..1)`` whenever the output changes.
    """

    def __init__(
        self,
        chips: list[tuple[str, int]] | None = None,
        *,
        root: Path = PWM_ROOT,
        on_change: Callable[[int, int, float], None] | None = None,
    ) -> None:
        self.root = root
        self.chips = [_Chip(device, npwm) for device, npwm in (chips if chips is not None else [PI4_PWM])]
        self.on_change = on_change
        #: Files this user may not write yet (udev has not run): paths relative to the root.
        self.locked: set[str] = set()
        self.writes: list[tuple[str, str]] = []

    # --- what a scope on the pin shows ---------------------------------------------------

    def duty(self, chip: int = 0, channel: int = 0) -> float:
        """The fraction of each period the output is high (0 when disabled or unexported)."""
        state = self.chips[chip].exported.get(channel)
        if state is None or not state.enabled or state.period <= 0:
            return 0.0
        high = state.duty / state.period
        return 1.0 - high if state.polarity == "inversed" else high

    def set_by_another_program(self, chip: int, channel: int, **state: object) -> None:
        """Leave a channel exported with another program's settings (period, duty, enabled, polarity)."""
        self.chips[chip].exported[channel] = _Channel(**state)  # type: ignore[arg-type]

    # --- SysfsFiles ----------------------------------------------------------------------

    def _parse(self, path: Path) -> tuple[_Chip, int, str | None, str]:
        """(chip, chip number, channel file's channel or None, file name) for a path under the root."""
        try:
            parts = path.relative_to(self.root).parts
        except ValueError:
            raise _error(errno.ENOENT) from None
        if not parts or not parts[0].startswith("pwmchip") or not parts[0][7:].isdigit():
            raise _error(errno.ENOENT)
        number = int(parts[0][7:])
        if number >= len(self.chips):
            raise _error(errno.ENOENT)
        chip = self.chips[number]
        if len(parts) == 2:
            return chip, number, None, parts[1]
        if len(parts) == 3 and parts[1].startswith("pwm") and parts[1][3:].isdigit():
            if int(parts[1][3:]) not in chip.exported:
                raise _error(errno.ENOENT)
            return chip, number, parts[1][3:], parts[2]
        raise _error(errno.ENOENT)

    def read(self, path: Path) -> str:
        chip, _, channel, name = self._parse(path)
        if channel is None:
            if name == "npwm":
                return f"{chip.npwm}\n"
            raise _error(errno.EACCES if name in ("export", "unexport") else errno.ENOENT)
        state = chip.exported[int(channel)]
        values = {
            "period": str(state.period),
            "duty_cycle": str(state.duty),
            "enable": str(int(state.enabled)),
            "polarity": state.polarity,
        }
        if name not in values:
            raise _error(errno.ENOENT)
        return values[name] + "\n"

    def write(self, path: Path, text: str) -> None:
        rel = str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)
        if rel in self.locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        chip, number, channel, name = self._parse(path)
        value = text.strip()
        self.writes.append((rel, value))
        if channel is None:
            self._chip_write(chip, number, name, value)
            return
        state = chip.exported[int(channel)]
        if name == "polarity":
            if value not in ("normal", "inversed"):
                raise _error(errno.EINVAL)
            if state.enabled:
                raise _error(errno.EBUSY)
            state.polarity = value
        else:
            try:
                number_value = int(value, 10)
            except ValueError:
                raise _error(errno.EINVAL) from None
            period, duty, enabled = state.period, state.duty, state.enabled
            if name == "period":
                period = number_value
            elif name == "duty_cycle":
                duty = number_value
            elif name == "enable":
                if number_value not in (0, 1):
                    raise _error(errno.EINVAL)
                enabled = bool(number_value)
            else:
                raise _error(errno.ENOENT)
            if period <= 0 or duty < 0 or duty > period:
                raise _error(errno.EINVAL)  # pwm_apply refuses the whole new state
            state.period, state.duty, state.enabled = period, duty, enabled
        if self.on_change is not None:
            self.on_change(number, int(channel), self.duty(number, int(channel)))

    def _chip_write(self, chip: _Chip, number: int, name: str, value: str) -> None:
        if name not in ("export", "unexport"):
            raise _error(errno.EACCES if name == "npwm" else errno.ENOENT)
        try:
            channel = int(value, 10)
        except ValueError:
            raise _error(errno.EINVAL) from None
        if not 0 <= channel < chip.npwm:
            raise _error(errno.ENODEV)
        if name == "export":
            if channel in chip.exported:
                raise _error(errno.EBUSY)
            chip.exported[channel] = _Channel()
        else:
            if channel not in chip.exported:
                raise _error(errno.ENODEV)
            del chip.exported[channel]
            if self.on_change is not None:
                self.on_change(number, channel, 0.0)

    def is_dir(self, path: Path) -> bool:
        try:
            self._parse(path / "npwm")
        except OSError:
            return False
        return True

    def writable(self, path: Path) -> bool:
        rel = str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)
        return rel not in self.locked

    def children(self, path: Path) -> list[str]:
        if path == self.root:
            return [f"pwmchip{i}" for i in range(len(self.chips))]
        return []

    def device_name(self, chip_dir: Path) -> str:
        chip, _, _, _ = self._parse(chip_dir / "npwm")
        return chip.device
