"""``GET /api/display.mjpeg``: one JPEG part per new panel frame, shared by every viewer, bounded.

The app runs on the test device (``SimServices``: the real player single-threaded on a fake
clock); the stream's body is read part by part through Werkzeug's streaming test client.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.webapp_fixtures import SimServices, add_solid_item
from webapp import create_app
from webapp.live import BOUNDARY, LiveFrames

RED, BLUE = (255, 0, 0), (0, 0, 255)


@pytest.fixture
def device(tmp_path: Path) -> Iterator[SimServices]:
    """The test device, its player single-threaded on a fake clock (``pump`` plays)."""
    svc = SimServices(tmp_path / "data")
    try:
        yield svc
    finally:
        svc.close()


def parts(body: Iterator[bytes]) -> Iterator[Image.Image]:
    """The JPEG images of a multipart/x-mixed-replace body, as they arrive."""
    for chunk in body:
        head, _, rest = chunk.partition(b"\r\n\r\n")
        assert head.startswith(f"--{BOUNDARY}\r\nContent-Type: image/jpeg".encode())
        length = int(head.rsplit(b"Content-Length: ", 1)[1])
        yield Image.open(io.BytesIO(rest[:length]))


def centre(image: Image.Image) -> tuple[int, int, int]:
    pixel: Any = image.convert("RGB").getpixel((image.width // 2, image.height // 2))
    return (int(pixel[0]), int(pixel[1]), int(pixel[2]))


def near(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    return all(abs(x - y) <= 8 for x, y in zip(a, b, strict=True))


def test_the_stream_sends_each_new_frame_of_the_panel(device: SimServices) -> None:
    add_solid_item(device.library, "blink", [RED, BLUE], duration_ms=100)
    device.pump(0.05)
    client = create_app(device).test_client()
    response = client.get("/api/display.mjpeg", buffered=False)
    assert response.status_code == 200
    assert response.mimetype == "multipart/x-mixed-replace"
    assert response.headers["Cache-Control"] == "no-store"
    stream = parts(iter(response.response))
    colours = [centre(next(stream))]
    for _ in range(3):
        device.pump(0.1)  # the next frame of the animation reaches the panel
        colours.append(centre(next(stream)))
    response.close()
    # Every part is what the panel showed, and a part came for each new frame of the animation.
    assert all(near(c, RED) or near(c, BLUE) for c in colours)
    assert any(near(c, RED) for c in colours) and any(near(c, BLUE) for c in colours)


def test_too_many_viewers_get_a_json_503_and_the_still_keeps_working(device: SimServices) -> None:
    app = create_app(device)
    live: LiveFrames = app.extensions["loop.live"]
    client = app.test_client()
    open_ones = [client.get("/api/display.mjpeg", buffered=False) for _ in range(live.max_streams)]
    try:
        refused = client.get("/api/display.mjpeg")
        assert refused.status_code == 503
        assert refused.get_json()["error"]["code"] == "too_many_streams"
        assert client.get("/api/display.png").status_code == 200
    finally:
        for response in open_ones:
            response.close()
    assert live.streams == 0  # closed streams free their places


def test_one_encoding_per_frame_whatever_the_number_of_viewers(device: SimServices) -> None:
    add_solid_item(device.library, "blink", [RED, BLUE], duration_ms=100)
    device.pump(0.05)
    app = create_app(device)
    live: LiveFrames = app.extensions["loop.live"]
    client = app.test_client()
    viewers = [client.get("/api/display.mjpeg", buffered=False) for _ in range(3)]
    streams = [parts(iter(v.response)) for v in viewers]
    try:
        for _ in range(4):
            for stream in streams:
                next(stream)
            device.pump(0.1)
        # Four frames were shown and each was encoded once for all three viewers (a
        # keep-alive re-encode of an unchanged panel may add one).
        assert 4 <= live.encoded <= 6
    finally:
        for v in viewers:
            v.close()


def test_ending_the_streams_ends_them_at_once(device: SimServices) -> None:
    app = create_app(device)
    live: LiveFrames = app.extensions["loop.live"]
    response = app.test_client().get("/api/display.mjpeg", buffered=False)
    body = iter(response.response)
    next(body)
    live.end_streams()
    with pytest.raises(StopIteration):
        next(body)
    response.close()
    assert live.streams == 0
