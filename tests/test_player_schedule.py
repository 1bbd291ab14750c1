"""The pure parts of the player: deadline arithmetic, drop decisions, turn length, night schedule,
and the empty screen's QR code."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from libloop.media.regions import REGION_OVERHEAD_BYTES
from libloop.player.night import NightSchedule, parse_hhmm
from libloop.player.schedule import MIN_FRAME_MS, Timeline, catch_up_rects, passes_per_turn
from libloop.player.screens import empty_screen, error_screen, qr_matrix, qr_placement

durations = st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=40)


@given(durations, st.floats(min_value=0, max_value=1e6), st.integers(min_value=0, max_value=100_000))
def test_deadlines_are_exact_sums_however_far_out(ds: list[int], t0: float, g: int) -> None:
    tl = Timeline(ds, t0)
    clamped = [max(MIN_FRAME_MS, d) for d in ds]
    p, k = divmod(g, len(ds))
    assert tl.offset_ms(g) == p * sum(clamped) + sum(clamped[:k])
    assert tl.deadline(g) == pytest.approx(t0 + tl.offset_ms(g) / 1000, abs=1e-9)


@given(durations, st.floats(min_value=0, max_value=1e5), st.integers(min_value=0, max_value=10_000))
def test_a_sleep_ending_on_a_deadline_lands_in_that_frames_slot(ds: list[int], t0: float, g: int) -> None:
    tl = Timeline(ds, t0)
    assert tl.slot_at(tl.deadline(g)) == g
    due = tl.due(g - 1, tl.deadline(g))
    assert due is not None and due.index == g and due.dropped == 0


@given(durations, st.integers(min_value=-1, max_value=500), st.floats(min_value=0, max_value=60))
def test_due_drops_exactly_the_frames_whose_slots_are_over(ds: list[int], shown: int, wait: float) -> None:
    tl = Timeline(ds, 0.0)
    now = tl.deadline(shown + 1) + wait if wait else tl.deadline(shown + 1) - 1e-4
    due = tl.due(shown, now)
    if now < tl.deadline(shown + 1):
        assert due is None
        return
    assert due is not None
    # The chosen frame's slot contains now; every skipped frame's slot ended at or before now.
    assert tl.deadline(due.index) <= now < tl.deadline(due.index + 1)
    assert due.dropped == due.index - shown - 1
    for skipped in range(shown + 1, due.index):
        assert tl.deadline(skipped + 1) <= now


def test_reanchor_gives_the_held_frame_its_full_duration() -> None:
    tl = Timeline([100, 200], 10.0)
    tl.reanchor(1, 50.0)
    assert tl.deadline(1) == pytest.approx(50.0)
    assert tl.deadline(2) == pytest.approx(50.2)


@pytest.mark.parametrize(
    ("loops", "loop_count", "min_seconds", "pass_ms", "expected"),
    [
        (1, 0, 0, 500, 1),
        (3, 0, 0, 500, 3),
        (2, 3, 0, 500, 6),
        (1, 0, 2.0, 500, 4),
        (1, 0, 2.1, 500, 5),
        (5, 0, 1, 500, 5),
    ],
)
def test_passes_per_turn(
    loops: int, loop_count: int, min_seconds: float, pass_ms: int, expected: int
) -> None:
    assert passes_per_turn(loops, loop_count, min_seconds, pass_ms) == expected


def test_catch_up_rects_drop_duplicates_and_contained_rectangles() -> None:
    chain = [[(0, 0, 9, 9)], [(20, 20, 30, 30), (0, 0, 9, 9)], [(1, 1, 2, 2)]]
    assert set(catch_up_rects(chain, 240, 320)) == {(0, 0, 9, 9), (20, 20, 30, 30)}
    assert catch_up_rects([[(0, 0, 239, 319)]], 240, 320) == [(0, 0, 239, 319)]


def _cost(rects: list[tuple[int, int, int, int]]) -> int:
    return sum(REGION_OVERHEAD_BYTES + 2 * (x1 - x0 + 1) * (y1 - y0 + 1) for x0, y0, x1, y1 in rects)


@given(
    st.lists(
        st.tuples(st.integers(0, 200), st.integers(0, 280), st.integers(1, 40), st.integers(1, 40)),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 6),
)
def test_catch_up_covers_the_union_and_never_costs_more_than_its_bounding_box(
    boxes: list[tuple[int, int, int, int]], frames: int
) -> None:
    rects_in = [(x, y, min(239, x + w - 1), min(319, y + h - 1)) for x, y, w, h in boxes]
    chain = [rects_in[i::frames] for i in range(frames)]  # spread over the skipped frames
    out = catch_up_rects(chain, 240, 320)
    want = np.zeros((320, 240), bool)
    got = np.zeros((320, 240), bool)
    for x0, y0, x1, y1 in rects_in:
        want[y0 : y1 + 1, x0 : x1 + 1] = True
    for x0, y0, x1, y1 in out:
        got[y0 : y1 + 1, x0 : x1 + 1] = True
    assert not (want & ~got).any(), "a changed pixel would be left stale"
    ys, xs = np.nonzero(want)
    bbox = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
    # No spiral: a late frame is never a bigger send than one rectangle around all the changes,
    # so never more than a whole frame.
    assert _cost(out) <= _cost([bbox])


# --- night -------------------------------------------------------------------------------


def at(h: int, m: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, 10, h, m)


def test_night_over_midnight() -> None:
    night = NightSchedule.parse("22:30", "07:00")
    assert night.is_night(at(23)) and night.is_night(at(3)) and night.is_night(at(22, 30))
    assert not night.is_night(at(7)) and not night.is_night(at(12))
    assert night.seconds_until_change(at(22)) == 30 * 60
    assert night.seconds_until_change(at(23)) == 8 * 3600


def test_night_within_a_day_and_disabled() -> None:
    siesta = NightSchedule(parse_hhmm("13:00"), parse_hhmm("15:00"))
    assert siesta.is_night(at(14)) and not siesta.is_night(at(15))
    never = NightSchedule.parse("08:00", "08:00")
    assert not never.is_night(at(8)) and never.seconds_until_change(at(8)) == float("inf")
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hhmm("25:99")


@given(st.integers(0, 23), st.integers(0, 59), st.integers(0, 23), st.integers(0, 59), st.integers(0, 1439))
def test_the_schedule_flips_exactly_at_the_boundary(sh: int, sm: int, eh: int, em: int, minute: int) -> None:
    night = NightSchedule(dt.time(sh, sm), dt.time(eh, em))
    now = at(0) + dt.timedelta(minutes=minute)
    wait = night.seconds_until_change(now)
    if night.start == night.end:
        return
    before = now + dt.timedelta(seconds=wait - 1)
    after = now + dt.timedelta(seconds=wait)
    assert night.is_night(before) == night.is_night(now)
    assert night.is_night(after) != night.is_night(now)


# --- screens -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(240, 320), (320, 240)])
def test_the_empty_screen_carries_a_scannable_qr_code_of_the_address(size: tuple[int, int]) -> None:
    url = "http://192.168.178.42:8080/"
    img = np.asarray(empty_screen(size, url).convert("L"))
    place = qr_placement(size, url)
    modules = qr_matrix(url)
    assert place.scale >= 4  # at least 4 pixels a module: readable from the 2.8" glass
    assert (
        place.x >= 0 and place.y >= 0 and place.x + place.side <= size[0] and place.y + place.side <= size[1]
    )
    # Sample the centre of every module: the drawn code is exactly the code for the address.
    centres = place.scale // 2 + place.scale * np.arange(place.modules)
    sampled = img[place.y + centres[:, None], place.x + centres[None, :]] < 128
    assert np.array_equal(sampled, modules)


def test_the_screens_have_text() -> None:
    img = np.asarray(empty_screen((240, 320), "").convert("L"))
    assert (img > 200).sum() > 500  # words drawn in light on dark
    err = np.asarray(error_screen((240, 320), "Every item failed to open.").convert("L"))
    assert (err > 200).sum() > 500
