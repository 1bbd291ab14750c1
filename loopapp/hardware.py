"""The two ways to reach a panel: the simulator and a Raspberry Pi's SPI and GPIO.

Both produce the same `Hardware` bundle, so everything above it — display, player, web app,
supervisor — is the same code whether it runs on a laptop or on the Pi.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopapp.config import Config

if TYPE_CHECKING:
    from PIL import Image

    from libloop.transport import Backlight, OutputPin, SpiBus


@dataclass
class Hardware:
    """The transports a Display is built on, plus what only the simulator has."""

    bus: SpiBus
    dc: OutputPin
    reset: OutputPin | None
    backlight: Backlight | None
    #: The simulated panel (None on a Pi): the truth for `display.png` and screenshots.
    panel: Any = None
    #: The simulator's wiring object (fake spidev, pins), for fault injection and tests.
    wiring: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    #: "sim" or "pi" when a player process can build the same hardware again on its own
    #: (``sim_hardware``/``pi_hardware``); "custom" keeps the player in this process.
    kind: str = "custom"

    def snapshot(self, rotation: int) -> Image.Image | None:
        """What the glass shows, turned for viewing, when a simulated panel exists."""
        if self.panel is None:
            return None
        from libloop.ili9341 import Rotation

        image: Image.Image = self.panel.snapshot(rotation=Rotation(rotation))
        return image


def sim_hardware(config: Config, *, clock: Any = None, **wiring_options: Any) -> Hardware:
    """A simulated ILI9341 behind a fake spidev device: the same SpidevBus code path as on a Pi.

    ``wiring_options`` go to ``sim.wiring.SimWiring`` (``pace``, ``panel_memory``,
    ``record_payloads`` …).
    """
    from sim.wiring import SimWiring

    # `loop sim` runs for days: keep only the newest transfers, commands and pin levels the model records
    # (tests that read them build their own SimWiring), so its memory stays flat.
    options: dict[str, Any] = {
        "transcript_limit": 2_000,
        "command_log_limit": 2_000,
        "pin_history_limit": 2_000,
        **wiring_options,
    }
    wiring = SimWiring(
        bgr_filter=config.display.bgr,
        speed_hz=config.wiring.speed_hz,
        clock=clock,
        **options,
    )
    if "pi5-dma-timeout" in config.sim.faults:
        wiring.device.time_out_long_transfers()  # the whole run, as when the Pi 5 gets into it
    return Hardware(
        bus=wiring.bus,
        dc=wiring.dc,
        reset=wiring.reset,
        backlight=wiring.backlight,
        panel=wiring.panel,
        wiring=wiring,
        kind="sim",
    )


def pi_hardware(config: Config) -> Hardware:
    """spidev, libgpiod v2 lines and sysfs PWM, wired as the config says (nothing is opened yet).

    The backlight dims through hardware PWM when the kernel offers it on the backlight pin
    (``dtoverlay=pwm,pin=18,func=2``), else it is switched on and off (``backlight_pwm``).
    """
    from libloop.transport.backlight import AutoBacklight, PinBacklight, SysfsPwmBacklight
    from libloop.transport.gpio import GpiodPin
    from libloop.transport.spidev_bus import SpidevBus

    w = config.wiring
    label = w.gpio_chip or None
    bus = SpidevBus(w.spi_bus, w.spi_device, speed_hz=w.speed_hz, mode=w.spi_mode)
    dc = GpiodPin(w.dc, chip_label=label)
    reset = GpiodPin(w.reset, chip_label=label, initial=True)
    backlight: Backlight
    if w.backlight_pwm == "pwm":
        backlight = SysfsPwmBacklight(gpio=w.backlight)
    elif w.backlight_pwm == "pin":
        backlight = PinBacklight(GpiodPin(w.backlight, chip_label=label))
    else:
        backlight = AutoBacklight(w.backlight, GpiodPin(w.backlight, chip_label=label))
    return Hardware(bus=bus, dc=dc, reset=reset, backlight=backlight, kind="pi")
