"""The player on the simulated rig with a fake clock: timing, drops, what reaches the glass.

Every test runs the real loop code single-threaded (``step``/``run_until``) over a real
``Library``, real frame files and the fake spidev + panel model, with one ``FakeClock`` shared
by all of them: the fake bus advances it by the modelled wire time, so a slow bus really makes
frames late, and nothing sleeps.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from libloop.clock import FakeClock
from libloop.color import rgb565_to_rgb888, rgb888_to_rgb565
from libloop.display import Display
from libloop.errors import ItemNotFound
from libloop.index import Item, Library, NewItem
from libloop.media.codec_zstd import ZstdWriter
from libloop.media.framefile import FrameFileWriter
from libloop.player import Player
from libloop.player.screens import empty_screen
from sim.wiring import SimWiring

W, H = 240, 320
FULL = W * H * 2


def solid(rgb: tuple[int, int, int]) -> np.ndarray:
    return rgb888_to_rgb565(np.full((H, W, 3), rgb, dtype=np.uint8))


def square_frames(n: int, base: tuple[int, int, int] = (20, 40, 200), side: int = 24) -> list[np.ndarray]:
    """``n`` frames of a solid background with a white square moving along the diagonal."""
    frames = []
    for i in range(n):
        rgb = np.full((H, W, 3), base, dtype=np.uint8)
        x, y = 10 + 7 * i, 12 + 9 * i
        rgb[y : y + side, x : x + side] = (255, 255, 255)
        frames.append(rgb888_to_rgb565(rgb))
    return frames


class Rig:
    """Library + simulated panel + display + player on one FakeClock."""

    def __init__(
        self,
        tmp: Path,
        *,
        speed_hz: int = 64_000_000,
        writer: type[Any] = FrameFileWriter,
        **player_kwargs: object,
    ) -> None:
        self.writer = writer
        self.clock = FakeClock(1000.0)
        self.wiring = SimWiring(clock=self.clock, speed_hz=speed_hz)
        self.display: Display = self.wiring.display()
        self.display.open()
        self.library = Library(tmp / "data").open()
        self.frames: dict[str, list[np.ndarray]] = {}
        self.player = Player(self.display, self.library, clock=self.clock, **player_kwargs)  # type: ignore[arg-type]

    def add(
        self,
        frames: Sequence[np.ndarray],
        durations: Sequence[int] | int = 100,
        *,
        loop_count: int = 0,
        name: str = "item",
    ) -> Item:
        if isinstance(durations, int):
            durations = [durations] * len(frames)
        path = self.library.staging_path()
        writer = self.writer(path, W, H, loop_count=loop_count)
        for f, d in zip(frames, durations, strict=True):
            writer.add_frame(f, d)
        writer.commit()
        meta = NewItem(
            name=name,
            kind="gif",
            frames=len(frames),
            duration_ms=sum(durations),
            width=W,
            height=H,
            source_name=f"{name}.gif",
            content_hash=secrets.token_hex(8),
            loop_count=loop_count,
        )
        item = self.library.add(path, meta)
        self.frames[item.id] = list(frames)
        return item

    def glass(self) -> np.ndarray:
        return np.asarray(self.wiring.snapshot().convert("RGB"))

    def shows(self, item_id: str, k: int) -> bool:
        expected = rgb565_to_rgb888(self.frames[item_id][k].tobytes(), W, H)
        return bool(np.array_equal(self.glass(), expected))

    def close(self) -> None:
        self.player.stop()
        self.library.close()


@pytest.fixture(params=["v1", "v2"])
def rig(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Rig]:
    """The rig, its items written in each frame-file format (v2: the lossless zstd codec)."""
    r = Rig(tmp_path, writer=FrameFileWriter if request.param == "v1" else ZstdWriter)
    yield r
    r.close()


def test_panel_shows_each_frame_exactly_on_its_deadline(rig: Rig) -> None:
    item = rig.add(square_frames(6), [100, 50, 200, 30, 120, 80])
    t0 = rig.clock.monotonic()
    rig.player.step()  # frame 0, whole
    assert rig.shows(item.id, 0)
    cum = np.cumsum([0, 100, 50, 200, 30, 120, 80])
    for k in range(1, 6):
        rig.player.run_frames(1)
        assert rig.shows(item.id, k), f"frame {k}"
        # The frame went out at its absolute deadline (the sleep ended exactly there).
        assert pytest.approx(t0 + cum[k] / 1000, abs=1e-9) in rig.clock.sleeps
    st = rig.player.stats
    assert st.frames_shown == 6 and st.frames_dropped == 0


def test_no_drift_over_thousands_of_frames(rig: Rig) -> None:
    durations = [33, 34, 33, 40, 27]
    rig.add(square_frames(5), durations)
    rig.player.step()
    t0 = rig.player._turn.timeline.t0  # type: ignore[union-attr]
    rig.player.run_frames(5 * 600)
    # Frame 3000 (the first of pass 601) went out exactly where the sum of durations puts it,
    # to the microsecond, although every frame's wire time advanced the clock in between.
    assert max(rig.clock.sleeps) == pytest.approx(t0 + 600 * sum(durations) / 1000, abs=1e-6)
    assert rig.player.stats.frames_dropped == 0


def test_only_dirty_regions_are_sent_after_the_first_frame(rig: Rig) -> None:
    rig.add(square_frames(8))
    rig.player.step()
    before = rig.display.stats.bytes
    rig.player.run_frames(6)
    sent = rig.display.stats.bytes - before
    # Each step moves a 24x24 square: two small rectangles (or one box), nowhere near a frame.
    assert sent < 6 * FULL * 0.1
    assert rig.player.stats.full_frames == 1


def test_slow_bus_drops_frames_instead_of_slowing_down(tmp_path: Path) -> None:
    # At 4 MHz a whole frame takes ~307 ms on the wire; frames are due every 50 ms.
    rig = Rig(tmp_path, speed_hz=4_000_000)
    try:
        frames = [solid((i * 20 % 256, 0, 255 - i * 20 % 256)) for i in range(10)]  # full-motion
        item = rig.add(frames, 50)
        rig.player.step()
        t0 = rig.player._turn.timeline.t0  # type: ignore[union-attr]
        rig.player.run_until(t0 + 0.5 * 4)  # four passes' worth of time
        st = rig.player.stats
        assert st.frames_dropped > 0
        assert st.frames_shown + st.frames_dropped >= 30
        # What is on the glass is a whole frame of the item, never a mix of two.
        assert any(rig.shows(item.id, k) for k in range(10))
        # Time never stretched: the clock is at the requested end, not frames * wire time.
        assert rig.clock.monotonic() < t0 + 2.0 + 0.7
    finally:
        rig.close()


def test_after_a_drop_the_panel_catches_up_exactly(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    try:
        item = rig.add(square_frames(12), 40)
        rig.player.step()
        # The host stalls until 170 ms after the start: the slots of frames 1-3 are over, so they
        # are dropped, and the frame sent next brings the glass exactly to frame 4.
        t0 = rig.player._turn.timeline.t0  # type: ignore[union-attr]
        rig.clock.set(t0 + 0.170)
        rig.player.run_frames(1)
        assert rig.player.stats.frames_dropped == 3
        assert rig.player.status().frame == 4
        assert rig.shows(item.id, 4)
        assert rig.player.stats.full_frames == 1  # caught up with the skipped regions, not a whole frame
        rig.player.run_frames(4)
        assert rig.shows(item.id, 8)
    finally:
        rig.close()


@pytest.mark.parametrize(
    ("loops", "loop_count", "min_seconds", "passes"),
    [(1, 0, 0, 1), (3, 0, 0, 3), (2, 2, 0, 4), (1, 0, 1.0, 3)],
)
def test_turn_length_combines_loops_loop_count_and_min_seconds(
    rig: Rig, loops: int, loop_count: int, min_seconds: float, passes: int
) -> None:
    a = rig.add(square_frames(4), 100, loop_count=loop_count, name="a")  # 0.4 s a pass
    b = rig.add(square_frames(3, base=(200, 0, 0)), 100, name="b")
    rig.library.update(a.id, loops=loops, min_seconds=min_seconds)
    rig.player.step()
    start = rig.player._turn.timeline.t0  # type: ignore[union-attr]
    while rig.player.status().current == a.id:
        rig.player.step()
    assert rig.player.status().current == b.id
    # b's turn is anchored at the boundary: a played exactly `passes` passes.
    assert rig.player._turn.timeline.t0 == pytest.approx(start + passes * 0.4, abs=1e-6)  # type: ignore[union-attr]
    rig.player.run_frames(1)
    assert rig.shows(b.id, 0)


def test_playlist_order_and_wraparound(rig: Rig) -> None:
    ids = [rig.add(square_frames(2, base=(i * 60, 0, 0)), 100, name=f"i{i}").id for i in range(3)]
    seen: list[str] = []
    for _ in range(200):
        rig.player.step()
        cur = rig.player.status().current
        if cur is not None and (not seen or seen[-1] != cur):
            seen.append(cur)
        if len(seen) == 5:
            break
    assert seen == [ids[0], ids[1], ids[2], ids[0], ids[1]]


def test_changes_are_picked_up_at_the_next_frame(rig: Rig) -> None:
    a = rig.add(square_frames(4), 1000, name="a")
    rig.player.step()
    b = rig.add(square_frames(2, base=(0, 200, 0)), 100, name="b")
    rig.library.reorder([b.id, a.id])
    rig.library.update(a.id, enabled=False)
    rig.player.step()  # no waiting for a's long frame to end
    assert rig.player.status().current == b.id
    assert rig.shows(b.id, 0)


def test_empty_library_shows_the_empty_screen(tmp_path: Path) -> None:
    rig = Rig(tmp_path, dashboard_url="http://loop.local:8080/")
    try:
        rig.player.step()
        assert rig.player.status().state == "empty"
        expected = rgb565_to_rgb888(
            rgb888_to_rgb565(np.asarray(empty_screen((W, H), "http://loop.local:8080/"))).tobytes(), W, H
        )
        assert np.array_equal(rig.glass(), expected)
        item = rig.add(square_frames(2), 100)
        rig.player.step()
        assert rig.player.status().current == item.id and rig.shows(item.id, 0)
    finally:
        rig.close()


def test_controls(rig: Rig) -> None:
    a = rig.add(square_frames(4), 100, name="a")
    b = rig.add(square_frames(4, base=(0, 150, 0)), 100, name="b")
    c = rig.add(square_frames(4, base=(150, 0, 0)), 100, name="c")
    p = rig.player
    p.step()
    p.next()
    p.step()
    assert p.status().current == b.id and rig.shows(b.id, 0)
    p.previous()
    p.step()
    assert p.status().current == a.id and rig.shows(a.id, 0)
    p.show(c.id)
    p.step()
    assert p.status().current == c.id and rig.shows(c.id, 0)
    with pytest.raises(ItemNotFound):
        p.show("nope")
    p.run_frames(1)
    p.pause()
    p.step()
    assert p.status().state == "paused"
    frame = p.status().frame
    shown = p.stats.frames_shown
    rig.clock.advance(5.0)
    for _ in range(5):
        p.step()
    assert p.stats.frames_shown == shown and p.status().frame == frame
    p.resume()
    p.step()
    assert p.status().state == "playing"
    p.set_brightness(40)
    p.step()
    assert rig.wiring.panel.backlight == 40
    with pytest.raises(ValueError):
        p.set_brightness(101)


def test_sleep_and_wake(rig: Rig) -> None:
    a = rig.add(square_frames(4), 100)
    p = rig.player
    p.step()
    p.sleep()
    p.step()
    assert p.status().state == "sleeping"
    assert rig.wiring.panel.backlight == 0
    p.wake()
    p.run_frames(1)
    assert p.status().state == "playing"
    assert rig.wiring.panel.backlight == 100
    assert any(rig.shows(a.id, k) for k in range(4))


def test_a_file_made_for_another_rotation_plays_fitted_on_the_fly(rig: Rig) -> None:
    # A landscape file (320x240) on the portrait panel: scaled whole into the middle, bars above
    # and below, with only the changed parts sent after the first frame.
    path = rig.library.staging_path()
    writer = FrameFileWriter(path, H, W)
    red = np.zeros((W, H, 3), np.uint8)
    red[:] = (255, 0, 0)
    moved = red.copy()
    moved[100:140, 140:180] = (255, 255, 255)
    writer.add_frame(rgb888_to_rgb565(red), 100)
    writer.add_frame(rgb888_to_rgb565(moved), 100)
    writer.commit()
    wide = rig.library.add(path, NewItem("wide", "gif", 2, 200, H, W, "wide.gif", "x"))
    rig.player.run_frames(1)
    assert rig.player.status().current == wide.id
    glass = rig.glass()
    assert tuple(glass[160, 10]) == (255, 0, 0) and tuple(glass[160, 230]) == (255, 0, 0)
    assert tuple(glass[40, 120]) == (0, 0, 0) and tuple(glass[300, 120]) == (0, 0, 0)  # the bars
    assert tuple(glass[71, 120]) == (255, 0, 0) and tuple(glass[248, 120]) == (255, 0, 0)  # 240x180 box
    before = rig.display.stats.bytes
    rig.player.run_frames(1)
    assert tuple(rig.glass()[160, 120]) == (255, 255, 255)  # the white square, fitted: 30x30 at (105, 145)
    assert rig.display.stats.bytes - before < FULL // 10  # only the square's rectangle was sent
    assert not rig.player.status().faults


def test_evict_single_threaded_moves_off_at_once(rig: Rig) -> None:
    a = rig.add(square_frames(4), 100, name="a")
    b = rig.add(square_frames(4, base=(0, 150, 0)), 100, name="b")
    rig.player.step()
    rig.player.evict(a.id)
    assert rig.shows(b.id, 0)
    rig.library.delete(a.id)
    rig.player.evict(b.id)
    assert rig.player.status().state == "empty"


def test_status_shape(rig: Rig) -> None:
    rig.add(square_frames(3), 100)
    rig.player.run_frames(5)
    d = rig.player.status().to_dict()
    assert d["state"] == "playing" and isinstance(d["current"], str)
    for key in (
        "frames_shown",
        "frames_dropped",
        "bytes_sent",
        "transfers",
        "refresh_bytes",
        "fps",
        "late_p99_ms",
    ):
        assert key in d["stats"]
    assert d["stats"]["fps"] == pytest.approx(10.0, rel=0.01)


def test_the_heartbeat_beats_every_second_even_during_a_long_still(tmp_path: Path) -> None:
    beats: list[float] = []
    rig = Rig(tmp_path)
    try:
        rig.player.heartbeat = lambda: beats.append(rig.clock.monotonic())
        rig.add([solid((10, 10, 10))], 10_000)
        rig.player.run_until(rig.clock.monotonic() + 30.0)
        gaps = np.diff(beats)
        assert len(beats) >= 30 and gaps.max() <= 1.0 + 0.05
    finally:
        rig.close()
