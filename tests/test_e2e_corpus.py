"""Every file of the realistic corpus, uploaded over HTTP to ``loop sim``, shows right on the panel.

One ``loop sim --headless`` subprocess (the production composition: cheroot, the import worker
process, the player thread) receives each corpus file from ``tests/real_corpus.py`` as a
streamed multipart upload with ``?wait=true&show=true``. The test then reads
``/api/display.png`` and checks what a person would: the picture is upright (its four
coloured quarters where they belong, EXIF orientation and video rotation applied), fitted to
the panel, and transparent areas show the background.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.e2e_helpers import DeviceProcess, http
from tests.http_uploads import post_files
from tests.real_corpus import BUILDERS, CorpusFile, RealCorpus

pytestmark = pytest.mark.e2e

PANEL_W, PANEL_H = 240, 320


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeviceProcess]:
    proc = DeviceProcess(tmp_path_factory.mktemp("corpus-device"))
    try:
        yield proc
    finally:
        code, err = proc.stop()
        assert code == 0, err
        assert "Traceback" not in err, err


def fitted_box(width: int, height: int) -> tuple[float, float, float, float]:
    """Where a ``width`` x ``height`` picture lands on the portrait panel with 'contain'."""
    scale = min(PANEL_W / width, PANEL_H / height)
    w, h = width * scale, height * scale
    x0, y0 = (PANEL_W - w) / 2, (PANEL_H - h) / 2
    return x0, y0, x0 + w, y0 + h


def patch_colour(panel: np.ndarray, x: float, y: float, r: int = 5) -> tuple[int, int, int]:
    """The median colour of a small square around (x, y): the corpus is noisy on purpose."""
    xi, yi = int(x), int(y)
    patch = panel[max(0, yi - r) : yi + r + 1, max(0, xi - r) : xi + r + 1].reshape(-1, 3)
    red, green, blue = (int(v) for v in np.median(patch, axis=0))
    return red, green, blue


def near(a: tuple[int, int, int], b: tuple[int, int, int], tol: int = 45) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def show_and_capture(device: DeviceProcess, entry: CorpusFile) -> tuple[dict[str, object], np.ndarray]:
    answer = post_files(device.url, [entry.path], query="?wait=true&show=true")
    assert answer.status == 201, (entry.name, answer.status, answer.body[:400])
    (job,) = answer.json()["jobs"]
    item = job["item"]
    deadline = time.monotonic() + 30
    while http("GET", f"{device.url}/api/player").json()["current"] != item["id"]:
        assert time.monotonic() < deadline, f"{entry.name} was imported but never shown"
        time.sleep(0.05)
    png = http("GET", f"{device.url}/api/display.png")
    assert png.status == 200
    panel = np.asarray(Image.open(io.BytesIO(png.body)).convert("RGB"))
    assert panel.shape == (PANEL_H, PANEL_W, 3)
    return item, panel


@pytest.mark.parametrize("name", list(BUILDERS))
def test_corpus_file_uploads_and_shows_upright(
    name: str, device: DeviceProcess, real_corpus: RealCorpus, tmp_path: Path
) -> None:
    entry = real_corpus.get(name)
    expect = entry.expect
    item, panel = show_and_capture(device, entry)
    assert item["kind"] == expect.kind, item
    assert item["frames"] >= 1
    if expect.kind != "image":
        assert item["frames"] > 1, item
    x0, y0, x1, y1 = fitted_box(expect.width, expect.height)
    if expect.quadrants is not None:
        w, h = x1 - x0, y1 - y0
        centres = [(x0 + w / 4, y0 + h / 4), (x0 + 3 * w / 4, y0 + h / 4)]
        centres += [(x0 + w / 4, y0 + 3 * h / 4), (x0 + 3 * w / 4, y0 + 3 * h / 4)]
        seen = [patch_colour(panel, x, y) for x, y in centres]
        for where, got, want in zip(
            ("top-left", "top-right", "bottom-left", "bottom-right"), seen, expect.quadrants, strict=True
        ):
            assert near(got, want), f"{name}: {where} of the panel shows {got}, expected about {want}"
    # Outside a letterboxed picture the panel shows the background (black by default).
    if y0 >= 12:
        assert near(patch_colour(panel, PANEL_W / 2, y0 / 2, r=3), (0, 0, 0), tol=10), name
    if x0 >= 12:
        assert near(patch_colour(panel, x0 / 2, PANEL_H / 2, r=3), (0, 0, 0), tol=10), name
    if expect.alpha_bands is not None:
        # Each third is its colour composited over the black background, by its alpha.
        w = x1 - x0
        for third, (alpha, rgb) in enumerate(expect.alpha_bands):
            got = patch_colour(panel, x0 + w * (third + 0.5) / 3, (y0 + y1) / 2, r=3)
            want = tuple(round(c * alpha / 255) for c in rgb)
            assert near(got, want, tol=20), f"{name}: third {third} shows {got}, expected {want}"  # type: ignore[arg-type]
