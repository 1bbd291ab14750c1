"""import_media end to end: every kind in, a frame file out that shows what the panel will show."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from libloop.color import rgb565_to_rgb888
from libloop.media.export import export_frames
from libloop.media.fit import FitMode
from libloop.media.frames import open_frames
from libloop.media.importer import ImportOptions, import_media
from libloop.media.limits import Limits
from tests.media_corpus import GifFrame, gif_bytes, good_media_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return good_media_corpus(tmp_path_factory.mktemp("good"))


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("anim.gif", "gif"),
        ("still.png", "image"),
        ("photo.jpg", "image"),
        ("anim.webp", "gif"),
        ("clip.mp4", "video"),
    ],
)
def test_import_writes_a_sound_frame_file(
    corpus: dict[str, Path], tmp_path: Path, name: str, kind: str
) -> None:
    seen: list[float] = []
    result = import_media(corpus[name], tmp_path / "out.loop", progress=seen.append)
    assert result.kind == kind
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    assert len(result.content_hash) == 64
    with open_frames(tmp_path / "out.loop") as ff:
        assert (ff.width, ff.height) == (240, 320)
        assert ff.frame_count == result.frames
        assert sum(ff.durations_ms) == result.duration_ms
        assert ff.verify() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.loop"]


def test_gif_pixels_reach_the_panel_exactly(tmp_path: Path) -> None:
    pal = [(0, 0, 0), (255, 0, 0), (0, 0, 255)]
    frames = [GifFrame(0, 0, [[1] * 240] * 320, delay_cs=5), GifFrame(10, 10, [[2] * 20] * 20, delay_cs=7)]
    src = tmp_path / "a.gif"
    src.write_bytes(gif_bytes(240, 320, pal, frames, loop=3))
    result = import_media(src, tmp_path / "a.loop", ImportOptions(dither=False))
    assert (result.frames, result.loop_count, result.duration_ms) == (2, 4, 120)
    with open_frames(tmp_path / "a.loop") as ff:
        f1 = rgb565_to_rgb888(ff.frame(1), 240, 320)
        assert f1[15, 15].tolist() == [0, 0, 255] and f1[5, 5].tolist() == [255, 0, 0]
        regions = ff.regions(1)
        assert [(r.x0, r.y0, r.x1, r.y1) for r in regions] == [(10, 10, 29, 29)]


def test_identical_consecutive_frames_are_merged(tmp_path: Path) -> None:
    frames = [GifFrame(0, 0, [[1]], delay_cs=10), GifFrame(0, 0, [[1]], delay_cs=20), GifFrame(0, 0, [[2]])]
    src = tmp_path / "m.gif"
    src.write_bytes(gif_bytes(1, 1, [(0, 0, 0), (9, 9, 9), (200, 0, 0)], frames))
    result = import_media(src, tmp_path / "m.loop")
    with open_frames(tmp_path / "m.loop") as ff:
        assert ff.durations_ms == (300, 100)
    assert result.frames == 2 and result.duration_ms == 400


def test_landscape_cover_and_background(corpus: dict[str, Path], tmp_path: Path) -> None:
    opts = ImportOptions(width=320, height=240, fit=FitMode.COVER, background=(0, 255, 0))
    import_media(corpus["still.png"], tmp_path / "c.loop", opts)
    with open_frames(tmp_path / "c.loop") as ff:
        assert (ff.width, ff.height) == (320, 240)


def test_long_animation_is_cut_and_reported(tmp_path: Path) -> None:
    frames = [GifFrame(0, 0, [[i % 2]]) for i in range(30)]
    src = tmp_path / "long.gif"
    src.write_bytes(gif_bytes(1, 1, [(0, 0, 0), (255, 255, 255)], frames))
    result = import_media(src, tmp_path / "l.loop", ImportOptions(limits=Limits(max_frames=10)))
    assert result.truncated and result.frames == 10


def test_export_writes_what_the_panel_shows(corpus: dict[str, Path], tmp_path: Path) -> None:
    import_media(corpus["anim.gif"], tmp_path / "a.loop")
    paths = export_frames(tmp_path / "a.loop", tmp_path / "out")
    meta = json.loads((tmp_path / "out" / "frames.json").read_text())
    assert len(paths) == len(meta["durations_ms"]) == 3 and meta["loop_count"] == 0
    from PIL import Image

    with open_frames(tmp_path / "a.loop") as ff:
        for i, p in enumerate(paths):
            with Image.open(p) as im:
                assert np.array_equal(np.asarray(im), rgb565_to_rgb888(ff.frame(i), 240, 320))
