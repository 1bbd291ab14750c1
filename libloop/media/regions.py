"""Dirty regions: which rectangles of the panel to rewrite to turn frame A into frame B.

Every rectangle sent to an ILI9341 costs more than its pixels: the host sends CASET + 4 bytes,
PASET + 4 bytes and RAMWR, i.e. three command transfers and three data transfers (the pixels
being the last), and each transfer has a fixed host/driver cost (ioctl, D/C line toggle, DMA
set-up). We express that fixed cost as the number of wire bytes that could have been sent in
the same time at 64 MHz, so a region's cost is a single number of bytes:

    cost(rect) = REGION_OVERHEAD_BYTES + 2 * rect_width * rect_height

The search is greedy and cheap (numpy for the pixel comparison, small lists after that):

1. find changed pixels;
2. group changed rows into bands, bridging unchanged gaps that cost less than a region;
3. split each band into column spans, bridging unchanged gaps that cost less than a region,
   and shrink each span to the rows that really changed in it;
4. merge any two rectangles while their bounding box costs less than both separately;
5. never return more than a full frame plus one region's overhead: fall back to the bounding
   box of all changes (at worst one full-frame region).

Identical frames give no regions. Rectangles may overlap; each carries the new frame's pixels,
so applying them in any order reproduces frame B exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "BYTES_PER_PIXEL",
    "REGION_OVERHEAD_BYTES",
    "TRANSFER_OVERHEAD_BYTES",
    "Rect",
    "apply_regions",
    "dirty_rects",
    "mask_rects",
    "rects_cost",
]

#: Fixed host/driver cost of one SPI transfer (ioctl, D/C toggle, DMA set-up), about 30 µs,
#: expressed as the bytes the bus moves in that time at 64 MHz: 64e6 / 8 * 30e-6 = 240.
TRANSFER_OVERHEAD_BYTES = 240

#: Bytes of one pixel on the wire (RGB565).
BYTES_PER_PIXEL = 2

#: Cost of one extra region besides its pixels: CASET (1 + 4 bytes), PASET (1 + 4) and RAMWR (1)
#: on the wire, plus six transfers' fixed overhead (three command, three data).
REGION_OVERHEAD_BYTES = 11 + 6 * TRANSFER_OVERHEAD_BYTES

#: Above this many candidate rectangles the pairwise merge would be slow; coarser grouping is used.
_MAX_MERGE_CANDIDATES = 48

U8Array = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Rect:
    """An inclusive rectangle of panel coordinates (as CASET/PASET take them)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0 + 1

    @property
    def height(self) -> int:
        return self.y1 - self.y0 + 1

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def cost(self) -> int:
        """Wire cost in equivalent bytes, overhead included."""
        return REGION_OVERHEAD_BYTES + BYTES_PER_PIXEL * self.pixels

    def union(self, other: Rect) -> Rect:
        return Rect(
            min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1)
        )


def rects_cost(rects: list[Rect]) -> int:
    """Total wire cost of sending these rectangles, overhead included."""
    return sum(r.cost() for r in rects)


def _as_u16(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint16]:
    if frame.ndim != 3 or frame.shape[2] != 2 or frame.dtype != np.uint8:
        raise ValueError(f"expected an (h, w, 2) uint8 RGB565 frame, got {frame.shape} {frame.dtype}")
    return np.ascontiguousarray(frame).view(np.uint16)[:, :, 0]


def _runs(flags: npt.NDArray[np.bool_], bridge: int) -> list[tuple[int, int]]:
    """Inclusive (start, end) runs of True in ``flags``, joining runs separated by < ``bridge`` Falses."""
    idx = np.flatnonzero(flags)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > bridge)
    starts = np.concatenate(([idx[0]], idx[breaks + 1]))
    ends = np.concatenate((idx[breaks], [idx[-1]]))
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def _merge_greedy(rects: list[Rect]) -> list[Rect]:
    """Merge pairs while a pair's bounding box is cheaper than the two rectangles apart."""
    rects = list(rects)
    while len(rects) > 1:
        best: tuple[int, int, int] | None = None
        for i in range(len(rects)):
            for j in range(i + 1, len(rects)):
                saving = rects[i].cost() + rects[j].cost() - rects[i].union(rects[j]).cost()
                if saving > 0 and (best is None or saving > best[0]):
                    best = (saving, i, j)
        if best is None:
            break
        _, i, j = best
        merged = rects[i].union(rects[j])
        rects = [r for k, r in enumerate(rects) if k not in (i, j)]
        rects.append(merged)
    return sorted(rects, key=lambda r: (r.y0, r.x0))


def dirty_rects(before: U8Array, after: U8Array) -> list[Rect]:
    """Rectangles that turn ``before`` into ``after`` at low wire cost (empty if identical).

    Args:
        before: the frame the panel shows, ``(h, w, 2)`` uint8 RGB565.
        after: the frame to show next, same shape.

    Raises:
        ValueError: the frames are not RGB565 arrays of the same shape.
    """
    if before.shape != after.shape:
        raise ValueError(f"frames differ in shape: {before.shape} and {after.shape}")
    return mask_rects(_as_u16(before) != _as_u16(after))


def mask_rects(changed: npt.NDArray[np.bool_]) -> list[Rect]:
    """Rectangles covering every True pixel of ``changed`` (``(h, w)`` bool) at low wire cost.

    The same search as :func:`dirty_rects`; never costs more than the bounding box of the
    True pixels (at worst one whole frame). Empty when nothing is True.
    """
    if changed.ndim != 2 or changed.dtype != np.bool_:
        raise ValueError(f"expected an (h, w) bool mask, got {changed.shape} {changed.dtype}")
    rows: npt.NDArray[np.bool_] = np.asarray(changed.any(axis=1))
    if not rows.any():
        return []
    _h, w = changed.shape
    bridge_rows = max(1, REGION_OVERHEAD_BYTES // (BYTES_PER_PIXEL * w) + 1)
    candidates: list[Rect] = []
    band_boxes: list[Rect] = []
    for y0, y1 in _runs(rows, bridge_rows):
        band = changed[y0 : y1 + 1]
        cols: npt.NDArray[np.bool_] = np.asarray(band.any(axis=0))
        bridge_cols = max(1, REGION_OVERHEAD_BYTES // (BYTES_PER_PIXEL * (y1 - y0 + 1)) + 1)
        spans = _runs(cols, bridge_cols)
        band_boxes.append(Rect(spans[0][0], y0, spans[-1][1], y1))
        for x0, x1 in spans:
            ys = np.flatnonzero(band[:, x0 : x1 + 1].any(axis=1))
            candidates.append(Rect(x0, y0 + int(ys[0]), x1, y0 + int(ys[-1])))
    if len(candidates) > _MAX_MERGE_CANDIDATES:
        candidates = band_boxes
    rects = _merge_greedy(candidates) if len(candidates) <= _MAX_MERGE_CANDIDATES else candidates
    ys = np.flatnonzero(rows)
    xs = np.flatnonzero(changed.any(axis=0))
    bbox = Rect(int(xs[0]), int(ys[0]), int(xs[-1]), int(ys[-1]))
    if rects_cost(rects) > bbox.cost():
        return [bbox]
    return rects


def apply_regions(frame: U8Array, rects: list[Rect], source: U8Array) -> None:
    """Copy each rectangle of ``source`` into ``frame`` in place (what the panel does on RAMWR)."""
    for r in rects:
        frame[r.y0 : r.y1 + 1, r.x0 : r.x1 + 1] = source[r.y0 : r.y1 + 1, r.x0 : r.x1 + 1]
