"""System routes: health, the live panel image, the OpenAPI document, login and password."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from webapp import security
from webapp.errors import ApiError, json_object
from webapp.openapi import openapi_document
from webapp.services import services
from webapp.throttle import LoginThrottle

bp = Blueprint("system", __name__, url_prefix="/api")


@bp.get("/health")
def health() -> Response:
    """Components, resources, recent faults and Wi-Fi."""
    svc = services()
    body: dict[str, Any] = dict(svc.health())
    body.setdefault("wifi", dict(svc.wifi()))
    return jsonify(body)


@bp.get("/display.png")
def display_png() -> Response:
    """What the panel shows now, as a PNG; never cached by the browser."""
    response = Response(services().display_png(), mimetype="image/png")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/display.mjpeg")
def display_mjpeg() -> Response:
    """What the panel shows, pushed at its own frame rate as MJPEG (``multipart/x-mixed-replace``)."""
    from webapp.live import BOUNDARY, LiveFrames

    live: LiveFrames = current_app.extensions["loop.live"]
    parts = live.open_stream()
    if parts is None:
        raise ApiError(
            503,
            "too_many_streams",
            f"{live.max_streams} live views are open already; close one, or use /api/display.png.",
        )
    response = Response(
        parts, mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}", direct_passthrough=True
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3 document of this API."""
    return jsonify(openapi_document())


def _session_state() -> dict[str, bool]:
    library = services().library
    return {
        "password_set": security.stored_hash(library) is not None,
        "logged_in": g.get("loop_auth") is not None or security.is_logged_in(library),
    }


@bp.get("/session")
def get_session() -> Response:
    """Whether a password is set and whether this browser is logged in."""
    return jsonify(_session_state())


@bp.post("/login")
def login() -> Response:
    """Log this browser in with the dashboard password."""
    body = json_object()
    password = body.get("password")
    if not isinstance(password, str):
        raise ApiError(400, "invalid_request", 'Send the password as a string: {"password": "..."}.')
    library = services().library
    stored = security.stored_hash(library)
    if stored is None:
        return jsonify(_session_state())
    throttle: LoginThrottle = current_app.extensions["loop.login_throttle"]
    address = request.remote_addr or "unknown"
    security.check_login_allowed(throttle, address)
    if not security.verify_password(password, stored):
        throttle.failed(address)
        raise ApiError(401, "wrong_password", "That password is not right; try again.")
    throttle.succeeded(address)
    security.log_in(library, stored)
    g.loop_auth = "session"
    return jsonify(_session_state())


@bp.post("/logout")
def logout() -> Response:
    """End this browser's login, on the device too: a copy of its cookie no longer works."""
    security.end_session(services().library)
    g.loop_auth = None
    return jsonify(_session_state())


@bp.post("/settings/password")
def set_password() -> Response:
    """Set the dashboard password, or clear it with ``null`` or ``""``."""
    body = json_object()
    password = body.get("password")
    if password is not None and not isinstance(password, str):
        raise ApiError(400, "invalid_request", "'password' must be a string, or null to remove the password.")
    library = services().library
    security.set_password(library, password)  # ends every login
    stored = security.stored_hash(library)
    if stored is None:
        security.end_session(library)
    else:
        security.log_in(library, stored)  # whoever changed it stays logged in
    return jsonify(_session_state())
