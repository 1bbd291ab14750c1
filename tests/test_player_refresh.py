"""The periodic refresh and catching up, on the simulated rig with a fake clock.

The refresh goes out a band at a time in idle bus time, within a tenth of the content's
bytes, never delaying a frame, and it repairs a panel whose memory was garbled. A late frame
is brought up with a cover of what changed, never a bigger send than that.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libloop.color import rgb888_to_rgb565
from libloop.player.refresh import RefreshBudget
from tests.test_player_core import FULL, H, Rig, W, square_frames


def counter_frames(n: int) -> list[np.ndarray]:
    """A counter: a black panel where one small digit-sized block changes each frame."""
    frames = []
    for i in range(n):
        rgb = np.zeros((H, W, 3), dtype=np.uint8)
        x = 60 + (i % 10) * 12
        rgb[150:166, x : x + 8] = 255
        frames.append(rgb888_to_rgb565(rgb))
    return frames


def content_bytes(rig: Rig) -> int:
    st = rig.player.stats
    return st.bytes_sent - st.refresh_bytes


def test_refresh_stays_within_a_tenth_of_the_content_on_a_small_animation(tmp_path: Path) -> None:
    rig = Rig(tmp_path, refresh_interval=1.0)
    try:
        rig.add(counter_frames(10), 100)
        rig.player.run_until(rig.clock.monotonic() + 600.0)
        st = rig.player.stats
        assert st.refresh_bytes > 0, "no refresh at all in ten minutes"
        assert st.refresh_bytes <= 0.1 * content_bytes(rig)
        assert st.full_frames == 1  # the refresh never repaints the whole panel at once
        assert st.frames_dropped == 0
    finally:
        rig.close()


def test_the_refresh_repairs_a_garbled_panel_band_by_band(tmp_path: Path) -> None:
    rig = Rig(tmp_path, refresh_interval=2.0)
    try:
        item = rig.add(square_frames(2, side=120), 100)  # enough content to earn a sweep soon
        rig.player.run_frames(2)
        panel = rig.wiring.panel
        # Garble the whole of frame memory, as a glitch on the wire would garble part of it.
        panel.memory[:] = np.random.default_rng(1).integers(0, 64, panel.memory.shape, dtype=np.uint8)
        panel.version += 1
        for _ in range(200):
            rig.player.run_until(rig.clock.monotonic() + 1.0)
            k = rig.player.status().frame
            if k is not None and rig.shows(item.id, k):
                break
        else:
            pytest.fail("the refresh never brought the panel back")
        # The square's own regions cannot have repaired the garbled background: the bands did.
        assert rig.player.stats.refresh_bytes >= 0.9 * FULL
        assert rig.player.stats.refresh_bytes <= 0.1 * content_bytes(rig)
    finally:
        rig.close()


def test_a_refresh_band_never_delays_a_frame(tmp_path: Path) -> None:
    # At 8 MHz a band takes ~8 ms on the wire; frames are due every 30 ms. Bands go out only
    # where they fit before the next deadline, so every frame still starts on time: the run
    # drops exactly what the same run without any refresh drops (the first whole frame takes
    # 154 ms) and no frame starts late.
    figures = []
    for share in (0.0, 0.1):
        rig = Rig(tmp_path / str(share), speed_hz=8_000_000, refresh_interval=0.5, refresh_share=share)
        try:
            rig.add(square_frames(6, side=60), 30)
            rig.player.run_until(rig.clock.monotonic() + 60.0)
            figures.append(rig.player.stats)
        finally:
            rig.close()
    without, with_refresh = figures
    assert without.refresh_bytes == 0 and with_refresh.refresh_bytes > 0
    assert with_refresh.frames_dropped == without.frames_dropped
    assert with_refresh.frames_shown == without.frames_shown
    assert with_refresh.late_p99_ms == 0.0


def test_a_paused_item_is_refreshed_only_within_its_budget(tmp_path: Path) -> None:
    rig = Rig(tmp_path, refresh_interval=1.0)
    try:
        rig.add(square_frames(4), 100)
        rig.player.run_frames(3)
        rig.player.pause()
        rig.player.run_until(rig.clock.monotonic() + 3600.0)
        st = rig.player.stats
        assert st.refresh_bytes <= 0.1 * content_bytes(rig)
    finally:
        rig.close()


def scattered_frames(n: int, spots: int = 80) -> list[np.ndarray]:
    """A video with scattered changes: many small spots change in every frame."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    frames = []
    for _ in range(n):
        rgb = base.copy()
        for _ in range(spots):
            x, y = int(rng.integers(0, W - 6)), int(rng.integers(0, H - 6))
            rgb[y : y + 6, x : x + 6] = rng.integers(0, 255, 3, dtype=np.uint8)
        base = rgb
        frames.append(rgb888_to_rgb565(rgb))
    return frames


def test_catching_up_on_scattered_changes_sends_less_than_a_whole_frame(tmp_path: Path) -> None:
    rig = Rig(tmp_path, refresh_share=0.0)
    try:
        item = rig.add(scattered_frames(12), 40)
        rig.player.step()
        t0 = rig.player._turn.timeline.t0  # type: ignore[union-attr]
        before = rig.display.stats.bytes
        rig.clock.set(t0 + 0.130)  # frames 1 and 2 dropped: catch up from 0 to 3
        rig.player.run_frames(1)
        sent = rig.display.stats.bytes - before
        assert rig.player.stats.frames_dropped == 2
        assert rig.shows(item.id, 3)
        assert rig.player.stats.full_frames == 1  # the start only
        assert sent < FULL
    finally:
        rig.close()


@settings(max_examples=60, deadline=None)
@given(
    contents=st.lists(st.integers(0, 200_000), min_size=1, max_size=200),
    idle=st.lists(st.floats(0.0, 0.2), min_size=1, max_size=200),
)
def test_the_budget_never_spends_more_than_its_share(contents: list[int], idle: list[float]) -> None:
    budget = RefreshBudget(240, 320, share=0.1, min_sweep_s=0.0)
    earned = spent = 0.0
    now = 0.0
    for i, nbytes in enumerate(contents):
        budget.earn(nbytes)
        earned += nbytes * 0.1
        rows = budget.band(now, idle[i % len(idle)])
        if rows is not None:
            y0, y1 = rows
            assert 0 <= y0 <= y1 < 320
            budget.sent(now, 0.001)
            spent += budget.band_cost
        now += 0.01
    assert spent <= earned + 1e-6


def test_bands_sweep_the_whole_panel_in_order() -> None:
    budget = RefreshBudget(320, 240, min_sweep_s=0.0)
    seen = []
    for _ in range(budget.bands):
        budget.earn(10**9)
        rows = budget.band(0.0, 1.0)
        assert rows is not None
        seen.append(rows)
        budget.sent(0.0, 0.001)
    covered = np.zeros(240, bool)
    for y0, y1 in seen:
        covered[y0 : y1 + 1] = True
    assert covered.all()
    assert budget.band(0.0, 0.0005) is None  # not enough idle time for a band
