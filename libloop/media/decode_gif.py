"""GIF decoding with the compositing browsers do, which is not quite what Pillow does.

Pillow's GIF plugin disposes a frame with method 2 ("restore to background") by painting the
logical screen's background colour when the frame has no transparent index; Chrome and
Firefox clear the area to transparent instead (and so do we: transparent areas show
``ImportOptions.background``). So we walk the GIF block structure ourselves, let Pillow decode
only each frame's LZW-compressed indices (wrapped in a tiny one-frame GIF, interlacing
included), and composite in numpy:

* the canvas starts transparent;
* each frame draws its opaque pixels (every index but the transparent one) through its local
  palette, or the global one, clipped to the canvas;
* after showing it, disposal 2 clears the frame's rectangle to transparent, disposal 3 restores
  what was there before the frame; 0, 1 and the undefined 4..7 leave it.

The stream ends at its trailer byte (0x3B) or, as in browsers, at the first byte after a
complete block that starts no block: trailing garbage, zero padding or a second GIF appended
to the first are ignored and the first GIF plays. A file cut off INSIDE a block is refused.

Loop counts (NETSCAPE2.0 / ANIMEXTS1.0 extension): absent = play once (player loop count 1),
0 = forever (0), n = repeat n times, i.e. play n + 1 times (n + 1), as browsers do.
A single-frame GIF is a still (kind "image").
"""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import Image

from libloop.errors import CorruptMedia, EmptyMedia, MediaTooLarge
from libloop.media.decode import DelayPolicy, MediaSource, SourceFrame
from libloop.media.limits import Limits

__all__ = ["GifSource"]

_GRAY_PALETTE = bytes(v for i in range(256) for v in (i, i, i))


@dataclass(frozen=True, slots=True)
class _GifFrame:
    x: int
    y: int
    w: int
    h: int
    interlaced: bool
    palette_offset: int  # -1 = use the global palette
    palette_size: int
    data_offset: int  # the LZW minimum code size byte
    data_end: int  # just past the block terminator
    disposal: int
    delay_ms: int | None
    transparent: int | None


class _Truncated(Exception):
    pass


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise _Truncated
    return data


def _skip_sub_blocks(f: BinaryIO) -> None:
    while True:
        n = _read(f, 1)[0]
        if n == 0:
            return
        _read(f, n)


