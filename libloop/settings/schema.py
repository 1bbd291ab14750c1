"""The device settings people change live: their values, their checks and their sentences.

One module for the HTTP API (``PATCH /api/settings``), the CLI (``loop settings KEY VALUE``)
and the store, so a bad value gets the same one sentence wherever it comes from. Values are
JSON-shaped (what ``GET /api/settings`` answers):

- ``rotation``: 0, 90, 180 or 270 (degrees; 90 and 270 are landscape, 320x240);
- ``fit``: how pictures of another shape fill the panel: contain, cover or stretch;
- ``dither``: ordered dithering into the panel's 16-bit colour;
- ``background``: ``"#rrggbb"`` of letterbox bars and transparent pixels;
- ``still_seconds``: how long a still picture stays on (0.5 to 86400);
- ``shuffle``: play in a random order, every item once a round;
- ``night``: ``{"start": "HH:MM", "end": "HH:MM", "days": ["mon", ...], "brightness": 0..100}``
  or null; ``days`` are the evenings a night begins on, ``brightness`` 0 puts the panel to
  sleep, anything else dims it to that level;
- ``orientation_asked``: the dashboard asked the person for the orientation once.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from libloop.errors import InvalidSetting

__all__ = [
    "DAYS",
    "KEYS",
    "DeviceSettings",
    "InvalidSetting",
    "Night",
    "parse_text",
    "validate_patch",
]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ROTATIONS = (0, 90, 180, 270)
FITS = ("contain", "cover", "stretch")
MIN_STILL_SECONDS, MAX_STILL_SECONDS = 0.5, 24 * 3600.0
KEYS = ("rotation", "fit", "dither", "background", "still_seconds", "shuffle", "night", "orientation_asked")
#: Settings whose change needs the frame files rendered again.
RENDER_KEYS = ("rotation", "fit", "dither", "background")

_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True)
class Night:
    """The night schedule: from ``start`` to ``end`` (local "HH:MM") on the evenings of ``days``."""

    start: str = "22:00"
    end: str = "07:00"
    days: tuple[str, ...] = DAYS
    brightness: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "days": list(self.days), "brightness": self.brightness}

    def text(self) -> str:
        """``"22:00-07:00 daily 0%"``: how ``loop settings`` shows it, and takes it back."""
        days = "daily" if self.days == DAYS else ",".join(self.days)
        return f"{self.start}-{self.end} {days} {self.brightness}%"

    def describe(self) -> str:
        """``"from 22:00 to 07:00 every day, panel off"``: in words."""
        days = "every day" if self.days == DAYS else "on " + ", ".join(self.days)
        light = "panel off" if self.brightness == 0 else f"dimmed to {self.brightness}%"
        return f"from {self.start} to {self.end} {days}, {light}"


@dataclass(frozen=True)
class DeviceSettings:
    """Every live setting with its value (the defaults are a fresh device's)."""

    rotation: int = 0
    fit: str = "contain"
    dither: bool = True
    background: str = "#000000"
    still_seconds: float = 10.0
    shuffle: bool = False
    night: Night | None = None
    orientation_asked: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape ``GET /api/settings`` answers (without the re-render progress)."""
        return {
            "rotation": self.rotation,
            "fit": self.fit,
            "dither": self.dither,
            "background": self.background,
            "still_seconds": self.still_seconds,
            "shuffle": self.shuffle,
            "night": None if self.night is None else self.night.to_dict(),
            "orientation_asked": self.orientation_asked,
        }

    def changed(self, changes: Mapping[str, Any]) -> DeviceSettings:
        """These settings with ``changes`` (JSON values already checked by ``validate_patch``)."""
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "night":
                values[key] = None if value is None else _night_of(value)
            elif key == "still_seconds":
                values[key] = float(value)
            else:
                values[key] = value
        return replace(self, **values)

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        text = self.background
        return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)

    @property
    def landscape(self) -> bool:
        return self.rotation in (90, 270)


def _night_of(value: Mapping[str, Any]) -> Night:
    return Night(
        start=str(value["start"]),
        end=str(value["end"]),
        days=tuple(value["days"]),
        brightness=int(value["brightness"]),
    )


# --- checking ------------------------------------------------------------------------------


def validate_patch(body: object, current: DeviceSettings | None = None) -> dict[str, Any]:
    """Check a settings change; return it with every value in its stored form.

    ``night`` may name only some of its fields: the others come from ``current``'s night (or
    22:00-07:00, every day, panel off). Raises InvalidSetting with one sentence.
    """
    if not isinstance(body, Mapping):
        raise InvalidSetting('Send the settings to change as a JSON object, e.g. {"rotation": 90}.')
    if not body:
        raise InvalidSetting(f"Name at least one setting to change: {', '.join(KEYS)}.")
    base = current or DeviceSettings()
    return {str(key): check(str(key), value, base) for key, value in body.items()}


def check(key: str, value: object, current: DeviceSettings | None = None) -> Any:
    """One setting's value in its stored form; InvalidSetting with one sentence if it is wrong."""
    checker = _CHECKS.get(key)
    if checker is None:
        raise InvalidSetting(f"There is no setting called {key!r}; the settings are {', '.join(KEYS)}.")
    return checker(value, current or DeviceSettings())


