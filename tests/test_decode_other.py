"""Pictures, animated pictures and video: recognised by content, oriented, streamed, capped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from libloop.media.decode import open_media, sniff
from libloop.media.limits import Limits
from tests.media_corpus import good_media_corpus, make_video


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return good_media_corpus(tmp_path_factory.mktemp("good"))


@pytest.mark.parametrize(
    ("name", "kind", "fmt"),
    [
        ("still.png", "image", "PNG"),
        ("photo.jpg", "image", "JPEG"),
        ("picture.bmp", "image", "BMP"),
        ("still.webp", "image", "WEBP"),
        ("anim.png", "gif", "PNG"),
        ("anim.webp", "gif", "WEBP"),
        ("anim.gif", "gif", "GIF"),
        ("png_named.gif", "image", "PNG"),
        ("clip.mp4", "video", "mov"),
    ],
)
def test_recognised_by_content(corpus: dict[str, Path], name: str, kind: str, fmt: str) -> None:
    with open_media(corpus[name]) as src:
        assert (src.kind, src.format) == (kind, fmt)
        frames = list(src.frames())
    assert frames and all(f.duration_ms >= 1 for f in frames)
    assert frames[-1].progress == 1.0


def test_sniff() -> None:
    assert sniff(b"GIF89a....") == "gif"
    assert sniff(b"\x00\x00\x00\x18ftypisom") == "video"
    assert sniff(b"\x1a\x45\xdf\xa3") == "video"
    assert sniff(b"\x89PNG\r\n\x1a\n") == "picture"
    assert sniff(b"hello world") == "unknown"


def test_animated_png_keeps_frames_durations_and_loop(corpus: dict[str, Path]) -> None:
    with open_media(corpus["anim.png"]) as src:
        frames = list(src.frames())
        assert src.loop_count == 0
    assert [f.duration_ms for f in frames] == [80, 80, 80]
    assert not np.array_equal(np.asarray(frames[0].image), np.asarray(frames[1].image))


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_jpeg_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    img = np.zeros((20, 40, 3), dtype=np.uint8)
    img[:, :20] = (255, 0, 0)  # left half red as stored
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.jpg"
    Image.fromarray(img).save(path, exif=exif, quality=95)
    with open_media(path) as src:
        shown = np.asarray(next(iter(src.frames())).image)
        assert (src.width, src.height) == ((40, 20) if orientation in (1, 3) else (20, 40))
    red_at = {1: (10, 5), 3: (10, 35), 6: (5, 10), 8: (35, 10)}[orientation]  # (row, col) that is red
    assert shown.shape[:2] == (src.height, src.width)
    assert shown[red_at][0] > 200 and shown[red_at][2] < 60


def test_video_frame_rate_is_capped_and_durations_follow_timestamps(tmp_path: Path) -> None:
    path = make_video(tmp_path / "fast.mp4", frames=60, fps=60, width=64, height=48)
    with open_media(path, limits=Limits(max_fps=30)) as src:
        frames = list(src.frames())
    assert len(frames) == 30
    assert sum(f.duration_ms for f in frames) == 1000
    assert all(32 <= f.duration_ms <= 35 for f in frames)


def test_video_length_is_capped(tmp_path: Path) -> None:
    path = make_video(tmp_path / "long.mkv", frames=40, fps=10, width=32, height=32)
    with open_media(path, limits=Limits(max_video_seconds=2.0)) as src:
        frames = list(src.frames())
        assert src.truncated
    assert len(frames) == 20


def test_webm_and_prescale(tmp_path: Path) -> None:
    path = make_video(tmp_path / "c.webm", frames=5, fps=10, width=320, height=240)
    with open_media(path, prescale=lambda w, h: (160, 120)) as src:
        assert src.kind == "video"
        sizes = {f.image.size for f in src.frames()}
    assert sizes == {(160, 120)}


@pytest.mark.parametrize(("fps", "kept"), [(30, 30), (25, 25), (60, 30), (50, 30)])
def test_millisecond_timestamps_do_not_lose_frames_to_the_rate_cap(
    tmp_path: Path, fps: int, kept: int
) -> None:
    # Matroska/WebM store whole milliseconds: 30 fps arrives as 0, 33, 67, 100 ms..., a hair
    # before each 1/30 s slot. Every frame must still be kept (and at 60 fps every other one).
    path = make_video(tmp_path / "ms.mkv", frames=fps, fps=fps, width=32, height=32)
    with open_media(path, limits=Limits(max_fps=30)) as src:
        frames = list(src.frames())
    assert len(frames) == kept
    assert 990 <= sum(f.duration_ms for f in frames) <= 1010