class GifSource(MediaSource):
    """A GIF file, pre-scanned for its frame table at construction (no pixels decoded yet).

    Raises:
        CorruptMedia: the header or block structure is damaged or cut short.
        MediaTooLarge: the logical screen is over the limits.
        EmptyMedia: the GIF has no image in it.
    """

    def __init__(self, path: Path, *, limits: Limits, delays: DelayPolicy, name: str) -> None:
        self.path = path
        self.name = name
        self.limits = limits
        self.delays = delays
        self.format = "GIF"
        self._table: list[_GifFrame] = []
        try:
            with open(path, "rb") as f:
                self._scan(f)
        except _Truncated:
            # Cut off inside a block: part of the file is missing, so refuse it rather than
            # play a shortened animation. (A file that merely lacks the trailer byte after
            # its last complete block is accepted: some encoders omit it.)
            raise CorruptMedia(
                f"{name} is a truncated GIF (the file ends in the middle of its data); upload the whole file again."
            ) from None
        except OSError as exc:
            raise CorruptMedia(f"{name} cannot be read ({exc.strerror}).") from exc
        if not self._table:
            raise EmptyMedia(f"{name} is a GIF with no picture in it.")
        self.kind = "gif" if len(self._table) > 1 else "image"
        if self.kind == "image":
            self.loop_count = 0

    @property
    def frame_count(self) -> int:
        """Frames that will be produced (after the ``max_frames`` cut)."""
        return len(self._table)

    def _scan(self, f: BinaryIO) -> None:
        header = _read(f, 13)
        self.width, self.height, flags = struct.unpack_from("<HHB", header, 6)
        self.limits.check_dimensions(self.width, self.height, self.name)
        self._global_offset = -1
        self._global_size = 0
        if flags & 0x80:
            self._global_size = 2 << (flags & 7)
            self._global_offset = f.tell()
            _read(f, 3 * self._global_size)
        self.loop_count = 1
        gce: tuple[int, int | None, int | None] = (0, None, None)
        while True:
            introducer = f.read(1)
            if not introducer or introducer == b";":
                return
            if introducer == b"!":
                label = _read(f, 1)[0]
                if label == 0xF9:
                    block = _read(f, 1)[0]
                    body = _read(f, block)
                    if block >= 4:
                        packed, delay_cs, tindex = struct.unpack_from("<BHB", body)
                        gce = ((packed >> 2) & 7, delay_cs * 10, tindex if packed & 1 else None)
                    _skip_sub_blocks(f)
                elif label == 0xFF:
                    block = _read(f, 1)[0]
                    app = _read(f, block)
                    if app[:11] in (b"NETSCAPE2.0", b"ANIMEXTS1.0"):
                        sub = _read(f, 1)[0]
                        if sub >= 3:
                            data = _read(f, sub)
                            if data[0] == 1:
                                n = struct.unpack_from("<H", data, 1)[0]
                                self.loop_count = 0 if n == 0 else n + 1
                        elif sub:
                            _read(f, sub)
                        if sub:
                            _skip_sub_blocks(f)
                    else:
                        _skip_sub_blocks(f)
                else:
                    _skip_sub_blocks(f)
            elif introducer == b",":
                x, y, w, h, packed = struct.unpack("<HHHHB", _read(f, 9))
                pal_off, pal_size = -1, 0
                if packed & 0x80:
                    pal_size = 2 << (packed & 7)
                    pal_off = f.tell()
                    _read(f, 3 * pal_size)
                data_offset = f.tell()
                _read(f, 1)
                _skip_sub_blocks(f)
                if w == 0 or h == 0:
                    gce = (0, None, None)
                    continue
                self.limits.check_dimensions(w, h, self.name)
                if len(self._table) >= self.limits.max_frames:
                    self.truncated = True
                    return
                self._table.append(
                    _GifFrame(x, y, w, h, bool(packed & 0x40), pal_off, pal_size, data_offset, f.tell(), *gce)
                )
                gce = (0, None, None)
            elif self._table:
                # Not a block: whatever follows the last image is not part of this GIF (a second
                # GIF appended, padding, junk from an uploader). Browsers play what came before,
                # as if the trailer were there; so do we.
                return
            else:
                raise CorruptMedia(f"{self.name} is a damaged GIF (unknown block); upload it again.")

    def _palette(self, f: BinaryIO, offset: int, size: int) -> npt.NDArray[np.uint8]:
        pal = np.zeros((256, 3), dtype=np.uint8)
        if offset >= 0:
            f.seek(offset)
            pal[:size] = np.frombuffer(_read(f, 3 * size), dtype=np.uint8).reshape(size, 3)
        return pal

    def _indices(self, f: BinaryIO, fr: _GifFrame) -> npt.NDArray[np.uint8]:
        f.seek(fr.data_offset)
        lzw = _read(f, fr.data_end - fr.data_offset)
        mini = b"".join(
            (
                b"GIF89a",
                struct.pack("<HHBBB", fr.w, fr.h, 0x87, 0, 0),
                _GRAY_PALETTE,
                b",",
                struct.pack("<HHHHB", 0, 0, fr.w, fr.h, 0x40 if fr.interlaced else 0),
                lzw,
                b";",
            )
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(mini), formats=["GIF"]) as im:
                    im.load()
                    return np.asarray(im, dtype=np.uint8).reshape(fr.h, fr.w).copy()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise MediaTooLarge(f"{self.name} has a frame too large to decode safely.") from exc
        except (OSError, ValueError, SyntaxError, struct.error) as exc:
            raise CorruptMedia(f"{self.name} is a damaged or truncated GIF; upload it again.") from exc

    def frames(self) -> Iterator[SourceFrame]:
        canvas = np.zeros((self.height, self.width, 4), dtype=np.uint8)
        n = len(self._table)
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed in finally (generator)
        except OSError as exc:
            raise CorruptMedia(f"{self.name} cannot be read ({exc.strerror}).") from exc
        try:
            global_pal = self._palette(f, self._global_offset, self._global_size)
            for i, fr in enumerate(self._table):
                pal = (
                    self._palette(f, fr.palette_offset, fr.palette_size)
                    if fr.palette_offset >= 0
                    else global_pal
                )
                idx = self._indices(f, fr)
                x1, y1 = min(fr.x + fr.w, self.width), min(fr.y + fr.h, self.height)
                area = canvas[fr.y : y1, fr.x : x1]
                saved = area.copy() if fr.disposal == 3 else None
                idx = idx[: area.shape[0], : area.shape[1]]
                if area.size:
                    opaque = (
                        np.ones(idx.shape, dtype=bool) if fr.transparent is None else idx != fr.transparent
                    )
                    area[opaque, :3] = pal[idx[opaque]]
                    area[opaque, 3] = 255
                duration = self.delays.still_ms if n == 1 else self.delays.animation_delay(fr.delay_ms)
                yield SourceFrame(Image.fromarray(canvas.copy()), duration, (i + 1) / n)
                if fr.disposal == 2:
                    area[...] = 0
                elif saved is not None:
                    area[...] = saved
        finally:
            f.close()
