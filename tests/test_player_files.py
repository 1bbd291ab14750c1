"""Frame files changed under the player: truncated, replaced or deleted while they play.

Before, the player mapped frame files: a page past the end of a file truncated under it killed
the process with SIGBUS (``test_a_mapped_read_past_a_truncation_is_sigbus`` shows what that
looks like). Now each case is a fault for that item, skipped and reported; play goes on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from libloop.errors import FrameFileError
from libloop.media.framefile import PAGE, FrameFile, FrameFileWriter
from libloop.player.refit import FittedFrames
from tests.test_player_core import H, Rig, W, solid, square_frames

ROOT = Path(__file__).resolve().parent.parent
RED, GREEN = (220, 0, 0), (0, 200, 0)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    r = Rig(tmp_path)
    yield r  # type: ignore[misc]
    r.close()


def _truncate(path: Path, size: int = PAGE) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)


def _write_file(path: Path) -> Path:
    with FrameFileWriter(path, W, H) as writer:
        for frame in square_frames(3):
            writer.add_frame(frame, 100)
        writer.commit()
    return path


def _read_after_truncation(path: Path, *, mapped: bool) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        f"""
        from libloop.media.framefile import FrameFile
        ff = FrameFile.open({str(path)!r}, mapped={mapped})
        with open({str(path)!r}, "r+b") as f:
            f.truncate(4096)
        try:
            bytes(ff.frame(2))
        except Exception as exc:
            print(type(exc).__name__)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)


def test_a_mapped_read_past_a_truncation_is_sigbus(tmp_path: Path) -> None:
    """The failure the read mode removes: the same access through a map kills the process."""
    mapped = _read_after_truncation(_write_file(tmp_path / "m.loop"), mapped=True)
    assert mapped.returncode == -signal.SIGBUS
    read = _read_after_truncation(_write_file(tmp_path / "r.loop"), mapped=False)
    assert read.returncode == 0 and read.stdout.strip() == "FrameFileError"


def test_a_file_truncated_while_it_plays_is_skipped_and_reported(rig: Rig) -> None:
    a = rig.add(square_frames(6), 100, name="cut")
    b = rig.add([solid(GREEN), solid(RED)], 100, name="intact")
    rig.player.run_frames(2)
    assert rig.player.status().current == a.id
    _truncate(rig.library.frame_path(a))
    rig.player.run_until(rig.clock.monotonic() + 0.5)
    status = rig.player.status()
    assert status.current == b.id and status.state == "playing"
    assert any("cut" in f and a.id in f and "changed on disk" in f for f in status.faults)
    rig.player.run_frames(1)
    assert rig.shows(b.id, status.frame or 0) or rig.shows(b.id, 1)
    # The item is not retried at once (it failed a moment ago): b keeps playing, alone.
    rig.player.run_until(rig.clock.monotonic() + 2.0)
    assert rig.player.status().current == b.id


def test_the_only_item_truncated_shows_the_error_screen(rig: Rig) -> None:
    a = rig.add(square_frames(4), 100)
    rig.player.run_frames(1)
    _truncate(rig.library.frame_path(a), 100)
    rig.player.run_until(rig.clock.monotonic() + 1.0)
    status = rig.player.status().to_dict()
    assert status["state"] == "empty" and "fsck" in status["error"]
    glass = rig.glass()
    assert (glass[:, :, 0] > glass[:, :, 2]).mean() > 0.5  # the red error screen


def test_a_paused_item_truncated_is_skipped_too(rig: Rig) -> None:
    a = rig.add(square_frames(3), 100)
    b = rig.add([solid(GREEN)], 100)
    rig.player.run_frames(1)
    rig.player.pause()
    rig.player.step()
    _truncate(rig.library.frame_path(a))
    rig.display.reinit()  # content unknown: the paused frame must be redrawn from the file
    rig.player._sender.set_unknown()  # what the reset means to the player
    rig.player.step()
    assert rig.player.status().current == b.id


def test_a_replaced_file_is_played_from_its_new_content_at_the_next_turn(rig: Rig) -> None:
    a = rig.add([solid(RED), solid(RED)], 100)
    rig.player.run_frames(1)
    assert rig.shows(a.id, 0)
    path = rig.library.frame_path(a)
    new = path.with_name("new.partial")
    with FrameFileWriter(new, W, H) as writer:
        writer.add_frame(solid(GREEN), 100)
        writer.add_frame(solid(GREEN), 100)
        writer.commit()
    os.replace(new, path)
    rig.frames[a.id] = [solid(GREEN), solid(GREEN)]
    rig.player.run_until(rig.clock.monotonic() + 0.5)
    rig.player.run_frames(1)
    assert rig.shows(a.id, rig.player.status().frame or 0)


def test_a_deleted_file_finishes_its_turn_then_is_a_fault(rig: Rig) -> None:
    a = rig.add(square_frames(4), 100, name="gone")
    b = rig.add([solid(GREEN)], 100)
    rig.player.run_frames(1)
    rig.library.frame_path(a).unlink()
    rig.player.run_frames(2)  # the open file lives on until the turn ends
    assert rig.player.status().current == a.id
    rig.player.run_until(rig.clock.monotonic() + 12)  # b (a still: 10 s) plays, then a is due again
    status = rig.player.status()
    assert status.current == b.id
    assert any("gone" in f and "cannot open" in f for f in status.faults), status.faults


def test_read_mode_refuses_a_cut_off_frame_with_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "x.loop"
    with FrameFileWriter(path, 8, 6) as writer:
        for frame in square_frames(1):
            writer.add_frame(frame[:6, :8], 40)
        writer.add_frame(square_frames(2)[1][:6, :8], 40)
        writer.commit()
    with FrameFile.open(path) as ff:
        _truncate(path, PAGE + 10)
        with pytest.raises(FrameFileError, match="changed on disk"):
            ff.frame(1)
        assert ff.changed_on_disk()


def test_a_file_fitted_on_the_fly_tells_when_it_was_replaced(tmp_path: Path) -> None:
    """Else a refitted item kept open turn after turn would hold a replaced file (and its space)."""
    path = tmp_path / "x.loop"
    with FrameFileWriter(path, 8, 6) as writer:
        writer.add_frame(square_frames(1)[0][:6, :8], 40)
        writer.commit()
    fitted = FittedFrames(FrameFile.open(path), 16, 12)
    try:
        assert not fitted.changed_on_disk()
        path.unlink()
        assert fitted.changed_on_disk()
    finally:
        fitted.close()
