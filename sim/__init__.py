"""LOOP simulator: ILI9341 panel model, fake spidev and GPIO, the wired-up rig, pygame viewer.

Nothing here needs hardware; pygame is imported only when a ``Viewer`` is opened.
"""

from __future__ import annotations

from sim.fakespi import FakeSpiDev, TranscriptEntry
from sim.panel import Ili9341Panel, PanelViolation, Violation, ViolationKind
from sim.pins import FakeBacklight, FakePin
from sim.pwm import FakePwmSysfs
from sim.viewer import Viewer
from sim.wiring import SimWiring

__all__ = [
    "FakeBacklight",
    "FakePin",
    "FakePwmSysfs",
    "FakeSpiDev",
    "Ili9341Panel",
    "PanelViolation",
    "SimWiring",
    "TranscriptEntry",
    "Viewer",
    "Violation",
    "ViolationKind",
]
