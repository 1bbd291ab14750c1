"""The player when things go wrong, and the threaded player: transport errors, files that do
not open, the night schedule, eviction on the running thread, memory-mapped file count."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from libloop.clock import MonotonicClock
from libloop.errors import FrameFileError, PlayerError, TransportError
from libloop.media.framefile import FrameFile
from libloop.player import NightSchedule, Player
from tests.test_player_core import FULL, Rig, solid, square_frames


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.close()


def test_a_transport_error_is_reported_and_the_next_frame_is_whole(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    rig = Rig(tmp_path, on_error=errors.append, refresh_share=0.0)  # no refresh band takes the fault
    try:
        item = rig.add(square_frames(6), 100)
        rig.player.step()
        rig.wiring.device.fail_transfer(1)
        rig.player.run_until(rig.clock.monotonic() + 0.1)
        assert len(errors) == 1 and isinstance(errors[0], TransportError)
        before = rig.player.stats.full_frames
        rig.player.run_frames(1)
        assert rig.player.stats.full_frames == before + 1  # content unknown: redrawn whole
        k = rig.player.status().frame
        assert k is not None and rig.shows(item.id, k)
        assert rig.player.stats.transport_errors == 1
    finally:
        rig.close()


def test_without_an_error_callback_a_transport_error_reaches_the_caller(rig: Rig) -> None:
    rig.add(square_frames(4), 100)
    rig.player.step()
    rig.wiring.device.fail_transfer(1)
    with pytest.raises(TransportError):
        rig.player.run_frames(3)


def test_items_that_do_not_open_are_skipped_and_all_failing_shows_the_error_screen(tmp_path: Path) -> None:
    broken: set[str] = set()

    def opener(path: Path) -> FrameFile:
        if path.stem in broken:
            raise FrameFileError(f"Frame file {path.name} is damaged (test); re-import the item.")
        return FrameFile.open(path)

    rig = Rig(tmp_path, open_frames=opener)
    try:
        a = rig.add(square_frames(2), 100, name="a")
        b = rig.add(square_frames(2, base=(0, 200, 0)), 100, name="b")
        broken.update({a.id, b.id})
        rig.player.step()
        status = rig.player.status()
        # Nothing plays (SPEC's "empty" state); the error field says why.
        assert status.state == "empty" and status.current is None
        assert "re-import" in status.to_dict()["error"]
        assert any("cannot open" in f for f in status.faults)
        glass = rig.glass()
        assert (glass[:, :, 0] > glass[:, :, 2]).mean() > 0.5  # the red error screen is up
        # A change to the library (say, b re-imported) makes the player try again at once.
        broken.discard(b.id)
        rig.library.update(b.id, name="b again")
        rig.player.step()
        assert rig.player.status().current == b.id and rig.player.status().state == "playing"
        rig.player.run_frames(1)
        assert rig.shows(b.id, rig.player.status().frame or 0)
    finally:
        rig.close()


def test_the_night_schedule_sleeps_and_wakes_the_panel(tmp_path: Path) -> None:
    wall = [dt.datetime(2026, 3, 10, 21, 59, 59)]
    night = NightSchedule(dt.time(22, 0), dt.time(7, 0), now=lambda: wall[0])
    rig = Rig(tmp_path, night=night)
    try:
        item = rig.add(square_frames(4), 100)
        rig.player.run_frames(2)
        assert rig.player.status().state == "playing"
        wall[0] = dt.datetime(2026, 3, 10, 22, 0, 1)
        rig.player.step()
        assert rig.player.status().state == "sleeping"
        assert rig.wiring.panel.backlight == 0
        shown = rig.player.stats.frames_shown
        for _ in range(5):
            rig.player.step()
        assert rig.player.stats.frames_shown == shown  # nothing is sent at night
        rig.player.wake()  # a person wakes it by hand: stays awake until the schedule next flips
        rig.player.run_frames(1)
        assert rig.player.status().state == "playing" and rig.wiring.panel.backlight == 100
        rig.player.sleep()
        rig.player.step()
        wall[0] = dt.datetime(2026, 3, 11, 7, 0, 0)
        rig.player.wake()
        rig.player.run_frames(1)
        k = rig.player.status().frame
        assert k is not None and rig.shows(item.id, k)
    finally:
        rig.close()


def test_at_most_the_current_and_the_next_file_are_mapped(tmp_path: Path) -> None:
    open_now: set[int] = set()
    peak = [0]

    class Counted(FrameFile):
        def close(self) -> None:
            open_now.discard(id(self))
            super().close()

    def opener(path: Path) -> FrameFile:
        ff = FrameFile.open(path)
        ff.__class__ = Counted
        open_now.add(id(ff))
        peak[0] = max(peak[0], len(open_now))
        return ff

    rig = Rig(tmp_path, open_frames=opener)
    try:
        for i in range(6):
            rig.add(square_frames(2, base=(i * 40, 0, 0)), 50, name=f"i{i}")
        rig.player.run_until(rig.clock.monotonic() + 3.0)  # five rounds of the playlist
        assert rig.player.stats.frames_shown > 50
        assert peak[0] == 2
    finally:
        rig.close()


def test_an_item_switch_draws_the_next_item_whole_and_exactly(rig: Rig) -> None:
    a = rig.add([solid((255, 0, 0)), solid((0, 0, 255))], 100, name="a")
    b = rig.add([solid((0, 255, 0))], 100, name="b")
    rig.player.run_frames(3)
    assert rig.player.status().current == b.id and rig.shows(b.id, 0)
    rig.player.run_frames(1)
    assert rig.shows(a.id, 0)
    assert rig.player.stats.bytes_sent > 3 * FULL


# --- the threaded player ------------------------------------------------------------------


def _threaded(tmp_path: Path) -> tuple[Rig, Player]:
    rig = Rig(tmp_path)
    clock = MonotonicClock()
    from sim.wiring import SimWiring

    rig.wiring = SimWiring(clock=clock)
    rig.display = rig.wiring.display()
    rig.display.open()
    player = Player(rig.display, rig.library, clock=clock, on_error=lambda exc: None)
    rig.player = player
    return rig, player


def test_evict_on_the_running_thread_returns_with_something_else_on_the_glass(tmp_path: Path) -> None:
    rig, player = _threaded(tmp_path)
    try:
        a = rig.add([solid((255, 0, 0))], 5000, name="a")  # a long still: only evict moves it
        rig.add([solid((0, 0, 255))], 5000, name="b")
        beats = threading.Semaphore(0)
        player.heartbeat = beats.release
        player.start()
        while player.status().current != a.id or player.stats.frames_shown < 1:
            beats.acquire(timeout=1.0)
        player.evict(a.id, timeout=2.0)
        rig.library.delete(a.id)
        glass = rig.glass()
        assert glass[..., 2].mean() > 200 and glass[..., 0].mean() < 10  # b (blue), not a (red)
        assert player.status().current != a.id
    finally:
        rig.close()


def test_evict_times_out_with_a_player_error_when_the_bus_hangs(tmp_path: Path) -> None:
    rig, player = _threaded(tmp_path)
    try:
        a = rig.add(square_frames(4), 20, name="a")
        rig.add(square_frames(4, base=(0, 150, 0)), 20, name="b")
        rig.library.update(a.id, loops=1000)
        beats = threading.Semaphore(0)
        player.heartbeat = beats.release
        player.start()
        while player.stats.frames_shown < 2:
            beats.acquire(timeout=1.0)
        rig.wiring.device.hang_transfer(1)  # the next transfer (one of a's) never ends
        assert rig.wiring.device.hung.wait(2.0)
        with pytest.raises(PlayerError, match="did not move off"):
            player.evict(a.id, timeout=0.2)
        rig.wiring.device.release()
    finally:
        rig.close()


def test_controls_on_the_running_thread_apply_before_they_return(tmp_path: Path) -> None:
    rig, player = _threaded(tmp_path)
    try:
        rig.add(square_frames(4), 50)
        beats = threading.Semaphore(0)
        player.heartbeat = beats.release
        player.start()
        player.pause()
        assert player.status().state == "paused"
        player.resume()
        assert player.status().state == "playing"
        player.sleep()
        assert player.status().state == "sleeping"
        shown = player.stats.frames_shown
        player.wake()
        assert player.status().state == "playing"
        while player.stats.frames_shown <= shown + 1:
            beats.acquire(timeout=1.0)
        assert rig.wiring.panel.backlight == 100 and np.asarray(rig.glass()).any()  # redrawn, then lit
    finally:
        rig.close()


def test_show_error_puts_up_the_error_screen_until_cleared(rig: Rig) -> None:
    item = rig.add([solid((0, 0, 255)), solid((0, 0, 200))], 100)
    rig.player.step()
    assert rig.player.status().current == item.id
    rig.player.show_error("The SPI bus keeps failing; LOOP will restart itself.")
    rig.player.step()
    status = rig.player.status().to_dict()
    assert status["state"] == "empty" and "SPI bus" in status["error"]
    glass = rig.glass()
    assert (glass[:, :, 0] > glass[:, :, 2]).mean() > 0.5  # the red error screen, not the blue item
    rig.player.clear_error()
    for _ in range(3):
        rig.player.step()
    assert rig.player.status().current == item.id and "error" not in rig.player.status().to_dict()
