"""Uploads the size phones and cameras make, through the production server, as clients send them.

The first round's suite uploaded only files of a few KB, and every real phone photo got a
413: the multipart parser's form-memory limit also applied to file parts. These tests send
real-sized bodies over a socket to ``webapp.server.WebServer`` (cheroot), streamed from disk,
and check what a person would: the upload is in the library, byte for byte; too big is a JSON
413 and leaves nothing on the data disk or in ``$TMPDIR``; a full disk is a JSON 507.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.http_uploads import Generated, multipart_bytes, post_files
from tests.webapp_fixtures import CSRF, SimServices, gif_bytes
from webapp import create_app
from webapp.server import WebServer

MB = 1024 * 1024


def noisy_jpeg(path: Path, size: tuple[int, int], quality: int = 92, seed: int = 0) -> Path:
    """A JPEG as big as a phone's: seeded noise over a gradient compresses like a real photo."""
    w, h = size
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, w, dtype=np.float32)[None, :, None]
    base = np.broadcast_to(ramp, (h, w, 3))
    noise = rng.normal(0, 40, (h, w, 3)).astype(np.float32)
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    Image.fromarray(pixels, "RGB").save(path, "JPEG", quality=quality)
    return path


@pytest.fixture
def tmpdir_watch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``$TMPDIR`` for this process, to prove uploads never spool into it."""
    watched = tmp_path / "tmpdir"
    watched.mkdir()
    monkeypatch.setenv("TMPDIR", str(watched))
    monkeypatch.setattr(tempfile, "tempdir", str(watched))
    return watched


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[SimServices, str]]:
    """The web app on the production server, on a simulated device with a 200 MB upload limit."""
    svc = SimServices(tmp_path / "data", max_upload_bytes=200 * MB)
    server = WebServer(create_app(svc), "127.0.0.1", 0)
    server.start()
    try:
        yield svc, server.url
    finally:
        server.stop()
        svc.close()


def leftovers(svc: SimServices) -> list[Path]:
    svc.settle_imports()
    found = [p for p in svc.upload_dir.rglob("*") if p.is_file()]
    return found + [p for p in svc.library.tmp_dir.rglob("*") if p.is_file()]


# --- sizes people upload -------------------------------------------------------------------------


def test_phone_sized_photos_upload_over_the_real_server(
    served: tuple[SimServices, str], tmp_path: Path, tmpdir_watch: Path
) -> None:
    svc, url = served
    small = noisy_jpeg(tmp_path / "IMG_0001.jpg", (1600, 1200), seed=1)  # ~1-2 MB
    big = noisy_jpeg(tmp_path / "IMG_0002.jpg", (5600, 4000), quality=97, seed=2)  # ~25 MB
    assert big.stat().st_size > 22 * MB
    for photo in (small, big):
        answer = post_files(url, [photo])
        assert answer.status == 201, answer.body[:300]
        (job,) = answer.json()["jobs"]
        assert job["status"] == "done" and job["item"]["kind"] == "image"
        assert job["filename"] == photo.name
    assert [i.name for i in svc.library.items()] == ["IMG_0001", "IMG_0002"]
    assert leftovers(svc) == []
    assert list(tmpdir_watch.iterdir()) == []


def test_several_files_in_one_request_and_chunked_bodies(
    served: tuple[SimServices, str], tmp_path: Path
) -> None:
    svc, url = served
    files = []
    for n, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        path = tmp_path / f"clip{n}.gif"
        path.write_bytes(gif_bytes([colour, (9, 9, 9)]))
        files.append(path)
    photo = noisy_jpeg(tmp_path / "photo.jpg", (2000, 1500), seed=3)
    answer = post_files(url, [*files, photo], chunked=True)
    assert answer.status == 201, answer.body[:300]
    assert [j["status"] for j in answer.json()["jobs"]] == ["done"] * 4
    assert len(svc.library.items()) == 4
    assert leftovers(svc) == []


def test_250_mb_upload_is_a_json_413_and_leaves_nothing(
    served: tuple[SimServices, str], tmpdir_watch: Path
) -> None:
    svc, url = served
    answer = post_files(url, [Generated("huge.mp4", 250 * MB)])
    assert answer.status == 413
    body = answer.json()
    assert body["error"]["code"] and "larger" in body["error"]["message"]
    assert answer.headers["content-type"].startswith("application/json")
    assert leftovers(svc) == [] and svc.library.items() == []
    assert list(tmpdir_watch.iterdir()) == []


def test_chunked_upload_over_the_limit_is_cut_off_with_a_413_and_nothing_kept(
    tmp_path: Path, tmpdir_watch: Path
) -> None:
    svc = SimServices(tmp_path / "data", max_upload_bytes=8 * MB)
    try:
        with WebServer(create_app(svc), "127.0.0.1", 0) as server:
            answer = post_files(server.url, [Generated("long.mov", 20 * MB)], chunked=True)
            assert answer.status == 413
            assert answer.json()["error"]["message"]
            assert leftovers(svc) == []
            # The server is still healthy for the next client.
            ok = post_files(server.url, [_gif_file(tmp_path)])
            assert ok.status == 201
    finally:
        svc.close()
    assert list(tmpdir_watch.iterdir()) == []


def _gif_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.gif"
    path.write_bytes(gif_bytes([(200, 10, 10), (10, 200, 10)]))
    return path


def test_an_early_refusal_does_not_read_the_body_into_memory(served: tuple[SimServices, str]) -> None:
    """A refused upload (here: wrong content type) still gets its answer, and the server lives."""
    _, url = served
    answer = post_files(url, [Generated("x.bin", 50 * MB)], query="?wait=maybe")
    assert answer.status == 400
    assert "wait" in answer.json()["error"]["message"]
    # The server keeps serving.
    assert post_files(url, [Generated("empty.gif", 0)]).status in (415, 422)


# --- a full disk ----------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 3 MB tmpfs (needs root, as in CI); skipped where mounting is not allowed."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.strip() or 'not root'})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_filling_up_during_an_upload_is_a_json_507_and_nothing_is_left(
    small_disk: Path, tmp_path: Path
) -> None:
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    # The monitor is told there is room (as when another program fills the card meanwhile).
    svc = SimServices(small_disk / "data", disk_usage=lambda _p: usage(8000 * MB, 10 * MB, 7990 * MB))
    try:
        with WebServer(create_app(svc), "127.0.0.1", 0) as server:
            answer = post_files(server.url, [Generated("video.mp4", 6 * MB, b"\x01")], chunked=True)
            assert answer.status == 507, answer.body[:300]
            assert answer.json()["error"]["code"] == "disk_full"
            assert "storage" in answer.json()["error"]["message"]
            assert leftovers(svc) == []
            assert svc.library.items() == []
    finally:
        svc.close()


# --- the multipart body, whatever its shape --------------------------------------------------------


@dataclass
class RecordingImports:
    """The import queue's place in the app: records what arrived (name, sha256, size)."""

    received: list[tuple[str, str, int]] = field(default_factory=list)
    upload_dir: Path | None = None

    def submit(self, src: Path, filename: str, *, on_done: Callable[[Any], None] | None = None) -> Any:
        data = src.read_bytes()
        self.received.append((filename, hashlib.sha256(data).hexdigest(), len(data)))
        assert self.upload_dir is not None and src.parent == self.upload_dir
        src.unlink()
        return _DoneJob(secrets.token_hex(4), filename)

    def get(self, job_id: str) -> Any:
        raise KeyError(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> Any:
        return _DoneJob(job_id, "")


@dataclass
class _DoneJob:
    id: str
    filename: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "filename": self.filename, "status": "done", "progress": 1.0}


