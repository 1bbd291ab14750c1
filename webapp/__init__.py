"""The LOOP web dashboard and JSON API.

``create_app(services)`` builds the Flask app around the device's services (see
``webapp.services.Services``); ``webapp.server.WebServer`` serves it with cheroot.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, send_from_directory

from webapp.services import Services

STATIC_DIR = Path(__file__).with_name("static")
#: Largest text field of a multipart form (files stream to disk and have their own limit).
FORM_FIELD_LIMIT = 1024 * 1024

__all__ = ["create_app"]


def create_app(services: Services, config: Mapping[str, Any] | None = None) -> Flask:
    """Build the web app for ``services``.

    Args:
        services: the running device's services (kept in ``app.extensions["loop"]``).
        config: Flask config overrides, e.g. ``{"LOOP_IMPORT_WAIT_S": 60}``, ``SECRET_KEY``, or
            ``LOOP_ALLOWED_HOSTS`` (more Host names to answer to; see ``webapp.security``).
    """
    from webapp import api_media, api_player, api_settings, api_system, api_tokens, errors, security

    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # MAX_FORM_MEMORY_SIZE bounds text fields, but Werkzeug 3.1 also checks it against the
    # multipart decoder's buffer, which holds one 64 KiB read plus what is left of the last
    # one: at 64 KiB every file part over one read was refused with 413 (every phone photo).
    # 1 MiB keeps text fields small and leaves room for the decoder's reads.
    app.config.update(MAX_FORM_MEMORY_SIZE=FORM_FIELD_LIMIT, MAX_FORM_PARTS=200)
    if config:
        app.config.update(config)
    app.extensions["loop"] = services
    from webapp.live import LiveFrames

    app.extensions["loop.live"] = LiveFrames(services.display_version, services.display_image)

    errors.init_app(app)
    security.init_app(app)
    api_media.init_app(app)
    app.register_blueprint(api_media.bp)
    app.register_blueprint(api_player.bp)
    app.register_blueprint(api_system.bp)
    app.register_blueprint(api_tokens.bp)
    app.register_blueprint(api_settings.bp)

    @app.get("/")
    def index() -> Response:
        response = send_from_directory(STATIC_DIR, "index.html", max_age=0)
        return _hardened(response)

    @app.get("/static/<path:filename>")
    def static_file(filename: str) -> Response:
        return _hardened(send_from_directory(STATIC_DIR, filename, max_age=0))

    @app.after_request
    def _no_sniff(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "application/json":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


def _hardened(response: Response) -> Response:
    """Page headers: no framing by other sites, scripts and styles only from this device."""
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    return response
