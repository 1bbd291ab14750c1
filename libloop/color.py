"""RGB888 → RGB565 conversion, the pixel format the ILI9341 takes over SPI (COLMOD 0x55).

The panel wants each pixel as two bytes, big-endian: ``RRRRRGGG GGGBBBBB``. The common
Python drivers compute the 16-bit value and then split it back into bytes with
``np.dstack(...).flatten()`` (and often ``.tolist()``), which costs several full-frame
temporaries. Here the value is computed once in ``uint16`` and a single byte-swapping cast
(``astype(">u2")``) yields the wire bytes; viewed as ``uint8`` it needs no further copy.

Without dithering each channel is truncated (``r >> 3``), as every ILI9341 driver does.
Ordered (Bayer) dithering is optional: it trades banding in gradients for a fine, fixed
pattern, which on a 2.8" panel reads as smooth shading, and it scales to the levels the
panel actually shows so a dithered area keeps its mean colour. The pattern is anchored to panel
coordinates, so unchanged areas of consecutive frames stay byte-identical (dirty-region
detection relies on that).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from libloop._types import Buffer

__all__ = [
    "BAYER4",
    "dithered_rgb565",
    "quantize",
    "rgb565_to_rgb888",
    "rgb888_to_rgb565",
]

U8Array = npt.NDArray[np.uint8]

#: 4×4 Bayer threshold matrix, values 0..15.
BAYER4: U8Array = np.array(
    [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]],
    dtype=np.uint8,
)


def _check_rgb(pixels: npt.NDArray[np.generic]) -> U8Array:
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise ValueError(f"expected an (height, width, 3) RGB array, got shape {pixels.shape}")
    if pixels.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {pixels.dtype}")
    return pixels[:, :, :3]  # type: ignore[return-value]


def _dither_tables() -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16], npt.NDArray[np.uint16]]:
    """The dithered 5/6/5-bit codes of every (threshold, 8-bit value), already shifted into place.

    The panel expands a 5-bit code ``c`` to about ``c * 255 / 31``, so the unbiased code for an
    8-bit value ``v`` is ``v * 31 / 255``; a Bayer offset in (0, 1) decides the rounding:
    ``(v * 31 * 32 + (2t + 1) * 255) // (255 * 32)`` for threshold ``t`` in 0..15, i.e. offsets
    strictly inside (0, 1) with mean 1/2. Tabulated once: a frame then costs three lookups a
    pixel instead of the integer arithmetic (about five times faster, the same codes).
    """
    t = np.arange(16, dtype=np.uint32)[:, None]
    v = np.arange(256, dtype=np.uint32)[None, :]
    offset = (2 * t + 1) * 255
    red = (((v * (31 * 32) + offset) // (255 * 32)) << 11).astype(np.uint16)
    green = (((v * (63 * 32) + offset) // (255 * 32)) << 5).astype(np.uint16)
    blue = ((v * (31 * 32) + offset) // (255 * 32)).astype(np.uint16)
    return red.reshape(-1), green.reshape(-1), blue.reshape(-1)


_RED, _GREEN, _BLUE = _dither_tables()
_THRESHOLD_ROWS: dict[tuple[int, int, int, int], npt.NDArray[np.intp]] = {}


def _threshold_index(h: int, w: int, x0: int, y0: int) -> npt.NDArray[np.intp]:
    """``threshold * 256`` of each pixel of an ``h`` x ``w`` area whose top left is at (x0, y0)."""
    key = (h, w, x0 % 4, y0 % 4)
    index = _THRESHOLD_ROWS.get(key)
    if index is None:
        ys = (np.arange(h) + y0) % 4
        xs = (np.arange(w) + x0) % 4
        index = BAYER4[ys[:, None], xs[None, :]].astype(np.intp) * 256
        if len(_THRESHOLD_ROWS) >= 16:
            _THRESHOLD_ROWS.clear()
        _THRESHOLD_ROWS[key] = index
    return index


def dithered_rgb565(
    red: npt.NDArray[np.uint8],
    green: npt.NDArray[np.uint8],
    blue: npt.NDArray[np.uint8],
    origin: tuple[int, int] = (0, 0),
) -> npt.NDArray[np.uint16]:
    """RGB565 values (native ``uint16``) of three ``(h, w)`` uint8 planes, with ordered dithering.

    The codes are those of ``rgb888_to_rgb565(..., dither=True)``; taking planes lets a caller
    that has them apart (a video decoder's colour conversion) skip building an RGB array.
    """
    h, w = red.shape
    index = _threshold_index(h, w, origin[0], origin[1])
    value = np.take(_RED, index + red)
    value |= np.take(_GREEN, index + green)
    value |= np.take(_BLUE, index + blue)
    return value


def rgb888_to_rgb565(
    pixels: npt.NDArray[np.generic],
    *,
    dither: bool = False,
    origin: tuple[int, int] = (0, 0),
    out: U8Array | None = None,
) -> U8Array:
    """Convert an ``(h, w, 3)`` uint8 RGB array to RGB565, big-endian, as an ``(h, w, 2)`` uint8 array.

    ``bytes(result)`` or ``memoryview(result)`` is exactly what the panel takes after RAMWR.

    Args:
        pixels: RGB (or RGBA, alpha ignored) pixels.
        dither: apply 4×4 ordered dithering when choosing the 5/6/5-bit levels.
        origin: the panel coordinates of ``pixels[0, 0]``; keeps the dither pattern fixed to
            the glass when converting a sub-rectangle.
        out: an optional preallocated ``(h, w, 2)`` uint8 C-contiguous array to write into.

    Raises:
        ValueError: the array is not uint8 RGB, or ``out`` has the wrong shape.
    """
    rgb = _check_rgb(pixels)
    h, w = rgb.shape[:2]
    if out is not None and (out.shape != (h, w, 2) or out.dtype != np.uint8 or not out.flags.c_contiguous):
        raise ValueError(
            f"out must be a C-contiguous uint8 array of shape {(h, w, 2)}, got {out.shape} {out.dtype}"
        )
    value: npt.NDArray[np.integer[Any]]
    if dither:
        value = dithered_rgb565(rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2], origin)
    else:
        # One widening per channel, shifts in uint16, one byte-swapping cast at the end.
        r = rgb[:, :, 0].astype(np.uint16)
        g = rgb[:, :, 1].astype(np.uint16)
        value = ((r & 0xF8) << 8) | ((g & 0xFC) << 3) | (rgb[:, :, 2] >> 3)
    if out is None:
        return value.astype(">u2").view(np.uint8).reshape(h, w, 2)
    out.view(">u2").reshape(h, w)[...] = value
    return out


def rgb565_to_rgb888(data: Buffer | U8Array, width: int, height: int) -> U8Array:
    """Expand big-endian RGB565 bytes to an ``(height, width, 3)`` uint8 RGB array.

    Each channel is scaled so that full intensity maps to 255 (bit replication), the way
    the panel's DAC shows it.

    Raises:
        ValueError: the data is not ``width * height * 2`` bytes long.
    """
    if isinstance(data, np.ndarray):
        raw = data.reshape(-1).view(np.uint8)
    else:
        raw = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)  # no copy
    if raw.size != width * height * 2:
        raise ValueError(f"expected {width * height * 2} bytes for {width}x{height} RGB565, got {raw.size}")
    v = raw.view(">u2").reshape(height, width).astype(np.uint16)
    out = np.empty((height, width, 3), dtype=np.uint8)
    r5 = (v >> 11) & 0x1F
    g6 = (v >> 5) & 0x3F
    b5 = v & 0x1F
    out[:, :, 0] = (r5 << 3) | (r5 >> 2)
    out[:, :, 1] = (g6 << 2) | (g6 >> 4)
    out[:, :, 2] = (b5 << 3) | (b5 >> 2)
    return out


def quantize(pixels: npt.NDArray[np.generic], *, dither: bool = False) -> U8Array:
    """What an RGB image looks like after a round trip through RGB565 (what the panel shows)."""
    rgb = _check_rgb(pixels)
    h, w = rgb.shape[:2]
    return rgb565_to_rgb888(rgb888_to_rgb565(rgb, dither=dither), w, h)
