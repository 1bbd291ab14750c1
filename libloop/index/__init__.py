"""The durable media index: items, play order and settings of one data directory.

``Library(data_dir)`` is the one store (SQLite, WAL, durable commits); ``fsck`` checks and
repairs it; ``legacy`` imports the old device's ``media_index.json``.
"""

from __future__ import annotations

from .fsck import FsckReport, Problem
from .items import KINDS, Item, NewItem
from .legacy import Converter, LegacyReport, Skipped
from .schema import SCHEMA_VERSION
from .settings import Settings
from .store import Library, open_library

__all__ = [
    "KINDS",
    "SCHEMA_VERSION",
    "Converter",
    "FsckReport",
    "Item",
    "LegacyReport",
    "Library",
    "NewItem",
    "Problem",
    "Settings",
    "Skipped",
    "open_library",
]
