"""The index's SQLite schema and its versioned migrations.

The schema version lives in SQLite's ``PRAGMA user_version``. Each migration moves the
database from version ``n`` to ``n + 1`` inside one transaction, so a power cut during a
migration leaves the old version intact and the next start-up simply runs it again. A
database newer than this code is refused rather than guessed at.

Tables:

- ``items``: one row per item; ``position`` is its 0-based place in the play order.
- ``pending``: intents that recovery finishes or undoes: ``add`` (committed before a frame
  file is renamed into ``frames/``; removed in the transaction that adds the item) and
  ``unlink`` (a tombstone committed with the delete; removed once the file is gone).
- ``used_ids``: every id ever handed out, so an id is never reused.
- ``meta``: ``generation``, bumped by every committed change.
- ``settings``: device settings, JSON values.
- ``tokens``: named API tokens (only a SHA-256 of each secret), see ``access.py``.
- ``sessions``: live dashboard logins (only a SHA-256 of each session id), see ``access.py``.

Since version 4 an item may keep its upload's original file in ``DATA/originals/`` (named by
its content hash, shared by items of the same content) and records the settings its frame
file was rendered with (``render``, JSON), so a change of rotation or fit can re-render it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from libloop.errors import SchemaTooNew

from . import durable


def _v1(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE items (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            frames INTEGER NOT NULL,
            duration_ms INTEGER NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            enabled INTEGER NOT NULL DEFAULT 1,
            position INTEGER NOT NULL,
            source_name TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            loop_count INTEGER NOT NULL DEFAULT 0,
            created REAL NOT NULL,
            file_name TEXT NOT NULL UNIQUE,
            size_bytes INTEGER NOT NULL
        )"""
    )
    conn.execute(
        """CREATE TABLE pending (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            op TEXT NOT NULL CHECK (op IN ('add', 'unlink')),
            item_id TEXT NOT NULL,
            file_name TEXT NOT NULL,
            staged TEXT
        )"""
    )
    conn.execute("CREATE TABLE used_ids (id TEXT PRIMARY KEY)")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    conn.execute("INSERT INTO meta (key, value) VALUES ('generation', 0)")
    conn.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def _v2(conn: sqlite3.Connection) -> None:
    # Per-item play settings and fast duplicate detection arrived after the first release.
    conn.execute("ALTER TABLE items ADD COLUMN loops INTEGER NOT NULL DEFAULT 1")
    conn.execute("ALTER TABLE items ADD COLUMN min_seconds REAL NOT NULL DEFAULT 0")
    conn.execute("CREATE INDEX items_content_hash ON items (content_hash)")


def _v3(conn: sqlite3.Connection) -> None:
    # Named API tokens for scripts, and server-side login sessions (logout revokes one).
    conn.execute(
        """CREATE TABLE tokens (
            name TEXT PRIMARY KEY,
            hash TEXT NOT NULL UNIQUE,
            created REAL NOT NULL,
            last_used REAL
        )"""
    )
    conn.execute("CREATE TABLE sessions (hash TEXT PRIMARY KEY, created REAL NOT NULL)")


def _v4(conn: sqlite3.Connection) -> None:
    # Live display settings: per-item fit and seconds, the kept original, what the frames were
    # rendered for. An add that brings an original names it in its intent, so recovery can
    # tell an interrupted add's original from a committed item's.
    conn.execute("ALTER TABLE items ADD COLUMN fit TEXT")
    conn.execute("ALTER TABLE items ADD COLUMN seconds REAL")
    conn.execute("ALTER TABLE items ADD COLUMN dither INTEGER")
    conn.execute("ALTER TABLE items ADD COLUMN original TEXT")
    conn.execute("ALTER TABLE items ADD COLUMN original_bytes INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE items ADD COLUMN render TEXT")
    conn.execute("ALTER TABLE pending ADD COLUMN original TEXT")
    conn.execute("CREATE INDEX items_original ON items (original)")


#: MIGRATIONS[n] moves a database from version n to n + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3, _v4]
SCHEMA_VERSION = len(MIGRATIONS)

#: The columns each table must have at SCHEMA_VERSION (fsck checks them).
EXPECTED_COLUMNS: dict[str, set[str]] = {
    "items": {
        "id", "name", "kind", "frames", "duration_ms", "width", "height", "enabled", "position",
        "source_name", "content_hash", "loop_count", "created", "file_name", "size_bytes", "loops",
        "min_seconds", "fit", "seconds", "dither", "original", "original_bytes", "render",
    },
    "pending": {"seq", "op", "item_id", "file_name", "staged", "original"},
    "used_ids": {"id"},
    "meta": {"key", "value"},
    "settings": {"key", "value"},
    "tokens": {"name", "hash", "created", "last_used"},
    "sessions": {"hash", "created"},
}  # fmt: skip


def version(conn: sqlite3.Connection) -> int:
    """The database's schema version."""
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database up to SCHEMA_VERSION, one durable transaction per step.

    Returns the version found before migrating. Raises SchemaTooNew for a newer database.
    """
    found = version(conn)
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(found, SCHEMA_VERSION)
    for target in range(found, SCHEMA_VERSION):
        with durable.translate_errors("upgrading the library database"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                if version(conn) != target:  # another process migrated meanwhile
                    conn.execute("ROLLBACK")
                    continue
                MIGRATIONS[target](conn)
                conn.execute(f"PRAGMA user_version = {target + 1}")
                durable.commit(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
    return found


def schema_problems(conn: sqlite3.Connection) -> list[str]:
    """Differences between the database and the schema this code expects (empty when fine)."""
    problems: list[str] = []
    found = version(conn)
    if found != SCHEMA_VERSION:
        problems.append(f"schema version is {found}, expected {SCHEMA_VERSION}")
    for table, columns in EXPECTED_COLUMNS.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if not have:
            problems.append(f"table {table!r} is missing")
        elif missing := columns - have:
            problems.append(f"table {table!r} lacks columns {sorted(missing)}")
    return problems
