"""The API when the disk refuses: every route's unexpected OSError is the JSON error shape.

A full disk is 507 ``disk_full``, a read-only one 503 ``storage_read_only``, an I/O error 503
``storage_error``; anything else is a 500 with a sentence and no traceback in the body.
Previews: a missing or damaged frame file is 409, a disk that cannot keep the preview serves
it from memory. (The whole device under real faults: tests/test_faults.py.)
"""

from __future__ import annotations

import errno
import os
from typing import Any

import pytest
from flask import Flask

from libloop.errors import LibraryDamaged, LibraryUnavailable, StorageReadOnly
from tests.webapp_fixtures import CSRF, SimServices, add_solid_item, app, device

__all__ = ["app", "device"]

JSON = {**CSRF, "Content-Type": "application/json"}


def _raise(exc: BaseException) -> Any:
    def fail(*args: object, **kwargs: object) -> Any:
        raise exc

    return fail


@pytest.mark.parametrize(
    ("err", "status", "code"),
    [
        (errno.ENOSPC, 507, "disk_full"),
        (errno.EDQUOT, 507, "disk_full"),
        (errno.EROFS, 503, "storage_read_only"),
        (errno.EIO, 503, "storage_error"),
        (errno.EACCES, 500, "internal_error"),
    ],
)
@pytest.mark.parametrize(
    ("method", "path", "patch", "body"),
    [
        ("GET", "/api/media", "items", None),
        ("PATCH", "/api/media/{id}", "update", {"name": "x"}),
        ("PUT", "/api/playlist", "reorder", {"ids": []}),
        ("DELETE", "/api/media/{id}", "delete", None),
    ],
)
def test_an_unexpected_os_error_is_answered_in_the_json_shape(
    app: Flask,
    device: SimServices,
    monkeypatch: pytest.MonkeyPatch,
    err: int,
    status: int,
    code: str,
    method: str,
    path: str,
    patch: str,
    body: dict[str, Any] | None,
) -> None:
    item = add_solid_item(device.library, "a", [(1, 2, 3)])
    monkeypatch.setattr(device.library, patch, _raise(OSError(err, os.strerror(err), "/data/x")))
    response = app.test_client().open(path.format(id=item.id), method=method, json=body, headers=JSON)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"].endswith(".")
    assert "Traceback" not in response.get_data(as_text=True) and "/data/x" not in error["message"]


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (LibraryDamaged("The library database is damaged (test); run `loop fsck --repair`."), 503),
        (LibraryUnavailable("The library is not available: test."), 503),
        (StorageReadOnly("The data disk is read-only, so this failed."), 503),
    ],
)
def test_storage_errors_of_the_library_are_503_with_their_sentence(
    app: Flask, device: SimServices, monkeypatch: pytest.MonkeyPatch, exc: Exception, status: int
) -> None:
    monkeypatch.setattr(device.library, "items", _raise(exc))
    response = app.test_client().get("/api/media", headers=CSRF)
    assert response.status_code == status
    assert response.get_json()["error"]["message"] == str(exc)


def test_a_preview_of_a_missing_frame_file_is_409(app: Flask, device: SimServices) -> None:
    item = add_solid_item(device.library, "gone", [(200, 0, 0)])
    device.library.frame_path(item).unlink()
    response = app.test_client().get(f"/api/media/{item.id}/preview.gif", headers=CSRF)
    assert response.status_code == 409
    assert "loop fsck --repair" in response.get_json()["error"]["message"]


def test_a_preview_of_a_damaged_frame_file_is_409(app: Flask, device: SimServices) -> None:
    item = add_solid_item(device.library, "cut", [(200, 0, 0), (0, 200, 0)])
    path = device.library.frame_path(item)
    with open(path, "r+b") as f:
        f.truncate(1024)  # cut inside its header and frames (a v2 file of solid frames is only a few KB)
    response = app.test_client().get(f"/api/media/{item.id}/preview.gif", headers=CSRF)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "frame_file_error"


def test_a_preview_the_disk_cannot_keep_is_served_from_memory(app: Flask, device: SimServices) -> None:
    item = add_solid_item(device.library, "a", [(200, 0, 0), (0, 200, 0)])
    device.preview_dir.write_bytes(b"")  # the cache folder cannot be made: the disk refuses
    client = app.test_client()
    for _ in range(2):
        response = client.get(f"/api/media/{item.id}/preview.gif", headers=CSRF)
        assert response.status_code == 200 and response.mimetype == "image/gif"
        assert response.data.startswith(b"GIF89a") and response.headers.get("ETag")
    assert device.preview_dir.is_file()


def test_a_full_disk_when_the_session_key_is_made_does_not_stop_the_app(
    device: SimServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    from libloop.errors import DiskFull
    from webapp import create_app

    monkeypatch.setattr(device.library.settings, "set", _raise(DiskFull("The disk is full (test).")))
    web = create_app(device, {"TESTING": True})
    assert web.config["SECRET_KEY"]
    assert web.test_client().get("/api/media", headers=CSRF).status_code == 200


def test_a_cached_preview_cut_short_is_rendered_again(app: Flask, device: SimServices) -> None:
    item = add_solid_item(device.library, "a", [(200, 0, 0), (0, 200, 0)])
    client = app.test_client()
    good = client.get(f"/api/media/{item.id}/preview.gif", headers=CSRF).data
    (cached,) = device.preview_dir.glob(f"{item.id}-*.gif")
    cached.write_bytes(b"")  # what a power cut can leave of a file renamed before it reached the card
    again = client.get(f"/api/media/{item.id}/preview.gif", headers=CSRF)
    assert again.status_code == 200 and again.data == good and cached.read_bytes() == good
