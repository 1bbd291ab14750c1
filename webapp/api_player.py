"""Player routes: the player's state and its controls."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, jsonify

from libloop.errors import ItemDisabled, ItemNotFound
from webapp.errors import ApiError, json_object
from webapp.services import Services, services

bp = Blueprint("player", __name__, url_prefix="/api")

# Item ids are URL-safe (see libloop.index.items.check_id); anything else cannot exist.
ITEM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
ACTIONS = ("pause", "resume", "next", "previous", "show", "brightness", "sleep", "wake")


def player_status(svc: Services) -> dict[str, Any]:
    """The player's status as the API answers it."""
    return svc.player.status().to_dict()


@bp.get("/player")
def get_player() -> Response:
    """The player's state, current item and statistics."""
    return jsonify(player_status(services()))


@bp.post("/player")
def post_player() -> Response:
    """Run one player action; answers the player's state after it."""
    body = json_object()
    action = body.get("action")
    if not isinstance(action, str) or action not in ACTIONS:
        raise ApiError(400, "invalid_action", f"'action' must be one of: {', '.join(ACTIONS)}.")
    svc = services()
    player = svc.player
    if action == "show":
        item_id = body.get("id")
        if not isinstance(item_id, str) or not item_id:
            raise ApiError(400, "invalid_request", "The 'show' action needs the item's 'id' as a string.")
        if not ITEM_ID.fullmatch(item_id):
            raise ItemNotFound(item_id)
        item = svc.library.get(item_id).to_dict()  # an unknown id: a 404 before the player is touched
        if item["enabled"] is False:
            raise ItemDisabled(item_id, str(item["name"]))  # a 409 that says how to enable it
        player.show(item_id)
    elif action == "brightness":
        value = body.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            raise ApiError(400, "invalid_request", "The 'brightness' action needs a 'value' from 0 to 100.")
        player.set_brightness(round(value))
    else:
        getattr(player, action)()
    return jsonify(player_status(svc))
