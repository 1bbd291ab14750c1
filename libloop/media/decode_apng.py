"""Animated PNG, composited as the APNG specification (and so browsers) says, not as Pillow does.

Pillow's APNG reader plays the default image even when the file says it is not part of the
animation, and blends ``APNG_BLEND_OP_OVER`` frames with a masked paste, which is wrong wherever
the canvas is not opaque (a half-transparent red over a half-transparent blue comes out at
alpha 128, not 192). So we walk the chunks ourselves and use Pillow only to decode pixels: each
frame's data is re-wrapped as a one-frame PNG (the file's IHDR with the frame's size, its
PLTE and tRNS, the frame's zlib stream as IDAT). Compositing, in numpy, follows the spec:

* the canvas starts fully transparent black at the start of every play;
* ``IDAT`` is the first frame only when an ``fcTL`` comes before it; otherwise the default
  image is for viewers without APNG support and is never shown (nor decoded);
* ``blend_op`` SOURCE replaces the frame's region, alpha included; OVER composites the frame
  onto the canvas with the PNG specification's "over" operator on straight (not
  premultiplied) alpha;
* ``dispose_op`` NONE leaves the canvas, BACKGROUND clears the frame's region to transparent
  black, PREVIOUS puts back what the region held before the frame; PREVIOUS on the first frame
  counts as BACKGROUND;
* delays are ``delay_num / delay_den`` seconds (a denominator of 0 means 100), then the same
  ``DelayPolicy`` as GIFs (browsers play 0..10 ms as 100 ms for every animated format);
* ``num_plays`` is already "play n times, 0 = forever".

A file whose animation chunks are damaged (a bad CRC, a frame outside the canvas, sequence
numbers out of order, a frame without data, cut inside a chunk) is refused, as a GIF cut inside
its data is; one that merely lacks ``IEND`` after its last complete frame plays. ``fcTL``
chunks beyond ``acTL``'s frame count are ignored. An ``acTL`` announcing no frame, or one with
no frame after it, leaves the default image, shown as a still.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import Image

from libloop.errors import CorruptMedia, MediaTooLarge
from libloop.media.decode import DelayPolicy, MediaSource, SourceFrame
from libloop.media.limits import Limits

__all__ = ["ApngSource", "is_animated_png"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

DISPOSE_NONE, DISPOSE_BACKGROUND, DISPOSE_PREVIOUS = 0, 1, 2
BLEND_SOURCE, BLEND_OVER = 0, 1

#: Chunks before the first IDAT that change how a frame's bytes turn into pixels.
_CONTEXT = (b"PLTE", b"tRNS")

U8Array = npt.NDArray[np.uint8]


class _Truncated(Exception):
    pass


class _Damaged(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Control:
    """One fcTL: the frame's rectangle, delay and operations."""

    width: int
    height: int
    x: int
    y: int
    delay_ms: float
    dispose: int
    blend: int
    is_default: bool  # it came before IDAT: the default image is this frame


@dataclass(frozen=True, slots=True)
class _Frame:
    control: _Control
    pieces: tuple[tuple[int, int], ...]  # (file offset, length) of the frame's zlib data


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise _Truncated
    return data


#: Chunks read whole (all small); the largest one accepted.
_CONTROL = (b"IHDR", b"PLTE", b"tRNS", b"acTL", b"fcTL", b"IEND")
_MAX_CONTROL_BYTES = 4096


def _chunks(f: BinaryIO, size: int) -> Iterator[tuple[bytes, int, int, bytes]]:
    """Yield (type, data offset, data length, data) for each chunk of a ``size``-byte file.

    The chunks this decoder uses are CRC-checked: control chunks are read whole, image data
    (IDAT, fdAT) in blocks, keeping only its first four bytes (an fdAT's sequence number).
    Other chunks are skipped unread, as browsers skip ancillary chunks they do not need. A
    length running past the end of the file is a truncation, found before anything is read.
    """
    while True:
        header = f.read(8)
        if not header:
            return
        if len(header) != 8:
            raise _Truncated
        length, kind = struct.unpack(">I4s", header)
        offset = f.tell()
        if offset + length + 4 > size:
            raise _Truncated
        if kind in (b"IDAT", b"fdAT"):
            crc = zlib.crc32(kind)
            data = b""
            left = length
            while left:
                block = _read(f, min(left, 1 << 20))
                data = data or block[:4]
                crc = zlib.crc32(block, crc)
                left -= len(block)
        elif kind in _CONTROL:
            if length > _MAX_CONTROL_BYTES:
                raise _Damaged
            data = _read(f, length)
            crc = zlib.crc32(kind + data)
        else:
            f.seek(length + 4, io.SEEK_CUR)
            yield kind, offset, length, b""
            continue
        (stored,) = struct.unpack(">I", _read(f, 4))
        if stored != crc:
            raise _Damaged
        yield kind, offset, length, data
        if kind == b"IEND":
            return


