"""Real-world media through the whole import: what the panel shows for what phones and cameras make.

Each file of the realistic corpus (``tests/real_corpus.py``) is imported with ``import_media``
into a frame file, and frame 0 (and later frames for animations) is read back from that file
and checked the way a person would look at the panel: the orientation marker's quarters in
the right places, letterbox bars in the background colour, alpha composited over it, the
moving marker where it should be, frame counts and durations as the file says.

The expected panel layout is computed here from the displayed source size (plain arithmetic
for "contain"), not with the importer's own fitting code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import ExifTags, Image, ImageOps

from libloop.color import rgb565_to_rgb888
from libloop.media.frames import open_frames
from libloop.media.importer import ImportOptions, ImportResult, import_media
from libloop.media.limits import Limits
from tests.real_corpus import (
    QUADRANTS,
    Color,
    CorpusFile,
    RealCorpus,
    assert_bars,
    assert_marker,
    assert_quadrants,
    close,
    contain_box,
    mean_colour,
    stored_from_upright,
)

PANEL_W, PANEL_H = 240, 320
MAGENTA: Color = (255, 0, 255)
OPTIONS = ImportOptions(background=MAGENTA)

STILLS = [f"jpeg_12mp_o{o}" for o in range(1, 9)] + ["portrait_phone", "jpeg_25mb"]
#: The 30 s 1080p video takes ~10 s to make and ~8 s to import here: marked slow (still run by default).
LONG_VIDEO = pytest.param("h264_1080p_30s", marks=pytest.mark.slow)
VIDEOS = [LONG_VIDEO, "hevc_mov_rotated", "h264_mov_rotated_180", "mkv_legacy_rotate_tag", "vp9_webm"]
ANIMATIONS = ["animated_webp", "apng", "gif_10mb"]


def panel(path: Path, i: int = 0) -> npt.NDArray[np.uint8]:
    with open_frames(path) as ff:
        return rgb565_to_rgb888(ff.frame(i), ff.width, ff.height).copy()


def imported(entry: CorpusFile, tmp_path: Path, options: ImportOptions = OPTIONS) -> ImportResult:
    dest = tmp_path / f"{entry.name}.loop"
    result = import_media(entry.path, dest, options)
    assert dest.exists() and result.path == dest
    return result


def assert_matches_expectation(result: ImportResult, entry: CorpusFile) -> None:
    exp = entry.expect
    assert (result.kind, result.format) == (exp.kind, exp.format)
    assert (result.width, result.height) == (exp.width, exp.height), "size not orientation-corrected"
    assert exp.frames[0] <= result.frames <= exp.frames[1], result.frames
    if exp.duration_ms is not None:
        assert exp.duration_ms[0] <= result.duration_ms <= exp.duration_ms[1], result.duration_ms
    assert not result.truncated


# ---------------------------------------------------------------------------------------------
# The corpus itself is realistic


@pytest.mark.parametrize("name", [*STILLS, "png_alpha", *ANIMATIONS, *VIDEOS])
def test_corpus_files_have_realistic_sizes(real_corpus: RealCorpus, name: str) -> None:
    entry = real_corpus[name]
    low, high = entry.expect.file_bytes
    assert low <= entry.path.stat().st_size <= high


@pytest.mark.parametrize("orientation", range(1, 9))
def test_camera_jpegs_carry_camera_exif(real_corpus: RealCorpus, orientation: int) -> None:
    with Image.open(real_corpus[f"jpeg_12mp_o{orientation}"].path) as im:
        assert im.size == (4000, 3000)
        exif = im.getexif()
    assert exif[ExifTags.Base.Orientation] == orientation
    assert (exif[ExifTags.Base.Make], exif[ExifTags.Base.Model]) == ("Canon", "Canon EOS 90D")
    assert exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] == "2024:05:18 14:03:27"


def test_corpus_files_are_built_once(real_corpus: RealCorpus) -> None:
    first = real_corpus["png_alpha"]
    stamp = first.path.stat().st_mtime_ns
    again = RealCorpus(real_corpus.root)["png_alpha"]
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp


# ---------------------------------------------------------------------------------------------
# Stills


@pytest.mark.parametrize("name", STILLS)
def test_photos_show_upright_whatever_their_exif_orientation(
    real_corpus: RealCorpus, tmp_path: Path, name: str
) -> None:
    entry = real_corpus[name]
    result = imported(entry, tmp_path)
    assert_matches_expectation(result, entry)
    frame = panel(result.path)
    size = (entry.expect.width, entry.expect.height)
    assert_quadrants(frame, size, name)
    assert_bars(frame, size, MAGENTA)


def test_portrait_phone_photo_fills_the_portrait_panel(real_corpus: RealCorpus, tmp_path: Path) -> None:
    # 3024x4032 shown upright is exactly the panel's 3:4: no bars at all (stored landscape, it
    # would be letterboxed into a 240x180 strip).
    result = imported(real_corpus["portrait_phone"], tmp_path)
    frame = panel(result.path)
    assert contain_box(result.width, result.height, PANEL_W, PANEL_H) == (0, 0, PANEL_W, PANEL_H)
    for x, y in ((2, 2), (PANEL_W - 3, 2), (2, PANEL_H - 3), (PANEL_W - 3, PANEL_H - 3)):
        assert not close(mean_colour(frame, x, y, 1), MAGENTA, 40)


def test_png_alpha_is_composited_over_the_background(real_corpus: RealCorpus, tmp_path: Path) -> None:
    entry = real_corpus["png_alpha"]
    result = imported(entry, tmp_path, ImportOptions(background=MAGENTA, dither=False))
    assert_matches_expectation(result, entry)
    frame = panel(result.path)
    x0, y0, x1, y1 = contain_box(entry.expect.width, entry.expect.height, PANEL_W, PANEL_H)
    assert entry.expect.alpha_bands is not None
    for third, (alpha, rgb) in enumerate(entry.expect.alpha_bands):
        shown = tuple(round((alpha * c + (255 - alpha) * b) / 255) for c, b in zip(rgb, MAGENTA, strict=True))
        cx = x0 + (x1 - x0) * (2 * third + 1) / 6
        assert close(mean_colour(frame, cx, (y0 + y1) / 2, 3), shown, 8), (third, shown)  # type: ignore[arg-type]
    assert_bars(frame, (entry.expect.width, entry.expect.height), MAGENTA)


# ---------------------------------------------------------------------------------------------
# Animations


@pytest.mark.parametrize("name", ANIMATIONS)
def test_animations_play_every_frame_with_the_marker_moving(
    real_corpus: RealCorpus, tmp_path: Path, name: str
) -> None:
    entry = real_corpus[name]
    exp = entry.expect
    result = imported(entry, tmp_path)
    assert_matches_expectation(result, entry)
    assert result.loop_count == exp.loop_count
    assert exp.marker is not None
    size = (exp.width, exp.height)
    late = exp.frames[0] - 1
    with open_frames(result.path) as ff:
        assert len(set(ff.durations_ms)) == 1 and sum(ff.durations_ms) == result.duration_ms
    first, last = panel(result.path, 0), panel(result.path, late)
    if exp.quadrants is not None:
        assert_quadrants(first, size, name)
    assert_marker(first, exp.marker(0), size, present=True)
    assert_marker(last, exp.marker(late), size, present=True)
    assert_marker(last, exp.marker(0), size, present=False)


def gif_image_blocks(data: bytes) -> list[bool]:
    """Walk a GIF's blocks (GIF89a, section 17 on): one entry per image, True if it has a local palette."""
    pos = 13 + (3 * (2 << (data[10] & 7)) if data[10] & 0x80 else 0)
    images: list[bool] = []

    def skip_sub_blocks(p: int) -> int:
        while data[p]:
            p += data[p] + 1
        return p + 1

    while data[pos] != 0x3B:
        if data[pos] == 0x21:  # extension: label, then sub-blocks
            pos = skip_sub_blocks(pos + 2)
        else:
            assert data[pos] == 0x2C
            packed = data[pos + 9]
            images.append(bool(packed & 0x80))
            pos += 10 + (3 * (2 << (packed & 7)) if packed & 0x80 else 0)
            pos = skip_sub_blocks(pos + 1)  # after the LZW minimum code size
    return images


