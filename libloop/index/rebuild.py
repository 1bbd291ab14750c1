"""Rebuilding the index from ``frames/``: a lost or damaged database never loses the library.

Every frame file carries a metadata block (``libloop.media.framemeta``) with what the index
knew of its item: id, name, kind, play position and play settings. The library writes it when
the item is added and keeps it up to date (best effort) when the item is renamed, changed or
moved. From those blocks and the frame files themselves (frame count, durations, size) the
index can be rebuilt:

* a database that is **lost** (deleted, or empty) is rebuilt at start-up: ``Library.open``
  adopts every sound frame file (``adopt_files``);
* a database that is **damaged** (SQLite cannot read it) is set aside, whole, in
  ``DATA/quarantine/<time>/`` by ``repair_damaged`` (``loop fsck --repair``, or the device at
  start-up); what can still be read of it (settings, items) is salvaged first, then a new
  database is made and the frame files adopted into it.

Files made before metadata blocks existed are adopted too: their id is their file name, their
name falls back to the id, their kind is guessed from the frame count.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from libloop.errors import FrameFileError, InvalidChange, LibraryDamaged, LibraryError

from . import durable
from .fsck import ADOPTED_FILE, DAMAGED_DATABASE, INTEGRITY, FsckReport, Problem, Quarantine
from .items import (
    ID_PATTERN,
    KINDS,
    Item,
    check_enabled,
    check_loops,
    check_min_seconds,
    check_name,
)

if TYPE_CHECKING:
    from .store import Library

__all__ = ["Salvage", "adopt_files", "item_meta", "open_or_repair", "repair_damaged", "salvage", "stamp"]

log = logging.getLogger(__name__)

#: The database and the files SQLite keeps beside it.
DB_FILES = ("library.db", "library.db-wal", "library.db-shm")


@dataclass
class Salvage:
    """What could still be read of a damaged database."""

    settings: dict[str, str] = field(default_factory=dict)  # key -> JSON text
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name -> items row
    deleted: set[str] = field(default_factory=set)  # file names of deleted items not yet unlinked
    errors: list[str] = field(default_factory=list)


# --- the metadata block, written by the library ---------------------------------------------


def item_meta(item: Item) -> dict[str, Any]:
    """What a frame file's metadata block records of its item."""
    return {
        "id": item.id,
        "name": item.name,
        "kind": item.kind,
        "position": item.position,
        "enabled": item.enabled,
        "loops": item.loops,
        "min_seconds": item.min_seconds,
        "source_name": item.source_name,
        "content_hash": item.content_hash,
        "created": item.created,
    }


def stamp(path: Path, meta: dict[str, Any]) -> bool:
    """Write ``meta`` into the frame file's block; False (and a log line) when it cannot be.

    A hint for repairs: a full or read-only disk, or a file that is not a frame file, never
    makes the change that asked for the stamp fail.
    """
    from libloop.media.framefile import write_item_meta

    try:
        return write_item_meta(path, meta)
    except (OSError, FrameFileError, ValueError) as err:
        log.info("could not update the metadata block of %s: %s", path.name, err)
        return False


def stamp_positions(library: Library, items: list[Item]) -> None:
    """Bring every item's position hint up to date (only the blocks that differ are written)."""
    from libloop.media.framemeta import read_meta

    for item in items:
        path = library.frame_path(item)
        meta = read_meta(path)
        if meta is None or meta.get("position") != item.position or meta.get("id") != item.id:
            stamp(path, item_meta(item))


# --- salvage and set aside ---------------------------------------------------------------


def salvage(db_path: Path) -> Salvage:
    """Read what can be read of a damaged database (never raises)."""
    found = Salvage()
    if not db_path.exists():
        return found
    for query in ("mode=ro", "mode=ro&immutable=1"):
        uri = f"file:{urllib.parse.quote(str(db_path))}?{query}"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=1.0)
        except sqlite3.Error as err:
            found.errors.append(str(err))
            continue
        conn.row_factory = sqlite3.Row
        try:
            for table, take in (
                ("settings", _take_setting),
                ("items", _take_item),
                ("pending", _take_pending),
            ):
                try:
                    for row in conn.execute(f"SELECT * FROM {table}"):
                        take(found, row)
                except sqlite3.Error as err:
                    found.errors.append(f"{table}: {err}")
        finally:
            conn.close()
        if found.settings or found.items:
            break
    return found


