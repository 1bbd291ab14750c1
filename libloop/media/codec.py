"""What the v2 codecs share: a decoder that walks a file's frames in order into one canvas, and
the part of a writer that is the same for every codec.

A ``FrameDecoder`` holds the frame it decoded last (``canvas``, an ``(h, w, 2)`` RGB565 BE
array) and moves to any frame with ``goto(i)``: forward frame by frame from where it is, or
from the nearest key frame at or before ``i`` when that is closer or ``i`` lies behind. It is
used by one thread at a time (the decode-ahead worker, an export, a preview).

A ``CodecWriter`` writes through a ``framefile_v2.ChunkWriter`` and keeps the first and the
previous frame it stored, for the dirty regions and for frame 0's loop-back regions at commit.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import numpy.typing as npt

from libloop.errors import FrameFileError
from libloop.media._fileio import WriterContext
from libloop.media.framefile_v2 import ChunkWriter, FrameFileV2
from libloop.media.regions import Rect, dirty_rects

__all__ = ["CodecWriter", "FrameDecoder", "region_bytes"]

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


class CodecWriter(WriterContext):
    """The part of a codec's writer that is the same for every codec; see the module docstring.

    Raises:
        DiskFull: the disk filled up while writing (the partial file is removed).
    """

    def __init__(self, dest: Path, width: int, height: int, codec: int, *, loop_count: int) -> None:
        self._out = ChunkWriter(dest, width, height, codec, loop_count=loop_count)
        self.width, self.height = width, height
        self._first: U8Array | None = None
        self._prev: U8Array | None = None

    @property
    def dest(self) -> Path:
        return self._out.dest

    @property
    def partial(self) -> Path:
        return self._out.partial

    @property
    def frame_count(self) -> int:
        """Frames in the file so far (an encoder with a look-ahead may hold a few more)."""
        return self._out.frame_count

    @property
    def bytes_written(self) -> int:
        """What the file would take if committed now."""
        return self._out.bytes_written

    def _keep(self, frame: U8Array) -> None:
        """Remember ``frame``, just stored, as the previous frame (and the first, if it is)."""
        if self._prev is None:
            self._first = frame.copy()
            self._prev = frame.copy()
        else:
            np.copyto(self._prev, frame)

    def _commit(self) -> Path:
        """Give frame 0 its loop-back regions and commit the file atomically."""
        if self._first is not None and self._prev is not None and self._out.frame_count > 1:
            self._out.set_first_regions(dirty_rects(self._prev, self._first))
        self._first = self._prev = None
        return self._out.commit()

    def _finished(self) -> bool:
        return self._out._finished()

    def abort(self) -> None:
        """Discard everything written. Safe to call more than once."""
        self._first = self._prev = None
        self._out.abort()
