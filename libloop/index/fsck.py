"""Check the library and repair it: ``loop fsck [--repair]`` and the start-up recovery.

Problem kinds (``Problem.kind``):

- ``integrity``: SQLite's integrity check failed (not repairable here: restore a backup).
- ``schema``: unknown schema version, missing tables or columns.
- ``positions``: play positions are not exactly 0..n-1 (repair: renumber in the same order).
- ``pending_unlink``: a deleted item's file still waiting to be unlinked (repair: unlink).
- ``pending_add``: an add that never committed (repair: roll back; only when no other process
  has the library open, because it may be that process's add in flight).
- ``tmp_leftover``: a file in ``frames/.tmp`` nobody is writing (repair: remove; same caveat).
- ``orphan_file``: a file in ``frames/`` no item names (repair: quarantine the file).
- ``adopted_file``: a sound frame file no item names, with an id never used in this library
  (repair: add it back to the library from what its metadata block says; see ``rebuild``).
  Start-up does this only for a database that was empty: a lost index is rebuilt.
- ``damaged_database``: SQLite cannot read the database (repair, by ``rebuild.repair_damaged``:
  set it aside in the quarantine, then rebuild the library from the frame files).
- ``startup``: start-up could not finish its repairs (a full or read-only disk), or it opened
  the library for reading only.
- ``missing_file``: an item whose frame file is gone (repair: remove the entry from the play
  order and record it in the quarantine manifest).
- ``corrupt_file``: a frame file whose checksums fail (repair: quarantine file and entry).
- ``old_format``: a frame file in format v1, every frame stored raw (repair: convert it to v2
  in place, losslessly — the same frames, durations and regions in a fraction of the space;
  the file is written beside and renamed over the old one, so a player reading it carries on).
- ``orphan_original``: a kept original in ``originals/`` that no item names (what a delete or
  an interrupted add left; repair, at start-up too: remove it, see ``originals.py``).
- ``missing_original``: an item whose kept original is gone (repair: the item keeps playing
  and is marked as having no original, so a re-render skips it).
- ``stray_original``: a file in ``originals/`` not named like an original (repair: quarantine).

Repair never deletes user data: files and entries go to ``DATA/quarantine/<timestamp>/`` with
a ``manifest.json`` that records each entry as JSON. Start-up runs the quick part: everything
but the checksums, repairing only what a crash can leave behind (intents, positions, .tmp).
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import durable, originals, schema
from .items import Item

if TYPE_CHECKING:
    from .store import Library

INTEGRITY = "integrity"
SCHEMA = "schema"
POSITIONS = "positions"
PENDING_UNLINK = "pending_unlink"
PENDING_ADD = "pending_add"
TMP_LEFTOVER = "tmp_leftover"
UPLOAD_LEFTOVER = "upload_leftover"

#: Where the device streams uploads before importing them (``DATA/incoming``).
INCOMING = "incoming"
ORPHAN_FILE = "orphan_file"
MISSING_FILE = "missing_file"
CORRUPT_FILE = "corrupt_file"
OLD_FORMAT = "old_format"
ORPHAN_ORIGINAL = "orphan_original"
MISSING_ORIGINAL = "missing_original"
STRAY_ORIGINAL = "stray_original"
ADOPTED_FILE = "adopted_file"
DAMAGED_DATABASE = "damaged_database"
STARTUP = "startup"


@dataclass(frozen=True)
class Problem:
    """One thing fsck found: its kind, the item or path concerned, a sentence, and if repaired."""

    kind: str
    message: str
    item_id: str | None = None
    path: str | None = None
    repaired: bool = False


@dataclass
class FsckReport:
    """What a check found. ``ok`` is True when nothing is left unrepaired."""

    problems: list[Problem] = field(default_factory=list)
    items_checked: int = 0
    files_checked: int = 0
    quarantine: Path | None = None

    @property
    def ok(self) -> bool:
        return all(p.repaired for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON (for ``loop fsck --json`` and logs)."""
        return {
            "ok": self.ok,
            "items_checked": self.items_checked,
            "files_checked": self.files_checked,
            "quarantine": str(self.quarantine) if self.quarantine else None,
            "problems": [asdict(p) for p in self.problems],
        }


