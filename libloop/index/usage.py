"""How much of the card the library takes: per item, in total, and what is left free.

An item takes its frame file (``size_bytes``) and, when the upload is kept for re-rendering,
its original in ``DATA/originals`` (``original_bytes``; items of the same content share one
original, so the total counts each original once). The card's free space is what the file
system says for the data directory. ``GET /api/media`` answers these figures and the
dashboard shows them in the library's header.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = ["LibraryUsage", "item_disk_bytes", "library_usage"]


class _Sized(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def size_bytes(self) -> int: ...


def item_disk_bytes(item: object) -> int:
    """What one item takes on the card: its frame file plus its kept original (if any)."""
    return int(getattr(item, "size_bytes", 0) or 0) + int(getattr(item, "original_bytes", 0) or 0)


@dataclass(frozen=True)
class LibraryUsage:
    """The library's storage figures, in bytes (``free_bytes``/``disk_bytes``: None if unknown)."""

    frames_bytes: int
    originals_bytes: int
    free_bytes: int | None
    disk_bytes: int | None
    items: dict[str, int] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        """Frames and originals together: what deleting every item would free."""
        return self.frames_bytes + self.originals_bytes

    def to_dict(self) -> dict[str, Any]:
        """JSON for ``GET /api/media``'s ``storage`` (the per-item figures are on the items)."""
        body = asdict(self)
        body.pop("items")
        body["total_bytes"] = self.total_bytes
        return body


def library_usage(items: Iterable[object], data_dir: Path | None) -> LibraryUsage:
    """The figures for ``items`` (``libloop.index.Item``-like) stored under ``data_dir``."""
    frames = 0
    originals: dict[str, int] = {}
    per_item: dict[str, int] = {}
    for item in items:
        size = int(getattr(item, "size_bytes", 0) or 0)
        kept = int(getattr(item, "original_bytes", 0) or 0)
        frames += size
        name = getattr(item, "original", None)
        if kept:
            originals[str(name) if name else f"item:{getattr(item, 'id', id(item))}"] = kept
        per_item[str(getattr(item, "id", ""))] = size + kept
    free = disk = None
    if data_dir is not None:
        try:
            du = shutil.disk_usage(data_dir)
        except OSError:
            pass
        else:
            free, disk = du.free, du.total
    return LibraryUsage(frames, sum(originals.values()), free, disk, per_item)
