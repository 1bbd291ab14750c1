"""Kept originals: each upload's own file, so a new rotation or fit can be rendered from it.

``DATA/originals/<sha256>`` holds the uploaded bytes, named by their content hash, so items of
the same content share one file. An original enters the directory only during an add, after
the add's intent (naming it) is committed and before the item is; so at every moment each
file there is named by an item or by an add in flight. That makes the rule for removing one
simple and safe even while other processes use the library: a file that neither an item nor
a pending add names is removed (after a delete, a rolled-back add, or a crash between a
delete and its clean-up), and the check runs inside a write transaction, so no add can name
the file between the check and the unlink.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from libloop.errors import InvalidChange

from . import durable
from .items import ORIGINAL_NAME

if TYPE_CHECKING:
    from .store import Library

#: The directory in the data directory.
DIR = "originals"


def check_name(content_hash: str) -> str:
    """The original's file name for ``content_hash``: a sha256 in lowercase hex."""
    if not isinstance(content_hash, str) or not ORIGINAL_NAME.fullmatch(content_hash):
        raise InvalidChange(
            "An original can only be kept for an item whose content hash is a sha256 "
            f"(64 lowercase hex digits), not {content_hash!r}."
        )
    return content_hash


def place(library: Library, staged: Path, name: str) -> int:
    """Move ``staged`` to ``originals/<name>`` durably (or drop it if that content is kept already).

    Called by an add after its intent naming ``name`` is committed. Returns the kept file's size.
    """
    final = library.originals_dir / name
    with durable.translate_errors("keeping the uploaded original"):
        durable.fsync_file(staged)  # outside the transaction: it may take a while on an SD card
    with library._transaction("keeping the uploaded original"):
        # Under SQLite's write lock: a `collect` elsewhere cannot remove `final` meanwhile.
        if final.exists():
            durable.unlink(staged)
        else:
            durable.rename(staged, final)
            durable.fsync_dir(library.originals_dir)
    return final.stat().st_size


def collect(library: Library, names: Iterable[str] | None = None) -> list[str]:
    """Remove the originals among ``names`` (default: every one) that nothing names; return them."""
    folder = library.originals_dir
    removed: list[str] = []
    with library._transaction("removing unused originals") as conn:
        if names is None:
            candidates = list(_kept(folder))
        else:
            candidates = [n for n in names if ORIGINAL_NAME.fullmatch(n)]
        for name in candidates:
            used = conn.execute(
                "SELECT 1 FROM items WHERE original = ? UNION ALL SELECT 1 FROM pending WHERE original = ? LIMIT 1",
                (name, name),
            ).fetchone()
            if used is None and durable.unlink(folder / name):
                removed.append(name)
        if removed:
            durable.fsync_dir(folder)
    return removed


def unreferenced(library: Library) -> list[str]:
    """The originals no item and no add in flight names (what ``collect()`` would remove)."""
    conn = library._require()
    used = {row[0] for row in conn.execute("SELECT original FROM items WHERE original IS NOT NULL")}
    used |= {row[0] for row in conn.execute("SELECT original FROM pending WHERE original IS NOT NULL")}
    return sorted(set(_kept(library.originals_dir)) - used)


def stray_files(library: Library) -> list[Path]:
    """Files in ``originals/`` that are not named like an original at all."""
    folder = library.originals_dir
    if not folder.is_dir():
        return []
    return sorted(
        Path(e.path)
        for e in os.scandir(folder)
        if e.is_file(follow_symlinks=False) and not ORIGINAL_NAME.fullmatch(e.name)
    )


def total_bytes(library: Library) -> int:
    """Bytes the kept originals take (each shared file once)."""
    folder = library.originals_dir
    if not folder.is_dir():
        return 0
    return sum(e.stat().st_size for e in os.scandir(folder) if e.is_file(follow_symlinks=False))


def _kept(folder: Path) -> Iterable[str]:
    if not folder.is_dir():
        return []
    return sorted(
        e.name
        for e in os.scandir(folder)
        if e.is_file(follow_symlinks=False) and ORIGINAL_NAME.fullmatch(e.name)
    )
