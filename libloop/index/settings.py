"""Device settings kept in the library database: a small key-value table with JSON values."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from libloop.errors import InvalidChange

if TYPE_CHECKING:
    from .store import Library

MAX_KEY = 100
MAX_VALUE_BYTES = 64 * 1024


class Settings:
    """``library.settings``: ``get(key, default)``, ``set(key, value)``, ``delete(key)``, ``as_dict()``.

    Values are anything JSON can hold. Every change is a committed change of the library:
    it bumps the generation, so the player hears about it like any other change.
    """

    def __init__(self, library: Library) -> None:
        self._library = library

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        rows = self._library._query("SELECT value FROM settings WHERE key = ?", (_check_key(key),))
        return json.loads(rows[0][0]) if rows else default

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable) under ``key``, durably."""
        try:
            text = json.dumps(value, allow_nan=False, sort_keys=True)
        except (TypeError, ValueError) as err:
            raise InvalidChange(f"The setting {key!r} must be a JSON value ({err}).") from None
        if len(text.encode()) > MAX_VALUE_BYTES:
            raise InvalidChange(f"The setting {key!r} is larger than {MAX_VALUE_BYTES} bytes.")
        library = self._library
        with library._transaction("saving a setting") as conn:
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (_check_key(key), text),
            )
            library._bump(conn)
        library._notify()

    def update(self, values: dict[str, Any]) -> None:
        """Store several settings in one durable transaction (all of them or none)."""
        rows = []
        for key, value in values.items():
            try:
                text = json.dumps(value, allow_nan=False, sort_keys=True)
            except (TypeError, ValueError) as err:
                raise InvalidChange(f"The setting {key!r} must be a JSON value ({err}).") from None
            if len(text.encode()) > MAX_VALUE_BYTES:
                raise InvalidChange(f"The setting {key!r} is larger than {MAX_VALUE_BYTES} bytes.")
            rows.append((_check_key(key), text))
        if not rows:
            return
        library = self._library
        with library._transaction("saving settings") as conn:
            conn.executemany(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                rows,
            )
            library._bump(conn)
        library._notify()

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was set."""
        library = self._library
        with library._transaction("removing a setting") as conn:
            removed = conn.execute("DELETE FROM settings WHERE key = ?", (_check_key(key),)).rowcount > 0
            if removed:
                library._bump(conn)
        if removed:
            library._notify()
        return removed

    def as_dict(self) -> dict[str, Any]:
        """Every setting."""
        rows = self._library._query("SELECT key, value FROM settings ORDER BY key")
        return {row[0]: json.loads(row[1]) for row in rows}


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY or not key.isprintable():
        raise InvalidChange(f"A setting's key must be 1-{MAX_KEY} printable characters, not {key!r}.")
    return key


__all__ = ["Settings"]