def test_the_big_gif_really_uses_a_palette_per_frame(real_corpus: RealCorpus) -> None:
    entry = real_corpus["gif_10mb"]
    images = gif_image_blocks(entry.path.read_bytes())
    assert len(images) == entry.expect.frames[0]
    assert sum(images) >= len(images) - 1  # the first frame may use the global palette


# ---------------------------------------------------------------------------------------------
# Video


@pytest.mark.parametrize("name", VIDEOS)
def test_videos_show_upright_with_their_rotation_applied(
    real_corpus: RealCorpus, tmp_path: Path, name: str
) -> None:
    entry = real_corpus[name]
    result = imported(entry, tmp_path)
    assert_matches_expectation(result, entry)
    size = (entry.expect.width, entry.expect.height)
    with open_frames(result.path) as ff:
        count = ff.frame_count
        assert ff.verify() == []
    for i in (0, count - 1):
        frame = panel(result.path, i)
        assert_quadrants(frame, size, f"{name} frame {i}")
        assert_bars(frame, size, MAGENTA)
    assert not np.array_equal(panel(result.path, 0), panel(result.path, 1)), "the video does not move"


@pytest.mark.slow
def test_a_video_over_the_length_limit_is_cut_and_marked_truncated(
    real_corpus: RealCorpus, tmp_path: Path
) -> None:
    entry = real_corpus["h264_1080p_30s"]
    options = ImportOptions(background=MAGENTA, limits=Limits(max_video_seconds=10))
    result = imported(entry, tmp_path, options)
    assert result.truncated
    assert 9_900 <= result.duration_ms <= 10_000
    assert 295 <= result.frames <= 300
    assert_quadrants(panel(result.path, result.frames - 1), (1920, 1080), "cut video, last frame")