def is_animated_png(path: Path) -> bool:
    """Whether a PNG has an ``acTL`` chunk before its first ``IDAT`` (reads only chunk headers)."""
    try:
        with open(path, "rb") as f:
            if f.read(8) != PNG_SIGNATURE:
                return False
            while True:
                header = f.read(8)
                if len(header) != 8:
                    return False
                length, kind = struct.unpack(">I4s", header)
                if kind == b"acTL":
                    return True
                if kind in (b"IDAT", b"IEND", b"fdAT"):
                    return False
                f.seek(length + 4, io.SEEK_CUR)
    except OSError:
        return False


class ApngSource(MediaSource):
    """An APNG file, its chunks walked and checked at construction (no pixels decoded yet).

    Raises:
        CorruptMedia: a damaged or truncated chunk structure.
        MediaTooLarge: the canvas is over the limits.
    """

    def __init__(self, path: Path, *, limits: Limits, delays: DelayPolicy, name: str) -> None:
        self.path = path
        self.name = name
        self.limits = limits
        self.delays = delays
        self.format = "PNG"
        self._frames: list[_Frame] = []
        try:
            with open(path, "rb") as f:
                self._scan(f)
        except _Truncated:
            raise CorruptMedia(
                f"{name} is a truncated PNG (the file ends in the middle of its data); upload the whole file again."
            ) from None
        except (_Damaged, struct.error):
            raise CorruptMedia(f"{name} is a damaged animated PNG; upload it again.") from None
        except OSError as exc:
            raise CorruptMedia(f"{name} cannot be read ({exc.strerror}).") from exc
        self.kind = "gif" if len(self._frames) > 1 else "image"
        if self.kind == "image":
            self.loop_count = 0

    @property
    def frame_count(self) -> int:
        """Frames that will be produced (after the ``max_frames`` cut)."""
        return len(self._frames)

    def _scan(self, f: BinaryIO) -> None:
        if f.read(8) != PNG_SIGNATURE:
            raise _Damaged
        chunks = _chunks(f, os.fstat(f.fileno()).st_size)
        kind, _, _, ihdr = next(chunks, (b"", 0, 0, b""))
        if kind != b"IHDR" or len(ihdr) != 13:
            raise _Damaged
        self.width, self.height = struct.unpack_from(">II", ihdr)
        self.limits.check_dimensions(self.width, self.height, self.name)
        self._ihdr_tail = ihdr[8:]  # bit depth, colour type, compression, filter, interlace
        self._context: list[bytes] = []
        self.loop_count = 0
        declared = 0  # acTL's frame count; 0 = no animation
        seq = 0  # the next sequence number fcTL and fdAT must carry
        seen_idat = ignoring = False
        announced = 0  # fcTL chunks taken (at most ``declared``)
        default: list[tuple[int, int]] = []
        pending: _Control | None = None
        pieces: list[tuple[int, int]] = []

        def finish() -> None:
            nonlocal pending, pieces
            if pending is not None:
                if not pieces:
                    raise _Damaged  # an fcTL with no image data after it
                if len(self._frames) < self.limits.max_frames:
                    self._frames.append(_Frame(pending, tuple(pieces)))
                else:
                    self.truncated = True
            pending, pieces = None, []

        for kind, offset, length, data in chunks:
            if kind == b"IEND":
                break
            if kind in _CONTEXT and not seen_idat:
                self._context.append(_chunk(kind, data))
            elif kind == b"acTL" and not seen_idat and len(data) == 8:
                declared, self.loop_count = struct.unpack(">II", data)
            elif kind == b"fcTL" and declared:
                if len(data) != 26 or struct.unpack_from(">I", data)[0] != seq:
                    raise _Damaged
                seq += 1
                finish()
                ignoring = announced >= declared
                if not ignoring:
                    announced += 1
                    pending = self._control(data, first=not self._frames, before_idat=not seen_idat)
            elif kind == b"IDAT":
                seen_idat = True
                default.append((offset, length))
                if pending is not None and pending.is_default:
                    pieces.append((offset, length))
            elif kind == b"fdAT" and declared:
                if length < 4 or struct.unpack(">I", data[:4])[0] != seq:
                    raise _Damaged
                seq += 1
                if pending is None and ignoring:
                    continue  # the data of a frame beyond acTL's count
                if pending is None or pending.is_default:
                    raise _Damaged  # data with no fcTL, or fdAT for the default image
                pieces.append((offset + 4, length - 4))
        finish()
        if not default:
            raise _Damaged  # every PNG has image data
        if not self._frames:
            # No animation after all: the default image is the picture, as PNG viewers show it.
            whole = _Control(self.width, self.height, 0, 0, 0.0, DISPOSE_NONE, BLEND_SOURCE, True)
            self._frames.append(_Frame(whole, tuple(default)))

    def _control(self, data: bytes, *, first: bool, before_idat: bool) -> _Control:
        _, w, h, x, y, num, den, dispose, blend = struct.unpack(">IIIIIHHBB", data)
        if w < 1 or h < 1 or x + w > self.width or y + h > self.height or dispose > 2 or blend > 1:
            raise _Damaged
        if before_idat and (x, y, w, h) != (0, 0, self.width, self.height):
            raise _Damaged  # the default image's frame covers the whole canvas
        if first and dispose == DISPOSE_PREVIOUS:
            dispose = DISPOSE_BACKGROUND
        return _Control(w, h, x, y, 1000.0 * num / (den or 100), dispose, blend, before_idat)

    def _pixels(self, f: BinaryIO, fr: _Frame) -> U8Array:
        """Decode one frame's data with Pillow, re-wrapped as a PNG of the frame's size; RGBA."""
        parts = []
        for offset, length in fr.pieces:
            f.seek(offset)
            parts.append(_read(f, length))
        c = fr.control
        png = b"".join(
            (
                PNG_SIGNATURE,
                _chunk(b"IHDR", struct.pack(">II", c.width, c.height) + self._ihdr_tail),
                *self._context,
                _chunk(b"IDAT", b"".join(parts)),
                _chunk(b"IEND", b""),
            )
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(png), formats=["PNG"]) as im:
                    im.load()
                    return _rgba(im)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise MediaTooLarge(f"{self.name} has a frame too large to decode safely.") from exc
        except (OSError, ValueError, SyntaxError, EOFError, zlib.error, struct.error) as exc:
            raise CorruptMedia(f"{self.name} is a damaged animated PNG; upload it again.") from exc

    def frames(self) -> Iterator[SourceFrame]:
        canvas = np.zeros((self.height, self.width, 4), dtype=np.uint8)
        n = len(self._frames)
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed in finally (generator)
        except OSError as exc:
            raise CorruptMedia(f"{self.name} cannot be read ({exc.strerror}).") from exc
        try:
            for i, fr in enumerate(self._frames):
                c = fr.control
                pixels = self._pixels(f, fr)
                area = canvas[c.y : c.y + c.height, c.x : c.x + c.width]
                saved = area.copy() if c.dispose == DISPOSE_PREVIOUS else None
                if c.blend == BLEND_OVER:
                    area[...] = over(pixels, area)
                else:
                    area[...] = pixels
                duration = self.delays.still_ms if n == 1 else self.delays.animation_delay(c.delay_ms)
                yield SourceFrame(Image.fromarray(canvas.copy(), "RGBA"), duration, (i + 1) / n)
                if c.dispose == DISPOSE_BACKGROUND:
                    area[...] = 0
                elif saved is not None:
                    area[...] = saved
        except _Truncated:
            raise CorruptMedia(f"{self.name} changed or was cut short while it was read.") from None
        finally:
            f.close()


