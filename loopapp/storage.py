"""How the device opens its library when the SD card is not what it should be.

The device must always start, answer and say what is wrong. ``open_device_library`` tries,
in order:

1. the library as it is (start-up recovery included);
2. a damaged database is set aside and the library rebuilt from the frame files
   (``libloop.index.rebuild``), the same repair ``loop fsck --repair`` makes;
3. a read-only data disk (a card the kernel remounted read-only after an error): the library
   is opened for reading: LOOP plays it, and every change answers "read-only";
4. anything else (an I/O error, no space to rebuild in): the device starts without a library
   (``UnavailableLibrary``): the panel shows the error screen with the reason, every library
   route answers 503 with it, and ``/api/health`` says what to run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libloop.errors import LibraryUnavailable, LoopError, StorageReadOnly
from libloop.index import Library

log = logging.getLogger(__name__)

#: What to run when the library cannot be opened.
FIX = (
    "Check the SD card (`loop doctor`), run `loop fsck --repair` with the device stopped "
    "(sudo systemctl stop loop), then start it again."
)


@dataclass
class LibraryOpening:
    """The library the device runs with, and what it took to get it."""

    library: Any  # Library, or UnavailableLibrary
    #: ``ok``, ``rebuilt`` (a damaged database was set aside), ``read_only`` or ``unavailable``.
    state: str = "ok"
    #: Sentences for ``/api/health`` (problems found and what was done about them).
    problems: list[str] = field(default_factory=list)
    #: What the panel says instead of playing (None: it plays).
    screen: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``library`` part of the health report's ``storage`` section."""
        fix = FIX if self.state in ("unavailable", "read_only") else None
        return {"state": self.state, "problems": list(self.problems), "fix": fix}


def open_device_library(data_dir: Path) -> LibraryOpening:
    """Open the device's library, repairing or degrading as the module docstring says; never raises."""
    from libloop.index.fsck import STARTUP
    from libloop.index.rebuild import open_or_repair

    try:
        library, repaired = open_or_repair(data_dir)
    except StorageReadOnly as exc:
        return _read_only(data_dir, exc)
    except LoopError as exc:
        log.error("the library cannot be opened: %s", exc)
        return _unavailable(str(exc))
    opening = LibraryOpening(library)
    if repaired is not None:
        opening.state = "rebuilt"
        opening.problems.append(repaired.problems[0].message)
    report = library.recovery_report
    if report is not None:
        opening.problems += [p.message for p in report.problems if p.kind == STARTUP]
    return opening


def _read_only(data_dir: Path, cause: LoopError) -> LibraryOpening:
    try:
        library = Library(data_dir, read_only=True).open()
    except LoopError as exc:
        log.error("the library cannot be opened, not even for reading: %s", exc)
        return _unavailable(f"{cause} Reading it failed too: {exc}")
    log.error("the data disk is read-only; playing the library without changes: %s", cause)
    sentence = (
        "The data disk is read-only (the SD card may be failing): LOOP plays the library but "
        "cannot change it; uploads, deletes and settings are refused until it is writable again."
    )
    return LibraryOpening(library, "read_only", [sentence])


def _unavailable(reason: str) -> LibraryOpening:
    screen = f"The library cannot be opened: {reason.split(';')[0]}. Run `loop fsck --repair`."
    return LibraryOpening(UnavailableLibrary(reason), "unavailable", [f"{reason} {FIX}"], screen)


class _NoSettings:
    """Settings of a library that could not be opened: nothing is stored, nothing can be."""

    def __init__(self, owner: UnavailableLibrary) -> None:
        self._owner = owner

    def get(self, key: str, default: Any = None) -> Any:
        return default

    def set(self, key: str, value: Any) -> None:
        raise self._owner.error()

    def delete(self, key: str) -> bool:
        raise self._owner.error()

    def as_dict(self) -> dict[str, Any]:
        return {}


class UnavailableLibrary:
    """Stands in for the library when it cannot be opened: plays nothing, refuses every change.

    The player sees an empty playlist; the web app's library calls raise ``LibraryUnavailable``
    (503) with the reason; settings read as their defaults.
    """

    read_only = True
    is_open = False
    recovery_report = None

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.settings = _NoSettings(self)
        self._closed = threading.Event()

    def error(self) -> LibraryUnavailable:
        return LibraryUnavailable(f"The library is not available: {self.reason}")

    @property
    def generation(self) -> int:
        return 0

    def wait_for_change(self, since: int, timeout: float) -> int:
        self._closed.wait(timeout)
        return since

    def playlist(self) -> list[Any]:
        return []

    def items(self) -> list[Any]:
        raise self.error()

    def get(self, item_id: str) -> Any:
        raise self.error()

    def find_by_hash(self, content_hash: str) -> Any:
        raise self.error()

    def frame_path(self, item: Any) -> Path:
        raise self.error()

    def staging_path(self, suffix: str = ".loop") -> Path:
        raise self.error()

    def add(self, frame_file: Path, meta: Any, *, item_id: str | None = None) -> Any:
        raise self.error()

    def update(self, item_id: str, **changes: Any) -> Any:
        raise self.error()

    def delete(self, item_id: str) -> Any:
        raise self.error()

    def reorder(self, ids: Sequence[str]) -> Any:
        raise self.error()

    def move(self, item_id: str, position: int) -> Any:
        raise self.error()

    def close(self) -> None:
        self._closed.set()
