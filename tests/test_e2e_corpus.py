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
from tests.real_corpus import (
    BUILDERS,
    CorpusFile,
    RealCorpus,
    assert_bars,
    assert_quadrants,
    close,
    contain_box,
    mean_colour,
)

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


def show_and_capture(device: DeviceProcess, entry: CorpusFile) -> tuple[dict[str, object], np.ndarray]:
    answer = post_files(device.url, [entry.path], query="?wait=true&show=true")
    assert answer.status == 201, (entry.name, answer.status, answer.body[:400])
    (job,) = answer.json()["jobs"]
    item = job["item"]
    deadline = time.monotonic() + 30
    while http("GET", f"{device.url}/api/player").json()["on_panel"] != item["id"]:
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
    size = (expect.width, expect.height)
    if expect.quadrants is not None:
        assert_quadrants(panel, size, name)
    assert_bars(panel, size, (0, 0, 0))  # the default background
    if expect.alpha_bands is not None:
        # Each third is its colour composited over the black background, by its alpha.
        x0, y0, x1, y1 = contain_box(*size, PANEL_W, PANEL_H)
        for third, (alpha, rgb) in enumerate(expect.alpha_bands):
            shown = tuple(round(c * alpha / 255) for c in rgb)
            cx = x0 + (x1 - x0) * (2 * third + 1) / 6
            got = mean_colour(panel, cx, (y0 + y1) / 2, 3)
            assert close(got, shown, 12), f"{name}: third {third} shows {got}, expected {shown}"  # type: ignore[arg-type]