def _rgba(im: Image.Image) -> U8Array:
    """Any decoded PNG mode as (h, w, 4) uint8 RGBA (16-bit greys scaled, not clipped)."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L"):
        grey = (np.asarray(im, dtype=np.uint32) >> 8).astype(np.uint8)
        out = np.empty((*grey.shape, 4), dtype=np.uint8)
        out[..., :3] = grey[..., None]
        out[..., 3] = 255
        if "transparency" in im.info:
            out[np.asarray(im) == im.info["transparency"], 3] = 0
        return out
    return np.asarray(im.convert("RGBA"), dtype=np.uint8).copy()


def over(src: U8Array, dst: U8Array) -> U8Array:
    """Porter-Duff "over" of straight-alpha RGBA ``src`` onto ``dst`` (PNG specification, 8 bits).

    out_alpha = a_s + a_d (1 - a_s); out_colour = (c_s a_s + c_d a_d (1 - a_s)) / out_alpha,
    computed in floating point and rounded to the nearest 8-bit value (transparent: all zero).
    """
    sa = src[..., 3:4].astype(np.float32) / 255.0
    da = dst[..., 3:4].astype(np.float32) / 255.0
    out_a = sa + da * (1.0 - sa)
    weight_d = da * (1.0 - sa)
    colour = src[..., :3] * sa + dst[..., :3] * weight_d
    colour = np.divide(colour, out_a, out=np.zeros_like(colour), where=out_a > 0)
    out = np.empty(src.shape, dtype=np.uint8)
    out[..., :3] = np.clip(np.rint(colour), 0, 255)
    out[..., 3:] = np.clip(np.rint(out_a * 255.0), 0, 255)
    return out
