"""Settings routes: the live device settings (rotation, fit, timing, night, shuffle)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from webapp.errors import json_object
from webapp.services import services

bp = Blueprint("settings", __name__, url_prefix="/api")


@bp.get("/settings")
def get_settings() -> Response:
    """Every setting, the panel's size now and the progress of a background re-render."""
    return jsonify(services().settings.to_dict())


@bp.patch("/settings")
def patch_settings() -> Response:
    """Change any of the settings; applied before the answer (the panel has turned).

    A new rotation, fit, dither or background re-renders the library in the background; the
    answer's ``rerender`` shows how far it is, as does every later ``GET``.
    """
    return jsonify(services().settings.patch(json_object()))