def _rotation(value: object, _: DeviceSettings) -> int:
    number = _number(value)
    if number is not None and number in ROTATIONS:
        return int(number)
    raise InvalidSetting(f"rotation must be 0, 90, 180 or 270 (degrees), not {_show(value)}.")


def _fit(value: object, _: DeviceSettings) -> str:
    if isinstance(value, str) and value in FITS:
        return value
    raise InvalidSetting(
        "fit must be contain (whole picture, bars), cover (fills the panel, edges cut) or "
        f"stretch, not {_show(value)}."
    )


def _flag(key: str) -> Any:
    def check_flag(value: object, _: DeviceSettings) -> bool:
        if isinstance(value, bool):
            return value
        raise InvalidSetting(f"{key} must be true or false, not {_show(value)}.")

    return check_flag


def _background(value: object, _: DeviceSettings) -> str:
    if isinstance(value, str) and _COLOUR.fullmatch(value):
        return value.lower()
    raise InvalidSetting(
        f'background must be a colour written "#rrggbb", such as "#000000", not {_show(value)}.'
    )


def _still_seconds(value: object, _: DeviceSettings) -> float:
    number = _number(value)
    if number is None or not MIN_STILL_SECONDS <= number <= MAX_STILL_SECONDS:
        raise InvalidSetting(
            f"still_seconds must be a number of seconds from {MIN_STILL_SECONDS:g} to "
            f"{MAX_STILL_SECONDS:g}, not {_show(value)}."
        )
    return number


def _night(value: object, current: DeviceSettings) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidSetting(
            'night must be null (no night) or {"start": "HH:MM", "end": "HH:MM", "days": '
            f'["mon", ...], "brightness": 0..100}}, not {_show(value)}.'
        )
    unknown = sorted(set(map(str, value)) - {"start", "end", "days", "brightness"})
    if unknown:
        raise InvalidSetting(
            f"night has no field {unknown[0]!r}; its fields are start, end, days and brightness."
        )
    base = (current.night or Night()).to_dict()
    merged = {**base, **value}
    for edge in ("start", "end"):
        text = merged[edge]
        match = _HHMM.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidSetting(
                f'night {edge} must be a 24-hour time "HH:MM", such as "22:30", not {_show(text)}.'
            )
        merged[edge] = f"{int(match[1]):02d}:{match[2]}"
    if merged["start"] == merged["end"]:
        raise InvalidSetting("The night must start and end at different times; use null for no night.")
    days = merged["days"]
    if (
        isinstance(days, str)
        or not isinstance(days, list | tuple)
        or not all(isinstance(d, str) for d in days)
    ):
        raise InvalidSetting(f'night days must be a list of days such as ["mon", "tue"], not {_show(days)}.')
    wanted = {d.strip().lower()[:3] for d in days}
    strange = sorted(wanted - set(DAYS))
    if strange:
        raise InvalidSetting(f"night days are mon, tue, wed, thu, fri, sat and sun, not {strange[0]!r}.")
    if not wanted:
        raise InvalidSetting("night needs at least one day; use null for no night.")
    merged["days"] = [d for d in DAYS if d in wanted]
    level = _number(merged["brightness"])
    if level is None or not level.is_integer() or not 0 <= level <= 100:
        raise InvalidSetting(
            "night brightness must be a whole number from 0 (panel off) to 100, "
            f"not {_show(merged['brightness'])}."
        )
    merged["brightness"] = int(level)
    return merged