# File contents that stress the parser: sizes around its 64 KiB reads, and bytes that look like
# the start of a boundary or a header.
_tricky = st.sampled_from([b"\r\n", b"\r\n--", b"--", b"\r", b"\n", b"Content-Disposition: ", b"\0", b"\xff"])
_sizes = st.one_of(
    st.integers(0, 2048),
    st.sampled_from([65535, 65536, 65537, 131071, 131072, 131073]),
    st.integers(60_000, 300_000),
)


@st.composite
def upload_files(draw: st.DrawFn) -> tuple[str, bytes]:
    size = draw(_sizes)
    seed = draw(st.integers(0, 2**32 - 1))
    data = bytearray(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        token = draw(_tricky)
        at = draw(st.integers(0, len(data)))
        data[at : at + len(token)] = token
    name = draw(st.text(min_size=0, max_size=40)) + draw(st.sampled_from([".jpg", ".gif", ".mp4", ""]))
    return name, bytes(data)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(upload_files(), min_size=1, max_size=3))
def test_every_upload_arrives_byte_for_byte_in_the_upload_dir(
    files: list[tuple[str, bytes]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    data_dir = tmp_path_factory.mktemp("data")
    svc = SimServices(data_dir, max_upload_bytes=64 * MB)
    recording = RecordingImports(upload_dir=svc.upload_dir)
    svc._imports = recording
    try:
        app: Flask = create_app(svc, {"TESTING": True})
        # The body is built here, not by the test client (which spools big forms to a
        # temporary file it never closes).
        body, content_type = multipart_bytes([(name or "x", data) for name, data in files])
        response = app.test_client().post("/api/media", data=body, headers=CSRF, content_type=content_type)
        assert response.status_code == 202, response.get_json()
        got = [(sha, size) for _name, sha, size in recording.received]
        assert got == [(hashlib.sha256(d).hexdigest(), len(d)) for _n, d in files]
        for stored_name, *_ in recording.received:
            assert "/" not in stored_name and "\\" not in stored_name and stored_name.strip()
        assert [p for p in svc.upload_dir.iterdir()] == []
    finally:
        svc._imports = None
        svc.close()
        shutil.rmtree(data_dir, ignore_errors=True)


# --- show=true and duplicates ------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[SimServices, Flask]]:
    """A simulated device (single-threaded player on a fake clock) and its app."""
    svc = SimServices(tmp_path / "data")
    try:
        yield svc, create_app(svc, {"TESTING": True})
    finally:
        svc.close()


def test_show_true_puts_the_upload_on_the_panel_as_soon_as_it_is_imported(
    local: tuple[SimServices, Flask],
) -> None:
    device, app = local
    client = app.test_client()
    first = client.post(
        "/api/media?wait=true",
        data={"file": [(io.BytesIO(gif_bytes([(255, 0, 0)])), "red.gif")]},
        headers=CSRF,
        content_type="multipart/form-data",
    )
    assert first.status_code == 201
    device.pump()
    second = client.post(
        "/api/media?wait=true&show=true",
        data={"file": [(io.BytesIO(gif_bytes([(0, 0, 255)])), "blue.gif")]},
        headers=CSRF,
        content_type="multipart/form-data",
    )
    assert second.status_code == 201
    new_id = second.get_json()["jobs"][0]["item"]["id"]
    device.pump(0.2)
    assert device.player.status().to_dict()["current"] == new_id
    r, _g, b = device.wiring.snapshot().convert("RGB").getpixel((120, 160))
    assert b > 200 and r < 40


def test_a_byte_identical_upload_answers_with_the_existing_item_marked_duplicate(
    local: tuple[SimServices, Flask],
) -> None:
    device, app = local
    data = gif_bytes([(10, 200, 30), (200, 10, 30)])
    client = app.test_client()

    def send(name: str) -> dict[str, Any]:
        response = client.post(
            "/api/media?wait=true",
            data={"file": [(io.BytesIO(data), name)]},
            headers=CSRF,
            content_type="multipart/form-data",
        )
        assert response.status_code == 201
        job: dict[str, Any] = response.get_json()["jobs"][0]
        return job

    first, again = send("cat.gif"), send("cat copy.gif")
    assert first["duplicate"] is False and again["duplicate"] is True
    assert again["item"]["id"] == first["item"]["id"]
    assert len(device.library.items()) == 1


def test_upload_limit_is_published_for_the_dashboard(local: tuple[SimServices, Flask]) -> None:
    device, app = local
    body = app.test_client().get("/api/media").get_json()
    assert body["max_upload_bytes"] == device.max_upload_bytes


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_plain_curl_upload_works_with_no_extra_header(
    served: tuple[SimServices, str], tmp_path: Path
) -> None:
    svc, url = served
    photo = noisy_jpeg(tmp_path / "from curl.jpg", (1200, 900), seed=5)
    result = subprocess.run(
        ["curl", "-sS", "-F", f"file=@{photo}", f"{url}/api/media?wait=true"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "no_proxy": "*"},
    )
    assert result.returncode == 0, result.stderr
    assert '"status":"done"' in result.stdout.replace(" ", "")
    assert [i.name for i in svc.library.items()] == ["from curl"]
