"""Dirty regions: exact reconstruction, and a wire cost never worse than a full frame plus one region."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import given
from hypothesis import strategies as st

from libloop.media.regions import REGION_OVERHEAD_BYTES, Rect, apply_regions, dirty_rects, rects_cost

U8 = npt.NDArray[np.uint8]


@st.composite
def frame_pairs(draw: st.DrawFn) -> tuple[U8, U8]:
    w = draw(st.integers(1, 40))
    h = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w, 2), dtype=np.uint8)
    b = a.copy()
    for _ in range(draw(st.integers(0, 6))):
        x0, x1 = sorted(draw(st.integers(0, w - 1)) for _ in range(2))
        y0, y1 = sorted(draw(st.integers(0, h - 1)) for _ in range(2))
        b[y0 : y1 + 1, x0 : x1 + 1] = rng.integers(0, 256, (y1 - y0 + 1, x1 - x0 + 1, 2), dtype=np.uint8)
    if draw(st.booleans()):  # scattered single pixels
        for _ in range(draw(st.integers(0, 30))):
            b[rng.integers(0, h), rng.integers(0, w)] ^= 0xFF
    return a, b


@given(frame_pairs())
def test_regions_turn_before_into_after(pair: tuple[U8, U8]) -> None:
    a, b = pair
    rects = dirty_rects(a, b)
    shown = a.copy()
    apply_regions(shown, rects, b)
    assert np.array_equal(shown, b)


@given(frame_pairs())
def test_cost_never_exceeds_full_frame_plus_one_region(pair: tuple[U8, U8]) -> None:
    a, b = pair
    h, w = a.shape[:2]
    rects = dirty_rects(a, b)
    assert rects_cost(rects) <= REGION_OVERHEAD_BYTES + 2 * w * h
    for r in rects:
        assert 0 <= r.x0 <= r.x1 < w and 0 <= r.y0 <= r.y1 < h


def test_identical_frames_have_no_regions() -> None:
    a = np.full((320, 240, 2), 7, dtype=np.uint8)
    assert dirty_rects(a, a.copy()) == []


def test_small_change_is_sent_as_a_small_rectangle() -> None:
    a = np.zeros((320, 240, 2), dtype=np.uint8)
    b = a.copy()
    b[100:110, 50:60] = 255
    assert dirty_rects(a, b) == [Rect(50, 100, 59, 109)]


def test_two_distant_changes_stay_apart_but_near_ones_merge() -> None:
    a = np.zeros((320, 240, 2), dtype=np.uint8)
    far = a.copy()
    far[0:10, 0:10] = 1
    far[300:310, 220:230] = 1
    assert len(dirty_rects(a, far)) == 2
    near = a.copy()
    near[50:60, 50:60] = 1
    near[50:60, 62:72] = 1  # a 2-pixel gap costs far less than a region's overhead
    assert dirty_rects(a, near) == [Rect(50, 50, 71, 59)]


def test_full_motion_is_one_full_frame_region() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (320, 240, 2), dtype=np.uint8)
    b = rng.integers(0, 256, (320, 240, 2), dtype=np.uint8)
    assert dirty_rects(a, b) == [Rect(0, 0, 239, 319)]
