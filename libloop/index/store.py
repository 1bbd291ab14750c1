"""The library: the one durable store of items, play order and device settings.

SQLite in WAL mode with ``synchronous=FULL``: a change is on disk when its method returns.
One connection, guarded by a lock, serves every thread of the process; several processes
(the device and the CLI) share the database through SQLite's own locking (``BEGIN
IMMEDIATE`` for every write, a busy timeout for waiting). Each open Library holds a shared
``flock`` on ``DATA/library.lock``; work that must not race a live writer elsewhere (rolling
back half-done adds, clearing ``frames/.tmp``) runs only while the lock can be taken
exclusively, i.e. when no other process has the library open.

Crash safety of an add: an ``add`` intent is committed first, then the frame file is
fsynced, renamed to ``frames/<id>.loop`` and the directory fsynced, and only then the item
is committed (removing the intent in the same transaction). Start-up recovery rolls back any
intent left behind, so a crash leaves the item with its file or neither.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from libloop.clock import Clock, MonotonicClock
from libloop.errors import (
    FrameFileError,
    InvalidChange,
    ItemNotFound,
    LibraryDamaged,
    LibraryError,
    LoopError,
)

from . import durable, originals, rebuild, schema
from .access import ApiTokens, LoginSessions
from .items import (
    Item,
    NewItem,
    check_dither,
    check_enabled,
    check_fit,
    check_id,
    check_loops,
    check_min_seconds,
    check_name,
    check_seconds,
    make_item_id,
)
from .settings import Settings

if TYPE_CHECKING:
    from .fsck import FsckReport
    from .legacy import Converter, LegacyReport
    from .rebuild import Salvage

log = logging.getLogger(__name__)


class Unset:
    """The type of ``UNSET``: "leave this field as it is" where None is a value of its own."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset()

#: How long a staging path handed out but not yet written counts as in use (an import may be queued).
STAGING_GRACE_S = 6 * 3600.0


