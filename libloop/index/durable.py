"""Durability helpers: fsync a file, fsync a directory, rename atomically, commit durably.

Every step of the library that must survive a power cut goes through one of these functions,
so there is one place that turns a full disk into :class:`~libloop.errors.DiskFull` and one
place the durability tests can watch (they replace these functions to log the order of the
operations and to inject failures).

The order that makes an add crash-proof is: write the data and ``fsync_file`` it, ``rename``
it into place, ``fsync_dir`` the directory that now names it, and only then ``commit`` the
index entry that points at it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from libloop.errors import (
    DiskFull,
    LibraryDamaged,
    LibraryError,
    LoopError,
    StorageError,
    StorageReadOnly,
)

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
#: SQLite's primary result codes for a damaged file (the low byte of an extended code).
_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}


def disk_full(what: str) -> DiskFull:
    """The one sentence a full disk produces, naming what could not be finished."""
    return DiskFull(f"The disk is full, so {what} failed; free some space (delete media) and try again.")


def read_only(what: str) -> StorageReadOnly:
    """The sentence for a data directory on a read-only file system."""
    return StorageReadOnly(
        f"The data disk is read-only, so {what} failed; the SD card may be failing: "
        "check it with `loop doctor`, then restart LOOP."
    )


def io_error(what: str) -> StorageError:
    """The sentence for an I/O error of the data disk."""
    return StorageError(
        f"The data disk reported an I/O error, so {what} failed; the SD card may be failing: "
        "copy the data directory somewhere safe and run `loop fsck`."
    )


def storage_error(err: OSError, what: str) -> LoopError | None:
    """The typed error for a failed read or write of the data disk, or None for other errors."""
    if err.errno in _NO_SPACE:
        return disk_full(what)
    if err.errno == errno.EROFS:
        return read_only(what)
    if err.errno == errno.EIO:
        return io_error(what)
    return None


def damaged(path: object, err: BaseException) -> LibraryDamaged:
    """The sentence for a library database SQLite cannot read."""
    return LibraryDamaged(
        f"The library database {path} is damaged ({err}); run `loop fsck --repair` to set it aside "
        "and rebuild the library from the frame files."
    )


def _on_read_only_fs(path: object) -> bool:
    try:
        return bool(os.statvfs(os.path.dirname(str(path)) or ".").f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _sqlite_code(err: sqlite3.Error) -> int | None:
    code = getattr(err, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def is_damage(err: BaseException) -> bool:
    """True for SQLite's "this file is damaged" errors (malformed image, not a database)."""
    if not isinstance(err, sqlite3.DatabaseError):
        return False
    code = _sqlite_code(err)
    if code is not None:
        return code in _DAMAGED
    text = str(err)
    return "malformed" in text or "not a database" in text


@contextlib.contextmanager
def translate_errors(what: str, *, db: object = "library.db") -> Iterator[None]:
    """Turn failures of the disk or the database into typed errors with one sentence.

    ``OSError`` ENOSPC/EDQUOT and SQLite's SQLITE_FULL become ``DiskFull``; EROFS and
    SQLITE_READONLY ``StorageReadOnly``; EIO and SQLITE_IOERR ``StorageError``; a damaged
    database ``LibraryDamaged``; any other SQLite refusal ``LibraryError``.
    """
    try:
        yield
    except OSError as err:
        typed = storage_error(err, what)
        if typed is not None:
            raise typed from err
        raise
    except sqlite3.OperationalError as err:
        code = _sqlite_code(err)
        if code == sqlite3.SQLITE_FULL or "full" in str(err):
            raise disk_full(what) from err
        if code == sqlite3.SQLITE_READONLY:
            raise read_only(what) from err
        if code == sqlite3.SQLITE_IOERR:  # SQLite keeps no errno: a read-only mount tells EROFS
            raise (read_only(what) if _on_read_only_fs(db) else io_error(what)) from err
        if is_damage(err):
            raise damaged(db, err) from err
        raise LibraryError(f"The library database refused {what} ({err}); run `loop fsck`.") from err
    except sqlite3.DatabaseError as err:
        if is_damage(err):
            raise damaged(db, err) from err
        raise


def fsync_file(path: Path) -> None:
    """Flush a file's data and metadata to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a directory, so that names created, renamed or removed in it survive a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rename(src: Path, dst: Path) -> None:
    """Atomically rename ``src`` to ``dst`` (same file system); the caller fsyncs the directory."""
    os.rename(src, dst)


def unlink(path: Path) -> bool:
    """Remove a file if it exists; True if it was there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def commit(conn: sqlite3.Connection) -> None:
    """Commit the open transaction; durable on return (the connection runs synchronous=FULL)."""
    conn.execute("COMMIT")


def write_file(path: Path, data: bytes) -> None:
    """Write a whole new file and fsync it (it does not exist yet, or is replaced)."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON to ``path`` through a temporary name, fsync, rename and fsync the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    write_file(tmp, json.dumps(value, indent=2, sort_keys=True).encode())
    rename(tmp, path)
    fsync_dir(path.parent)


def move_durably(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` and fsync both directories (used for quarantine and backups)."""
    rename(src, dst)
    fsync_dir(dst.parent)
    if src.parent != dst.parent:
        fsync_dir(src.parent)
