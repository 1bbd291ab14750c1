"""API token routes: list, create (the secret is shown once) and revoke named tokens.

The tokens themselves live in the library (``libloop.index.access.ApiTokens``), where
``loop token`` manages them too; a token revoked here is refused on the next request.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from webapp.errors import ApiError, json_object
from webapp.services import services

bp = Blueprint("tokens", __name__, url_prefix="/api")


def _listing() -> dict[str, list[dict[str, object]]]:
    return {"tokens": [token.to_dict() for token in services().library.tokens.list()]}


@bp.get("/tokens")
def list_tokens() -> Response:
    """Every token's name, creation and last use; never a secret."""
    return jsonify(_listing())


@bp.post("/tokens")
def create_token() -> tuple[Response, int]:
    """Make a token called ``name``; the answer holds its secret, the only time it is shown."""
    name = json_object().get("name")
    if not isinstance(name, str):
        raise ApiError(
            400, "invalid_request", 'Send the token\'s name as a string: {"name": "backup-script"}.'
        )
    tokens = services().library.tokens
    secret = tokens.create(name)
    info = next(token for token in tokens.list() if token.name == name)
    return jsonify({**info.to_dict(), "token": secret}), 201


@bp.delete("/tokens/<name>")
def revoke_token(name: str) -> Response:
    """Revoke the token called ``name``; answers the tokens left."""
    services().library.tokens.revoke(name)
    return jsonify(_listing())