@pytest.mark.parametrize(
    ("ccw", "hflip", "vflip"),
    [(-90, True, False), (0, True, False), (0, False, True), (90, False, False), (90, True, False)],
)
def test_mirrored_display_matrices_are_applied(tmp_path: Path, ccw: int, hflip: bool, vflip: bool) -> None:
    """Display matrices with a mirror (front cameras, editing apps) show the picture as players do."""
    import av

    upright = np.zeros((64, 48, 3), dtype=np.uint8)  # designed as displayed: 48 wide, 64 tall
    for (qy, qx), colour in zip([(0, 0), (0, 1), (1, 0), (1, 1)], QUADRANTS, strict=True):
        upright[qy * 32 : (qy + 1) * 32, qx * 24 : (qx + 1) * 24] = colour
    # Displayed = stored, turned ``ccw`` counter-clockwise, then mirrored: undo it in reverse.
    stored = upright
    if hflip:
        stored = stored[:, ::-1]
    if vflip:
        stored = stored[::-1]
    stored = np.ascontiguousarray(np.rot90(stored, -ccw // 90))
    path = tmp_path / "mirrored.mov"
    with av.open(str(path), "w") as container:
        stream: Any = container.add_stream("libx264", rate=10)
        stream.height, stream.width = stored.shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(ccw, hflip=hflip, vflip=vflip)
        for _ in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    result = import_media(path, tmp_path / "m.loop", OPTIONS)
    assert (result.width, result.height) == (48, 64)
    assert_quadrants(panel(result.path), (48, 64), f"rotation {ccw}, hflip {hflip}, vflip {vflip}")


def test_stored_from_upright_matches_the_exif_definitions() -> None:
    """The corpus's own orientation maths, checked against the EXIF wording on a 2x3 picture."""
    upright = np.arange(6, dtype=np.uint8).reshape(2, 3, 1)  # rows: 0 1 2 / 3 4 5
    # Where the stored 0th row / 0th column appear (EXIF 2.3, Orientation tag), read back.
    displayed_from_stored: dict[int, Any] = {
        1: lambda s: s,
        2: lambda s: s[:, ::-1],
        3: lambda s: s[::-1, ::-1],
        4: lambda s: s[::-1],
        5: lambda s: s.transpose(1, 0, 2),
        6: lambda s: np.rot90(s, -1),
        7: lambda s: s[::-1, ::-1].transpose(1, 0, 2),
        8: lambda s: np.rot90(s, 1),
    }
    for orientation, show in displayed_from_stored.items():
        stored = stored_from_upright(upright, orientation)
        assert np.array_equal(show(stored), upright), orientation
        with_pillow = Image.fromarray(stored[:, :, 0])
        with_pillow.getexif()[ExifTags.Base.Orientation] = orientation
        assert np.array_equal(np.asarray(ImageOps.exif_transpose(with_pillow)), upright[:, :, 0]), orientation
