"""Media routes: the library, uploads and import jobs, edits, deletes, order and previews.

Uploads are streamed by werkzeug's multipart parser straight into files in
``services.upload_dir`` (see ``UploadRequest``); nothing of an upload is held in memory, and
the client's filename is only ever display text: the stored file gets a random name.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
import re
import secrets
import tempfile
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
from flask import Blueprint, Flask, Request, Response, current_app, jsonify, request, send_file
from flask import g as flask_g

from libloop.color import rgb565_to_rgb888
from libloop.errors import FrameFileError, LoopError
from webapp.errors import ApiError, json_object, status_for_code
from webapp.services import ItemLike, JobLike, Services, get_services, services

log = logging.getLogger(__name__)

bp = Blueprint("media", __name__, url_prefix="/api")

MAX_NAME_LENGTH = 200
MAX_JSON_BYTES = 1 << 20
PREVIEW_MAX_FRAMES = 60
IMPORT_WAIT_S = 600.0
_ID_CHARS = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


# --- uploads -----------------------------------------------------------------------------------


class UploadRequest(Request):
    """A request whose uploaded files are written to ``services.upload_dir`` as they arrive.

    The body limit is ``services.max_upload_bytes`` for ``POST /api/media`` and 1 MiB for
    every other request; werkzeug answers 413 as soon as a body is known to exceed it.
    """

    @property
    def max_content_length(self) -> int | None:
        if self.method == "POST" and self.path == "/api/media" and current_app:
            return get_services(current_app).max_upload_bytes
        return MAX_JSON_BYTES

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        raise AttributeError("the body limit comes from the services")

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        upload_dir = get_services(current_app).upload_dir
        upload_dir.mkdir(parents=True, exist_ok=True)
        stream = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by the view or teardown
            "w+b", dir=upload_dir, prefix="upload-", suffix=".part", delete=False
        )
        _pending_uploads().append(Path(stream.name))
        _open_streams().append(stream)
        return stream


def _pending_uploads() -> list[Path]:
    """Files of this request not yet handed to the importer (removed at teardown)."""
    if "loop_uploads" not in flask_g:
        flask_g.loop_uploads = []
    pending: list[Path] = flask_g.loop_uploads
    return pending


def _open_streams() -> list[IO[bytes]]:
    """The files werkzeug opened for this request's parts (closed at teardown)."""
    if "loop_upload_streams" not in flask_g:
        flask_g.loop_upload_streams = []
    streams: list[IO[bytes]] = flask_g.loop_upload_streams
    return streams


def _discard_pending(_exc: BaseException | None = None) -> None:
    for stream in flask_g.pop("loop_upload_streams", []):
        with contextlib.suppress(OSError):
            stream.close()
    for path in flask_g.pop("loop_uploads", []):
        with contextlib.suppress(OSError):
            path.unlink()


def printable(text: str) -> str:
    """``text`` without control, format or separator characters but the space, trimmed and capped."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if ch.isprintable())
    return text.strip()[:MAX_NAME_LENGTH].strip()


def display_name(raw: str | None) -> str:
    """The client's filename reduced to safe display text: no path, no control characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    return printable(name).lstrip(".").strip() or "upload"


def _stored_name(name: str) -> str:
    """A random server-side file name; keeps a short, plain extension as a decoder hint."""
    ext = os.path.splitext(name)[1].lower()
    if not re.fullmatch(r"\.[a-z0-9]{1,5}", ext):
        ext = ""
    return f"{secrets.token_hex(16)}{ext}"


def _flag(name: str) -> bool:
    """A true/false query parameter (absent: false)."""
    raw = request.args.get(name, "false").lower()
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no", ""):
        return False
    raise ApiError(400, "invalid_request", f"'{name}' must be true or false.")


def _show_when_done(svc: Services) -> Callable[[JobLike], None]:
    """An import's follow-up for ``?show=true``: put the new item on the panel."""

    def show(job: JobLike) -> None:
        body = job.to_dict()
        item = body.get("item")
        if body.get("status") == "done" and isinstance(item, dict) and item.get("enabled", True):
            try:
                svc.player.show(str(item["id"]))
            except LoopError as exc:  # deleted or disabled in the meantime: nothing to show
                log.info("not showing %s after its import: %s", item["id"], exc)

    return show


