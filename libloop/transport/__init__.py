"""Transports: the SPI bus and output-line interfaces, and their Linux implementations.

Importing this package never imports ``spidev`` or ``gpiod``; they are loaded when a real
bus or line is opened, and a missing one raises ``MissingExtra``.
"""

from __future__ import annotations

from libloop.transport.backlight import AutoBacklight, PinBacklight, SysfsPwmBacklight
from libloop.transport.base import Backlight, BusStats, OutputPin, SpiBus, SpiLink, byte_view, split_transfers
from libloop.transport.gpio import GpiodPin
from libloop.transport.spidev_bus import SpidevBus

__all__ = [
    "AutoBacklight",
    "Backlight",
    "BusStats",
    "GpiodPin",
    "OutputPin",
    "PinBacklight",
    "SpiBus",
    "SpiLink",
    "SpidevBus",
    "SysfsPwmBacklight",
    "byte_view",
    "split_transfers",
]
