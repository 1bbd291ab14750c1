"""Live device settings: rotation, fit, dither, background, still time, shuffle, night.

``schema`` holds the values, their checks and their sentences (shared by the HTTP API and the
CLI); ``store`` keeps them in the library database over the config file's defaults.
"""

from __future__ import annotations

from .schema import DAYS, KEYS, DeviceSettings, InvalidSetting, Night, parse_text, validate_patch
from .store import SettingsStore

__all__ = [
    "DAYS",
    "KEYS",
    "DeviceSettings",
    "InvalidSetting",
    "Night",
    "SettingsStore",
    "parse_text",
    "validate_patch",
]
