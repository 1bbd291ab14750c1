"""Who may call the API, and from where.

* **Host** (every path): only names the device really has; anything else is 421, against DNS
  rebinding. See ``webapp.origin.HostPolicy``; the names come from ``LOOP_HOSTNAME``
  (default ``socket.gethostname()``) and ``LOOP_ALLOWED_HOSTS`` (the config's ``[web] hosts``).
* **Cross-site requests** (every path): refused (403) when ``Sec-Fetch-Site`` or ``Origin``
  says another site sent them, as Go's ``http.CrossOriginProtection`` decides; scripts need
  no extra header. The old ``X-Loop-Request: 1`` header is accepted and ignored.
* **Password** (off on a fresh device): stored as a salted scrypt hash in the library's
  settings under ``web.password``. While one is set, every API route but the few in
  ``PUBLIC_API`` needs one of:

  - a **login session**: ``POST /api/login`` records a session in the library
    (``library.sessions``) and gives the browser a signed cookie (HttpOnly, SameSite=Strict)
    holding its id. Logging out deletes the record, so a copy of the cookie is useless
    after it; changing or removing the password ends every session.
  - a **named API token** (``Authorization: Bearer loop_...``), made by ``loop token create``
    or the dashboard and kept as a hash in the library (``library.tokens``).
  - the **device's local token** (``app.config["LOOP_API_TOKEN"]``): a random secret made at
    each start and written to ``DATA/device.json`` (mode 0600) for the ``loop`` CLI on the
    same machine. It is not a named token and never stored in the library.
* **Login throttle**: wrong passwords are counted per client address (``webapp.throttle``),
  and password checks run one at a time (scrypt takes 16 MiB and ~50 ms on a Pi 3).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import socket
import threading
from collections.abc import Iterable

from flask import Flask, g, request, session

from libloop.errors import InvalidChange, LoopError
from libloop.index.access import SESSION_LIFETIME_S
from webapp.errors import ApiError
from webapp.origin import HostPolicy, cross_origin_refusal
from webapp.services import LibraryLike, get_services
from webapp.throttle import LoginThrottle, retry_after_header

log = logging.getLogger(__name__)

PASSWORD_KEY = "web.password"
SECRET_KEY_SETTING = "web.secret_key"
MIN_PASSWORD_LENGTH = 4
MAX_PASSWORD_LENGTH = 1024
#: ``Authorization`` values longer than this are refused without looking at them.
MAX_AUTHORIZATION_LENGTH = 1024

# Routes anyone may call without logging in (the dashboard page itself shows the login form).
PUBLIC_API = frozenset({"/api/session", "/api/login", "/api/logout", "/api/openapi.json"})

# scrypt cost: 16 MiB of memory, ~50 ms on a Pi 3; stored with the hash so it can change later.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
# One scrypt at a time: a burst of logins must not take 16 MiB each on a 512 MiB Pi.
_SCRYPT_LOCK = threading.Lock()


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    with _SCRYPT_LOCK:
        return hashlib.scrypt(
            password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p, dklen=dklen
        )


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password``, as ``scrypt$n$r$p$salt$hash`` (base64)."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, 32)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches a hash made by ``hash_password`` (constant-time compare)."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        candidate = _scrypt(password, salt, int(n), int(r), int(p), len(digest))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(candidate, digest)


def stored_hash(library: LibraryLike) -> str | None:
    """The stored password hash, or None when no password is set."""
    value = library.settings.get(PASSWORD_KEY)
    return value if isinstance(value, str) and value else None


def set_password(library: LibraryLike, password: str | None) -> None:
    """Set (or with None/"" clear) the dashboard password; every login ends. For the API and the CLI.

    Raises:
        InvalidChange: the password is shorter than 4 or longer than 1024 characters.
    """
    if not password:
        if stored_hash(library) is not None:
            library.settings.delete(PASSWORD_KEY)
        library.sessions.end_all()
        return
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidChange(
            f"A password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters long."
        )
    library.settings.set(PASSWORD_KEY, hash_password(password))
    library.sessions.end_all()


def _session_tag(stored: str) -> str:
    """A tag tied to one stored hash: a session made against an older password stops working."""
    return hashlib.sha256(b"loop-session:" + stored.encode()).hexdigest()[:32]


def log_in(library: LibraryLike, stored: str) -> None:
    """Start a recorded login for the current browser against the password hash ``stored``."""
    end_session(library)
    session["auth"] = _session_tag(stored)
    session["sid"] = library.sessions.start()
    session.permanent = True


def end_session(library: LibraryLike) -> None:
    """Forget this browser's login, on the server too (a copy of its cookie stops working)."""
    sid = session.get("sid")
    if isinstance(sid, str):
        library.sessions.end(sid)
    session.clear()