def _received_files() -> list[Any]:
    """Read the multipart body (its files stream into ``upload_dir``); the parts named ``file``.

    A disk that fills up while the body arrives is a 507 with the JSON error shape; what was
    written of the upload is removed when the request ends.
    """
    try:
        return list(request.files.getlist("file"))
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ApiError(
                507,
                "disk_full",
                "The device's storage filled up while receiving the upload; delete something "
                "from the library and try again.",
            ) from None
        if exc.errno == errno.EROFS:
            raise ApiError(
                503,
                "storage_read_only",
                "The device's storage is read-only, so uploads cannot be saved; run 'loop fsck' "
                "and check the SD card.",
            ) from None
        raise ApiError(
            503,
            "storage_error",
            f"The device could not save the upload ({exc.strerror or exc}); try again, and check "
            "the SD card if it keeps happening.",
        ) from None


# --- JSON shapes ------------------------------------------------------------------------------


def item_json(item: ItemLike) -> dict[str, Any]:
    """An item as the API answers it: the SPEC shape plus its preview address, disk use and re-render state.

    ``rerender`` is "pending" while a new frame file is being made for the current settings,
    "needs_upload" when it has no kept original and no longer fits the panel (re-upload it to
    re-render it), "failed", or null when its frames are up to date.
    """
    return _api_item(item.to_dict())


def _api_item(body: dict[str, Any]) -> dict[str, Any]:
    """An item's dict as the API shows it (the original's file name stays inside the device)."""
    item_id = str(body["id"])
    settings = getattr(services(), "settings", None)
    # The frame file's name changes when the item is rendered again: a new address, a new picture.
    version = str(body.get("file_name", "")).removesuffix(".loop").rpartition("-")[2]
    return {
        **body,
        "disk_bytes": int(body.get("size_bytes") or 0) + int(body.get("original_bytes") or 0),
        "preview_url": f"/api/media/{item_id}/preview.gif" + (f"?v={version}" if version != item_id else ""),
        "original": body.get("original") is not None,
        "rerender": settings.item_state(item_id) if settings is not None else None,
    }


def job_json(job_dict: dict[str, Any]) -> dict[str, Any]:
    """A job as the API answers it (its item, once imported, with its preview address)."""
    item = job_dict.get("item")
    if isinstance(item, dict) and "id" in item:
        job_dict = {**job_dict, "item": _api_item(item)}
    return job_dict


def library_json(svc: Services) -> dict[str, Any]:
    """``{"items": [...]}`` in play order."""
    return {"items": [item_json(item) for item in svc.library.items()]}


# --- routes ------------------------------------------------------------------------------------


@bp.get("/media")
def list_media() -> Response:
    """The library, in play order, the largest upload accepted, and the storage figures."""
    from libloop.index.usage import library_usage

    svc = services()
    body = library_json(svc)
    usage = library_usage(svc.library.items(), getattr(svc.library, "data_dir", None))
    return jsonify({**body, "max_upload_bytes": svc.max_upload_bytes, "storage": usage.to_dict()})


@bp.post("/media")
def upload_media() -> tuple[Response, int]:
    """Receive one or more files (multipart field ``file``) and queue an import for each."""
    svc = services()
    wait, show = _flag("wait"), _flag("show")
    on_done = _show_when_done(svc) if show else None
    if request.mimetype != "multipart/form-data":
        raise ApiError(
            415, "unsupported_media_type", "Upload files as multipart/form-data in the field 'file'."
        )
    svc.check_upload(request.content_length)
    uploads = _received_files()
    if not uploads:
        raise ApiError(400, "no_file", "The upload has no file in the field 'file'; choose a file to upload.")
    jobs = []
    for upload in uploads:
        stream = upload.stream
        path = Path(getattr(stream, "name", ""))
        stream.close()
        if path not in _pending_uploads():
            raise ApiError(400, "invalid_request", "Every part of the upload in 'file' must be a file.")
        name = display_name(upload.filename)
        stored = path.with_name(_stored_name(name))
        path.rename(stored)
        _pending_uploads().remove(path)
        jobs.append(svc.imports.submit(stored, name, on_done=on_done))
    if not wait:
        return jsonify({"jobs": [job_json(job.to_dict()) for job in jobs]}), 202
    finished = [
        svc.imports.wait(job.id, current_app.config.get("LOOP_IMPORT_WAIT_S", IMPORT_WAIT_S)) for job in jobs
    ]
    bodies = [job_json(job.to_dict()) for job in finished]
    failed = [body for body in bodies if body.get("status") == "failed"]
    if failed:
        error = failed[0].get("error") or {"code": "import_failed", "message": "The import failed."}
        return jsonify({"error": error, "jobs": bodies}), status_for_code(error.get("code"))
    if any(body.get("status") != "done" for body in bodies):
        return jsonify({"jobs": bodies}), 202
    return jsonify({"jobs": bodies}), 201


