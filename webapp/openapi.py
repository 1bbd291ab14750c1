"""The OpenAPI 3.0 document of the LOOP API, served at ``/api/openapi.json``.

Written by hand next to the routes it describes; ``tests/test_api_fuzz.py`` fuzzes the app
from this document and checks the responses against it, so the two cannot drift apart.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

JSON = "application/json"

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> Schema:
    return _json(_ref("Error"), description)


def _errors(*codes: int) -> dict[str, Schema]:
    words = {
        400: "Malformed request (bad JSON, wrong field types).",
        401: "A password is set and this client is not logged in.",
        403: "A browser request from another web site (Sec-Fetch-Site or Origin says so).",
        404: "No such item or job.",
        409: "The library or player cannot do this now.",
        413: "The upload is larger than the device accepts.",
        415: "Wrong content type, or the file is not media LOOP can read.",
        421: "The Host header names a host this device is not (DNS rebinding guard).",
        422: "Well-formed but invalid (e.g. not a permutation; a damaged or too large file).",
        429: "Too many wrong passwords; wait a minute.",
        503: "The panel hardware or the SD card did not answer (I/O error, read-only, no library).",
        507: "Not enough free space on the device.",
    }
    return {str(code): _error(words[code]) for code in codes}


_ITEM_ID: Schema = {
    "name": "item_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
}

_SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "Item": {
        "type": "object",
        "required": ["id", "name", "kind", "frames", "duration_ms", "width", "height", "enabled", "position"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "kind": {"type": "string", "enum": ["gif", "image", "video"]},
            "frames": {"type": "integer", "minimum": 0},
            "duration_ms": {"type": "integer", "minimum": 0},
            "width": {"type": "integer", "minimum": 0},
            "height": {"type": "integer", "minimum": 0},
            "enabled": {"type": "boolean"},
            "position": {"type": "integer", "minimum": 0},
            "preview_url": {"type": "string", "description": "Address of the item's animated GIF preview."},
            "fit": {
                "type": "string",
                "enum": ["contain", "cover", "stretch"],
                "nullable": True,
                "description": "The item's own fit; null: the device's setting.",
            },
            "seconds": {
                "type": "number",
                "nullable": True,
                "description": "How long a still, or a whole animation, stays on; null: the device's "
                "still_seconds for a still, one play (times loops) for an animation.",
            },
            "loops": {"type": "integer", "minimum": 1, "description": "Plays of an animation per turn."},
            "dither": {
                "type": "boolean",
                "nullable": True,
                "description": "The item's own dithering; null: the device's setting.",
            },
            "render": {
                "type": "object",
                "nullable": True,
                "description": "What its frame file was rendered for: width, height, fit, dither, "
                "background (null: unknown, imported before this was recorded).",
            },
            "original": {
                "type": "boolean",
                "description": "The upload is kept, so a new rotation or fit can render it again.",
            },
            "original_bytes": {
                "type": "integer",
                "minimum": 0,
                "description": "Size of the kept original (items of the same content share one file).",
            },
            "size_bytes": {"type": "integer", "minimum": 0, "description": "Size of the frame file."},
            "rerender": {
                "type": "string",
                "enum": ["pending", "needs_upload", "failed"],
                "nullable": True,
                "description": "pending: being rendered again for the current settings; "
                "needs_upload: no kept original and its frames no longer fit the panel (shown "
                "fitted on the fly; re-upload it to re-render it); null: up to date.",
            },
            "disk_bytes": {
                "type": "integer",
                "minimum": 0,
                "description": "Bytes the item takes on the card: its frame file and its kept original.",
            },
        },
    },
    "Library": {
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": {"type": "array", "items": _ref("Item")},
            "max_upload_bytes": {
                "type": "integer",
                "description": "The largest upload (request body) this device accepts.",
            },
            "storage": {
                "type": "object",
                "description": "What the library takes on the card, and what is left free.",
                "properties": {
                    "frames_bytes": {"type": "integer", "minimum": 0},
                    "originals_bytes": {"type": "integer", "minimum": 0},
                    "total_bytes": {"type": "integer", "minimum": 0},
                    "free_bytes": {"type": "integer", "minimum": 0, "nullable": True},
                    "disk_bytes": {"type": "integer", "minimum": 0, "nullable": True},
                },
            },
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "filename", "status", "progress", "item", "error"],
        "properties": {
            "id": {"type": "string"},
            "filename": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "item": {"allOf": [_ref("Item")], "nullable": True},
            "error": {
                "type": "object",
                "nullable": True,
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            },
            "warning": {
                "type": "string",
                "nullable": True,
                "description": "A sentence about a finished import, e.g. that a long input was cut at a limit.",
            },
            "duplicate": {
                "type": "boolean",
                "description": "The upload was byte-identical to an item already in the library; "
                "'item' is that item and nothing was added.",
            },
        },
    },
    "Jobs": {
        "type": "object",
        "required": ["jobs"],
        "properties": {"jobs": {"type": "array", "items": _ref("Job")}},
    },
    "FailedImport": {
        "allOf": [_ref("Error"), _ref("Jobs")],
        "description": "The first failed import's error, and every job.",
    },
    "ItemPatch": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"},
            "enabled": {"type": "boolean"},
            "loops": {"type": "integer", "minimum": 1, "maximum": 1000},
            "min_seconds": {"type": "number", "minimum": 0, "maximum": 86400},
            "fit": {"type": "string", "enum": ["contain", "cover", "stretch"], "nullable": True},
            "seconds": {"type": "number", "minimum": 0.5, "maximum": 86400, "nullable": True},
            "dither": {"type": "boolean", "nullable": True},
        },
    },
    "Night": {
        "type": "object",
        "description": "The panel sleeps (brightness 0) or dims from start to end, local time, "
        "on the evenings of days.",
        "required": ["start", "end", "days", "brightness"],
        "properties": {
            "start": {"type": "string", "pattern": "^([01]?[0-9]|2[0-3]):[0-5][0-9]$"},
            "end": {"type": "string", "pattern": "^([01]?[0-9]|2[0-3]):[0-5][0-9]$"},
            "days": {
                "type": "array",
                "items": {"type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
            },
            "brightness": {"type": "integer", "minimum": 0, "maximum": 100},
        },
    },
    "Settings": {
        "type": "object",
        "required": [
            "rotation",
            "fit",
            "dither",
            "background",
            "still_seconds",
            "shuffle",
            "night",
            "orientation_asked",
            "panel",
            "rerender",
        ],
        "properties": {
            "rotation": {"type": "integer", "enum": [0, 90, 180, 270]},
            "fit": {"type": "string", "enum": ["contain", "cover", "stretch"]},
            "dither": {"type": "boolean"},
            "background": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
            "still_seconds": {"type": "number"},
            "shuffle": {"type": "boolean"},
            "night": {"allOf": [_ref("Night")], "nullable": True},
            "orientation_asked": {
                "type": "boolean",
                "description": "The dashboard asked for the orientation once (first run).",
            },
            "panel": {
                "type": "object",
                "required": ["width", "height"],
                "properties": {"width": {"type": "integer"}, "height": {"type": "integer"}},
            },
            "rerender": {
                "type": "object",
                "required": ["done", "total", "running"],
                "description": "The background re-render after a change of rotation, fit or colours.",
                "properties": {
                    "done": {"type": "integer", "minimum": 0},
                    "total": {"type": "integer", "minimum": 0},
                    "running": {"type": "boolean"},
                    "current": {"type": "object", "nullable": True},
                    "needs_upload": {
                        "type": "array",
                        "description": "Items with no kept original whose frames no longer fit: "
                        "re-upload them to re-render them.",
                        "items": {"type": "object"},
                    },
                    "failed": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
    },
    "SettingsPatch": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "rotation": {"type": "integer", "enum": [0, 90, 180, 270]},
            "fit": {"type": "string", "enum": ["contain", "cover", "stretch"]},
            "dither": {"type": "boolean"},
            "background": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
            "still_seconds": {"type": "number", "minimum": 0.5, "maximum": 86400},
            "shuffle": {"type": "boolean"},
            "night": {
                "type": "object",
                "nullable": True,
                "description": "Fields left out keep their value (or 22:00, 07:00, every day, 0).",
                "additionalProperties": False,
                "properties": {
                    "start": {"type": "string", "pattern": "^([01]?[0-9]|2[0-3]):[0-5][0-9]$"},
                    "end": {"type": "string", "pattern": "^([01]?[0-9]|2[0-3]):[0-5][0-9]$"},
                    "days": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "string",
                            "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                        },
                    },
                    "brightness": {"type": "integer", "minimum": 0, "maximum": 100},
                },
            },
            "orientation_asked": {"type": "boolean"},
        },
    },
    "Playlist": {
        "type": "object",
        "required": ["ids"],
        "properties": {"ids": {"type": "array", "items": {"type": "string"}}},
    },
    "Deleted": {
        "allOf": [_ref("Library")],
        "type": "object",
        "required": ["deleted"],
        "properties": {"deleted": {"type": "string"}},
    },
    "PlayerAction": {
        "oneOf": [
            {
                "type": "object",
                "required": ["action"],
                "properties": {
                    "action": {
                        "type": "string",
                        "enum": ["pause", "resume", "next", "previous", "sleep", "wake"],
                    }
                },
            },
            {
                "type": "object",
                "required": ["action", "id"],
                "properties": {
                    "action": {"type": "string", "enum": ["show"]},
                    "id": {"type": "string", "minLength": 1},
                },
            },
            {
                "type": "object",
                "required": ["action", "value"],
                "properties": {
                    "action": {"type": "string", "enum": ["brightness"]},
                    "value": {"type": "number", "minimum": 0, "maximum": 100},
                },
            },
        ]
    },
    "Stats": {
        "type": "object",
        "required": [
            "frames_shown",
            "frames_dropped",
            "bytes_sent",
            "transfers",
            "refresh_bytes",
            "fps",
            "late_p99_ms",
        ],
        "properties": {
            "frames_shown": {"type": "integer"},
            "frames_dropped": {"type": "integer"},
            "bytes_sent": {"type": "integer"},
            "transfers": {"type": "integer"},
            "refresh_bytes": {"type": "integer"},
            "fps": {"type": "number"},
            "late_p99_ms": {"type": "number"},
        },
    },
    "Player": {
        "type": "object",
        "required": ["state", "current", "stats"],
        "properties": {
            "state": {"type": "string", "enum": ["playing", "paused", "sleeping", "empty"]},
            "current": {"type": "string", "nullable": True},
            "stats": _ref("Stats"),
        },
    },
    "Health": {
        "type": "object",
        "description": "Components, resources, recent faults (from the supervisor) and Wi-Fi status.",
        "properties": {
            "wifi": {"type": "object"},
            "mqtt": {
                "type": "object",
                "description": "The MQTT (Home Assistant) connection: enabled, broker, connected, since, "
                "down_for_s, last_error, connects, reconnects, last_outage_s, device_id, topic.",
            },
            "mdns": {
                "type": "object",
                "description": "The mDNS advertisement: enabled, advertised, name, addresses, last_error.",
            },
        },
    },
    "Session": {
        "type": "object",
        "required": ["password_set", "logged_in"],
        "properties": {"password_set": {"type": "boolean"}, "logged_in": {"type": "boolean"}},
    },
    "Token": {
        "type": "object",
        "required": ["name", "created", "last_used"],
        "properties": {
            "name": {"type": "string"},
            "created": {"type": "string", "format": "date-time"},
            "last_used": {
                "type": "string",
                "format": "date-time",
                "nullable": True,
                "description": "When the token last let a request in (to the minute); null if never.",
            },
        },
    },
    "Tokens": {
        "type": "object",
        "required": ["tokens"],
        "properties": {"tokens": {"type": "array", "items": _ref("Token")}},
    },
    "NewToken": {
        "allOf": [_ref("Token")],
        "type": "object",
        "required": ["token"],
        "properties": {
            "token": {
                "type": "string",
                "description": "The secret, for 'Authorization: Bearer <token>'; shown only this once.",
            }
        },
    },
    "TokenCreate": {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}},
    },
    "Login": {
        "type": "object",
        "required": ["password"],
        "properties": {"password": {"type": "string"}},
    },
    "PasswordChange": {
        "type": "object",
        "required": ["password"],
        "properties": {
            "password": {
                "type": "string",
                "nullable": True,
                "description": "The new password (4 to 1024 characters); null or empty removes it.",
            }
        },
    },
}


def _op(
    summary: str,
    responses: dict[str, Schema],
    *,
    body: Schema | None = None,
    params: list[Schema] | None = None,
    state_changing: bool = False,
) -> Schema:
    responses = {**responses, **_errors(421)}
    if state_changing:
        responses = {**_errors(403), **responses}
    op: Schema = {"summary": summary, "responses": responses}
    if params:
        op["parameters"] = list(params)
    if body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    return op


_UPLOAD_BODY: Schema = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}}},
            },
            "encoding": {"file": {"contentType": "application/octet-stream"}},
        }
    },
}

_PATHS: dict[str, Schema] = {
    "/api/media": {
        "get": _op(
            "The library, in play order.", {"200": _json(_ref("Library"), "Every item."), **_errors(401)}
        ),
        "post": {
            **_op(
                "Upload one or more files (field 'file'); one import job per file. Types are "
                "checked by content. With wait=true, answers when every import has finished.",
                {
                    "201": _json(_ref("Jobs"), "wait=true: every file was imported."),
                    "202": _json(
                        _ref("Jobs"), "The imports are queued (or still running after the wait limit)."
                    ),
                    "400": _json({"anyOf": [_ref("FailedImport"), _ref("Error")]}, "No file in the upload."),
                    **_errors(401, 403, 413),
                    "415": _json(
                        {"anyOf": [_ref("FailedImport"), _ref("Error")]}, "Not media LOOP can read."
                    ),
                    "422": _json(
                        {"anyOf": [_ref("FailedImport"), _ref("Error")]},
                        "A damaged, empty or too large file.",
                    ),
                    "507": _error("Not enough free space on the device."),
                },
                params=[
                    {
                        "name": "wait",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "boolean", "default": False},
                    },
                    {
                        "name": "show",
                        "in": "query",
                        "required": False,
                        "description": "Show each new item on the panel as soon as it is imported.",
                        "schema": {"type": "boolean", "default": False},
                    },
                ],
                state_changing=True,
            ),
            "requestBody": _UPLOAD_BODY,
        },
    },
    "/api/jobs/{job_id}": {
        "get": _op(
            "An import's state and progress (0 to 1).",
            {"200": _json(_ref("Job"), "The job."), **_errors(401, 404)},
            params=[
                {
                    "name": "job_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1},
                }
            ],
        )
    },
    "/api/media/{item_id}": {
        "patch": _op(
            "Rename, enable/disable, or change an item's play settings.",
            {
                "200": _json(_ref("Item"), "The item after the change."),
                **_errors(400, 401, 403, 404, 409, 415, 422),
            },
            body=_ref("ItemPatch"),
            params=[_ITEM_ID],
            state_changing=True,
        ),
        "delete": _op(
            "Delete an item. When this answers, the panel already shows something else.",
            {
                "200": _json(_ref("Deleted"), "The id deleted and the library after it."),
                **_errors(401, 403, 404, 409, 503),
            },
            params=[_ITEM_ID],
            state_changing=True,
        ),
    },
    "/api/media/{item_id}/preview.gif": {
        "get": {
            **_op(
                "A small animated GIF of the item as the panel shows it (rendered once, cached).",
                {
                    "200": {
                        "description": "The preview.",
                        "content": {"image/gif": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    **_errors(401, 404),
                    "409": _error("The item's frame file is missing or damaged (`loop fsck --repair`)."),
                },
                params=[_ITEM_ID],
            ),
        }
    },
    "/api/playlist": {
        "put": _op(
            "Set the play order: every item's id, once each, in the new order.",
            {
                "200": _json(_ref("Library"), "The library in its new order."),
                **_errors(400, 401, 403, 409, 415, 422),
            },
            body=_ref("Playlist"),
            state_changing=True,
        )
    },
    "/api/player": {
        "get": _op(
            "The player's state, current item and statistics.",
            {"200": _json(_ref("Player"), "State."), **_errors(401)},
        ),
        "post": _op(
            "Pause, resume, next, previous, show an item, set the brightness, sleep or wake.",
            {
                "200": _json(_ref("Player"), "The state after the action."),
                **_errors(400, 401, 403, 404, 409, 415, 503),
            },
            body=_ref("PlayerAction"),
            state_changing=True,
        ),
    },
    "/api/health": {
        "get": _op(
            "Components, resources, recent faults and Wi-Fi.",
            {"200": _json(_ref("Health"), "Health."), **_errors(401)},
        )
    },
    "/api/display.png": {
        "get": _op(
            "What the panel shows now.",
            {
                "200": {
                    "description": "A PNG.",
                    "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
                },
                **_errors(401, 503),
            },
        )
    },
    "/api/display.mjpeg": {
        "get": _op(
            "What the panel shows, pushed as it changes (MJPEG: one JPEG part per new frame, at "
            "the panel's frame rate, at most 30 a second).",
            {
                "200": {
                    "description": "A multipart/x-mixed-replace stream of JPEG parts.",
                    "content": {
                        "multipart/x-mixed-replace": {"schema": {"type": "string", "format": "binary"}}
                    },
                },
                **_errors(401, 503),
            },
        )
    },
    "/api/openapi.json": {"get": _op("This document.", {"200": _json({"type": "object"}, "OpenAPI 3.0.")})},
    "/api/session": {
        "get": _op(
            "Whether a password is set and whether this client is logged in.",
            {"200": _json(_ref("Session"), "State.")},
        )
    },
    "/api/login": {
        "post": _op(
            "Log in with the dashboard password (sets an HttpOnly, SameSite=Strict session cookie).",
            {
                "200": _json(_ref("Session"), "Logged in (or no password is set)."),
                **_errors(400, 401, 403, 415, 429),
            },
            body=_ref("Login"),
            state_changing=True,
        )
    },
    "/api/logout": {
        "post": _op(
            "Forget this client's login.",
            {"200": _json(_ref("Session"), "Logged out."), **_errors(403)},
            state_changing=True,
        )
    },
    "/api/tokens": {
        "get": _op(
            "The named API tokens: name, creation and last use (never a secret).",
            {"200": _json(_ref("Tokens"), "Every token, oldest first."), **_errors(401)},
        ),
        "post": _op(
            "Make a named API token; the answer is the only time its secret is shown.",
            {
                "201": _json(_ref("NewToken"), "The new token and its secret."),
                **_errors(400, 401, 403, 409, 415, 422),
            },
            body=_ref("TokenCreate"),
            state_changing=True,
        ),
    },
    "/api/tokens/{name}": {
        "delete": _op(
            "Revoke a named API token: requests carrying it are refused from now on.",
            {"200": _json(_ref("Tokens"), "The tokens left."), **_errors(401, 403, 404)},
            params=[
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
            ],
            state_changing=True,
        )
    },
    "/api/settings": {
        "get": _op(
            "The live settings, the panel's size and the progress of a background re-render.",
            {"200": _json(_ref("Settings"), "The settings now."), **_errors(401)},
        ),
        "patch": _op(
            "Change any of the settings, live. A new rotation turns the panel before this answers; "
            "a new rotation, fit, dither or background re-renders the library in the background.",
            {
                "200": _json(_ref("Settings"), "The settings after the change."),
                **_errors(400, 401, 403, 413, 415),
            },
            body=_ref("SettingsPatch"),
            state_changing=True,
        ),
    },
    "/api/settings/password": {
        "post": _op(
            "Set the dashboard password, or remove it with null or an empty string.",
            {
                "200": _json(_ref("Session"), "The new state; this client stays logged in."),
                **_errors(400, 401, 403, 415, 422),
            },
            body=_ref("PasswordChange"),
            state_changing=True,
        )
    },
}


def _with_storage_errors(paths: Schema) -> Schema:
    """Any call may meet a failing SD card (503); any change, a full one (507)."""
    out = copy.deepcopy(paths)
    for operations in out.values():
        for method, operation in operations.items():
            responses = operation["responses"]
            responses.setdefault("503", _errors(503)["503"])
            if method != "get":
                responses.setdefault("507", _errors(507)["507"])
    return out


@cache
def _document() -> Schema:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "LOOP",
            "version": "1.0.0",
            "description": "Manage a LOOP desk display: its media library, play order and player. "
            'Errors are {"error": {"code", "message"}}; a 5xx is a bug, but for 503 (the hardware or the '
            "SD card not answering) and 507 (the SD card is full). "
            "Scripts need no extra header: cross-site browser requests are refused from what "
            "Sec-Fetch-Site and Origin say, and a Host that is not this device gets 421.",
        },
        "paths": _with_storage_errors(_PATHS),
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "loop_session",
                    "description": "Set by POST /api/login; only needed when a password is set.",
                },
                "token": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A named API token (`loop token create NAME`, or the dashboard), "
                    "or the device's local token for the loop CLI on the same machine.",
                },
            },
        },
        # No password on a fresh device: no credentials needed until one is set.
        "security": [{}, {"session": []}, {"token": []}],
    }


def openapi_document() -> Schema:
    """A fresh copy of the OpenAPI document (callers may modify it)."""
    return copy.deepcopy(_document())
