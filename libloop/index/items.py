"""The values the index stores: ``NewItem`` (what an import produced) and ``Item`` (a stored item)."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
import secrets
import sqlite3
import string
from dataclasses import dataclass
from typing import Any

from libloop.errors import InvalidChange

KINDS = ("gif", "image", "video")
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_NAME = 200
MAX_LOOPS = 1000
MAX_MIN_SECONDS = 24 * 3600.0
#: How each item may be fitted to the panel (None on an item: the device's setting).
FITS = ("contain", "cover", "stretch")
#: An item's own play time (``seconds``): from half a second to a day.
MIN_SECONDS, MAX_SECONDS = 0.5, 24 * 3600.0
#: Originals are named by the sha256 of their content (64 hex digits).
ORIGINAL_NAME = re.compile(r"[0-9a-f]{64}")
#: Characters of the ids the library makes: URL-safe, and never a leading ``-`` that a command
#: line would take for an option (``loop rm -x3F...``). 12 of them are about 71 bits.
NEW_ID_ALPHABET = string.ascii_letters + string.digits
NEW_ID_LENGTH = 12
_SYSTEM_RANDOM = secrets.SystemRandom()


@dataclass(frozen=True)
class NewItem:
    """What the media pipeline produced for one upload, before it is in the library."""

    name: str
    kind: str
    frames: int
    duration_ms: int
    width: int
    height: int
    source_name: str
    content_hash: str
    loop_count: int = 0

    def validate(self) -> None:
        """Raise InvalidChange with one sentence if a field is out of range."""
        check_name(self.name)
        if self.kind not in KINDS:
            raise InvalidChange(f"Kind {self.kind!r} is not one of {', '.join(KINDS)}.")
        for field in ("frames", "width", "height"):
            value = getattr(self, field)
            if not _is_int(value) or value < 1:
                raise InvalidChange(f"The item's {field} must be a positive whole number, not {value!r}.")
        for field in ("duration_ms", "loop_count"):
            value = getattr(self, field)
            if not _is_int(value) or value < 0:
                raise InvalidChange(f"The item's {field} must be a whole number ≥ 0, not {value!r}.")
        if not isinstance(self.source_name, str) or not isinstance(self.content_hash, str):
            raise InvalidChange("The item's source name and content hash must be text.")


@dataclass(frozen=True)
class Item:
    """One item of the library, as stored.

    ``position`` is the 0-based place in the play order; ``loops`` is how many times the item
    plays per turn and ``min_seconds`` how long it plays at least; ``loop_count`` is the loop
    count the source file asked for (0 = forever). ``file_name`` is the frame file's name in
    ``DATA/frames``.

    ``fit`` and ``dither`` are the item's own (None: the device's), ``seconds`` how long a turn of it lasts
    (None: a still the device's ``still_seconds``, an animation ``loops`` plays). ``original``
    names the kept upload in ``DATA/originals`` (None: imported before originals were kept, or
    without one), ``original_bytes`` its size (items of the same content share one file).
    ``render`` is what the frame file was rendered for (``{"width", "height", "fit", "dither",
    "background"}``), None when unknown.
    """

    id: str
    name: str
    kind: str
    frames: int
    duration_ms: int
    width: int
    height: int
    enabled: bool
    position: int
    loops: int
    min_seconds: float
    source_name: str
    content_hash: str
    loop_count: int
    created: float
    file_name: str
    size_bytes: int
    fit: str | None = None
    seconds: float | None = None
    dither: bool | None = None
    original: str | None = None
    original_bytes: int = 0
    render: dict[str, Any] | None = dataclasses.field(default=None, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """The item as JSON: the HTTP API's item shape plus the extra fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Item:
        """Build an item from an ``items`` row."""
        return cls(
            id=row["id"],
            name=row["name"],
            kind=row["kind"],
            frames=int(row["frames"]),
            duration_ms=int(row["duration_ms"]),
            width=int(row["width"]),
            height=int(row["height"]),
            enabled=bool(row["enabled"]),
            position=int(row["position"]),
            loops=int(row["loops"]),
            min_seconds=float(row["min_seconds"]),
            source_name=row["source_name"],
            content_hash=row["content_hash"],
            loop_count=int(row["loop_count"]),
            created=float(row["created"]),
            file_name=row["file_name"],
            size_bytes=int(row["size_bytes"]),
            fit=row["fit"],
            seconds=None if row["seconds"] is None else float(row["seconds"]),
            dither=None if row["dither"] is None else bool(row["dither"]),
            original=row["original"],
            original_bytes=int(row["original_bytes"]),
            render=_render_from(row["render"]),
        )


def _render_from(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def make_item_id(rng: random.Random = _SYSTEM_RANDOM) -> str:
    """A fresh random item id: 12 letters and digits.

    Ids made by older versions (``secrets.token_urlsafe``) may also hold ``-`` and ``_``, even
    first; ``check_id`` still accepts those. ``rng`` is for tests; the default is the OS's.
    """
    return "".join(rng.choice(NEW_ID_ALPHABET) for _ in range(NEW_ID_LENGTH))


def check_id(item_id: object) -> str:
    """An item id: 1-64 URL-safe characters (letters, digits, ``-``, ``_``)."""
    if not isinstance(item_id, str) or not ID_PATTERN.fullmatch(item_id):
        raise InvalidChange(f"Item id {item_id!r} is not 1-64 letters, digits, '-' or '_'.")
    return item_id


def check_name(name: object) -> str:
    """A display name: 1-200 printable characters, not only spaces."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidChange("An item's name must be non-empty text.")
    if len(name) > MAX_NAME:
        raise InvalidChange(f"An item's name must be at most {MAX_NAME} characters, not {len(name)}.")
    if any(not ch.isprintable() for ch in name):
        raise InvalidChange("An item's name must not contain control characters such as newlines.")
    return name


def check_loops(loops: object) -> int:
    """Plays per turn: a whole number 1..1000."""
    if not _is_int(loops) or not 1 <= loops <= MAX_LOOPS:  # type: ignore[operator]
        raise InvalidChange(f"Loops must be a whole number from 1 to {MAX_LOOPS}, not {loops!r}.")
    return loops  # type: ignore[return-value]


def check_min_seconds(value: object) -> float:
    """Minimum play time per turn: a finite number of seconds 0..86400."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidChange(f"Minimum seconds must be a number, not {value!r}.")
    if not 0 <= value <= MAX_MIN_SECONDS:
        raise InvalidChange(f"Minimum seconds must be from 0 to {MAX_MIN_SECONDS:g}, not {value!r}.")
    return float(value)


def check_enabled(value: object) -> bool:
    """Enabled flag: a real boolean (not 0/1 or "yes")."""
    if not isinstance(value, bool):
        raise InvalidChange(f"Enabled must be true or false, not {value!r}.")
    return value


def check_fit(value: object) -> str | None:
    """An item's own fit: contain, cover or stretch, or None for the device's setting."""
    if value is None or (isinstance(value, str) and value in FITS):
        return value
    raise InvalidChange(
        f"An item's fit must be contain, cover, stretch or null (the device's), not {value!r}."
    )


def check_dither(value: object) -> bool | None:
    """An item's own dithering: true or false, or None for the device's setting."""
    if value is None or isinstance(value, bool):
        return value
    raise InvalidChange(f"An item's dither must be true, false or null (the device's), not {value!r}.")


def check_seconds(value: object) -> float | None:
    """An item's own play time: a number of seconds from 0.5 to 86400, or None for the default."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidChange(f"An item's seconds must be a number or null, not {value!r}.")
    if not MIN_SECONDS <= value <= MAX_SECONDS:
        raise InvalidChange(
            f"An item's seconds must be from {MIN_SECONDS:g} to {MAX_SECONDS:g}, not {value!r}."
        )
    return float(value)
