"""What the player needs from its collaborators, and what it reports.

The player depends on these small protocols rather than on the display, the index and the
frame-file classes themselves, so tests can substitute any part; ``PlayerStatus`` is the
shape ``GET /api/player`` answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from libloop.player.night import NightSchedule
from libloop.player.stats import StatsSnapshot

__all__ = [
    "DeletingLibrary",
    "Evicting",
    "Frames",
    "PlayDisplay",
    "PlayItem",
    "PlayLibrary",
    "PlaySettings",
    "PlayerStatus",
    "check_brightness",
    "open_frame_file",
]


# --- what the player needs from its collaborators ----------------------------------------


class _Region(Protocol):
    @property
    def x0(self) -> int: ...
    @property
    def y0(self) -> int: ...
    @property
    def x1(self) -> int: ...
    @property
    def y1(self) -> int: ...
    @property
    def data(self) -> memoryview: ...


class Frames(Protocol):
    """An opened frame file (``libloop.media.framefile.FrameFile`` or ``frames.V2Frames``).

    A v2 file also has ``ready(i, wake)`` (can frame ``i`` be had without waiting for its
    decoder?) and ``rects(i)`` (frame ``i``'s dirty rectangles without their pixels); the player
    uses them when they are there.
    """

    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def frame_count(self) -> int: ...
    @property
    def loop_count(self) -> int: ...
    @property
    def durations_ms(self) -> Sequence[int]: ...
    def frame(self, i: int) -> memoryview: ...
    def regions(self, i: int) -> Sequence[_Region]: ...
    def prefetch(self, i: int) -> None: ...
    def close(self) -> None: ...


class PlayItem(Protocol):
    """What the player reads of a library item (``libloop.index.Item``)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def loops(self) -> int: ...
    @property
    def min_seconds(self) -> float: ...
    @property
    def seconds(self) -> float | None: ...


class PlayLibrary(Protocol):
    """What the player reads of the library (``libloop.index.Library``)."""

    @property
    def generation(self) -> int: ...
    def playlist(self) -> Sequence[PlayItem]: ...
    def frame_path(self, item: Any) -> Path: ...
    def wait_for_change(self, since: int, timeout: float) -> int: ...


class _BusCounts(Protocol):
    @property
    def transfers(self) -> int: ...
    @property
    def bytes(self) -> int: ...


class PlayDisplay(Protocol):
    """What the player drives (``libloop.display.Display``)."""

    @property
    def size(self) -> tuple[int, int]: ...
    @property
    def stats(self) -> _BusCounts: ...
    def blit(self, x0: int, y0: int, x1: int, y1: int, data: Any) -> None: ...
    def show_frame(self, data: Any) -> None: ...
    def sleep(self) -> None: ...
    def wake(self) -> None: ...
    def set_brightness(self, percent: int) -> None: ...
    def reinit(self) -> None: ...
    def set_rotation(self, rotation: Any) -> None: ...
    @property
    def rotation(self) -> int: ...


@dataclass(frozen=True)
class PlaySettings:
    """The live settings the player follows (read again whenever the library changes).

    Attributes:
        rotation: the panel's orientation in degrees (0, 90, 180, 270); a change turns the
            panel at once, and frame files of the other shape are fitted on the fly.
        shuffle: play in shuffled rounds instead of the play order.
        still_seconds: how long a still stays on unless the item says otherwise.
        night: the night schedule, or None.
        background: RGB of the bars around frames fitted on the fly.
    """

    rotation: int = 0
    shuffle: bool = False
    still_seconds: float = 10.0
    night: NightSchedule | None = None
    background: tuple[int, int, int] = (0, 0, 0)


def check_brightness(percent: object) -> None:
    """Raise ValueError unless ``percent`` is a backlight level, a whole number 0..100."""
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise ValueError(f"brightness must be a whole number from 0 to 100, not {percent!r}")


def open_frame_file(path: Path, *, decode_ahead: bool = True) -> Frames:
    """Open a frame file, v1 or v2, for playback (a v2 file decodes ahead on a worker thread)."""
    from libloop.media.frames import open_frames

    return open_frames(path, decode_ahead=decode_ahead)


# --- status ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlayerStatus:
    """What ``GET /api/player`` answers: SPEC.md's shape plus extras."""

    state: str
    current: str | None
    current_name: str | None
    frame: int | None
    brightness: int
    night: dict[str, Any] | None
    faults: list[str]
    stats: StatsSnapshot
    extra: dict[str, Any] = field(default_factory=dict)
    #: The item whose frame the panel holds now (None: a screen, or not known yet). It follows
    #: ``current`` once that item's first frame has been sent.
    on_panel: str | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlayerStatus:
        """The inverse of :meth:`to_dict` (a status sent from the player process)."""
        from libloop.player.stats import snapshot_from_dict

        known = {
            "state",
            "current",
            "current_name",
            "frame",
            "brightness",
            "night",
            "faults",
            "stats",
            "on_panel",
        }
        return cls(
            state=str(d.get("state", "empty")),
            current=d.get("current"),
            current_name=d.get("current_name"),
            frame=d.get("frame"),
            brightness=int(d.get("brightness", 0)),
            night=d.get("night"),
            faults=[str(f) for f in d.get("faults", [])],
            stats=snapshot_from_dict(dict(d.get("stats", {}))),
            extra={k: v for k, v in d.items() if k not in known},
            on_panel=d.get("on_panel"),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"state", "current", "stats", ...}``."""
        return {
            "state": self.state,
            "current": self.current,
            "current_name": self.current_name,
            "frame": self.frame,
            "brightness": self.brightness,
            "night": self.night,
            "faults": list(self.faults),
            "stats": self.stats.to_dict(),
            "on_panel": self.on_panel,
            **self.extra,
        }


class Evicting(Protocol):
    """What :func:`libloop.player.evict_and_delete` needs of the player (in this process or not)."""

    def evict(self, item_id: str, timeout: float = 2.0) -> None: ...

    def unban(self, item_id: str) -> None: ...


class DeletingLibrary(Protocol):
    """What :func:`libloop.player.evict_and_delete` needs of the index."""

    def get(self, item_id: str) -> object: ...

    def delete(self, item_id: str) -> object: ...
