"""The durable media index: items, play order and settings of one data directory.

``Library(data_dir)`` is the one store (SQLite, WAL, durable commits); ``fsck`` checks and
repairs it; ``legacy`` imports the old device's ``media_index.json``.
"""

from __future__ import annotations

from .access import ApiTokens, LoginSessions, TokenInfo
from .fsck import FsckReport, Problem
from .items import KINDS, Item, NewItem
from .legacy import Converter, LegacyReport, Skipped
from .schema import SCHEMA_VERSION
from .settings import Settings
from .store import Library, open_library

__all__ = [
    "KINDS",
    "SCHEMA_VERSION",
    "ApiTokens",
    "Converter",
    "FsckReport",
    "Item",
    "LegacyReport",
    "Library",
    "LoginSessions",
    "NewItem",
    "Problem",
    "Settings",
    "Skipped",
    "TokenInfo",
    "open_library",
]
