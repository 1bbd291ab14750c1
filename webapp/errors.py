"""JSON error responses for the API.

Every error leaves the API as ``{"error": {"code": str, "message": str}}``. The caller's
mistakes get a 4xx; a 5xx means a bug in LOOP (or, for 503, hardware that stopped answering).
The library's typed errors (``libloop.errors``) carry the code and the sentence; this module
only decides the HTTP status for each.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from libloop import errors as lerr
from webapp.jsonbody import JsonBodyError, parse_json

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the API raises itself (bad input, not logged in, cross-site request...)."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


# Most specific class first: the first isinstance match decides the status.
_STATUS_BY_CLASS: list[tuple[type[lerr.LoopError], int]] = [
    (lerr.LibraryDamaged, 503),
    (lerr.LibraryUnavailable, 503),
    (lerr.StorageError, 503),
    (lerr.FrameFileError, 409),
    (lerr.ItemNotFound, 404),
    (lerr.TokenNotFound, 404),
    (lerr.InvalidSetting, 400),
    (lerr.InvalidChange, 422),
    (lerr.LibraryError, 409),
    (lerr.UnsupportedMedia, 415),
    (lerr.MissingExtra, 415),
    (lerr.DiskFull, 507),
    (lerr.MediaError, 422),
    (lerr.PlayerError, 409),
    (lerr.HardwareError, 503),
    (lerr.ImportQueueClosed, 503),
]

_MESSAGES_BY_STATUS = {
    400: "The request is malformed; check the API description at /api/openapi.json.",
    404: "There is nothing at this address; the API is described at /api/openapi.json.",
    405: "This address does not accept that method; the API is described at /api/openapi.json.",
    413: "The upload is larger than this device accepts; send a smaller file.",
    415: "The request's content type is not one this address accepts.",
}


def status_for_error(err: lerr.LoopError) -> int:
    """The HTTP status for one of the library's typed errors."""
    for cls, status in _STATUS_BY_CLASS:
        if isinstance(err, cls):
            return status
    return 400


def _all_subclasses(cls: type[lerr.LoopError]) -> list[type[lerr.LoopError]]:
    found: list[type[lerr.LoopError]] = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


def status_for_code(code: str | None) -> int:
    """The HTTP status for an error code (as found in an import job's ``error``)."""
    for cls in _all_subclasses(lerr.LoopError):
        if cls.code == code:
            for known, status in _STATUS_BY_CLASS:
                if issubclass(cls, known):
                    return status
            return 400
    return 422


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The API's error document; ``extra`` adds top-level fields (e.g. ``jobs``)."""
    return {"error": {"code": code, "message": message}, **extra}


def error_response(status: int, code: str, message: str, **extra: Any) -> tuple[Response, int]:
    """A JSON error response with the given status."""
    return jsonify(error_body(code, message, **extra)), status


def _http_code(exc: HTTPException) -> str:
    name = (exc.name or "error").lower()
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def init_app(app: Flask) -> None:
    """Register the JSON error handlers on ``app``."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> tuple[Response, int]:
        response, status = error_response(exc.status, exc.code, exc.message)
        response.headers.update(exc.headers)
        return response, status

    @app.errorhandler(lerr.LoopError)
    def _loop_error(exc: lerr.LoopError) -> tuple[Response, int]:
        status = status_for_error(exc)
        if status >= 500:
            log.warning("%s %s failed: %s", request.method, request.path, exc)
        return error_response(status, exc.code, str(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int] | HTTPException:
        status = exc.code or 500
        if not request.path.startswith("/api/") and status == 404:
            return exc
        message = _MESSAGES_BY_STATUS.get(status) or (exc.description or "The request failed.")
        response, status = error_response(status, _http_code(exc), message)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response, status

    @app.errorhandler(OSError)
    def _os_error(exc: OSError) -> tuple[Response, int]:
        status, code, message = os_error_answer(exc)
        if status >= 500 and status not in (503, 507):
            log.exception("unexpected error in %s %s", request.method, request.path)
        else:
            log.warning("%s %s failed: %s", request.method, request.path, exc)
        return error_response(status, code, message)

    @app.errorhandler(Exception)
    def _bug(exc: Exception) -> tuple[Response, int]:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(
            500,
            "internal_error",
            "LOOP hit an unexpected problem (a bug); the details are in the device log.",
        )


def os_error_answer(exc: OSError) -> tuple[int, str, str]:
    """(status, code, sentence) for an ``OSError`` no route handled: the disk's, most often."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            507,
            "disk_full",
            "The SD card is full, so this could not be done; delete some media and try again.",
        )
    if exc.errno == errno.EROFS:
        return (
            503,
            "storage_read_only",
            "The SD card is read-only (it may be failing), so nothing can be changed now; "
            "check it with `loop doctor` and restart LOOP.",
        )
    if exc.errno == errno.EIO:
        return (
            503,
            "storage_error",
            "The SD card reported an I/O error (it may be failing); copy the data directory "
            "somewhere safe and run `loop fsck`.",
        )
    return 500, "internal_error", "LOOP hit an unexpected problem (a bug); the details are in the device log."


def json_object() -> dict[str, Any]:
    """The request's JSON body, which must be an object; a 4xx ``ApiError`` otherwise.

    The body is at most 1 MiB (``jsonbody.MAX_JSON_BYTES``) and nests at most 32 levels; a
    deeper one is a 400, never a ``RecursionError``.
    """
    if not request.is_json:
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the body as JSON with the header 'Content-Type: application/json'.",
        )
    try:
        body = parse_json(request.get_data(cache=True))
    except JsonBodyError as exc:
        raise ApiError(413 if exc.code == "json_too_large" else 400, exc.code, str(exc)) from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "The request body must be a JSON object.")
    return body