class Library:
    """The media library of one data directory. Thread-safe; safe across processes.

    Args:
        data_dir: the device's data directory (``library.db``, ``frames/``, ``quarantine/``).
        clock: the clock ``wait_for_change`` measures its timeout on.
        poll_interval: how often a waiter checks for commits by *other processes* (in-process
            changes wake it at once).
        busy_timeout: how long a write waits for another process's write to finish.
        read_only: open for reading only (no recovery, no changes): a disk that refuses writes.
        refuse: what a change raises then, given what was refused (default: StorageReadOnly).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        clock: Clock | None = None,
        poll_interval: float = 0.5,
        busy_timeout: float = 15.0,
        read_only: bool = False,
        refuse: Callable[[str], LoopError] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.db_path = self.data_dir / "library.db"
        self.frames_dir = self.data_dir / "frames"
        self.tmp_dir = self.frames_dir / ".tmp"
        self.quarantine_dir = self.data_dir / "quarantine"
        #: Kept uploads, named by content hash (see ``originals.py``).
        self.originals_dir = self.data_dir / originals.DIR
        self.settings = Settings(self)
        #: Named API tokens and dashboard logins (see ``access.py``).
        self.tokens = ApiTokens(self)
        self.sessions = LoginSessions(self)
        #: Opened for reading only (a read-only or full data disk): every change raises
        #: ``refuse(what)`` (default: StorageReadOnly).
        self.read_only = read_only
        self._refuse: Callable[[str], LoopError] = refuse or durable.read_only
        #: What start-up recovery found and did (set by ``open``).
        self.recovery_report: FsckReport | None = None
        self._clock: Clock = clock or MonotonicClock()
        self._poll_interval = poll_interval
        self._busy_timeout = busy_timeout
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None  # plain reads (see _open_reader)
        self._read_lock = threading.Lock()
        self._lock_fd: int | None = None
        self._waiters: set[threading.Event] = set()
        self._waiters_lock = threading.Lock()
        self._staging: dict[Path, float] = {}  # handed-out staging path -> when (time.monotonic)
        #: What a repair read of the damaged database this one replaces (``rebuild.repair_damaged``).
        self._salvage: Salvage | None = None

    # --- life cycle ----------------------------------------------------------------------

    def open(self) -> Library:
        """Create the directories, open and migrate the database, run start-up recovery.

        A database that was empty (new, or lost) while ``frames/`` holds frame files is rebuilt
        from them (see ``libloop.index.rebuild``). Start-up repairs that the disk refuses (full,
        read-only) are reported in ``recovery_report`` and wait for the next start.

        Raises:
            LibraryDamaged: SQLite cannot read the database (``loop fsck --repair`` rebuilds it).
            StorageReadOnly, StorageError, DiskFull: the data disk refused what opening needs.
        """
        with self._lock:
            if self._conn is not None:
                return self
            if self.read_only:
                return self._open_read_only()
            with durable.translate_errors("opening the library", db=self.db_path):
                self.tmp_dir.mkdir(parents=True, exist_ok=True)
                self.originals_dir.mkdir(exist_ok=True)
                self._lock_fd = os.open(self.data_dir / "library.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
                with durable.translate_errors("opening the library", db=self.db_path):
                    self._set_aside_stale_journal()
                    conn = sqlite3.connect(
                        self.db_path,
                        timeout=self._busy_timeout,
                        isolation_level=None,
                        check_same_thread=False,
                    )
                    self._conn = conn
                    conn.row_factory = sqlite3.Row
                    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                    if str(mode).lower() != "wal":
                        raise LibraryError(f"The library database at {self.db_path} cannot use WAL mode.")
                    conn.execute("PRAGMA synchronous=FULL")
                    found = schema.migrate(conn)
                self.recovery_report = self._recover(fresh=found == 0)
                self._open_reader()
            except BaseException:
                self._release()
                raise
            for problem in self.recovery_report.problems:
                log.warning("library start-up: %s", problem.message)
        return self

    def _recover(self, *, fresh: bool) -> FsckReport:
        """Start-up recovery; a disk that refuses its repairs leaves them for the next start."""
        from . import fsck

        try:
            with durable.translate_errors("checking the library at start-up", db=self.db_path):
                return fsck.run(self, repair=True, checksums=False, startup=True, adopt=fresh)
        except LibraryDamaged:
            raise
        except LoopError as err:
            report = fsck.FsckReport()
            report.problems.append(fsck.Problem(fsck.STARTUP, f"Start-up repairs were not finished: {err}"))
            return report

    def _set_aside_stale_journal(self) -> None:
        """A ``-wal``/``-shm`` left without its database belongs to a lost one: never replay it."""
        from .fsck import DAMAGED_DATABASE, Quarantine

        if self.db_path.exists():
            return
        quarantine = Quarantine(self.quarantine_dir)
        for suffix in ("-wal", "-shm"):
            stale = self.db_path.with_name(self.db_path.name + suffix)
            if stale.exists():
                with self._exclusive() as alone:
                    if alone and not self.db_path.exists():
                        message = f"{stale.name} was left without its database; it was set aside."
                        quarantine.record(DAMAGED_DATABASE, message, item=None, file=stale)
                        log.warning("%s", message)

    def _open_read_only(self) -> Library:
        """Open for reading only: no directories made, no migration, no recovery, no changes."""
        from . import fsck

        with durable.translate_errors("opening the library for reading", db=self.db_path):
            self._lock_fd = os.open(self.data_dir / "library.lock", os.O_RDONLY)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
            conn = None
            for query in ("mode=ro", "mode=ro&immutable=1"):
                uri = f"file:{urllib.parse.quote(str(self.db_path))}?{query}"
                try:
                    conn = sqlite3.connect(
                        uri,
                        uri=True,
                        timeout=self._busy_timeout,
                        isolation_level=None,
                        check_same_thread=False,
                    )
                    conn.row_factory = sqlite3.Row
                    version = schema.version(conn)
                    conn.execute("SELECT COUNT(*) FROM items").fetchone()
                    break
                except sqlite3.Error as err:
                    if conn is not None:
                        conn.close()
                    conn = None
                    if durable.is_damage(err):
                        raise durable.damaged(self.db_path, err) from err
            if conn is None:
                raise LibraryError(f"The library database {self.db_path} cannot be read; run `loop fsck`.")
            self._conn = conn
            if version != schema.SCHEMA_VERSION:
                raise LibraryError(
                    f"The library database has schema version {version} and cannot be upgraded on a "
                    "read-only disk; make the disk writable and restart LOOP."
                )
            report = fsck.FsckReport()
            report.problems.append(
                fsck.Problem(fsck.STARTUP, "The library is open for reading only: no change can be saved.")
            )
            self.recovery_report = report
        except BaseException:
            self._release()
            raise
        return self

    def close(self) -> None:
        """Close the database and release the lock; waiters return at once."""
        with self._lock:
            self._release()
        self._notify()

    def _open_reader(self) -> None:
        """A second connection for plain reads, so that a reader never waits for a writer.

        A write holds the connection's lock through its durable commit (an fsync, long on an SD
        card); the player checks ``generation`` every frame. In WAL mode a read on another
        connection sees every committed change and never waits for the write in progress.
        """
        with durable.translate_errors("opening the library"):
            reader = sqlite3.connect(
                self.db_path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
        reader.row_factory = sqlite3.Row
        reader.execute("PRAGMA query_only = 1")
        with self._read_lock:
            self._reader = reader

    def _release(self) -> None:
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __enter__(self) -> Library:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        """True between ``open()`` and ``close()``."""
        return self._conn is not None

    # --- reading -------------------------------------------------------------------------

    def items(self) -> list[Item]:
        """Every item, in play order."""
        return [Item.from_row(r) for r in self._query("SELECT * FROM items ORDER BY position, id")]

    def playlist(self) -> list[Item]:
        """The enabled items, in play order: what the player plays."""
        rows = self._query("SELECT * FROM items WHERE enabled = 1 ORDER BY position, id")
        return [Item.from_row(r) for r in rows]

    def get(self, item_id: str) -> Item:
        """The item with this id; ItemNotFound if there is none."""
        rows = self._query("SELECT * FROM items WHERE id = ?", (item_id,))
        if not rows:
            raise ItemNotFound(item_id)
        return Item.from_row(rows[0])

    def find_by_hash(self, content_hash: str) -> Item | None:
        """The first item (in play order) whose source had this content hash, if any."""
        rows = self._query(
            "SELECT * FROM items WHERE content_hash = ? ORDER BY position LIMIT 1", (content_hash,)
        )
        return Item.from_row(rows[0]) if rows else None

    def frame_path(self, item: Item) -> Path:
        """Where the item's frame file is."""
        return self.frames_dir / item.file_name

    def original_path(self, item: Item) -> Path | None:
        """Where the item's kept original is, or None when it has none."""
        return None if item.original is None else self.originals_dir / item.original

    def staging_path(self, suffix: str = ".loop") -> Path:
        """A fresh path in ``frames/.tmp`` to write a frame file to before ``add``.

        Start-up recovery and ``fsck`` leave paths handed out by this Library alone.
        """
        if "/" in suffix or "\0" in suffix:
            raise ValueError(f"suffix {suffix!r} must not contain a path separator")
        path = self.tmp_dir / f"{secrets.token_urlsafe(12)}{suffix}"
        with self._lock:
            self._staging[path] = time.monotonic()
        return path

    @property
    def generation(self) -> int:
        """A number that increases with every committed change, from any process."""
        return int(self._query("SELECT value FROM meta WHERE key = 'generation'")[0][0])

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Wait until the generation differs from ``since``; return it (``since`` on timeout).

        Changes made through this Library wake the waiter at once; changes committed by other
        processes are noticed through SQLite's ``PRAGMA data_version`` every ``poll_interval``
        seconds (a memory read of the WAL index, not a disk read).
        """
        deadline = self._clock.monotonic() + timeout
        wake = threading.Event()
        with self._waiters_lock:
            self._waiters.add(wake)
        try:
            seen_version = -1
            while True:
                with self._lock:
                    if self._conn is None:
                        return since
                    version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
                    if version != seen_version or wake.is_set():
                        wake.clear()
                        seen_version = version
                        current = self.generation
                        if current != since:
                            return current
                now = self._clock.monotonic()
                if now >= deadline:
                    return since
                self._clock.sleep_until(min(deadline, now + self._poll_interval), wake)
        finally:
            with self._waiters_lock:
                self._waiters.discard(wake)

    # --- changing ------------------------------------------------------------------------

    def add(
        self,
        frame_file: Path,
        meta: NewItem,
        *,
        item_id: str | None = None,
        original: Path | None = None,
        render: Mapping[str, Any] | None = None,
    ) -> Item:
        """Add a finished frame file as a new item at the end of the play order.

        The Library takes the file over: on success it is moved to ``frames/<id>.loop``; on
        failure it is removed, so nothing is left behind. The file must be on the same file
        system as the data directory (``staging_path()`` gives such a path). Raises DiskFull
        when the disk fills up, InvalidChange for bad metadata or an id already used.

        ``original`` (the uploaded file, on the same file system) is taken over the same way
        and kept as ``originals/<content hash>`` (one file for every item of that content), in
        the same crash-safe add: the item never exists without it. ``render`` records what the
        frame file was rendered for (see ``Item.render``).
        """
        frame_file = Path(frame_file)
        original = None if original is None else Path(original)
        try:
            meta.validate()
            if item_id is not None:
                check_id(item_id)
            if original is not None:
                originals.check_name(meta.content_hash)
            with self._lock:
                return self._add(frame_file, meta, item_id, original, render)
        except BaseException:
            for leftover in (frame_file, original):
                if leftover is not None:
                    with contextlib.suppress(OSError):
                        durable.unlink(leftover)
            raise
        finally:
            with self._lock:
                self._staging.pop(frame_file, None)
                if original is not None:
                    self._staging.pop(original, None)

    def _add(
        self,
        frame_file: Path,
        meta: NewItem,
        item_id: str | None,
        original: Path | None,
        render: Mapping[str, Any] | None,
    ) -> Item:
        try:
            frame_file.stat()
        except FileNotFoundError:
            raise LibraryError(
                f"The frame file {frame_file} does not exist; import the media again."
            ) from None
        new_id = item_id or make_item_id()
        file_name = f"{new_id}.loop"
        final = self.frames_dir / file_name
        original_name = meta.content_hash if original is not None else None
        render_text = None if render is None else json.dumps(dict(render), sort_keys=True)
        created = time.time()
        with self._transaction("adding an item") as conn:
            if conn.execute("SELECT 1 FROM used_ids WHERE id = ?", (new_id,)).fetchone():
                raise InvalidChange(f"The id {new_id!r} is already used in this library; choose another.")
            conn.execute("INSERT INTO used_ids (id) VALUES (?)", (new_id,))
            conn.execute(
                "INSERT INTO pending (op, item_id, file_name, staged, original) VALUES ('add', ?, ?, ?, ?)",
                (new_id, file_name, str(frame_file), original_name),
            )
            (position,) = conn.execute("SELECT COUNT(*) FROM items").fetchone()
        try:
            with durable.translate_errors("adding an item"):
                # The file describes its item before it is fsynced (see libloop.index.rebuild).
                self._stamp_new(frame_file, new_id, meta, position, created)
                durable.fsync_file(frame_file)
                durable.rename(frame_file, final)
                durable.fsync_dir(self.frames_dir)
            original_bytes = 0
            if original is not None and original_name is not None:
                original_bytes = originals.place(self, original, original_name)
            with self._transaction("adding an item") as conn:
                (count,) = conn.execute("SELECT COUNT(*) FROM items").fetchone()
                conn.execute(
                    """INSERT INTO items (id, name, kind, frames, duration_ms, width, height, enabled,
                       position, loops, min_seconds, source_name, content_hash, loop_count, created,
                       file_name, size_bytes, original, original_bytes, render)
                       VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, 1, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        new_id, meta.name, meta.kind, meta.frames, meta.duration_ms, meta.width,
                        meta.height, count, meta.source_name, meta.content_hash, meta.loop_count,
                        created, file_name, final.stat().st_size, original_name, original_bytes, render_text,
                    ),
                )  # fmt: skip
                conn.execute("DELETE FROM pending WHERE op = 'add' AND item_id = ?", (new_id,))
                self._bump(conn)
        except BaseException:
            self._undo_add(new_id, final, original_name)
            raise
        self._notify()
        return self.get(new_id)

    @staticmethod
    def _stamp_new(path: Path, item_id: str, meta: NewItem, position: int, created: float) -> None:
        """Write the new item's metadata block; raises OSError for a disk that refuses it."""
        from libloop.media.framefile import write_item_meta

        block = {
            "id": item_id,
            "name": meta.name,
            "kind": meta.kind,
            "position": position,
            "enabled": True,
            "loops": 1,
            "min_seconds": 0.0,
            "source_name": meta.source_name,
            "content_hash": meta.content_hash,
            "created": created,
        }
        try:
            write_item_meta(path, block)
        except FrameFileError as err:  # not a frame file this LOOP reads: it is added as it is
            log.info("no metadata block for %s: %s", path.name, err)

    def adopt_original(self, item_id: str, original: Path) -> Item:
        """Keep ``original`` (its content is the item's) for an item that has none; takes it over.

        An item imported before originals were kept gets one when the same file is uploaded
        again. The same crash-safe steps as an add: an intent naming the original, the file
        placed, then the item committed with it. A no-op (the file removed) if it has one.

        Raises:
            ItemNotFound: no such item (the file is removed).
        """
        original = Path(original)
        try:
            return self._adopt(item_id, original)
        except BaseException:
            with contextlib.suppress(OSError):
                durable.unlink(original)
            raise
        finally:
            with self._lock:
                self._staging.pop(original, None)

    def _adopt(self, item_id: str, original: Path) -> Item:
        item = self.get(item_id)
        if item.original is not None:
            durable.unlink(original)
            return item
        name = originals.check_name(item.content_hash)
        marker = f"{item_id}-adopt-{secrets.token_hex(4)}.none"  # no frame file: nothing to undo there
        with self._transaction("keeping an item's original") as conn:
            conn.execute(
                "INSERT INTO pending (op, item_id, file_name, staged, original) VALUES ('add', ?, ?, ?, ?)",
                (item_id, marker, str(original), name),
            )
        try:
            size = originals.place(self, original, name)
            with self._transaction("keeping an item's original") as conn:
                updated = conn.execute(
                    "UPDATE items SET original = ?, original_bytes = ? WHERE id = ? AND original IS NULL",
                    (name, size, item_id),
                ).rowcount
                conn.execute("DELETE FROM pending WHERE op = 'add' AND file_name = ?", (marker,))
                if updated:
                    self._bump(conn)
        except BaseException:
            self._undo_add(item_id, self.frames_dir / marker, name, file_name=marker)
            raise
        originals.collect(self, [name])  # if the item went meanwhile
        self._notify()
        return self.get(item_id)

    def replace_frames(
        self,
        item_id: str,
        frame_file: Path,
        *,
        frames: int,
        duration_ms: int,
        render: Mapping[str, Any] | None,
        expect_file: str | None = None,
    ) -> Item:
        """Swap a new frame file into an item (a re-render), atomically and crash-safely.

        The new file gets a new name in ``frames/`` under an ``add`` intent; the item is pointed
        at it and the old file tombstoned in one commit, then the old file is removed. A player
        holding the old file open keeps reading it until its turn ends; the next turn opens
        the new one. Takes the file over like ``add``.

        Raises:
            ItemNotFound: the item was deleted meanwhile (the new file is removed).
            InvalidChange: ``expect_file`` is given and the item's file changed meanwhile.
        """
        frame_file = Path(frame_file)
        try:
            # Not under the lock as a whole: readers (the player, each frame) must not wait for
            # the new file's fsync; each transaction takes the lock, and checks what it relies on.
            return self._replace(frame_file, item_id, frames, duration_ms, render, expect_file)
        except BaseException:
            with contextlib.suppress(OSError):
                durable.unlink(frame_file)
            raise
        finally:
            with self._lock:
                self._staging.pop(frame_file, None)

    def _replace(
        self,
        frame_file: Path,
        item_id: str,
        frames: int,
        duration_ms: int,
        render: Mapping[str, Any] | None,
        expect_file: str | None,
    ) -> Item:
        for value, what in ((frames, "frames"), (duration_ms, "duration_ms")):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < (1 if what == "frames" else 0)
            ):
                raise InvalidChange(f"A re-rendered item's {what} must be a whole number, not {value!r}.")
        file_name = f"{item_id}-{secrets.token_hex(4)}.loop"
        final = self.frames_dir / file_name
        render_text = None if render is None else json.dumps(dict(render), sort_keys=True)
        # The new file describes its item too (a hint for rebuilding the index from frames/).
        rebuild.stamp(frame_file, rebuild.item_meta(self.get(item_id)))
        size = frame_file.stat().st_size
        with self._transaction("re-rendering an item") as conn:
            if not conn.execute("SELECT 1 FROM items WHERE id = ?", (item_id,)).fetchone():
                raise ItemNotFound(item_id)
            conn.execute(
                "INSERT INTO pending (op, item_id, file_name, staged) VALUES ('add', ?, ?, ?)",
                (item_id, file_name, str(frame_file)),
            )
        old_name: str | None = None
        try:
            with durable.translate_errors("re-rendering an item"):
                durable.fsync_file(frame_file)
                durable.rename(frame_file, final)
                durable.fsync_dir(self.frames_dir)
            with self._transaction("re-rendering an item") as conn:
                row = conn.execute("SELECT file_name FROM items WHERE id = ?", (item_id,)).fetchone()
                if row is None:
                    raise ItemNotFound(item_id)
                if expect_file is not None and row[0] != expect_file:
                    raise InvalidChange(
                        f"Item {item_id} changed while it was re-rendered; it is re-rendered again."
                    )
                old_name = str(row[0])
                conn.execute(
                    "UPDATE items SET file_name = ?, size_bytes = ?, frames = ?, duration_ms = ?, render = ? WHERE id = ?",
                    (file_name, size, frames, duration_ms, render_text, item_id),
                )
                conn.execute(
                    "INSERT INTO pending (op, item_id, file_name) VALUES ('unlink', ?, ?)",
                    (item_id, old_name),
                )
                conn.execute("DELETE FROM pending WHERE op = 'add' AND file_name = ?", (file_name,))
                self._bump(conn)
        except BaseException:
            self._undo_add(item_id, final, None, file_name=file_name)
            raise
        self._notify()
        self.finish_unlink(old_name)
        return self.get(item_id)

    def _undo_add(
        self, item_id: str, final: Path, original: str | None, *, file_name: str | None = None
    ) -> None:
        """Best effort after a failed add; whatever is left, start-up recovery finishes."""
        try:
            # The intent may only go once the unlink is durable; otherwise recovery finishes it.
            if durable.unlink(final):
                durable.fsync_dir(self.frames_dir)
            with self._transaction("cleaning up a failed add") as conn:
                if file_name is None:
                    conn.execute("DELETE FROM pending WHERE op = 'add' AND item_id = ?", (item_id,))
                else:
                    conn.execute("DELETE FROM pending WHERE op = 'add' AND file_name = ?", (file_name,))
            if original is not None:
                originals.collect(self, [original])
        except (OSError, sqlite3.Error, LoopError) as err:
            log.warning("cleaning up the failed add of %s: %s", item_id, err)

    def delete(self, item_id: str) -> Item:
        """Remove an item from the library and its frame file from the disk; return the item.

        The entry goes in one durable transaction together with a tombstone for the file; the
        file is unlinked after, and recovery finishes the unlink if a crash comes between.
        A player that has the file memory-mapped keeps reading valid pages: on Linux an
        unlinked file lives on until its last mapping is closed.
        """
        with self._lock:
            with self._transaction("deleting an item") as conn:
                rows = conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchall()
                if not rows:
                    raise ItemNotFound(item_id)
                item = Item.from_row(rows[0])
                conn.execute("DELETE FROM items WHERE id = ?", (item_id,))
                conn.execute("UPDATE items SET position = position - 1 WHERE position > ?", (item.position,))
                conn.execute(
                    "INSERT INTO pending (op, item_id, file_name) VALUES ('unlink', ?, ?)",
                    (item_id, item.file_name),
                )
                self._bump(conn)
            self._notify()
            self.finish_unlink(item.file_name)
            if item.original is not None:
                originals.collect(self, [item.original])
        return item

    def finish_unlink(self, file_name: str) -> None:
        """Unlink a tombstoned frame file and drop its tombstone (idempotent)."""
        try:
            with durable.translate_errors("removing a deleted item's file"):
                if durable.unlink(self.frames_dir / file_name):
                    durable.fsync_dir(self.frames_dir)
                with self._transaction("removing a deleted item's file") as conn:
                    conn.execute("DELETE FROM pending WHERE op = 'unlink' AND file_name = ?", (file_name,))
        except (OSError, LoopError) as err:
            log.warning("could not remove %s yet (recovery will): %s", file_name, err)

    def update(
        self,
        item_id: str,
        *,
        name: str | None = None,
        enabled: bool | None = None,
        loops: int | None = None,
        min_seconds: float | None = None,
        fit: str | Unset | None = UNSET,
        seconds: float | Unset | None = UNSET,
        dither: bool | Unset | None = UNSET,
    ) -> Item:
        """Change an item's name or play settings; None leaves a field as it is.

        ``fit``, ``seconds`` and ``dither`` take None for "the device's default"; leave them out
        (``UNSET``) to keep them as they are.
        """
        changes: dict[str, Any] = {}
        if not isinstance(fit, Unset):
            changes["fit"] = check_fit(fit)
        if not isinstance(dither, Unset):
            value = check_dither(dither)
            changes["dither"] = None if value is None else int(value)
        if not isinstance(seconds, Unset):
            changes["seconds"] = check_seconds(seconds)
        if name is not None:
            changes["name"] = check_name(name)
        if enabled is not None:
            changes["enabled"] = int(check_enabled(enabled))
        if loops is not None:
            changes["loops"] = check_loops(loops)
        if min_seconds is not None:
            changes["min_seconds"] = check_min_seconds(min_seconds)
        with self._lock:
            if not changes:
                return self.get(item_id)
            with self._transaction("updating an item") as conn:
                assignments = ", ".join(f"{column} = ?" for column in changes)
                cursor = conn.execute(
                    f"UPDATE items SET {assignments} WHERE id = ?", (*changes.values(), item_id)
                )
                if cursor.rowcount == 0:
                    raise ItemNotFound(item_id)
                self._bump(conn)
            self._notify()
            item = self.get(item_id)
            rebuild.stamp(self.frame_path(item), rebuild.item_meta(item))
        return item

    def reorder(self, ids: Sequence[str]) -> list[Item]:
        """Set the play order; ``ids`` must list every item exactly once."""
        if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
            raise InvalidChange("The play order must be a list of item ids.")
        wanted = list(ids)
        with self._lock:
            with self._transaction("reordering the library") as conn:
                current = {row[0] for row in conn.execute("SELECT id FROM items")}
                if len(set(wanted)) != len(wanted):
                    raise InvalidChange("The new play order lists an item more than once.")
                if set(wanted) != current:
                    unknown = sorted(set(wanted) - current)
                    missing = len(current - set(wanted))
                    detail = f"unknown ids {unknown}" if unknown else f"{missing} item(s) missing"
                    raise InvalidChange(f"The new play order must list every item exactly once ({detail}).")
                self._set_order(conn, wanted)
            self._notify()
            items = self.items()
            rebuild.stamp_positions(self, items)
        return items

    def move(self, item_id: str, position: int) -> list[Item]:
        """Move one item to ``position`` (0-based) in the play order; return the new order."""
        if not isinstance(position, int) or isinstance(position, bool):
            raise InvalidChange(f"A position must be a whole number, not {position!r}.")
        with self._lock:
            with self._transaction("moving an item") as conn:
                order = [row[0] for row in conn.execute("SELECT id FROM items ORDER BY position, id")]
                if item_id not in order:
                    raise ItemNotFound(item_id)
                if not 0 <= position < len(order):
                    raise InvalidChange(
                        f"Position {position} is outside the play order (0 to {len(order) - 1})."
                    )
                order.remove(item_id)
                order.insert(position, item_id)
                self._set_order(conn, order)
            self._notify()
            items = self.items()
            rebuild.stamp_positions(self, items)
        return items

    # --- checks and imports --------------------------------------------------------------

    def fsck(self, repair: bool = False) -> FsckReport:
        """Check the library (files, checksums, schema); with ``repair``, fix or quarantine."""
        from . import fsck

        return fsck.run(self, repair=repair, checksums=True)

    def import_legacy(self, path: Path, convert: Converter) -> LegacyReport:
        """Import an old device's ``media_index.json`` (see ``libloop.index.legacy``)."""
        from . import legacy

        return legacy.import_legacy(self, Path(path), convert)

    # --- internals shared with fsck, legacy and settings ---------------------------------

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LibraryError("The library is not open; call open() first.")
        return self._conn

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._read_lock:
            reader = self._reader
            if reader is not None:
                with durable.translate_errors("reading the library", db=self.db_path):
                    return reader.execute(sql, params).fetchall()
        with self._lock, durable.translate_errors("reading the library", db=self.db_path):
            return self._require().execute(sql, params).fetchall()

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE), committed durably when the block ends."""
        with self._lock:
            conn = self._require()
            if self.read_only:
                raise self._refuse(what)
            with durable.translate_errors(what, db=self.db_path):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    durable.commit(conn)
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[bool]:
        """True inside if no other Library (in any process) has this data directory open."""
        fd = self._lock_fd
        if fd is None:
            yield False
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # Linux drops the shared lock before trying to convert it: take it back.
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_SH)

    def _live_staging(self) -> set[Path]:
        """Staging paths a writer may still be using (its ``.partial`` may be all there is yet).

        A path is forgotten only when neither it nor its ``.partial`` exists and it was handed
        out long enough ago that no import can still be about to start writing it.
        """
        now = time.monotonic()
        with self._lock:
            self._staging = {
                p: t
                for p, t in self._staging.items()
                if now - t < STAGING_GRACE_S or p.exists() or p.with_name(p.name + ".partial").exists()
            }
            return set(self._staging)

    @staticmethod
    def _bump(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")

    @classmethod
    def _set_order(cls, conn: sqlite3.Connection, ids: Sequence[str]) -> None:
        conn.executemany("UPDATE items SET position = ? WHERE id = ?", [(i, x) for i, x in enumerate(ids)])
        cls._bump(conn)

    def _notify(self) -> None:
        with self._waiters_lock:
            for event in self._waiters:
                event.set()


def open_library(data_dir: Path, **kwargs: Any) -> Library:
    """Construct and open a Library in one call (for scripts and the CLI)."""
    return Library(data_dir, **kwargs).open()


__all__ = ["Library", "open_library"]
