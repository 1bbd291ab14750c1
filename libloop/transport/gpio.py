"""Output lines through the libgpiod v2 Python bindings (``gpiod`` 2.x), which work on every Pi.

RPi.GPIO does not work on the Pi 5 (its header moved to the RP1 chip), and the header's
``/dev/gpiochipN`` number changed between kernels (gpiochip4 on early Pi 5 kernels,
gpiochip0 later). So the chip is found by its *label* — ``pinctrl-rp1`` (Pi 5),
``pinctrl-bcm2711`` (Pi 4/400/CM4), ``pinctrl-bcm2835`` (Zero, 1, 2, 3) — never by number.

What a line does once released is up to the pin controller: on the Pi 0-4 the BCM2835 pin
controller turns a freed GPIO back into an input (``pinctrl-bcm2835.c``,
``bcm2835_pmx_gpio_disable_free``), so D/C, RESET and the backlight would float between two
runs of the service. Before releasing, a line is therefore made an input with the SoC's pull
resistor (about 50 kΩ) toward the level it was driving; gpiolib leaves the pull as it is when
the line is freed, so RESET stays high (the panel keeps its picture) and a switched-off
backlight stays off, on every Pi.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import logging
import os
from types import ModuleType
from typing import Any

from libloop.errors import DeviceNotFound, DevicePermissionError, MissingExtra, TransportError

__all__ = ["HEADER_CHIP_LABELS", "GpiodPin", "find_chip"]

#: Labels of the chip that drives the 40-pin header, newest Pi first.
HEADER_CHIP_LABELS = ("pinctrl-rp1", "pinctrl-bcm2711", "pinctrl-bcm2835")

log = logging.getLogger(__name__)

_PERMISSION_FIX = "add this user to the gpio group ('sudo usermod -aG gpio $USER') and log in again."


def _import_gpiod() -> ModuleType:
    try:
        import gpiod
    except ImportError:
        raise MissingExtra("GPIO", "pi", "gpiod") from None
    return gpiod


def find_chip(gpiod: Any, label: str | None = None, *, dev_dir: str = "/dev") -> str:
    """The path of the GPIO chip labelled ``label`` (default: the Pi header's chip).

    Raises:
        DeviceNotFound: no chip has that label.
        DevicePermissionError: a chip exists but cannot be opened by this user.
    """
    wanted = (label,) if label else HEADER_CHIP_LABELS
    paths = sorted(glob.glob(os.path.join(dev_dir, "gpiochip*")), key=_chip_number)
    found: dict[str, str] = {}
    denied: list[str] = []
    for path in paths:
        try:
            with gpiod.Chip(path) as chip:
                found.setdefault(chip.get_info().label, path)
        except PermissionError:
            denied.append(path)
        except OSError:
            continue  # not a GPIO chip after all (or gone); keep looking
    for name in wanted:
        if name in found:
            return found[name]
    if denied:
        raise DevicePermissionError(f"Permission denied opening {denied[0]}; {_PERMISSION_FIX}")
    seen = ", ".join(f"{p} ({lab})" for lab, p in found.items()) or "none"
    raise DeviceNotFound(
        f"No GPIO chip labelled {' or '.join(wanted)} was found (chips: {seen}); "
        "run this on a Raspberry Pi or set the chip label in the config."
    )


def _chip_number(path: str) -> int:
    digits = os.path.basename(path).removeprefix("gpiochip")
    return int(digits) if digits.isdigit() else 1_000_000


class GpiodPin:
    """An ``OutputPin`` on one line of a GPIO chip, requested through libgpiod v2.

    Args:
        line: the line offset on the chip; on a Pi header chip that is the BCM GPIO number.
        chip_label: the chip's label; default: the Pi header's chip, whichever Pi this is.
        consumer: the name other programs see as the line's user (``gpioinfo``).
        initial: the level driven as soon as the line is claimed.
        dev_dir: where the ``gpiochip*`` nodes live (tests point it elsewhere).
    """

    def __init__(
        self,
        line: int,
        *,
        chip_label: str | None = None,
        consumer: str = "loop",
        initial: bool = False,
        dev_dir: str = "/dev",
    ) -> None:
        if line < 0:
            raise ValueError(f"a GPIO line offset cannot be negative ({line})")
        self.line = line
        self.chip_label = chip_label
        self.consumer = consumer
        self.initial = initial
        self.value = initial
        self.chip_path: str | None = None
        self._dev_dir = dev_dir
        self._gpiod: Any = None
        self._request: Any = None

    def __repr__(self) -> str:
        where = self.chip_path or self.chip_label or "header chip"
        return f"<GpiodPin {where} line {self.line} value={int(self.value)}>"

    def __enter__(self) -> GpiodPin:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Find the chip, claim the line as an output and drive ``initial``.

        Raises:
            MissingExtra: the ``gpiod`` package is not installed.
            DeviceNotFound: no chip with the label exists.
            DevicePermissionError: the chip cannot be opened by this user.
            TransportError: the line is in use by another program, or the request failed.
        """
        if self._request is not None:
            return
        gpiod = self._gpiod = _import_gpiod()
        path = self.chip_path = find_chip(gpiod, self.chip_label, dev_dir=self._dev_dir)
        settings = gpiod.LineSettings(
            direction=gpiod.line.Direction.OUTPUT, output_value=self._level(self.initial)
        )
        try:
            self._request = gpiod.request_lines(path, consumer=self.consumer, config={self.line: settings})
        except PermissionError:
            raise DevicePermissionError(
                f"Permission denied requesting GPIO line {self.line} on {path}; {_PERMISSION_FIX}"
            ) from None
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise TransportError(
                    f"GPIO line {self.line} on {path} is in use by another program; stop it (see 'gpioinfo') and retry."
                ) from exc
            raise TransportError(
                f"Could not claim GPIO line {self.line} on {path} ({exc}); check the line number."
            ) from exc
        except ValueError as exc:
            raise TransportError(
                f"GPIO line {self.line} does not exist on {path}; check the wiring config."
            ) from exc
        self.value = self.initial

    def _level(self, value: bool) -> Any:
        value_enum = self._gpiod.line.Value
        return value_enum.ACTIVE if value else value_enum.INACTIVE

    def set(self, value: bool) -> None:
        """Drive the line.

        Raises:
            TransportError: the line is not open or the kernel refused the change.
        """
        request = self._request
        if request is None:
            raise TransportError(f"GPIO line {self.line} is not open; call open() first.")
        try:
            request.set_value(self.line, self._level(value))
        except OSError as exc:
            raise TransportError(
                f"Setting GPIO line {self.line} failed ({exc}); the GPIO chip may have gone away."
            ) from exc
        self.value = bool(value)

    def close(self) -> None:
        """Release the line, leaving it an input pulled toward its last level (see the module notes)."""
        request, self._request = self._request, None
        if request is None:
            return
        line = self._gpiod.line
        hold = self._gpiod.LineSettings(
            direction=line.Direction.INPUT, bias=line.Bias.PULL_UP if self.value else line.Bias.PULL_DOWN
        )
        try:
            request.reconfigure_lines({self.line: hold})
        except (OSError, ValueError) as exc:  # the chip went away, or it has no pull resistors
            log.debug(
                "could not leave GPIO line %d pulled %s: %s", self.line, "up" if self.value else "down", exc
            )
        with contextlib.suppress(OSError):
            request.release()