class Quarantine:
    """A folder ``DATA/quarantine/<timestamp>/`` with the files set aside and a manifest."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path: Path | None = None
        self.records: list[dict[str, Any]] = []

    def _dir(self) -> Path:
        if self.path is None:
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            path = self.root / stamp
            n = 1
            while path.exists():
                n += 1
                path = self.root / f"{stamp}-{n}"
            path.mkdir(parents=True)
            durable.fsync_dir(self.root)
            self.path = path
        return self.path

    def record(self, kind: str, message: str, *, item: Item | None, file: Path | None) -> None:
        """Write the manifest entry first, then move the file (a crash leaves a record, never a loss)."""
        folder = self._dir()
        target = folder / file.name if file is not None else None
        self.records.append(
            {
                "kind": kind,
                "message": message,
                "item": item.to_dict() if item is not None else None,
                "original_path": str(file) if file is not None else None,
                "quarantined_path": str(target) if target is not None else None,
                "time": time.time(),
            }
        )
        durable.write_json_atomic(folder / "manifest.json", {"entries": self.records})
        if file is not None and target is not None:
            durable.move_durably(file, target)


def run(
    library: Library, *, repair: bool, checksums: bool, startup: bool = False, adopt: bool = False
) -> FsckReport:
    """Check ``library``; repair as described in the module docstring.

    With ``startup`` only crash leftovers are repaired; orphans and missing files are reported,
    unless ``adopt`` (the database was empty): then sound orphans are added back.
    """
    report = FsckReport()
    quarantine = Quarantine(library.quarantine_dir)
    with library._lock:
        conn = library._require()
        _check_database(conn, report, quick=startup)
        with library._exclusive() as alone:
            _check_pending(library, report, repair=repair, alone=alone)
            _check_tmp(library, report, repair=repair, alone=alone)
            _check_incoming(library, report, repair=repair, alone=alone)
        _check_positions(library, report, repair=repair)
        with library._exclusive() as alone:
            adopting = repair and alone and (adopt or not startup)
            _check_files(library, report, quarantine, repair=repair and not startup, adopt=adopting)
        _check_originals(library, report, quarantine, repair=repair, startup=startup)
    if checksums:
        _check_checksums(library, report, quarantine, repair=repair)
    if not startup:
        _check_formats(library, report, repair=repair)
    report.quarantine = quarantine.path
    return report


def _check_database(conn: sqlite3.Connection, report: FsckReport, *, quick: bool) -> None:
    pragma = "quick_check" if quick else "integrity_check"
    try:
        rows = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}")]
    except sqlite3.DatabaseError as err:
        rows = [str(err)]
    if rows != ["ok"]:
        report.problems.append(
            Problem(INTEGRITY, f"The database failed its integrity check: {'; '.join(rows[:5])}.")
        )
    for text in schema.schema_problems(conn):
        report.problems.append(Problem(SCHEMA, f"The database schema is wrong: {text}."))


def _check_pending(library: Library, report: FsckReport, *, repair: bool, alone: bool) -> None:
    rows = (
        library._require()
        .execute("SELECT op, item_id, file_name, original FROM pending ORDER BY seq")
        .fetchall()
    )
    for op, item_id, file_name, original in rows:
        if op == "unlink":
            if repair:
                library.finish_unlink(file_name)
            gone = (
                not library._require()
                .execute("SELECT 1 FROM pending WHERE op = 'unlink' AND file_name = ?", (file_name,))
                .fetchone()
            )
            message = f"The file {file_name} of deleted item {item_id} was still waiting to be removed."
            report.problems.append(
                Problem(PENDING_UNLINK, message, item_id, file_name, repaired=repair and gone)
            )
        elif alone:  # otherwise it may be another process's add in flight
            message = f"The add of item {item_id} was interrupted before it committed."
            if repair:
                durable.unlink(library.frames_dir / file_name)
                durable.fsync_dir(library.frames_dir)
                with library._transaction("rolling back an interrupted add") as tx:
                    tx.execute("DELETE FROM pending WHERE op = 'add' AND file_name = ?", (file_name,))
                if original is not None:
                    originals.collect(library, [original])
            report.problems.append(Problem(PENDING_ADD, message, item_id, file_name, repaired=repair))


def _check_incoming(library: Library, report: FsckReport, *, repair: bool, alone: bool) -> None:
    """Uploads cut off by a crash or power cut (only when no device has the library open)."""
    incoming = library.data_dir / INCOMING
    if not alone or not incoming.is_dir():
        return
    for entry in sorted(incoming.iterdir()):
        if not entry.is_file():
            continue
        if repair:
            durable.unlink(entry)
        message = f"The unfinished upload {entry.name} was left in incoming/."
        report.problems.append(Problem(UPLOAD_LEFTOVER, message, path=str(entry), repaired=repair))


def _check_tmp(library: Library, report: FsckReport, *, repair: bool, alone: bool) -> None:
    if not alone or not library.tmp_dir.is_dir():
        return  # another process may be writing there
    live = {p.name for p in library._live_staging()}
    for entry in sorted(library.tmp_dir.iterdir()):
        if entry.name in live or entry.name.split(".partial")[0] in live or not entry.is_file():
            continue
        if repair:
            durable.unlink(entry)
        message = f"The unfinished file {entry.name} was left in frames/.tmp."
        report.problems.append(Problem(TMP_LEFTOVER, message, path=str(entry), repaired=repair))
    if repair:
        durable.fsync_dir(library.tmp_dir)


def _check_positions(library: Library, report: FsckReport, *, repair: bool) -> None:
    conn = library._require()
    rows = conn.execute("SELECT id, position FROM items ORDER BY position, created, id").fetchall()
    report.items_checked = len(rows)
    if [r[1] for r in rows] == list(range(len(rows))):
        return
    if repair:
        with library._transaction("renumbering the play order") as tx:
            library._set_order(tx, [r[0] for r in rows])
        library._notify()
    message = "The play positions were not numbered 0 to n-1 without gaps."
    report.problems.append(Problem(POSITIONS, message, repaired=repair))


def _check_files(
    library: Library, report: FsckReport, quarantine: Quarantine, *, repair: bool, adopt: bool = False
) -> None:
    from .rebuild import adopt_files

    # List the directory first, then read the index: an add commits its intent before its file
    # appears, so any file listed here is already named by an item or an intent below.
    files = {e.name for e in os.scandir(library.frames_dir) if e.is_file(follow_symlinks=False)}
    conn = library._require()
    items = [Item.from_row(r) for r in conn.execute("SELECT * FROM items ORDER BY position")]
    known = {i.file_name for i in items} | {r[0] for r in conn.execute("SELECT file_name FROM pending")}
    report.files_checked = len(files)
    orphans = sorted(files - known)
    if adopt:
        orphans = adopt_files(library, orphans, report)
    for name in orphans:
        path = library.frames_dir / name
        message = f"The file frames/{name} belongs to no item."
        if repair:
            quarantine.record(ORPHAN_FILE, message, item=None, file=path)
        report.problems.append(Problem(ORPHAN_FILE, message, path=str(path), repaired=repair))
    for item in items:
        path = library.frame_path(item)
        if path.exists():
            continue
        message = f"Item {item.id} ({item.name}) has lost its frame file {item.file_name}."
        repaired = repair and _quarantine_entry(library, quarantine, MISSING_FILE, message, item, None)
        report.problems.append(Problem(MISSING_FILE, message, item.id, str(path), repaired=repaired))


def _check_originals(
    library: Library, report: FsckReport, quarantine: Quarantine, *, repair: bool, startup: bool
) -> None:
    """Originals nothing names (removed, at start-up too), items whose original is gone, strays."""
    if not library.originals_dir.is_dir():
        return
    for name in originals.unreferenced(library):
        removed = repair and name in originals.collect(library, [name])
        message = f"The kept original originals/{name[:12]}… belongs to no item."
        report.problems.append(
            Problem(ORPHAN_ORIGINAL, message, path=str(library.originals_dir / name), repaired=removed)
        )
    for path in originals.stray_files(library):
        message = f"The file originals/{path.name} is not a kept original."
        fix = repair and not startup
        if fix:
            quarantine.record(STRAY_ORIGINAL, message, item=None, file=path)
        report.problems.append(Problem(STRAY_ORIGINAL, message, path=str(path), repaired=fix))
    conn = library._require()
    rows = conn.execute("SELECT * FROM items WHERE original IS NOT NULL ORDER BY position").fetchall()
    for item in (Item.from_row(r) for r in rows):
        kept = library.original_path(item)
        if kept is None or kept.exists():
            continue
        message = f"Item {item.id} ({item.name}) has lost its kept original; re-upload it to re-render it."
        fix = repair and not startup
        if fix:
            with library._transaction("forgetting a lost original") as tx:
                tx.execute(
                    "UPDATE items SET original = NULL, original_bytes = 0 WHERE id = ? AND original = ?",
                    (item.id, item.original),
                )
                library._bump(tx)
            library._notify()
        report.problems.append(Problem(MISSING_ORIGINAL, message, item.id, str(kept), repaired=fix))


def _check_checksums(library: Library, report: FsckReport, quarantine: Quarantine, *, repair: bool) -> None:
    from libloop.media.frames import verify_any as verify_file

    for item in library.items():
        path = library.frame_path(item)
        if not path.exists():
            continue  # reported above, or deleted since
        faults = verify_file(path)
        if not faults:
            continue
        message = f"Item {item.id} ({item.name}) has a damaged frame file: {'; '.join(faults[:3])}."
        repaired = False
        if repair:
            with library._lock:
                repaired = _quarantine_entry(library, quarantine, CORRUPT_FILE, message, item, path)
        report.problems.append(Problem(CORRUPT_FILE, message, item.id, str(path), repaired=repaired))


def _check_formats(library: Library, report: FsckReport, *, repair: bool) -> None:
    """Frame files still in format v1: reported, and with ``repair`` converted to v2."""
    from libloop.errors import DiskFull, FrameFileError
    from libloop.media.framefile_v2 import file_version
    from libloop.media.frames import upgrade_to_v2

    for item in library.items():
        path = library.frame_path(item)
        try:
            if file_version(path) != 1:
                continue
        except FrameFileError:
            continue  # missing or damaged: reported by the other checks
        size = path.stat().st_size
        message = (
            f"Item {item.id} ({item.name}) is stored in the old frame format, every frame raw "
            f"({size / 1e6:.1f} MB); `loop fsck --repair` converts it."
        )
        repaired = False
        if repair:
            staged = library.staging_path(".v2")
            try:
                new_size = upgrade_to_v2(path, staged, video=item.kind == "video")
                repaired = _swap_file(library, item, staged, new_size)
            except (FrameFileError, DiskFull, OSError) as exc:
                message += f" Converting it failed: {exc}"
            finally:
                durable.unlink(staged)
                durable.unlink(staged.with_name(staged.name + ".partial"))
            if repaired:
                message = f"Item {item.id} ({item.name}) was converted to frame format v2 ({size / 1e6:.1f} MB → {new_size / 1e6:.1f} MB)."
        report.problems.append(Problem(OLD_FORMAT, message, item.id, str(path), repaired=repaired))


def _swap_file(library: Library, item: Item, staged: Path, size: int) -> bool:
    """Rename ``staged`` over the item's frame file and record its new size, if the item is unchanged."""
    with library._transaction("storing a converted frame file") as tx:
        row = tx.execute("SELECT file_name FROM items WHERE id = ?", (item.id,)).fetchone()
        if row is None or row[0] != item.file_name:
            return False  # deleted or replaced meanwhile
        durable.fsync_file(staged)
        durable.rename(staged, library.frame_path(item))
        durable.fsync_dir(library.frames_dir)
        tx.execute("UPDATE items SET size_bytes = ? WHERE id = ?", (size, item.id))
        library._bump(tx)
    library._notify()
    return True


def _quarantine_entry(
    library: Library, quarantine: Quarantine, kind: str, message: str, item: Item, file: Path | None
) -> bool:
    """Record the entry (and move its file) in the quarantine, then drop it from the play order."""
    with library._transaction("removing a damaged item") as tx:
        row = tx.execute("SELECT * FROM items WHERE id = ?", (item.id,)).fetchone()
        if row is None:
            return True  # deleted meanwhile
        current = Item.from_row(row)
        path = library.frame_path(current)
        if kind == MISSING_FILE and path.exists():
            return False  # it came back (another process was mid-way): leave the entry alone
        moved = file if file is not None and file.exists() else None
        quarantine.record(kind, message, item=current, file=moved)
        tx.execute("DELETE FROM items WHERE id = ?", (item.id,))
        tx.execute("UPDATE items SET position = position - 1 WHERE position > ?", (current.position,))
        original = library.original_path(current)
        if original is not None and original.exists():
            shared = tx.execute("SELECT 1 FROM items WHERE original = ?", (current.original,)).fetchone()
            if shared is None:  # the upload itself is the person's data: set aside with the entry
                quarantine.record(kind, f"The kept original of item {item.id}.", item=None, file=original)
        library._bump(tx)
    library._notify()
    return True
