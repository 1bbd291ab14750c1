"""The simulated rig in one call: panel, fake spidev, D/C, RESET and backlight, wired up.

``SimWiring().bus`` is a real ``SpidevBus`` over a ``FakeSpiDev``, so the simulator runs the
same bus code as a Pi; only the ``spidev.SpiDev`` object underneath is fake. The dimmable
backlight is likewise the Pi's ``SysfsPwmBacklight`` over a model of the kernel's PWM files
(``sim.pwm``). The lines are connected the way the breakout is: a rising edge on RESET (the
end of the pulse) resets the panel's controller, and the PWM duty cycle (or the on/off line)
lights the glass.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from libloop.clock import Clock, FakeClock
from libloop.ili9341 import Rotation
from libloop.transport.backlight import PinBacklight, SysfsPwmBacklight
from libloop.transport.base import Backlight
from libloop.transport.spidev_bus import SpidevBus
from sim.fakespi import DEFAULT_OVERHEAD_S, FakeSpiDev
from sim.panel import Ili9341Panel
from sim.pins import FakePin
from sim.pwm import FakePwmSysfs

if TYPE_CHECKING:
    from PIL import Image

    from libloop.display import Display

__all__ = ["SimWiring"]


class SimWiring:
    """Everything between the ``Display`` and the simulated glass.

    Args:
        bgr_filter, mirror_x, mirror_y, strict, reliable_hz: passed to ``Ili9341Panel``.
        speed_hz: the SPI clock the bus asks for (the wire-time model uses it).
        bufsiz: the spidev driver's transfer limit (4096 is the Raspberry Pi OS default).
        clock: the time base of the panel, the fake bus and the pins. A ``FakeClock`` (the
            default) is advanced by modelled wire time and by ``sleep``; any other clock is
            only read, and ``sleep`` really sleeps.
        pwm_backlight: a dimmable backlight on hardware PWM (True) or an on/off line.
        overhead_s, record_payloads, miso, transcript_limit, pace: passed to ``FakeSpiDev``.
        command_log_limit: passed to the panel (how many commands ``panel.commands`` keeps).
        pin_history_limit: how many level changes the D/C and RESET pins keep (None: all).
        panel: use this panel instead of building one.
        panel_memory: frame memory for the panel built here (see ``Ili9341Panel(memory=)``).

    Attributes:
        panel, device, bus, dc, reset, backlight, clock; ``pwm`` (the kernel's PWM files) with
        a PWM backlight, ``backlight_pin`` with an on/off one.
    """

    def __init__(
        self,
        *,
        bgr_filter: bool = True,
        mirror_x: bool = False,
        mirror_y: bool = False,
        strict: bool = False,
        speed_hz: int = 64_000_000,
        bufsiz: int = 4096,
        clock: Clock | None = None,
        pwm_backlight: bool = True,
        overhead_s: float = DEFAULT_OVERHEAD_S,
        record_payloads: bool = False,
        panel: Ili9341Panel | None = None,
        pace: bool = False,
        panel_memory: Any = None,
        reliable_hz: float | None = None,
        miso: bool = True,
        transcript_limit: int | None = 100_000,
        command_log_limit: int | None = None,
        pin_history_limit: int | None = None,
    ) -> None:
        self.clock: Clock = clock if clock is not None else FakeClock(0.0)
        self.panel = panel or Ili9341Panel(
            bgr_filter=bgr_filter,
            mirror_x=mirror_x,
            mirror_y=mirror_y,
            strict=strict,
            clock=self.clock,
            memory=panel_memory,
            reliable_hz=reliable_hz,
            command_log_limit=command_log_limit,
        )
        self.dc = FakePin("dc", clock=self.clock, history_limit=pin_history_limit)
        self.reset = FakePin(
            "reset", initial=True, clock=self.clock, on_change=self._on_reset, history_limit=pin_history_limit
        )
        self.backlight: Backlight
        self.pwm: FakePwmSysfs | None = None
        if pwm_backlight:
            self.pwm = FakePwmSysfs(on_change=self._on_pwm)
            self.backlight = SysfsPwmBacklight(gpio=18, files=self.pwm, sleep=self.sleep)
            self.backlight_pin: FakePin | None = None
        else:
            self.backlight_pin = FakePin("backlight", clock=self.clock, on_change=self._on_backlight_pin)
            self.backlight = PinBacklight(self.backlight_pin)
        self.device = FakeSpiDev(
            self.panel,
            self.dc,
            bufsiz=bufsiz,
            clock=self.clock,
            overhead_s=overhead_s,
            record_payloads=record_payloads,
            pace=pace,
            miso=miso,
            transcript_limit=transcript_limit,
        )
        self.bus = SpidevBus(
            0,
            0,
            speed_hz=speed_hz,
            spidev_factory=self._device_factory,
            bufsiz=bufsiz,
            controller=self.device.controller,
            model_path=None,
            clock=self.clock,
        )

    def __repr__(self) -> str:
        return f"<SimWiring {self.device!r} {self.clock!r}>"

    def _device_factory(self) -> FakeSpiDev:
        return self.device

    def _on_reset(self, level: bool) -> None:
        if level:  # RESX rising edge: the controller starts its reset sequence
            self.panel.hardware_reset()

    def _on_pwm(self, chip: int, channel: int, duty: float) -> None:
        self.panel.backlight = round(duty * 100)

    def _on_backlight_pin(self, level: bool) -> None:
        self.panel.backlight = 100 if level else 0

    def sleep(self, seconds: float) -> None:
        """Wait in simulated time (advance a ``FakeClock``) or really, for any other clock."""
        if isinstance(self.clock, FakeClock):
            self.clock.advance(max(0.0, seconds))
        elif seconds > 0:
            time.sleep(seconds)

    def display(self, **kwargs: Any) -> Display:
        """A ``libloop.display.Display`` on this rig; keyword arguments go to its constructor."""
        from libloop.display import Display

        kwargs.setdefault("sleep", self.sleep)
        return Display(self.bus, self.dc, self.reset, self.backlight, **kwargs)

    def snapshot(self, rotation: Rotation = Rotation.R0) -> Image.Image:
        """What the glass shows (``panel.snapshot``)."""
        return self.panel.snapshot(rotation)