_CHECKS: dict[str, Any] = {
    "rotation": _rotation,
    "fit": _fit,
    "dither": _flag("dither"),
    "background": _background,
    "still_seconds": _still_seconds,
    "shuffle": _flag("shuffle"),
    "night": _night,
    "orientation_asked": _flag("orientation_asked"),
}


def _number(value: object) -> float | None:
    """``value`` as a float if it is a finite JSON number (not a boolean), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _show(value: object) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- the command line ---------------------------------------------------------------------

_TRUE = ("true", "on", "yes", "1")
_FALSE = ("false", "off", "no", "0")
_NIGHT_TEXT = re.compile(r"(\S+)\s*-\s*(\S+)(?:\s+(.*?))??(?:\s+(\d+)\s*%?)?")


def parse_text(key: str, text: str, current: DeviceSettings | None = None) -> Any:
    """The value of ``loop settings KEY VALUE``, checked; InvalidSetting with one sentence.

    Numbers and flags as written (``90``, ``on``/``off``); ``night`` as ``off``, as JSON, or
    as ``"22:00-07:00 [DAYS] [BRIGHTNESS%]"`` with DAYS like ``mon-fri``, ``sat,sun`` or
    ``daily``.
    """
    words = text.strip()
    if key in ("dither", "shuffle", "orientation_asked"):
        if words.lower() in _TRUE:
            return check(key, True)
        if words.lower() in _FALSE:
            return check(key, False)
        return check(key, words)
    if key in ("rotation", "still_seconds"):
        number: object = words
        with contextlib.suppress(ValueError):
            number = int(words) if re.fullmatch(r"[+-]?\d+", words) else float(words)
        return check(key, number)
    if key == "night":
        return check(key, _night_text(words), current)
    return check(key, words, current)


def _night_text(words: str) -> object:
    if words.lower() in ("off", "none", "null", "no", ""):
        return None
    if words.startswith("{"):
        try:
            parsed: object = json.loads(words)
        except ValueError:
            raise InvalidSetting(f"night is not valid JSON: {words!r}.") from None
        return parsed
    match = _NIGHT_TEXT.fullmatch(words)
    if match is None:
        raise InvalidSetting(
            f'night must look like "22:00-07:00", "23:00-08:00 fri,sat 20%" or off, not {words!r}.'
        )
    start, end, days, level = match.groups()
    value: dict[str, object] = {"start": start, "end": end}
    if days:
        value["days"] = _days_text(days)
    if level is not None:
        value["brightness"] = int(level)
    return value


def _days_text(text: str) -> list[str]:
    text = text.strip().lower()
    if text in ("daily", "every day", "everyday", "all"):
        return list(DAYS)
    if text in ("weekdays",):
        return list(DAYS[:5])
    if text in ("weekends", "weekend"):
        return list(DAYS[5:])
    days: list[str] = []
    for part in re.split(r"[,\s]+", text):
        if not part:
            continue
        if "-" in part:
            first, last = (p[:3] for p in part.split("-", 1))
            if first not in DAYS or last not in DAYS:
                raise InvalidSetting(f"night days are mon, tue, wed, thu, fri, sat and sun, not {part!r}.")
            i, j = DAYS.index(first), DAYS.index(last)
            span = DAYS[i : j + 1] if i <= j else DAYS[i:] + DAYS[: j + 1]
            days.extend(span)
        else:
            days.append(part)
    return days


def format_value(key: str, value: Any) -> str:
    """A setting's value as ``loop settings`` prints it (and takes it back)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if key == "night":
        return "off" if value is None else Night(**{**value, "days": tuple(value["days"])}).text()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
