"""Frame files v2: what the player sends from a v2 file equals v1's, damage is an error, not a crash.

The lossless codec is checked against v1 over random animations (hypothesis): every frame,
every dirty region and its pixels, every duration. The H.264 codec is lossy by design, so it
is checked against itself: the decode the writer recorded (checksums) is the decode every
reader gets, and ``loop export`` writes exactly what the simulated panel shows.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from libloop.clock import FakeClock
from libloop.color import rgb565_to_rgb888
from libloop.errors import FrameFileError
from libloop.index import Library, NewItem
from libloop.media import codec_zstd
from libloop.media.codec_zstd import ZstdWriter
from libloop.media.export import export_frames
from libloop.media.framefile import FrameFileWriter
from libloop.media.framefile_v2 import PAGE, FrameFileV2
from libloop.media.frames import V2Frames, open_frames, verify_any
from libloop.media.importer import ImportOptions, import_media
from libloop.media.limits import Limits
from libloop.player import Player
from sim.wiring import SimWiring
from tests.media_corpus import make_video

U8 = np.ndarray[Any, np.dtype[np.uint8]]


@st.composite
def animations(draw: st.DrawFn) -> tuple[int, int, list[U8], list[int], int]:
    """A few RGB565 frames: a random base, then random rectangles repainted frame after frame."""
    w = draw(st.integers(1, 24))
    h = draw(st.integers(1, 24))
    n = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (h, w, 2), dtype=np.uint8)
    frames = [frame.copy()]
    for _ in range(n - 1):
        for _ in range(draw(st.integers(0, 3))):
            x0, x1 = sorted(draw(st.tuples(st.integers(0, w - 1), st.integers(0, w - 1))))
            y0, y1 = sorted(draw(st.tuples(st.integers(0, h - 1), st.integers(0, h - 1))))
            frame[y0 : y1 + 1, x0 : x1 + 1] = rng.integers(
                0, 256, (y1 - y0 + 1, x1 - x0 + 1, 2), dtype=np.uint8
            )
        frames.append(frame.copy())
    durations = draw(st.lists(st.integers(1, 100_000), min_size=n, max_size=n))
    return w, h, frames, durations, draw(st.integers(0, 5))


def write(
    writer_type: Any, path: Path, w: int, h: int, frames: list[U8], durations: list[int], loops: int
) -> Path:
    with writer_type(path, w, h, loop_count=loops) as writer:
        for f, d in zip(frames, durations, strict=True):
            writer.add_frame(f, d)
        writer.commit()
    return path


def sent(frames: Any, i: int) -> tuple[bytes, list[tuple[int, int, int, int, bytes]]]:
    """What the player can send for frame ``i``: the whole frame and each region with its pixels."""
    return bytes(frames.frame(i)), [(r.x0, r.y0, r.x1, r.y1, bytes(r.data)) for r in frames.regions(i)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(animations(), st.booleans(), st.integers(1, 3))
def test_v2_plays_exactly_what_v1_plays(tmp_path: Path, anim: Any, ahead: bool, group_frames: int) -> None:
    w, h, frames, durations, loops = anim
    v1 = write(FrameFileWriter, tmp_path / "a.v1", w, h, frames, durations, loops)
    saved = codec_zstd.GROUP_FRAMES
    codec_zstd.GROUP_FRAMES = group_frames  # small groups: key frames inside the file too
    try:
        v2 = write(ZstdWriter, tmp_path / "a.v2", w, h, frames, durations, loops)
    finally:
        codec_zstd.GROUP_FRAMES = saved
    with open_frames(v1) as old, open_frames(v2, decode_ahead=ahead, depth=2) as new:
        assert isinstance(new, V2Frames)
        assert (new.width, new.height, new.frame_count) == (old.width, old.height, old.frame_count)
        assert tuple(new.durations_ms) == tuple(old.durations_ms) and new.loop_count == old.loop_count
        n = old.frame_count
        order = [*range(n), 0, *range(n - 1, -1, -1)]  # in order, the loop back, backwards
        for i in order:
            assert sent(new, i) == sent(old, i), f"frame {i}"
            assert [(r.x0, r.y0, r.x1, r.y1) for r in new.rects(i)] == [
                (r.x0, r.y0, r.x1, r.y1) for r in old.regions(i)
            ]
        assert new.verify() == []


def _sprite(n: int = 12) -> list[U8]:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (320, 240, 2), dtype=np.uint8)
    out = []
    for i in range(n):
        f = base.copy()
        f[100 + 5 * i : 140 + 5 * i, 50 + 7 * i : 90 + 7 * i] = 200
        out.append(f)
    return out


def test_a_sprite_animation_takes_a_fraction_of_v1(tmp_path: Path) -> None:
    frames = _sprite()
    v1 = write(FrameFileWriter, tmp_path / "a.v1", 240, 320, frames, [40] * 12, 0)
    v2 = write(ZstdWriter, tmp_path / "a.v2", 240, 320, frames, [40] * 12, 0)
    assert v2.stat().st_size < v1.stat().st_size / 5


@pytest.mark.parametrize("cut", [0, 10, 63, PAGE - 1, PAGE + 5, -200, -41, -1])
def test_a_truncated_v2_file_is_refused_with_an_error(tmp_path: Path, cut: int) -> None:
    path = write(ZstdWriter, tmp_path / "a.loop", 240, 320, _sprite(), [40] * 12, 0)
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut >= 0 else data[: len(data) + cut])
    with pytest.raises(FrameFileError):
        frames = open_frames(path)
        with frames:
            for i in range(frames.frame_count):
                frames.frame(i)
    assert verify_any(path) != []


def test_a_file_cut_short_while_open_is_an_error_for_that_frame_not_a_crash(tmp_path: Path) -> None:
    path = write(ZstdWriter, tmp_path / "a.loop", 240, 320, _sprite(), [40] * 12, 0)
    with open_frames(path) as frames:
        first = bytes(frames.frame(0))
        with open(path, "r+b") as f:
            f.truncate(PAGE + 100)
        assert bytes(frames.frame(0)) == first  # decoded already
        with pytest.raises(FrameFileError, match=r"cut off|checksum"):
            for i in range(1, frames.frame_count):
                frames.frame(i)


@pytest.mark.parametrize("ahead", [True, False])
def test_a_file_cut_short_is_found_at_the_next_pass_even_when_every_frame_is_decoded(
    tmp_path: Path, ahead: bool
) -> None:
    path = write(ZstdWriter, tmp_path / "a.loop", 240, 320, _sprite()[:3], [40] * 3, 0)
    with open_frames(path, decode_ahead=ahead) as frames:
        for i in range(3):  # the whole loop fits the decode-ahead ring: no read is left to fail
            woken = threading.Event()
            if not frames.ready(i, woken):
                assert woken.wait(5), f"frame {i} never became ready"
            frames.regions(i)
        assert frames.ready(0)
        with open(path, "r+b") as f:
            f.truncate(PAGE + 100)
        assert frames.ready(2)  # mid-pass: no syscall
        with pytest.raises(FrameFileError, match="changed on disk"):
            frames.ready(0)


def test_the_frame_on_the_glass_stays_decoded_when_the_decoder_moves_on(tmp_path: Path) -> None:
    """A pause or a refresh band redraws the shown frame while the next one decodes: that must
    not send the decoder back to a key frame (and hold the send lock through it)."""
    frames_in = _sprite()
    path = write(ZstdWriter, tmp_path / "a.loop", 240, 320, frames_in, [40] * 12, 0)
    with open_frames(path, decode_ahead=True, depth=2) as frames:
        assert isinstance(frames, V2Frames)
        for k in (4, 5):
            woken = threading.Event()
            if not frames.ready(k, woken):
                assert woken.wait(5), f"frame {k} never became ready"
        assert frames._want == 5 and 4 in frames._ring
        assert bytes(frames.frame(4)) == frames_in[4].tobytes()
        assert frames._want == 5  # served from the ring: the decoder did not seek back


def test_a_damaged_chunk_fails_its_checksum_and_verify_names_the_frame(tmp_path: Path) -> None:
    path = write(ZstdWriter, tmp_path / "a.loop", 240, 320, _sprite(), [40] * 12, 0)
    with FrameFileV2.open(path) as ff:
        offset = ff.entries[3].offset
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    problems = verify_any(path)
    assert problems and problems[0].startswith("frame 3:") and "checksum" in problems[0]
    with open_frames(path, decode_ahead=True) as frames:
        assert bytes(frames.frame(2)) == _sprite()[2].tobytes()
        with pytest.raises(FrameFileError, match="frame 3"):
            frames.frame(3)


def test_decode_ahead_fills_a_small_ring_and_wakes_the_waiter(tmp_path: Path) -> None:
    frames_in = _sprite()
    path = write(ZstdWriter, tmp_path / "a.loop", 240, 320, frames_in, [40] * 12, 0)
    with open_frames(path, decode_ahead=True, depth=3) as frames:
        assert isinstance(frames, V2Frames)
        for k in (5, 6, 11, 0, 1):
            woken = threading.Event()
            if not frames.ready(k, woken):
                assert woken.wait(5), f"frame {k} never became ready"
            assert frames.ready(k)
            assert bytes(frames.frame(k)) == frames_in[k].tobytes()
            assert (
                len(frames._ring) <= 3 + 1
            )  # bounded by the ring (and the frame shown), whatever the length
    assert frames._thread is not None and not frames._thread.is_alive()


# --- video --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("v") / "clip.mp4", frames=45, fps=30, width=320, height=180)


def test_a_video_is_stored_as_h264_and_decodes_to_what_the_writer_recorded(
    video: Path, tmp_path: Path
) -> None:
    result = import_media(video, tmp_path / "v.loop")
    raw = import_media(video, tmp_path / "raw.loop", ImportOptions(format="v1"))
    assert result.codec == "h264" and result.frames == raw.frames == 45
    assert result.bytes < raw.bytes / 20
    assert verify_any(result.path) == []  # every decoded frame matches its recorded checksum
    with open_frames(result.path) as frames, open_frames(raw.path) as exact:
        assert tuple(frames.durations_ms) == tuple(exact.durations_ms)
        for i in (0, 20, 44):  # the re-encode is close to the lossless frames
            got = rgb565_to_rgb888(frames.frame(i), 240, 320).astype(int)
            want = rgb565_to_rgb888(exact.frame(i), 240, 320).astype(int)
            assert np.abs(got - want).mean() < 6


def test_export_of_a_v2_video_is_exactly_what_the_panel_shows(video: Path, tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    wiring = SimWiring(clock=clock)
    display = wiring.display()
    display.open()
    library = Library(tmp_path / "data").open()
    try:
        staged = library.staging_path()
        result = import_media(video, staged)
        item = library.add(
            staged,
            NewItem(
                "clip", "video", result.frames, result.duration_ms, 320, 180, "clip.mp4", result.content_hash
            ),
        )
        export_frames(library.frame_path(item), tmp_path / "out")
        meta = json.loads((tmp_path / "out" / "frames.json").read_text())
        player = Player(display, library, clock=clock)
        shown = 0
        for _ in range(400):
            player.step()
            frame = player.status().frame
            if frame is None:
                continue
            glass = np.asarray(wiring.snapshot().convert("RGB"))
            png = np.asarray(Image.open(tmp_path / "out" / meta["frames"][frame]).convert("RGB"))
            assert np.array_equal(glass, png), f"frame {frame} differs from its export"
            shown += 1
            if shown >= 60:
                break
        assert shown >= 60 and player.stats.frames_dropped == 0
    finally:
        library.close()
        display.close()


def test_a_video_over_the_storage_budget_is_cut_with_a_warning(video: Path, tmp_path: Path) -> None:
    from libloop.media.jobs import truncation_warning

    limits = Limits(max_item_bytes=1 << 20)
    result = import_media(video, tmp_path / "v.loop", ImportOptions(format="v1", limits=limits))
    assert result.truncated and result.cut_by_budget and result.bytes <= limits.max_item_bytes
    assert 1 <= result.frames < 45
    with open_frames(result.path) as frames:
        assert sum(frames.durations_ms) == result.duration_ms
    warning = truncation_warning(result, "clip.mp4", limits)
    assert warning is not None and "1 MB" in warning and f"{result.frames} frames" in warning


def test_videos_are_not_cut_at_the_animation_frame_limit(video: Path, tmp_path: Path) -> None:
    result = import_media(video, tmp_path / "v.loop", ImportOptions(limits=Limits(max_frames=10)))
    assert result.frames == 45 and not result.truncated