@bp.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    """An import's state and progress."""
    try:
        job = services().imports.get(job_id)
    except (KeyError, LoopError):
        raise ApiError(
            404, "not_found", f"No import job with id {job_id!r}; it may have finished long ago."
        ) from None
    return jsonify(job_json(job.to_dict()))


def _patch_fields(body: dict[str, Any]) -> dict[str, Any]:
    allowed = {"name", "enabled", "loops", "min_seconds", "fit", "seconds", "dither"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(
            400,
            "invalid_request",
            f"Unknown field(s) {', '.join(unknown)}; use {', '.join(sorted(allowed))}.",
        )
    fields: dict[str, Any] = {}
    if "name" in body:
        name = body["name"]
        if not isinstance(name, str) or not printable(name):
            raise ApiError(
                400, "invalid_request", "'name' must be a non-empty string of printable characters."
            )
        fields["name"] = printable(name)
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise ApiError(400, "invalid_request", "'enabled' must be true or false.")
        fields["enabled"] = body["enabled"]
    if "loops" in body:
        loops = body["loops"]
        if isinstance(loops, bool) or not isinstance(loops, int) or not 1 <= loops <= 1000:
            raise ApiError(400, "invalid_request", "'loops' must be a whole number from 1 to 1000.")
        fields["loops"] = loops
    if "min_seconds" in body:
        secs = body["min_seconds"]
        if isinstance(secs, bool) or not isinstance(secs, int | float) or not 0 <= secs <= 86400:
            raise ApiError(
                400, "invalid_request", "'min_seconds' must be a number of seconds from 0 to 86400."
            )
        fields["min_seconds"] = float(secs)
    if "fit" in body:
        fit = body["fit"]
        if fit is not None and fit not in ("contain", "cover", "stretch"):
            raise ApiError(
                400,
                "invalid_request",
                "'fit' must be contain, cover, stretch or null (the device's setting).",
            )
        fields["fit"] = fit
    if "dither" in body:
        if body["dither"] is not None and not isinstance(body["dither"], bool):
            raise ApiError(
                400, "invalid_request", "'dither' must be true, false or null (the device's setting)."
            )
        fields["dither"] = body["dither"]
    if "seconds" in body:
        secs = body["seconds"]
        if secs is not None and (
            isinstance(secs, bool) or not isinstance(secs, int | float) or not 0.5 <= secs <= 86400
        ):
            raise ApiError(
                400,
                "invalid_request",
                "'seconds' must be a number of seconds from 0.5 to 86400, or null (the default).",
            )
        fields["seconds"] = None if secs is None else float(secs)
    return fields


@bp.patch("/media/<item_id>")
def patch_media(item_id: str) -> Response:
    """Rename an item, enable or disable it, or change its play settings."""
    svc = services()
    fields = _patch_fields(json_object())
    item = svc.library.update(item_id, **fields) if fields else svc.library.get(item_id)
    if "fit" in fields or "dither" in fields:
        svc.settings.item_changed()  # its frames may need rendering again
    return jsonify(item_json(item))


@bp.delete("/media/<item_id>")
def delete_media(item_id: str) -> Response:
    """Delete an item; answers once the panel shows something else."""
    svc = services()
    svc.delete_item(item_id)
    _remove_previews(svc.preview_dir, item_id)
    return jsonify({"deleted": item_id, **library_json(svc)})


@bp.put("/playlist")
def put_playlist() -> Response:
    """Set the play order from a list of every item's id."""
    body = json_object()
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ApiError(
            400, "invalid_request", 'Send the new order as {"ids": ["id", ...]} with every item\'s id.'
        )
    svc = services()
    svc.library.reorder(ids)
    return jsonify(library_json(svc))


# --- previews -------------------------------------------------------------------------------------

_preview_lock = threading.Lock()


def _remove_previews(preview_dir: Path, item_id: str, keep: Path | None = None) -> None:
    if not _ID_CHARS.match(item_id):
        return
    prefix = f"{item_id}-"
    try:
        # Not Path.glob: a pattern per item id would stay in fnmatch's cache for good.
        names = [
            name for name in os.listdir(preview_dir) if name.startswith(prefix) and name.endswith(".gif")
        ]
    except OSError:
        return
    for name in names:
        old = preview_dir / name
        if old != keep:
            with contextlib.suppress(OSError):
                old.unlink()


def render_preview(frame_path: Path) -> bytes:
    """A half-size animated GIF of a frame file (at most ``PREVIEW_MAX_FRAMES`` frames), in memory.

    Raises:
        FrameFileError: the frame file is missing, unreadable or damaged.
    """
    from PIL import Image

    from libloop.media.frames import open_frames

    with open_frames(frame_path) as ff:
        count = ff.frame_count
        step = max(1, -(-count // PREVIEW_MAX_FRAMES))
        images: list[Image.Image] = []
        durations: list[int] = []
        for start in range(0, count, step):
            rgb = rgb565_to_rgb888(ff.frame(start), ff.width, ff.height)
            half = np.ascontiguousarray(rgb[::2, ::2])
            images.append(Image.fromarray(half, "RGB"))
            durations.append(max(20, sum(ff.durations_ms[start : start + step])))
    out = io.BytesIO()
    images[0].save(
        out,
        format="GIF",
        save_all=len(images) > 1,
        append_images=images[1:],
        duration=durations if len(images) > 1 else durations[0],
        loop=0,
    )
    return out.getvalue()


def _cache_preview(dest: Path, data: bytes) -> bool:
    """Keep a rendered preview on disk; False when the disk refuses (full, read-only)."""
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.tmp")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        tmp.replace(dest)
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


@bp.get("/media/<item_id>/preview.gif")
def preview(item_id: str) -> Response:
    """A small animated GIF of the item as the panel shows it, rendered once and cached.

    When the disk cannot keep the rendered preview (full, read-only) it is served from memory;
    a missing or damaged frame file answers 409 with the sentence that says so.
    """
    svc = services()
    item = svc.library.get(item_id)  # 404 for an unknown id
    if not _ID_CHARS.match(item_id):
        raise ApiError(404, "not_found", f"No item with id {item_id!r} is in the library.")
    frame_path = svc.library.frame_path(item)
    try:
        stat = frame_path.stat()
    except OSError as exc:
        raise FrameFileError(
            f"The frame file of item {item_id!r} cannot be read ({exc.strerror}); "
            "run `loop fsck --repair` or re-import the item."
        ) from exc
    dest = svc.preview_dir / f"{item_id}-{stat.st_mtime_ns:x}-{stat.st_size:x}.gif"
    data: bytes | None = None
    with contextlib.suppress(OSError):
        data = dest.read_bytes()
    if data is not None and not (data.startswith(b"GIF8") and data.endswith(b";")):
        data = None  # cut short by a power cut (written, renamed, not yet on the card): render again
    if data is None:
        with _preview_lock:
            data = render_preview(frame_path)
            if _cache_preview(dest, data):
                _remove_previews(svc.preview_dir, item_id, keep=dest)
    return send_file(
        io.BytesIO(data),
        mimetype="image/gif",
        conditional=True,
        etag=dest.stem,
        max_age=0,
        last_modified=None,
    )


def init_app(app: Flask) -> None:
    """Stream uploads to disk and remove what a request left unclaimed."""
    app.request_class = UploadRequest
    app.teardown_request(_discard_pending)
