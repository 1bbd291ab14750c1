"""How the device opens its library when the SD card is not what it should be.

The device must always start, answer and say what is wrong. ``open_device_library`` tries,
in order:

1. the library as it is (start-up recovery included);
2. a damaged database is set aside and the library rebuilt from the frame files
   (``libloop.index.rebuild``), the same repair ``loop fsck --repair`` makes;
3. a full disk: SQLite needs a little room to open a database (its ``-wal`` and ``-shm``
   files), so the device keeps a small reserve file (``DATA/.reserve``, made while there is
   plenty of space) and gives it up to open the library, so that media can be deleted from the
   dashboard to make room; without a reserve the library is opened for reading only (it plays;
   changes answer 507 "disk full");
4. a read-only data disk (a card the kernel remounted read-only after an error): the library
   is opened for reading: LOOP plays it, and every change answers "read-only";
5. anything else (an I/O error, no room to rebuild in): the device starts without a library
   (``UnavailableLibrary``): the panel shows the error screen with the reason, every library
   route answers 503 with it, and ``/api/health`` says what to run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libloop.errors import DiskFull, LibraryUnavailable, LoopError, StorageError, StorageReadOnly
from libloop.index import FsckReport, Library

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


class Reserve:
    """A small file kept on the data disk to give up when the disk is full (see the module docstring)."""

    SIZE = 2 * 1024 * 1024
    #: The reserve is only made when at least this much is free, so it never fills a disk itself.
    MIN_FREE = 32 * 1024 * 1024

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / ".reserve"

    def ensure(self) -> bool:
        """Make the reserve if it is missing and the disk has plenty of room; True if it exists."""
        try:
            if self.path.stat().st_size >= self.SIZE:
                return True
        except OSError:
            pass
        try:
            if shutil.disk_usage(self.path.parent).free < self.MIN_FREE:
                return False
            tmp = self.path.with_name(".reserve.tmp")
            with open(tmp, "wb") as out:
                out.write(bytes(self.SIZE))  # real blocks: a sparse file would free nothing
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(self.path)
            return True
        except OSError as exc:
            log.info("no disk reserve: %s", exc)
            with contextlib.suppress(OSError):
                self.path.with_name(".reserve.tmp").unlink()
            return False

    def release(self) -> bool:
        """Give the reserve back to the disk; True if there was one."""
        try:
            self.path.unlink()
        except OSError:
            return False
        log.warning("the disk is full: released LOOP's %d MB reserve", self.SIZE // (1024 * 1024))
        return True


def _disk_full(what: str) -> LoopError:
    return DiskFull(
        f"The SD card is full, so {what} is not possible now; LOOP plays the library but cannot "
        "change it: free some space on the card (or delete media once there is room), then restart LOOP."
    )


def open_device_library(data_dir: Path, reserve: Reserve | None = None) -> LibraryOpening:
    """Open the device's library, repairing or degrading as the module docstring says; never raises."""
    from libloop.index.fsck import STARTUP

    released = False
    try:
        try:
            library, repaired = _open(data_dir)
        except (DiskFull, StorageError) as exc:
            if isinstance(exc, StorageReadOnly) or reserve is None or not _nearly_full(data_dir):
                raise
            released = reserve.release()
            if not released:
                raise
            library, repaired = _open(data_dir)
    except StorageReadOnly as exc:
        return _read_only(data_dir, exc)
    except (DiskFull, StorageError) as exc:
        if _nearly_full(data_dir):
            return _read_only(data_dir, exc, full=True)
        log.error("the library cannot be opened: %s", exc)
        return _unavailable(str(exc))
    except LoopError as exc:
        log.error("the library cannot be opened: %s", exc)
        return _unavailable(str(exc))
    opening = LibraryOpening(library)
    if released:
        opening.problems.append(
            "The SD card was full: LOOP gave up its 2 MB reserve to open the library. Delete some "
            "media (or other files on the card) to make room."
        )
    if repaired is not None:
        opening.state = "rebuilt"
        opening.problems.append(repaired.problems[0].message)
    report = library.recovery_report
    if report is not None:
        opening.problems += [p.message for p in report.problems if p.kind == STARTUP]
    return opening


def _open(data_dir: Path) -> tuple[Library, FsckReport | None]:
    from libloop.index.rebuild import open_or_repair

    return open_or_repair(data_dir)


def _nearly_full(data_dir: Path) -> bool:
    try:
        return shutil.disk_usage(data_dir).free < 1024 * 1024
    except OSError:
        return False


def _read_only(data_dir: Path, cause: LoopError, *, full: bool = False) -> LibraryOpening:
    try:
        library = Library(data_dir, read_only=True, refuse=_disk_full if full else None).open()
    except LoopError as exc:
        log.error("the library cannot be opened, not even for reading: %s", exc)
        return _unavailable(f"{cause} Reading it failed too: {exc}")
    log.error("playing the library without changes: %s", cause)
    if full:
        sentence = (
            "The SD card is full: LOOP plays the library but cannot change it; free some space "
            "on the card, then restart LOOP."
        )
    else:
        sentence = (
            "The data disk is read-only (the SD card may be failing): LOOP plays the library but "
            "cannot change it; uploads, deletes and settings are refused until it is writable again."
        )
    return LibraryOpening(library, "read_only", [sentence])


def _unavailable(reason: str) -> LibraryOpening:
    library = UnavailableLibrary(reason)
    screen = f"The library cannot be opened ({library.short_reason}). Run `loop fsck --repair`."
    return LibraryOpening(library, "unavailable", [f"{reason} {FIX}"], screen)


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
        #: The reason's first clause, for one-sentence answers ("the data disk reported an I/O error").
        self.short_reason = re.split(r"[,;.(]", reason, maxsplit=1)[0].strip()
        self.short_reason = self.short_reason[:1].lower() + self.short_reason[1:]
        self.settings = _NoSettings(self)
        self._closed = threading.Event()

    def error(self) -> LibraryUnavailable:
        return LibraryUnavailable(
            f"The library could not be opened at start-up ({self.short_reason}); check the SD card with "
            "`loop doctor`, then run `loop fsck --repair` with the device stopped."
        )

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