def _take_setting(found: Salvage, row: sqlite3.Row) -> None:
    key, value = row["key"], row["value"]
    if isinstance(key, str) and isinstance(value, str):
        found.settings[key] = value


def _take_item(found: Salvage, row: sqlite3.Row) -> None:
    values = dict(row)
    if isinstance(values.get("file_name"), str):
        found.items[values["file_name"]] = values


def _take_pending(found: Salvage, row: sqlite3.Row) -> None:
    if row["op"] == "unlink" and isinstance(row["file_name"], str):
        found.deleted.add(row["file_name"])


def repair_damaged(data_dir: Path, reason: str = "") -> FsckReport:
    """Set the damaged database aside and rebuild the library from the frame files.

    Returns the report of what was done (the set-aside database, each adopted file, the
    settings recovered). The data directory must not be open in another process.

    Raises:
        LibraryError: another process has the library open.
        DiskFull, StorageReadOnly, StorageError: the disk refused the repair.
    """
    from .store import Library

    data_dir = Path(data_dir)
    db_path = data_dir / "library.db"
    report = FsckReport()
    with durable.translate_errors("repairing the library", db=db_path):
        fd = os.open(data_dir / "library.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LibraryError(
                    "Another LOOP process has the library open (the device?); stop it "
                    "(sudo systemctl stop loop) and run `loop fsck --repair` again."
                ) from None
            found = salvage(db_path)
            quarantine = Quarantine(data_dir / "quarantine")
            why = f" ({reason})" if reason else ""
            message = f"The library database was damaged{why}; it was set aside and the library rebuilt."
            for name in DB_FILES:
                path = data_dir / name
                if path.exists():
                    quarantine.record(DAMAGED_DATABASE, message, item=None, file=path)
        finally:
            os.close(fd)  # releases the lock: the new Library takes its own
    library = Library(data_dir)
    library._salvage = found
    with library:
        restored = _restore_settings(library, found)
        assert library.recovery_report is not None
        adopted = [p for p in library.recovery_report.problems if p.kind == ADOPTED_FILE]
        report.problems.extend(p for p in library.recovery_report.problems if p.kind != ADOPTED_FILE)
        count = len(library.items())
    detail = f"{len(adopted)} items rebuilt from the frame files"
    if found.settings:
        detail += f", {restored} settings recovered"
    else:
        detail += (
            "; the settings could not be recovered (set the dashboard password again with `loop password`)"
        )
    where = f" in {quarantine.path}" if quarantine.path is not None else ""
    report.problems.insert(
        0,
        Problem(
            DAMAGED_DATABASE,
            f"The library database was damaged{why}; it was set aside{where} and the library rebuilt: {detail}.",
            path=str(quarantine.path) if quarantine.path else None,
            repaired=True,
        ),
    )
    report.problems[1:1] = adopted
    report.items_checked = count
    report.quarantine = quarantine.path
    log.warning("%s", report.problems[0].message)
    return report


def _restore_settings(library: Library, found: Salvage) -> int:
    if not found.settings:
        return 0
    with library._transaction("restoring the recovered settings") as tx:
        tx.executemany(
            "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", sorted(found.settings.items())
        )
        library._bump(tx)
    library._notify()
    return len(found.settings)


def open_or_repair(data_dir: Path, **kwargs: Any) -> tuple[Library, FsckReport | None]:
    """Open the library; a damaged database is set aside and rebuilt first.

    Returns the open library and, when a repair was needed, its report.
    """
    from .store import Library

    try:
        library = Library(data_dir, **kwargs).open()
    except LibraryDamaged as err:
        reason = str(err.__cause__ or err)
    else:
        report = library.recovery_report
        integrity = [p for p in report.problems if p.kind == INTEGRITY] if report is not None else []
        if not integrity:
            return library, None
        library.close()
        reason = integrity[0].message.rstrip(".")
    report = repair_damaged(Path(data_dir), reason)
    return Library(data_dir, **kwargs).open(), report


# --- adoption ------------------------------------------------------------------------------


@dataclass
class _Entry:
    id: str
    file_name: str
    name: str
    kind: str
    frames: int
    duration_ms: int
    width: int
    height: int
    loop_count: int
    enabled: bool
    loops: int
    min_seconds: float
    source_name: str
    content_hash: str
    created: float
    size_bytes: int
    position_hint: float | None


def _pick(checker: Any, *candidates: Any, default: Any) -> Any:
    for value in candidates:
        if value is None:
            continue
        try:
            return checker(value)
        except InvalidChange:
            continue
    return default


