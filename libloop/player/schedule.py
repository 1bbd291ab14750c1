"""Deadline scheduling and drop decisions for the player — pure arithmetic, no I/O, no clock.

A turn of an item is a run of *global* frame numbers ``g = pass * n + k`` (frame ``k`` of
pass ``pass`` of an ``n``-frame file). Every frame has an absolute deadline computed from
the turn's anchor ``t0`` and the whole milliseconds before it::

    deadline(g) = t0 + (pass * pass_ms + cumulative_ms[k]) / 1000

so nothing is ever added up in floating point and the schedule cannot drift however long
it runs. Frame ``g`` owns the slot ``[deadline(g), deadline(g + 1))``; when the player comes
round and the slot of a frame has already ended, that frame is dropped (counted), never
shown late and never allowed to slow the rest down.

How long a turn lasts combines three numbers:

* the file's ``loop_count`` (from the GIF: 0 = "forever", n > 0 = play n times) — one *play*
  of the item is ``loop_count`` passes through the file, or one pass when it is 0, because
  "forever" means nothing inside a playlist;
* the item's ``loops`` — plays per turn (default 1);
* the item's ``min_seconds`` — the turn goes on, whole passes at a time, until at least that
  long has passed.

So a turn is ``max(loops * max(loop_count, 1), ceil(min_seconds / pass))`` whole passes.

Two settings change that (``turn_plan``): a still (a one-frame file) stays on for the item's
``seconds`` or else the device's ``still_seconds``, whatever its file says; an animation with
its own ``seconds`` plays whole passes over and over for that long, and its turn ends at the
first frame boundary at or after it (``Timeline.limit_ms``), cutting a long video short.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from libloop.media.regions import REGION_OVERHEAD_BYTES, mask_rects

__all__ = [
    "MIN_FRAME_MS",
    "Due",
    "Rect",
    "Timeline",
    "catch_up_rects",
    "passes_per_turn",
    "turn_plan",
]

#: Shortest frame the player will schedule; GIFs with 0 ms delays would otherwise spin.
MIN_FRAME_MS = 10

Rect = tuple[int, int, int, int]
"""An inclusive pixel rectangle ``(x0, y0, x1, y1)``."""


def passes_per_turn(loops: int, loop_count: int, min_seconds: float, pass_ms: int) -> int:
    """Whole passes through the file that one turn of the item plays (see the module doc)."""
    plays = max(1, loops) * max(1, loop_count)
    if min_seconds > 0 and pass_ms > 0:
        plays = max(plays, math.ceil(min_seconds * 1000 / pass_ms - 1e-9))
    return plays


def turn_plan(
    durations_ms: Sequence[int],
    loop_count: int,
    *,
    loops: int,
    min_seconds: float,
    seconds: float | None,
    still_seconds: float,
) -> tuple[list[int], int, int | None]:
    """How one turn of an item plays: ``(frame durations, passes, limit_ms or None)``."""
    durations = [int(d) for d in durations_ms]
    if len(durations) == 1:
        ms = round(1000 * (seconds if seconds is not None else still_seconds))
        return [max(ms, round(1000 * min_seconds), MIN_FRAME_MS)], 1, None
    pass_ms = sum(max(MIN_FRAME_MS, d) for d in durations)
    if seconds is not None:
        limit = max(1, round(1000 * seconds))
        return durations, max(1, math.ceil(limit / pass_ms)), limit
    return durations, passes_per_turn(loops, loop_count, min_seconds, pass_ms), None


@dataclass(frozen=True)
class Due:
    """The frame to show now, and how many frames before it were dropped."""

    index: int
    dropped: int


class Timeline:
    """Absolute deadlines of one turn of an item, anchored at ``t0`` (monotonic seconds)."""

    def __init__(
        self, durations_ms: Sequence[int], t0: float, passes: int = 1, limit_ms: int | None = None
    ) -> None:
        if not durations_ms:
            raise ValueError("a timeline needs at least one frame")
        if passes < 1:
            raise ValueError("a turn plays at least one pass")
        self._set_durations(durations_ms)
        self.t0 = t0
        self.passes = passes
        #: With a limit the turn ends at the first frame boundary at or after it (ms from t0).
        self.limit_ms = limit_ms
        self._floor = 0  # the turn never ends before this global frame (after a change)

    def _set_durations(self, durations_ms: Sequence[int]) -> None:
        self.durations_ms = [max(MIN_FRAME_MS, int(d)) for d in durations_ms]
        self.frame_count = len(self.durations_ms)
        self._cum = [0]
        for d in self.durations_ms:
            self._cum.append(self._cum[-1] + d)
        self.pass_ms = self._cum[-1]

    @property
    def end_index(self) -> int:
        """The global frame number just past the turn (its deadline is when the turn ends)."""
        if self.limit_ms is None:
            return self.passes * self.frame_count
        p, rest = divmod(self.limit_ms, self.pass_ms)
        return max(1, self._floor, p * self.frame_count + bisect_left(self._cum, rest))

    def set_passes(self, passes: int, shown: int) -> None:
        """Change the turn length (item settings changed), never ending before the current pass."""
        current_pass = max(0, shown) // self.frame_count
        self.passes = max(passes, current_pass + 1)

    def replan(self, durations_ms: Sequence[int], passes: int, limit_ms: int | None, shown: int) -> None:
        """Apply a new ``turn_plan`` mid-turn: the turn ends no earlier than the frame after ``shown``.

        A still's one duration may change (its frame stays on until the new deadline); an
        animation's durations are its file's and do not.
        """
        if self.frame_count == 1 and len(durations_ms) == 1:
            self._set_durations(durations_ms)
        self.limit_ms = limit_ms
        if limit_ms is None:
            self.set_passes(passes, shown)
        else:
            self.passes = max(passes, max(0, shown) // self.frame_count + 1)
            self._floor = max(0, shown) + 1

    def offset_ms(self, g: int) -> int:
        """Whole milliseconds from ``t0`` to the deadline of global frame ``g``."""
        p, k = divmod(g, self.frame_count)
        return p * self.pass_ms + self._cum[k]

    def deadline(self, g: int) -> float:
        """Absolute deadline (monotonic seconds) of global frame ``g``."""
        return self.t0 + self.offset_ms(g) / 1000.0

    def frame_of(self, g: int) -> int:
        """The file's frame index that global frame ``g`` shows."""
        return g % self.frame_count

    def reanchor(self, g: int, now: float) -> None:
        """Move the anchor so frame ``g`` starts at ``now`` (resume after a pause, wake)."""
        self.t0 = now - self.offset_ms(g) / 1000.0

    def slot_at(self, now: float) -> int:
        """The global frame whose slot contains ``now`` (0 before the start)."""
        elapsed = (now - self.t0) * 1000.0
        if elapsed <= 0:
            return 0
        p = int(elapsed // self.pass_ms)
        k = bisect_right(self._cum, elapsed - p * self.pass_ms) - 1
        g = p * self.frame_count + min(k, self.frame_count - 1)
        # Floating point can put `now` a hair either side of a boundary: settle it with the very
        # same deadline() values the caller sleeps on, so a sleep that ends on a deadline always
        # lands in that deadline's slot.
        while g > 0 and now < self.deadline(g):
            g -= 1
        while now >= self.deadline(g + 1):
            g += 1
        return g

    def due(self, shown: int, now: float) -> Due | None:
        """What to show after global frame ``shown`` at time ``now``.

        Returns None while the next frame's deadline has not come (sleep until
        ``deadline(shown + 1)``). Otherwise the frame whose slot contains ``now``; frames
        between are dropped. The result may be ``end_index`` or beyond: the turn is over.
        """
        nxt = shown + 1
        if now < self.deadline(nxt):
            return None
        target = max(nxt, self.slot_at(now))
        return Due(target, target - nxt)


def _area(r: Rect) -> int:
    return (r[2] - r[0] + 1) * (r[3] - r[1] + 1)


def catch_up_rects(
    region_lists: Iterable[Iterable[Rect]],
    width: int,
    height: int,
    *,
    max_rects: int = 16,
) -> list[Rect]:
    """Rectangles to redraw so the panel catches up over several skipped frames.

    ``region_lists`` holds the dirty rectangles of every frame after the one the panel shows,
    up to and including the target frame; together they cover every pixel that may differ,
    so redrawing them with the target frame's pixels brings the panel up to date.

    A late frame never becomes a bigger send than it needs: a few rectangles are sent as they
    are; many (or overlapping) ones are replaced by a cheap cover of their union, which costs
    at most the union's bounding box — a whole frame only when the changes really span it.
    """
    seen: set[Rect] = set()
    rects: list[Rect] = []
    for regions in region_lists:
        for r in regions:
            if r not in seen:
                seen.add(r)
                rects.append(r)
    if not rects:
        return []
    rects = _drop_contained(rects)
    if len(rects) <= max_rects and not _any_overlap(rects) and _cost(rects) <= _cost([_bbox(rects)]):
        return rects
    mask = np.zeros((height, width), dtype=np.bool_)
    for x0, y0, x1, y1 in rects:
        mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return [(r.x0, r.y0, r.x1, r.y1) for r in mask_rects(mask)]


def _cost(rects: list[Rect]) -> int:
    return sum(REGION_OVERHEAD_BYTES + 2 * _area(r) for r in rects)


def _bbox(rects: list[Rect]) -> Rect:
    return (
        min(r[0] for r in rects),
        min(r[1] for r in rects),
        max(r[2] for r in rects),
        max(r[3] for r in rects),
    )


def _any_overlap(rects: list[Rect]) -> bool:
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            if a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]:
                return True
    return False


def _drop_contained(rects: list[Rect]) -> list[Rect]:
    """Remove rectangles lying inside another one (they would be drawn twice)."""
    rects = sorted(rects, key=_area, reverse=True)
    kept: list[Rect] = []
    for r in rects:
        if not any(k[0] <= r[0] and k[1] <= r[1] and k[2] >= r[2] and k[3] >= r[3] for k in kept):
            kept.append(r)
    return kept
