"""Who may use the device's API: named API tokens and the dashboard's login sessions.

Both live in the library database (tables ``tokens`` and ``sessions``, schema version 3), so
``loop token`` manages tokens whether or not the device runs, and a running device sees a new
or revoked token on the very next request: it looks every request up in the table.

Only hashes are stored. A token or a session id is a 32-byte random secret handed out once;
the database keeps its SHA-256, so a copy of the database lets nobody in.

Neither table bumps the library's generation: the player does not care who is logged in.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from libloop.errors import InvalidChange, TokenExists, TokenNotFound

if TYPE_CHECKING:
    from .store import Library

#: Every token starts with this, so a leaked one is easy to recognise (and to grep for).
TOKEN_PREFIX = "loop_"
#: Token names: what ``loop token rm NAME`` and ``DELETE /api/tokens/{name}`` take.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_TOKENS = 100
#: ``last_used`` is written at most this often per token (one write a minute, not one a request).
LAST_USED_RESOLUTION_S = 60.0
#: A login lasts this long (the cookie's lifetime too); a session older than this is refused.
SESSION_LIFETIME_S = 30 * 24 * 3600.0
#: The newest sessions kept; logging in on the 201st browser ends the oldest login.
MAX_SESSIONS = 200
#: Longer presented secrets are not looked up at all.
MAX_SECRET_LENGTH = 256

WallClock = Callable[[], float]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class TokenInfo:
    """What is known about a token, never its secret.

    Attributes:
        name: the name it was created with.
        created: when (Unix time).
        last_used: when it last let a request in (Unix time, to the minute), or None.
    """

    name: str
    created: float
    last_used: float | None

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "created", "last_used"}`` with ISO 8601 UTC times (``last_used`` may be null)."""
        return {"name": self.name, "created": _iso(self.created), "last_used": _iso(self.last_used)}


def check_token_name(name: object) -> str:
    """``name`` if it is a valid token name; ``InvalidChange`` otherwise."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidChange(
            "A token name is 1 to 64 letters, digits, dots, dashes or underscores, "
            f"starting with a letter or digit, not {name!r}."
        )
    return name


class ApiTokens:
    """``library.tokens``: create, list, revoke and check named API tokens.

    Args:
        library: the open library whose database holds the ``tokens`` table.
        now: the wall clock (Unix time) for ``created`` and ``last_used``.
    """

    def __init__(self, library: Library, *, now: WallClock = time.time) -> None:
        self._library = library
        self._now = now

    def create(self, name: str) -> str:
        """Make a token called ``name`` and return its secret (the only time it is visible).

        Raises:
            InvalidChange: a bad name, or already ``MAX_TOKENS`` tokens.
            TokenExists: a token with this name exists.
        """
        check_token_name(name)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._library._transaction("creating an API token") as conn:
            if conn.execute("SELECT 1 FROM tokens WHERE name = ?", (name,)).fetchone():
                raise TokenExists(name)
            (count,) = conn.execute("SELECT COUNT(*) FROM tokens").fetchone()
            if count >= MAX_TOKENS:
                raise InvalidChange(f"There are already {MAX_TOKENS} API tokens; revoke some first.")
            conn.execute(
                "INSERT INTO tokens (name, hash, created, last_used) VALUES (?, ?, ?, NULL)",
                (name, _digest(secret), self._now()),
            )
        return secret

    def list(self) -> list[TokenInfo]:
        """Every token, oldest first."""
        rows = self._library._query("SELECT name, created, last_used FROM tokens ORDER BY created, name")
        return [TokenInfo(row[0], float(row[1]), None if row[2] is None else float(row[2])) for row in rows]

    def revoke(self, name: str) -> None:
        """Delete the token called ``name``; requests carrying it are refused from now on.

        Raises:
            TokenNotFound: there is no such token.
        """
        with self._library._transaction("revoking an API token") as conn:
            if conn.execute("DELETE FROM tokens WHERE name = ?", (name,)).rowcount == 0:
                raise TokenNotFound(name)

    def authenticate(self, secret: str) -> TokenInfo | None:
        """The token whose secret this is (its ``last_used`` brought up to date), or None."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > MAX_SECRET_LENGTH:
            return None
        digest = _digest(secret)
        rows = self._library._query("SELECT name, created, last_used FROM tokens WHERE hash = ?", (digest,))
        if not rows:
            return None
        name, created, last_used = rows[0][0], float(rows[0][1]), rows[0][2]
        now = self._now()
        if last_used is None or abs(now - float(last_used)) >= LAST_USED_RESOLUTION_S:
            with self._library._transaction("noting an API token's use") as conn:
                conn.execute("UPDATE tokens SET last_used = ? WHERE hash = ?", (now, digest))
            last_used = now
        return TokenInfo(name, created, float(last_used))


class LoginSessions:
    """``library.sessions``: the dashboard's live logins, so that logging out means it.

    The browser's (signed) cookie carries a random session id; the table holds its hash. A
    cookie whose id is not in the table (logged out, expired, or every session ended by a
    password change) is not a login any more, however well it is signed.

    Args:
        library: the open library whose database holds the ``sessions`` table.
        now: the wall clock (Unix time).
        lifetime_s: how long a login lasts.
    """

    def __init__(
        self, library: Library, *, now: WallClock = time.time, lifetime_s: float = SESSION_LIFETIME_S
    ) -> None:
        self._library = library
        self._now = now
        self._lifetime = lifetime_s

    def start(self) -> str:
        """Record a new login and return its session id (for the cookie)."""
        session_id = secrets.token_urlsafe(32)
        now = self._now()
        with self._library._transaction("recording a login") as conn:
            conn.execute("DELETE FROM sessions WHERE created <= ?", (now - self._lifetime,))
            conn.execute(
                "DELETE FROM sessions WHERE hash NOT IN "
                "(SELECT hash FROM sessions ORDER BY created DESC LIMIT ?)",
                (MAX_SESSIONS - 1,),
            )
            conn.execute("INSERT INTO sessions (hash, created) VALUES (?, ?)", (_digest(session_id), now))
        return session_id

    def is_live(self, session_id: str) -> bool:
        """True while the login ``session_id`` has neither ended nor expired."""
        if len(session_id) > MAX_SECRET_LENGTH:
            return False
        rows = self._library._query("SELECT created FROM sessions WHERE hash = ?", (_digest(session_id),))
        return bool(rows) and self._now() - float(rows[0][0]) < self._lifetime

    def end(self, session_id: str) -> bool:
        """End one login (logout); True if it was live."""
        with self._library._transaction("ending a login") as conn:
            return conn.execute("DELETE FROM sessions WHERE hash = ?", (_digest(session_id),)).rowcount > 0

    def end_all(self) -> int:
        """End every login (the password changed); returns how many there were."""
        with self._library._transaction("ending every login") as conn:
            return int(conn.execute("DELETE FROM sessions").rowcount)

    def count(self) -> int:
        """How many logins are recorded (expired ones included until the next login prunes them)."""
        return int(self._library._query("SELECT COUNT(*) FROM sessions")[0][0])


__all__ = [
    "MAX_TOKENS",
    "SESSION_LIFETIME_S",
    "TOKEN_PREFIX",
    "ApiTokens",
    "LoginSessions",
    "TokenInfo",
    "check_token_name",
]
