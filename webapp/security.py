"""Dashboard password and cross-site request protection.

* **Password** (off on a fresh device): stored as a salted scrypt hash in the library's
  settings under ``web.password``; a browser logs in once and holds a session cookie
  (HttpOnly, SameSite=Strict). Changing the password ends every other session, because the
  session remembers a tag derived from the hash it logged in against.
* **Local tools**: ``app.config["LOOP_API_TOKEN"]`` (a random secret the device keeps in a
  file only its user can read) lets the ``loop`` CLI on the same machine call the API with
  ``Authorization: Bearer <token>`` while a password is set. Browsers never send it on their own.
* **Cross-site requests**: every state-changing call (POST, PUT, PATCH, DELETE) must carry
  ``X-Loop-Request: 1``. A page on another site cannot add a custom header without a CORS
  preflight, which this app never grants. ``Origin`` and ``Sec-Fetch-Site``, when the browser
  sends them, must also say the request comes from this site.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask, request, session

from libloop.errors import InvalidChange, LoopError
from webapp.errors import ApiError
from webapp.services import LibraryLike, get_services

log = logging.getLogger(__name__)

PASSWORD_KEY = "web.password"
SECRET_KEY_SETTING = "web.secret_key"
CSRF_HEADER = "X-Loop-Request"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MIN_PASSWORD_LENGTH = 4
MAX_PASSWORD_LENGTH = 1024

# Routes anyone may call without logging in (the dashboard page itself shows the login form).
PUBLIC_API = frozenset({"/api/session", "/api/login", "/api/logout", "/api/openapi.json"})

# scrypt cost: 16 MiB of memory, ~50 ms on a Pi 3; stored with the hash so it can change later.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password``, as ``scrypt$n$r$p$salt$hash`` (base64)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches a hash made by ``hash_password`` (constant-time compare)."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        candidate = hashlib.scrypt(
            password.encode("utf-8", "surrogatepass"),
            salt=salt,
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(digest),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(candidate, digest)


def stored_hash(library: LibraryLike) -> str | None:
    """The stored password hash, or None when no password is set."""
    value = library.settings.get(PASSWORD_KEY)
    return value if isinstance(value, str) and value else None


def set_password(library: LibraryLike, password: str | None) -> None:
    """Set (or with None/"" clear) the dashboard password; used by the API and the CLI.

    Raises:
        InvalidChange: the password is shorter than 4 or longer than 1024 characters.
    """
    if not password:
        if stored_hash(library) is not None:
            library.settings.delete(PASSWORD_KEY)
        return
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidChange(
            f"A password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters long."
        )
    library.settings.set(PASSWORD_KEY, hash_password(password))


def _session_tag(stored: str) -> str:
    """A tag tied to one stored hash: a session made against an older password stops working."""
    return hashlib.sha256(b"loop-session:" + stored.encode()).hexdigest()[:32]


def log_in(stored: str) -> None:
    """Mark the current browser session as logged in against ``stored``."""
    session.clear()
    session["auth"] = _session_tag(stored)
    session.permanent = True


def is_logged_in(library: LibraryLike) -> bool:
    """True when no password is set, or this session logged in against the current one."""
    stored = stored_hash(library)
    if stored is None:
        return True
    tag = session.get("auth")
    return isinstance(tag, str) and hmac.compare_digest(tag, _session_tag(stored))


class LoginThrottle:
    """Refuses logins after too many failures in a sliding window (slows password guessing)."""

    def __init__(
        self, max_failures: int = 10, window_s: float = 60.0, clock: Callable[[], float] | None = None
    ):
        import time

        self._clock = clock or time.monotonic
        self._max = max_failures
        self._window = window_s
        self._failures: deque[float] = deque()
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        while self._failures and now - self._failures[0] > self._window:
            self._failures.popleft()

    def check(self) -> None:
        """Raise a 429 ``ApiError`` while too many recent attempts failed."""
        with self._lock:
            self._prune(self._clock())
            if len(self._failures) >= self._max:
                raise ApiError(
                    429,
                    "too_many_attempts",
                    "Too many wrong passwords in a short time; wait a minute and try again.",
                )

    def failed(self) -> None:
        """Record a failed attempt."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            self._failures.append(now)


def _same_origin(origin: str) -> bool:
    parts = urlsplit(origin)
    return bool(parts.netloc) and parts.netloc.lower() == request.host.lower()


def check_cross_site() -> None:
    """Reject a state-changing request that may come from another site (403)."""
    if request.method not in STATE_CHANGING:
        return
    if request.headers.get(CSRF_HEADER) != "1":
        raise ApiError(
            403,
            "cross_site_request",
            f"State-changing requests must send the header '{CSRF_HEADER}: 1'; "
            "the dashboard does, other sites cannot.",
        )
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise ApiError(403, "cross_site_request", "Requests from other web sites are not accepted.")
    origin = request.headers.get("Origin")
    if origin is not None and origin != "null" and not _same_origin(origin):
        raise ApiError(403, "cross_site_request", "Requests from other web sites are not accepted.")


def _secret_key(library: LibraryLike) -> str:
    """The session-signing key, kept in the settings so sessions survive a restart."""
    key = library.settings.get(SECRET_KEY_SETTING)
    if isinstance(key, str) and len(key) >= 32:
        return key
    key = secrets.token_hex(32)
    try:
        library.settings.set(SECRET_KEY_SETTING, key)
    except LoopError as exc:  # a full or read-only disk: sessions then last until the next restart
        log.warning("the session key could not be saved: %s", exc)
    return key


def _has_api_token(app: Flask) -> bool:
    """True when the request carries ``Authorization: Bearer <LOOP_API_TOKEN>`` (the local CLI)."""
    token = app.config.get("LOOP_API_TOKEN")
    if not isinstance(token, str) or len(token) < 16:
        return False
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def init_app(app: Flask) -> None:
    """Configure sessions and install the cross-site and login checks on every API request."""
    library = get_services(app).library
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(library)
    app.config.update(
        SESSION_COOKIE_NAME="loop_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=30 * 24 * 3600,
    )
    app.extensions["loop.login_throttle"] = LoginThrottle()

    @app.before_request
    def _guard() -> None:
        if not request.path.startswith("/api/"):
            return
        check_cross_site()
        if request.path in PUBLIC_API or _has_api_token(app):
            return
        if not is_logged_in(get_services(app).library):
            raise ApiError(
                401, "login_required", "This LOOP is protected by a password; log in on the dashboard first."
            )
