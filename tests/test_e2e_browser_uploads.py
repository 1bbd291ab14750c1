"""Uploading through the real dashboard in Chromium, with files the size phones make.

The same production server (cheroot, ``webapp.server.WebServer``) and the same simulated
device as ``test_e2e_browser.py``; the files are real JPEGs and H.264 videos made at test time.
Screenshots go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.test_e2e_browser import CHROMIUM, browser, panel_center, shot, wait_for
from tests.test_upload_http import noisy_jpeg
from tests.webapp_fixtures import SimServices, gif_bytes
from webapp import create_app
from webapp.server import WebServer

__all__ = ["browser"]  # the fixture, shared with the other browser tests

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"
    ),
]

MB = 1024 * 1024


def h264_clip(path: Path, seconds: float = 3.0, size: tuple[int, int] = (1280, 720), fps: int = 30) -> Path:
    """An H.264 MP4 like a phone's: a moving bar over a solid green field."""
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for n in range(int(seconds * fps)):
            rgb = np.zeros((h, w, 3), dtype=np.uint8)
            rgb[:, :] = (30, 180, 60)
            x = (n * 17) % (w - 40)
            rgb[:, x : x + 40] = (250, 250, 250)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = n
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _serve(device: SimServices) -> Iterator[tuple[SimServices, str]]:
    server = WebServer(create_app(device), "127.0.0.1", 0)
    server.start()
    try:
        yield device, server.url
    finally:
        server.stop()
        device.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[SimServices, str]]:
    yield from _serve(SimServices(tmp_path / "data", threaded=True, max_upload_bytes=200 * MB))


def phone_page(browser: Any) -> Any:
    """A phone-sized page that records the page's script errors in ``page.errors``."""
    page = browser.new_page(viewport={"width": 390, "height": 844})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    return page


def row_states(page: Any) -> list[str]:
    states: list[str] = page.eval_on_selector_all(
        "#jobs .job .job-state", "els => els.map(e => e.textContent)"
    )
    return states


def test_a_phone_photo_and_a_video_upload_through_the_dashboard(
    served: tuple[SimServices, str], browser: Any, tmp_path: Path
) -> None:
    page = phone_page(browser)
    device, url = served
    photo = noisy_jpeg(tmp_path / "IMG_4032.jpg", (3200, 2400), quality=96, seed=7)
    video = h264_clip(tmp_path / "IMG_4033.MP4")
    assert photo.stat().st_size >= 5 * MB
    page.goto(url)
    page.set_input_files("#file-input", files=[str(photo), str(video)])
    page.wait_for_selector("#grid .card >> text=IMG_4033", timeout=120_000)
    page.wait_for_selector("#grid .card >> text=IMG_4032")
    assert sorted(i.name for i in device.library.items()) == ["IMG_4032", "IMG_4033"]
    kinds = {i.name: i.kind for i in device.library.items()}
    assert kinds == {"IMG_4032": "image", "IMG_4033": "video"}
    wait_for(lambda: all(s.startswith("Added") for s in row_states(page)), "both rows to say Added")
    shot(page, "upload-1-photo-and-video")
    # "Show now" on the video's row puts it on the panel.
    page.click("#jobs .job:has(.job-name:text('IMG_4033.MP4')) button:text('Show now')")
    wait_for(lambda: device.player.status().current == _id(device, "IMG_4033"), "the video on the panel")
    wait_for(lambda: panel_center(device)[1] > 120, "the video's green field on the panel")
    assert page.errors == []


def _id(device: SimServices, name: str) -> str:
    return next(i.id for i in device.library.items() if i.name == name)


def test_a_batch_with_one_bad_file_says_which_failed_and_that_the_others_were_added(
    served: tuple[SimServices, str], browser: Any
) -> None:
    page = phone_page(browser)
    device, url = served
    page.goto(url)
    page.set_input_files(
        "#file-input",
        files=[
            {"name": "red.gif", "mimeType": "image/gif", "buffer": gif_bytes([(255, 0, 0)])},
            {"name": "notes.gif", "mimeType": "image/gif", "buffer": b"just some text\n" * 40},
            {"name": "blue.gif", "mimeType": "image/gif", "buffer": gif_bytes([(0, 0, 255)])},
        ],
    )
    page.wait_for_selector("#banner:not([hidden])", timeout=60_000)
    banner = page.text_content("#banner-text") or ""
    assert "2 of 3 files were added" in banner and "notes.gif" in banner
    assert sorted(i.name for i in device.library.items()) == ["blue", "red"]
    failed = page.text_content(".job.failed .job-state") or ""
    assert failed.endswith(".") and len(failed) > 20
    shot(page, "upload-2-batch-with-a-bad-file")
    assert page.errors == []


def test_a_duplicate_says_already_in_the_library_and_adds_nothing(
    served: tuple[SimServices, str], browser: Any
) -> None:
    page = phone_page(browser)
    device, url = served
    page.goto(url)
    data = gif_bytes([(0, 200, 0), (0, 100, 0)])
    page.set_input_files("#file-input", files=[{"name": "leaf.gif", "mimeType": "image/gif", "buffer": data}])
    page.wait_for_selector("#grid .card >> text=leaf")
    page.set_input_files(
        "#file-input", files=[{"name": "leaf again.gif", "mimeType": "image/gif", "buffer": data}]
    )
    wait_for(lambda: any("Already in the library" in s for s in row_states(page)), "the duplicate message")
    assert [i.name for i in device.library.items()] == ["leaf"]
    assert not any(s == "Added" for s in row_states(page)[1:])


def test_drag_and_drop_with_show_on_add(served: tuple[SimServices, str], browser: Any) -> None:
    page = phone_page(browser)
    device, url = served
    page.goto(url)
    page.set_input_files(
        "#file-input",
        files=[{"name": "red.gif", "mimeType": "image/gif", "buffer": gif_bytes([(255, 0, 0)])}],
    )
    page.wait_for_selector("#grid .card >> text=red")
    page.check("#show-on-add")
    transfer = page.evaluate_handle(
        """(bytes) => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], "blue.gif", { type: "image/gif" }));
            return dt;
        }""",
        list(gif_bytes([(0, 0, 255)])),
    )
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})
    page.wait_for_selector("#grid .card >> text=blue")
    wait_for(lambda: device.player.status().current == _id(device, "blue"), "the dropped file on the panel")
    wait_for(lambda: panel_center(device)[2] > 200, "blue on the panel")


def test_a_file_over_the_limit_is_refused_before_it_is_sent(tmp_path: Path, browser: Any) -> None:
    for device, url in _serve(SimServices(tmp_path / "data", threaded=True, max_upload_bytes=1 * MB)):
        page = phone_page(browser)
        page.goto(url)
        page.wait_for_selector("#empty:not([hidden])")
        big = tmp_path / "big.jpg"
        big.write_bytes(b"\xff\xd8" + b"\0" * (2 * MB))
        page.set_input_files("#file-input", files=[str(big)])
        page.wait_for_selector(".job.failed")
        message = page.text_content(".job.failed .job-state") or ""
        assert "largest file this LOOP accepts is 1" in message
        assert device.library.items() == []
        assert list(device.upload_dir.iterdir()) == []
