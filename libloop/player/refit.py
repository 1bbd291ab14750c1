"""Frames of another panel size, fitted on the fly: what plays while the library is re-rendered.

After a change of rotation (portrait 240x320 to landscape 320x240, say) the panel turns at
once, but the frame files were made for the old shape until the background re-render reaches
them (and those imported before originals were kept never are). ``FittedFrames`` wraps such a
file so the player plays it on the new panel: each frame scaled whole into the middle
(contain, the aspect kept, bars of the background colour) by a precomputed nearest-neighbour
gather, and each dirty region of the file mapped to the rectangle it lands on, so only what
changes is sent, as with a native file. The cost is one gather of the panel's pixels per
frame shown (a fraction of a millisecond), not a resize.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from libloop.color import rgb888_to_rgb565
from libloop.player.ports import Frames

__all__ = ["FittedFrames", "FittedRegion"]


@dataclass(frozen=True, slots=True)
class FittedRegion:
    """A dirty rectangle on the panel (inclusive) and its pixels (RGB565 BE, row-major)."""

    x0: int
    y0: int
    x1: int
    y1: int
    data: memoryview


def _sample(src: int, dst: int) -> npt.NDArray[np.intp]:
    """For each of ``dst`` output pixels, the source pixel at its centre."""
    return np.minimum(((np.arange(dst) + 0.5) * src / dst).astype(np.intp), src - 1)


class FittedFrames:
    """``inner`` (a frame file of another size) shown on a ``width`` x ``height`` panel.

    Args:
        inner: the opened frame file (closed with this object).
        width, height: the panel's size now.
        background: RGB of the bars around the fitted picture.
    """

    def __init__(
        self, inner: Frames, width: int, height: int, background: tuple[int, int, int] = (0, 0, 0)
    ) -> None:
        self.inner = inner
        self.width, self.height = width, height
        sw, sh = inner.width, inner.height
        scale = min(width / sw, height / sh)
        bw, bh = max(1, min(width, round(sw * scale))), max(1, min(height, round(sh * scale)))
        self._box = ((width - bw) // 2, (height - bh) // 2, bw, bh)
        self._xs, self._ys = _sample(sw, bw), _sample(sh, bh)
        bg = np.array([[background]], dtype=np.uint8)
        self._bg = rgb888_to_rgb565(bg).reshape(2).view(np.uint16)[0]
        self._cached: tuple[int, npt.NDArray[np.uint16]] | None = None

    # --- the Frames protocol --------------------------------------------------------------

    @property
    def frame_count(self) -> int:
        return self.inner.frame_count

    @property
    def loop_count(self) -> int:
        return self.inner.loop_count

    @property
    def durations_ms(self) -> Sequence[int]:
        return self.inner.durations_ms

    def frame(self, i: int) -> memoryview:
        return self._fitted(i).reshape(-1).view(np.uint8).data

    def regions(self, i: int) -> list[FittedRegion]:
        out = self._fitted(i)
        found: list[FittedRegion] = []
        for x0, y0, x1, y1, _n in self.region_rects(i):
            part = np.ascontiguousarray(out[y0 : y1 + 1, x0 : x1 + 1])
            found.append(FittedRegion(x0, y0, x1, y1, part.reshape(-1).view(np.uint8).data))
        return found

    def region_rects(self, i: int) -> list[tuple[int, int, int, int, int]]:
        """Where the file's regions land on the panel, and their byte counts (no pixels read)."""
        x, y, _bw, _bh = self._box
        found: list[tuple[int, int, int, int, int]] = []
        table = getattr(self.inner, "region_rects", None)
        rects = getattr(self.inner, "rects", None)  # a v2 file's table
        if table is not None:
            inner = list(table(i))
        else:
            listed = rects(i) if rects is not None else self.inner.regions(i)
            inner = [(r.x0, r.y0, r.x1, r.y1, 0) for r in listed]
        for r in inner:
            # The output columns and rows whose source pixel lies in the region.
            c0, c1 = np.searchsorted(self._xs, r[0]), np.searchsorted(self._xs, r[2], side="right")
            r0, r1 = np.searchsorted(self._ys, r[1]), np.searchsorted(self._ys, r[3], side="right")
            if c0 >= c1 or r0 >= r1:
                continue  # too small to land on a pixel of its own
            x0, y0, x1, y1 = x + int(c0), y + int(r0), x + int(c1) - 1, y + int(r1) - 1
            found.append((x0, y0, x1, y1, 2 * (x1 - x0 + 1) * (y1 - y0 + 1)))
        return found

    def ready(self, i: int, wake: Any = None) -> bool:
        """Whether the wrapped file's frame ``i`` is decoded (a v2 file decodes ahead)."""
        ready = getattr(self.inner, "ready", None)
        return True if ready is None else bool(ready(i, wake))

    def prefetch(self, i: int) -> None:
        self.inner.prefetch(i)

    def changed_on_disk(self) -> bool:
        """Whether the wrapped file was replaced, deleted or cut short since it was opened."""
        changed = getattr(self.inner, "changed_on_disk", None)
        return bool(changed()) if changed is not None else False

    def close(self) -> None:
        self._cached = None
        self.inner.close()

    # --- fitting ------------------------------------------------------------------------------

    def _fitted(self, i: int) -> npt.NDArray[np.uint16]:
        cached = self._cached
        if cached is not None and cached[0] == i:
            return cached[1]
        src = np.frombuffer(self.inner.frame(i), dtype=np.uint16).reshape(self.inner.height, self.inner.width)
        out = np.full((self.height, self.width), self._bg, dtype=np.uint16)
        x, y, bw, bh = self._box
        out[y : y + bh, x : x + bw] = src[self._ys[:, None], self._xs[None, :]]
        self._cached = (i, out)
        return out