def is_logged_in(library: LibraryLike) -> bool:
    """True when no password is set, or this browser holds a live login against the current one."""
    stored = stored_hash(library)
    if stored is None:
        return True
    tag, sid = session.get("auth"), session.get("sid")
    return (
        isinstance(tag, str)
        and isinstance(sid, str)
        and hmac.compare_digest(tag, _session_tag(stored))
        and library.sessions.is_live(sid)
    )


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer ...`` header; "" for any other, None without one."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    if len(header) > MAX_AUTHORIZATION_LENGTH:
        return ""
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def authenticate(app: Flask) -> str | None:
    """Who the current request is: "open" (no password), "session", "local", "token:NAME", or None.

    Raises:
        ApiError: 401 ``invalid_token`` for an ``Authorization`` header that lets nobody in.
    """
    library = get_services(app).library
    if stored_hash(library) is None:
        return "open"
    token = bearer_token()
    if token is not None:
        local = app.config.get("LOOP_API_TOKEN")
        is_local = isinstance(local, str) and len(local) >= 16 and bool(token)
        if is_local and hmac.compare_digest(token.encode(), str(local).encode()):
            return "local"
        found = library.tokens.authenticate(token) if token else None
        if found is not None:
            return f"token:{found.name}"
        raise ApiError(
            401,
            "invalid_token",
            "The API token is not valid (revoked, mistyped or not a Bearer token); "
            "make one with `loop token create NAME` or on the dashboard.",
        )
    return "session" if is_logged_in(library) else None


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


def host_policy(hostname: str | None, extra: Iterable[str]) -> HostPolicy:
    """The Host names this app answers to (``hostname`` None: this machine's)."""
    return HostPolicy(socket.gethostname() if hostname is None else hostname, extra)


def check_origin(policy: HostPolicy) -> None:
    """Refuse a request for another host name (421) or from another site (403)."""
    host = request.environ.get("HTTP_HOST")
    if not policy.allows(host):
        raise ApiError(
            421,
            "misdirected_request",
            "This device does not answer to that host name; use its address, its name, "
            "or add the name to [web] hosts in the config.",
        )
    if cross_origin_refusal(
        request.method, request.headers.get("Sec-Fetch-Site"), request.headers.get("Origin"), host
    ):
        raise ApiError(403, "cross_site_request", "Requests from other web sites are not accepted.")


def check_login_allowed(throttle: LoginThrottle, address: str) -> None:
    """Raise a 429 (with ``Retry-After``) while ``address`` must wait before trying a password."""
    wait = throttle.retry_after(address)
    if wait is not None:
        raise ApiError(
            429,
            "too_many_attempts",
            "Too many wrong passwords in a short time; wait a minute and try again.",
            headers={"Retry-After": retry_after_header(wait)},
        )


def init_app(app: Flask) -> None:
    """Configure sessions and install the Host, cross-site and login checks on every request."""
    library = get_services(app).library
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(library)
    app.config.update(
        SESSION_COOKIE_NAME="loop_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=int(SESSION_LIFETIME_S),
    )
    policy = host_policy(app.config.get("LOOP_HOSTNAME"), app.config.get("LOOP_ALLOWED_HOSTS") or ())
    app.extensions["loop.host_policy"] = policy
    app.extensions["loop.login_throttle"] = LoginThrottle()  # tests may swap in one on a fake clock

    @app.before_request
    def _guard() -> None:
        check_origin(policy)
        if not request.path.startswith("/api/"):
            return
        if request.path in PUBLIC_API:
            try:
                g.loop_auth = authenticate(app)
            except ApiError:
                g.loop_auth = None
            return
        g.loop_auth = authenticate(app)
        if g.loop_auth is None:
            raise ApiError(
                401, "login_required", "This LOOP is protected by a password; log in on the dashboard first."
            )