def _entry(path: Path, stem: str, meta: dict[str, Any], row: dict[str, Any] | None) -> _Entry | None:
    from libloop.media.frames import open_frames

    try:
        with open_frames(path) as ff:
            frames, durations = ff.frame_count, sum(ff.durations_ms)
            width, height, loop_count = ff.width, ff.height, ff.loop_count
        st = path.stat()
    except (FrameFileError, OSError):
        return None
    row = row or {}

    def text(key: str) -> str | None:
        for source in (row, meta):
            value = source.get(key)
            if isinstance(value, str):
                return value
        return None

    def number(key: str) -> float | None:
        for source in (row, meta):
            value = source.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        return None

    name = _pick(check_name, row.get("name"), meta.get("name"), default=stem)
    guessed = "image" if frames == 1 else "gif"
    kind = next((k for k in (row.get("kind"), meta.get("kind")) if k in KINDS), guessed)
    enabled_raw = row.get("enabled")
    from_row = bool(enabled_raw) if enabled_raw in (0, 1) else None
    enabled = _pick(check_enabled, from_row, meta.get("enabled"), default=True)
    loops = _pick(check_loops, row.get("loops"), meta.get("loops"), default=1)
    min_seconds = _pick(check_min_seconds, row.get("min_seconds"), meta.get("min_seconds"), default=0.0)
    return _Entry(
        id=stem,
        file_name=path.name,
        name=name,
        kind=kind,
        frames=frames,
        duration_ms=durations,
        width=width,
        height=height,
        loop_count=loop_count,
        enabled=enabled,
        loops=loops,
        min_seconds=min_seconds,
        source_name=text("source_name") or name,
        content_hash=text("content_hash") or "",
        created=number("created") or st.st_mtime,
        size_bytes=st.st_size,
        position_hint=number("position"),
    )


def adopt_files(library: Library, names: list[str], report: FsckReport) -> list[str]:
    """Add the sound frame files among ``names`` (in ``frames/``, named by no item) to the library.

    A file is adopted when its name is ``<id>.loop`` for an id this library never used and it
    opens as a frame file; the others are returned (the caller quarantines them). The adopted
    items keep the order of their position hints, after the items already there.
    """
    from libloop.media.framemeta import read_meta

    found = library._salvage or Salvage()
    conn = library._require()
    used = {row[0] for row in conn.execute("SELECT id FROM used_ids")}
    entries: list[_Entry] = []
    rest: list[str] = []
    for name in names:
        stem = name[: -len(".loop")] if name.endswith(".loop") else ""
        if not ID_PATTERN.fullmatch(stem) or stem in used or name in found.deleted:
            rest.append(name)
            continue
        path = library.frames_dir / name
        meta = read_meta(path) or {}
        if meta.get("id") != stem:
            meta = {}  # a block that speaks of another item: trust only the file
        entry = _entry(path, stem, meta, found.items.get(name))
        if entry is None:
            rest.append(name)
        else:
            entries.append(entry)
    if not entries:
        return rest
    entries.sort(key=lambda e: (e.position_hint is None, e.position_hint or 0.0, e.created, e.id))
    with library._transaction("rebuilding the library from its frame files") as tx:
        (count,) = tx.execute("SELECT COUNT(*) FROM items").fetchone()
        for n, e in enumerate(entries):
            tx.execute("INSERT INTO used_ids (id) VALUES (?)", (e.id,))
            tx.execute(
                """INSERT INTO items (id, name, kind, frames, duration_ms, width, height, enabled,
                   position, loops, min_seconds, source_name, content_hash, loop_count, created,
                   file_name, size_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    e.id, e.name, e.kind, e.frames, e.duration_ms, e.width, e.height, int(e.enabled),
                    count + n, e.loops, e.min_seconds, e.source_name, e.content_hash, e.loop_count,
                    e.created, e.file_name, e.size_bytes,
                ),
            )  # fmt: skip
        library._bump(tx)
    library._notify()
    for e in entries:
        item = library.get(e.id)
        stamp(library.frame_path(item), item_meta(item))
        report.problems.append(
            Problem(
                ADOPTED_FILE,
                f"The frame file frames/{e.file_name} was in no item; it is back in the library as "
                f"{e.name!r} at position {item.position}.",
                e.id,
                str(library.frame_path(item)),
                repaired=True,
            )
        )
    return rest
