"""The dashboard's live view in a real headless Chromium, against `loop sim --headless`.

The device runs as a person runs it (its player in a process of its own); the page shows the
panel through ``GET /api/display.mjpeg``. The page itself counts how many different frames
its ``<img id="live">`` showed: a 20 fps animation must come through at 10 or more a second
(a still polled once a second, the previous live view, showed one).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_helpers import DeviceProcess, http, multipart, wait_until
from tests.test_e2e_browser import ARGS, CHROMIUM

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"
    ),
]

#: Frames a second of the uploaded animation.
FPS = 20


def twenty_fps_gif(frames: int = 40) -> bytes:
    """An animation whose every frame has a colour of its own, 50 ms a frame."""
    from PIL import Image

    images = [
        Image.new("RGB", (60, 80), ((i * 53) % 256, (i * 97) % 256, (i * 151) % 256)) for i in range(frames)
    ]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=1000 // FPS, loop=0)
    return out.getvalue()


@pytest.fixture
def device(tmp_path: Path) -> Iterator[DeviceProcess]:
    proc = DeviceProcess(tmp_path / "data")
    try:
        yield proc
    finally:
        proc.kill()


COUNT_FRAMES = """async (ms) => {
    const img = document.getElementById("live");
    const c = document.createElement("canvas");
    c.width = 8; c.height = 8;
    const ctx = c.getContext("2d", { willReadFrequently: true });
    let last = "", changes = 0;
    const end = performance.now() + ms;
    while (performance.now() < end) {
        await new Promise(requestAnimationFrame);
        if (!img.complete || !img.naturalWidth) continue;
        ctx.drawImage(img, img.naturalWidth / 2 - 4, img.naturalHeight / 2 - 4, 8, 8, 0, 0, 8, 8);
        const d = ctx.getImageData(4, 4, 1, 1).data;
        const key = `${d[0] >> 3},${d[1] >> 3},${d[2] >> 3}`;
        if (key !== last) { changes += 1; last = key; }
    }
    return { changes, src: img.currentSrc };
}"""


def test_the_live_view_shows_an_animation_at_its_own_frame_rate(device: DeviceProcess, browser: Any) -> None:
    body, content_type = multipart([("colours.gif", twenty_fps_gif())])
    created = http("POST", f"{device.url}/api/media?wait=true", body, {"Content-Type": content_type})
    assert created.status == 201, created.body
    item_id = created.json()["jobs"][0]["item"]["id"]
    wait_until(lambda: http("GET", f"{device.url}/api/player").json()["on_panel"] == item_id, 20, "playing")

    page = browser.new_page(viewport={"width": 1024, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(device.url)
    page.wait_for_function("() => document.getElementById('live').naturalWidth > 0")
    seconds = 3.0
    result = page.evaluate(COUNT_FRAMES, int(seconds * 1000))
    assert "display.mjpeg" in result["src"]
    per_second = result["changes"] / seconds
    print(f"live view: {per_second:.1f} distinct frames a second")
    assert per_second >= 10, f"the live view showed {per_second:.1f} different frames a second"
    assert not errors
    assert device.stop()[0] == 0


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
