"""Shared hypothesis strategies: RGB images, rotations, windows, byte-stream split points.

Images are drawn as a shape plus a pattern (a seeded noise field, a solid colour, gradients,
channel ramps), so full-size frames cost no more to generate or shrink than small ones, and
the patterns that catch channel swaps and mirrored axes (ramps, primaries) come up often.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st

from libloop.ili9341 import Rotation, logical_size

__all__ = [
    "Blit",
    "blits",
    "full_frames",
    "make_image",
    "rgb_images",
    "rotations",
    "split_points",
    "windows",
]

U8 = npt.NDArray[np.uint8]

PATTERNS = ("noise", "solid", "gradient", "ramps", "primaries")


def make_image(width: int, height: int, pattern: str, seed: int) -> U8:
    """A deterministic ``(height, width, 3)`` uint8 RGB image of the named pattern."""
    rng = np.random.default_rng(seed)
    if pattern == "noise":
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if pattern == "solid":
        colour = rng.integers(0, 256, 3, dtype=np.uint8)
        return np.broadcast_to(colour, (height, width, 3)).copy()
    ys = np.arange(height, dtype=np.uint32)[:, None]
    xs = np.arange(width, dtype=np.uint32)[None, :]
    out = np.empty((height, width, 3), dtype=np.uint8)
    if pattern == "gradient":
        out[:, :, 0] = (xs * 255 // max(1, width - 1)).astype(np.uint8)
        out[:, :, 1] = (ys * 255 // max(1, height - 1)).astype(np.uint8)
        out[:, :, 2] = ((xs + ys) * 7 + seed).astype(np.uint8)
        return out
    if pattern == "ramps":
        # Distinct per-pixel values in every channel: any mirror, transpose or swap shows.
        out[:, :, 0] = (xs * 8 + seed).astype(np.uint8)
        out[:, :, 1] = (ys * 4).astype(np.uint8)
        out[:, :, 2] = (255 - ((xs + 3 * ys) * 8) % 256).astype(np.uint8)
        return out
    if pattern == "primaries":
        palette = np.array(
            [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0], [255, 255, 0]],
            dtype=np.uint8,
        )
        picked: U8 = palette[(xs // 3 + ys // 5 + seed) % len(palette)]
        return picked
    raise ValueError(f"unknown image pattern {pattern!r}; use one of {PATTERNS}")


@st.composite
def rgb_images(
    draw: st.DrawFn,
    *,
    min_width: int = 1,
    max_width: int = 24,
    min_height: int = 1,
    max_height: int = 24,
    width: int | None = None,
    height: int | None = None,
) -> U8:
    """RGB uint8 images of a drawn (or fixed) size and pattern."""
    w = width if width is not None else draw(st.integers(min_width, max_width))
    h = height if height is not None else draw(st.integers(min_height, max_height))
    pattern = draw(st.sampled_from(PATTERNS))
    seed = draw(st.integers(0, 2**32 - 1))
    return make_image(w, h, pattern, seed)


def full_frames(width: int = 240, height: int = 320) -> st.SearchStrategy[U8]:
    """Whole-panel RGB images (240×320 portrait by default)."""
    return rgb_images(width=width, height=height)


def rotations() -> st.SearchStrategy[Rotation]:
    """Any of the four rotations."""
    return st.sampled_from(list(Rotation))


@st.composite
def windows(
    draw: st.DrawFn, width: int, height: int, *, max_side: int | None = None
) -> tuple[int, int, int, int]:
    """An inclusive ``(x0, y0, x1, y1)`` rectangle inside ``width`` × ``height``.

    ``max_side`` bounds the window's width and height (keeps the data small); the corners
    still reach every edge of the area.
    """
    limit_w = width if max_side is None else min(width, max_side)
    limit_h = height if max_side is None else min(height, max_side)
    w = draw(st.integers(1, limit_w))
    h = draw(st.integers(1, limit_h))
    x0 = draw(st.integers(0, width - w))
    y0 = draw(st.integers(0, height - h))
    return x0, y0, x0 + w - 1, y0 + h - 1


@dataclass(frozen=True)
class Blit:
    """A rotation, a window inside its logical area, and an image exactly the window's size."""

    rotation: Rotation
    x0: int
    y0: int
    x1: int
    y1: int
    image: U8


@st.composite
def blits(draw: st.DrawFn, *, max_side: int | None = 48, full_size: float = 0.1) -> Blit:
    """A :class:`Blit`; about ``full_size`` of them cover the whole logical area."""
    rotation = draw(rotations())
    width, height = logical_size(rotation)
    if draw(st.floats(0, 1)) < full_size:
        x0, y0, x1, y1 = 0, 0, width - 1, height - 1
    else:
        x0, y0, x1, y1 = draw(windows(width, height, max_side=max_side))
    image = draw(rgb_images(width=x1 - x0 + 1, height=y1 - y0 + 1))
    return Blit(rotation, x0, y0, x1, y1, image)


@st.composite
def split_points(draw: st.DrawFn, length: int, *, max_splits: int = 6) -> list[int]:
    """Sorted cut positions strictly inside ``0..length``: where a byte stream is split."""
    if length < 2:
        return []
    cuts = draw(st.lists(st.integers(1, length - 1), max_size=max_splits, unique=True))
    return sorted(cuts)
