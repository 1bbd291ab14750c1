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

from libloop.errors import DiskFull, LibraryError

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


def disk_full(what: str) -> DiskFull:
    """The one sentence a full disk produces, naming what could not be finished."""
    return DiskFull(f"The disk is full, so {what} failed; free some space (delete media) and try again.")


@contextlib.contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Turn a full disk (``OSError`` ENOSPC/EDQUOT or SQLite's SQLITE_FULL) into ``DiskFull``."""
    try:
        yield
    except OSError as err:
        if err.errno in _NO_SPACE:
            raise disk_full(what) from err
        raise
    except sqlite3.OperationalError as err:
        if getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(err):
            raise disk_full(what) from err
        raise LibraryError(f"The library database refused {what} ({err}); run `loop fsck`.") from err


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
