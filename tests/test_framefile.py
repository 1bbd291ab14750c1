"""Frame files: round trip, loop-back regions, atomic commit, damage detection."""

from __future__ import annotations

import errno
import struct
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import libloop.media._fileio as fileio_mod
from libloop.errors import DiskFull, EmptyMedia, FrameFileError
from libloop.media.framefile import PAGE, FrameFile, FrameFileWriter, verify_file

U8 = npt.NDArray[np.uint8]


def _write(path: Path, frames: list[U8], durations: list[int], loop_count: int = 0) -> None:
    h, w = frames[0].shape[:2]
    with FrameFileWriter(path, w, h, loop_count=loop_count) as writer:
        for f, d in zip(frames, durations, strict=True):
            writer.add_frame(f, d)
        writer.commit()


@st.composite
def sequences(draw: st.DrawFn) -> tuple[list[U8], list[int]]:
    w = draw(st.integers(1, 24))
    h = draw(st.integers(1, 24))
    n = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frames = [rng.integers(0, 4, (h, w, 2), dtype=np.uint8)]
    for _ in range(n - 1):
        f = frames[-1].copy()
        mode = draw(st.sampled_from(["same", "patch", "all", "rows"]))
        if mode == "patch":
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            f[y : y + 3, x : x + 3] = rng.integers(0, 256, f[y : y + 3, x : x + 3].shape, dtype=np.uint8)
        elif mode == "all":
            f = rng.integers(0, 256, (h, w, 2), dtype=np.uint8)
        elif mode == "rows":
            f[h // 2 :] ^= 0x5A
        frames.append(f)
    durations = [draw(st.integers(1, 10_000)) for _ in range(n)]
    return frames, durations


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=sequences(), loop_count=st.integers(0, 5))
def test_round_trip_and_regions_replay_every_frame(
    tmp_path: Path, seq: tuple[list[U8], list[int]], loop_count: int
) -> None:
    frames, durations = seq
    path = tmp_path / "x.loop"
    _write(path, frames, durations, loop_count)
    with FrameFile.open(path) as ff:
        assert (ff.width, ff.height) == (frames[0].shape[1], frames[0].shape[0])
        assert ff.frame_count == len(frames)
        assert ff.loop_count == loop_count
        assert ff.durations_ms == tuple(durations)
        for i, f in enumerate(frames):
            assert bytes(ff.frame(i)) == f.tobytes()
        # Start from frame 0, apply regions of 1..n-1, then loop back with frame 0's regions.
        shown = frames[0].copy()
        for i in [*range(1, len(frames)), 0]:
            for r in ff.regions(i):
                block = np.frombuffer(r.data, dtype=np.uint8).reshape(r.y1 - r.y0 + 1, r.x1 - r.x0 + 1, 2)
                shown[r.y0 : r.y1 + 1, r.x0 : r.x1 + 1] = block
            assert np.array_equal(shown, frames[i])
        assert ff.verify() == []
    assert list(tmp_path.iterdir()) == [path]


def test_still_has_no_regions_and_frames_are_page_aligned(tmp_path: Path) -> None:
    f = np.full((320, 240, 2), 9, dtype=np.uint8)
    _write(tmp_path / "s.loop", [f], [1000])
    with FrameFile.open(tmp_path / "s.loop") as ff:
        assert ff.regions(0) == []
        assert ff.frame_count == 1
        ff.prefetch(0)
        ff.prefetch_all()
    raw = (tmp_path / "s.loop").read_bytes()
    assert raw[PAGE : PAGE + 153600] == f.tobytes()


def test_full_row_regions_point_into_the_frame(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (320, 240, 2), dtype=np.uint8) for _ in range(4)]
    path = tmp_path / "v.loop"
    _write(path, frames, [33] * 4)
    # Full-motion video: no region data stored beyond the whole frames themselves.
    assert path.stat().st_size < 4 * (153600 + PAGE) + PAGE + 1024


def test_abort_on_exception_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), FrameFileWriter(tmp_path / "a.loop", 4, 4) as w:
        w.add_frame(np.zeros((4, 4, 2), dtype=np.uint8), 10)
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_uncommitted_writer_leaves_nothing(tmp_path: Path) -> None:
    with FrameFileWriter(tmp_path / "a.loop", 4, 4) as w:
        w.add_frame(np.zeros((4, 4, 2), dtype=np.uint8), 10)
    assert list(tmp_path.iterdir()) == []


def test_commit_without_frames_is_empty_media(tmp_path: Path) -> None:
    w = FrameFileWriter(tmp_path / "a.loop", 4, 4)
    with pytest.raises(EmptyMedia):
        w.commit()
    assert list(tmp_path.iterdir()) == []


def test_wrong_frame_shape_is_rejected(tmp_path: Path) -> None:
    with FrameFileWriter(tmp_path / "a.loop", 4, 4) as w, pytest.raises(ValueError):
        w.add_frame(np.zeros((4, 5, 2), dtype=np.uint8), 10)


def test_disk_full_raises_and_removes_partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = open

    class Full:
        def __init__(self, f: Any) -> None:
            self.f = f
            self.written = 0

        def write(self, data: Any) -> int:
            self.written += len(data)
            if self.written > 3 * PAGE:
                raise OSError(errno.ENOSPC, "No space left on device")
            return int(self.f.write(data))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.f, name)

    # The writers open their partial file in _fileio, the I/O both formats share.
    monkeypatch.setattr(fileio_mod, "open", lambda p, m: Full(real_open(p, m)), raising=False)
    with pytest.raises(DiskFull) as info, FrameFileWriter(tmp_path / "a.loop", 64, 64) as w:
        for _ in range(4):
            w.add_frame(np.zeros((64, 64, 2), dtype=np.uint8), 10)
        w.commit()
    assert "disk" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def _good(tmp_path: Path) -> Path:
    frames = [np.full((8, 8, 2), i, dtype=np.uint8) for i in range(3)]
    path = tmp_path / "g.loop"
    _write(path, frames, [50, 60, 70])
    return path


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda b: b[:40], "too short"),
        (lambda b: b"XXXXXXXX" + b[8:], "not a LOOP frame file"),
        (lambda b: b[:8] + struct.pack("<H", 99) + b[10:], "version 99"),
        (lambda b: b[:-10], "damaged"),
        (lambda b: b[:-30] + bytes([b[-30] ^ 1]) + b[-29:], "damaged"),  # region table byte flipped
        (lambda b: b"", "too short"),
    ],
)
def test_damaged_headers_are_refused_with_one_sentence(tmp_path: Path, mutate: Any, needle: str) -> None:
    path = _good(tmp_path)
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(FrameFileError, match=needle):
        FrameFile.open(path)
    problems = verify_file(path)
    assert len(problems) == 1 and needle in problems[0]


def test_flipped_pixel_is_reported_by_verify(tmp_path: Path) -> None:
    path = _good(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[PAGE * 2 + 5] ^= 0xFF  # inside frame 1
    path.write_bytes(bytes(raw))
    assert verify_file(path) == ["frame 1: checksum mismatch"]


def test_missing_file_is_reported(tmp_path: Path) -> None:
    assert "Cannot open" in verify_file(tmp_path / "nope.loop")[0]


def test_closed_file_refuses_access(tmp_path: Path) -> None:
    ff = FrameFile.open(_good(tmp_path))
    view = ff.frame(0)
    ff.close()
    ff.close()
    del view
    with pytest.raises(ValueError):
        ff.frame(0)
