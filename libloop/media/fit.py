"""Fitting a decoded frame to the panel: contain (letterbox), cover (crop) or stretch.

The target is the logical panel size for the configured rotation (240x320 portrait, 320x240
landscape). Downscaling uses Lanczos with Pillow's ``reducing_gap`` (a fast box ``reduce()``
down to about three times the target, then Lanczos), which keeps fine detail without
aliasing and costs little even from a 12-megapixel photo. Transparent pixels are composited
onto the background colour first, at source size, so edges do not pick up stray colours.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = ["FitMode", "fit_frame", "scaled_size"]

_REDUCING_GAP = 3.0


class FitMode(StrEnum):
    """How a picture of another shape is fitted to the panel."""

    CONTAIN = "contain"  # whole picture visible, letterboxed with the background colour
    COVER = "cover"  # panel filled, the overflow cropped equally on both sides
    STRETCH = "stretch"  # panel filled, aspect ratio not kept


def scaled_size(src_w: int, src_h: int, dst_w: int, dst_h: int, mode: FitMode) -> tuple[int, int]:
    """The size the source is resized to before centring (contain) or cropping (cover)."""
    if mode is FitMode.STRETCH:
        return dst_w, dst_h
    scale_w, scale_h = dst_w / src_w, dst_h / src_h
    scale = min(scale_w, scale_h) if mode is FitMode.CONTAIN else max(scale_w, scale_h)
    w = max(1, round(src_w * scale))
    h = max(1, round(src_h * scale))
    if mode is FitMode.CONTAIN:
        return min(w, dst_w), min(h, dst_h)
    return max(w, dst_w), max(h, dst_h)


def _flatten(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode not in ("RGBA", "LA", "PA", "P") and "transparency" not in image.info:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    base = Image.new("RGBA", rgba.size, (*background, 255))
    base.alpha_composite(rgba)
    return base.convert("RGB")


def fit_frame(
    image: Image.Image,
    width: int,
    height: int,
    mode: FitMode = FitMode.CONTAIN,
    background: tuple[int, int, int] = (0, 0, 0),
) -> npt.NDArray[np.uint8]:
    """Fit ``image`` into ``width`` x ``height`` and return an ``(height, width, 3)`` uint8 RGB array."""
    if width < 1 or height < 1:
        raise ValueError(f"target size must be positive, got {width}x{height}")
    rgb = _flatten(image, background)
    sw, sh = scaled_size(rgb.width, rgb.height, width, height, FitMode(mode))
    if (sw, sh) != rgb.size:
        rgb = rgb.resize((sw, sh), Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)
    if (sw, sh) == (width, height):
        return np.asarray(rgb, dtype=np.uint8).copy()
    out = np.empty((height, width, 3), dtype=np.uint8)
    out[...] = background
    src = np.asarray(rgb, dtype=np.uint8)
    if mode is FitMode.COVER:
        x, y = (sw - width) // 2, (sh - height) // 2
        out[...] = src[y : y + height, x : x + width]
    else:
        x, y = (width - sw) // 2, (height - sh) // 2
        out[y : y + sh, x : x + sw] = src
    return out
