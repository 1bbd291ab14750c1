"""What the v2 codecs share: a decoder that walks a file's frames in order into one canvas.

A ``FrameDecoder`` holds the frame it decoded last (``canvas``, an ``(h, w, 2)`` RGB565 BE
array) and moves to any frame with ``goto(i)``: forward frame by frame from where it is, or
from the nearest key frame at or before ``i`` when that is closer or ``i`` lies behind. It is
used by one thread at a time (the decode-ahead worker, an export, a preview).
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod

import numpy as np
import numpy.typing as npt

from libloop.errors import FrameFileError
from libloop.media.framefile_v2 import FrameFileV2
from libloop.media.regions import Rect

__all__ = ["FrameDecoder", "region_bytes"]

U8Array = npt.NDArray[np.uint8]


def region_bytes(rects: list[Rect]) -> int:
    """Bytes of RGB565 pixels in these rectangles, one after the other."""
    return sum(2 * r.pixels for r in rects)


class FrameDecoder(ABC):
    """Decodes the frames of ``ff`` in play order; see the module docstring."""

    def __init__(self, ff: FrameFileV2) -> None:
        self.ff = ff
        self.canvas: U8Array = np.zeros((ff.height, ff.width, 2), dtype=np.uint8)
        #: The frame in ``canvas`` (-1: none yet).
        self.position = -1
        self._stale = False  # the decoder moved on without converting (``pixels=False``)
        self._payload: memoryview | None = None  # region pixels of ``position``, when the codec has them

    @abstractmethod
    def _reset(self) -> None:
        """Forget the decoding state: the next frame decoded is a key frame."""

    @abstractmethod
    def _decode(self, i: int, chunk: bytearray, pixels: bool) -> memoryview | None:
        """Decode frame ``i`` (the one after ``position``, or a key frame after ``_reset``).

        With ``pixels`` the canvas must hold frame ``i`` afterwards; without, the codec may skip
        what only the canvas needs. Returns the frame's region pixels when the chunk holds them.
        """

    def _convert(self) -> None:  # noqa: B027 - only codecs that skip conversions need it
        """Bring the canvas up to the frame decoded last with ``pixels=False``."""

    #: Whether each frame builds on the canvas of the one before (then nothing can be skipped).
    cumulative = True

    def goto(self, i: int, *, pixels: bool = True) -> None:
        """Make ``canvas`` hold frame ``i`` (with ``pixels=False``: only the decoding state).

        Raises:
            FrameFileError: a chunk is damaged or cannot be read.
        """
        if i == self.position:
            if pixels and self._stale:
                self._convert()
                self._stale = False
            return
        key = self.ff.key_at_or_before(i)
        if key <= self.position < i:
            start = self.position + 1
        else:
            self._reset()
            self.position = -1
            start = key
        try:
            for j in range(start, i + 1):
                convert = self.cumulative or (pixels and j == i)
                self._payload = None
                self._payload = self._decode(j, self.ff.read_chunk(j), convert)
                self.position = j
                self._stale = not convert
        except BaseException:
            self._reset()  # the state is unknown: start again from a key frame next time
            self.position = -1
            raise

    def regions_payload(self) -> memoryview:
        """The pixels of the current frame's dirty regions, one rectangle after the other."""
        if self._payload is not None:
            return self._payload
        if self._stale:
            self._convert()
            self._stale = False
        rects = self.ff.rects(self.position)
        out = bytearray(region_bytes(rects))
        pos = 0
        for r in rects:
            part = self.canvas[r.y0 : r.y1 + 1, r.x0 : r.x1 + 1]
            n = 2 * r.pixels
            np.frombuffer(out, dtype=np.uint8, count=n, offset=pos).reshape(part.shape)[...] = part
            pos += n
        self._payload = memoryview(out)
        return self._payload

    def check_pixels(self) -> bool:
        """Whether the current frame's pixels match the checksum the writer recorded."""
        return zlib.crc32(self.canvas.data) == self.ff.entries[self.position].pixel_crc

    def close(self) -> None:
        """Release what the codec holds (the file stays open: its owner closes it)."""
        self._reset()


def damaged(ff: FrameFileV2, i: int, what: str) -> FrameFileError:
    """The error for frame ``i`` of ``ff`` that does not decode."""
    return FrameFileError(f"Frame file {ff.path.name} is damaged (frame {i}: {what}); re-import the item.")
