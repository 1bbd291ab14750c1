"""The lossless v2 codec: key frames whole, other frames their dirty regions' pixels, in zstd streams.

What it stores is exactly what v1 stores — the whole first frame, then for every frame the
pixels of the rectangles that changed (``regions.dirty_rects``) — without v1's whole copy of
every frame. A *group* is a key frame and the frames after it up to the next key frame; its
chunks are the blocks of one zstd stream (each frame flushed as a block), so a frame can point
back at what earlier frames of the group stored (a sprite drawn again, a ticker's letters, a
counter's digits) within the stream's window. A new group starts when the group's raw payload
would pass ``GROUP_BYTES`` (about 64 whole frames), which bounds what reaching any frame from
its key frame costs, and the window (``WINDOW_LOG``) bounds the decoder's memory (2 MB).

Parameters chosen by measurement (``bench/bench_storage.py``): level 17 with a 2 MB window and
smaller hash and chain tables than the level's defaults (a 7 MB compression context instead of
51 MB, same output size on our corpus) costs 1-4 ms a frame at import and about 0.01-0.1 ms a
frame to decode. Video-like content is compressed at ``VIDEO_LEVEL`` instead: at level 17 a
mostly-new 150 KB frame costs ~8 ms, at level 3 under 1 ms for a file about a quarter larger.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import zstandard

from libloop.media._fileio import check_rgb565_frame
from libloop.media.codec import CodecWriter, FrameDecoder, damaged, region_bytes
from libloop.media.framefile_v2 import CODEC_ZSTD, FrameFileV2
from libloop.media.regions import dirty_rects

__all__ = ["GROUP_FRAMES", "LEVEL", "VIDEO_LEVEL", "WINDOW_LOG", "ZstdDecoder", "ZstdWriter"]

LEVEL = 17
#: For video-like content (every frame mostly new: a video without libx264, a v1 video file
#: converted): level 3 compresses it about as well for a ninth of the time (bench, 0.9 ms a frame).
VIDEO_LEVEL = 3
WINDOW_LOG = 21
HASH_LOG = 19
CHAIN_LOG = 20
#: A new key frame once a group's raw payload would pass this many whole frames.
GROUP_FRAMES = 64

U8Array = npt.NDArray[np.uint8]


class ZstdWriter(CodecWriter):
    """Streams RGB565 frames into a v2 frame file with the zstd codec (``add_frame`` as in v1).

    Memory stays bounded: the first and the previous frame, the compressor's context (7 MB at
    the default level) and the tables.

    Raises:
        DiskFull: the disk filled up while writing (the partial file is removed).
    """

    #: ``add_frame`` takes RGB565 frames (``(h, w, 2)`` uint8), like v1's writer.
    wants_rgb888 = False

    def __init__(
        self, dest: Path, width: int, height: int, *, loop_count: int = 0, level: int = LEVEL
    ) -> None:
        super().__init__(dest, width, height, CODEC_ZSTD, loop_count=loop_count)
        params = zstandard.ZstdCompressionParameters.from_level(
            level,
            window_log=WINDOW_LOG,
            hash_log=min(HASH_LOG, 30),
            chain_log=min(CHAIN_LOG, 30),
        )
        self._compressor = zstandard.ZstdCompressor(compression_params=params)
        self._stream: Any = None
        self._group_bytes = 0
        self._group_limit = GROUP_FRAMES * width * height * 2

    @property
    def bytes_upper_bound(self) -> int:
        """The file's size if committed now, at most (nothing is held back)."""
        return self._out.bytes_written + 16

    def _finish_group(self) -> None:
        if self._stream is not None:
            self._out.extend_last_chunk(self._stream.flush())
            self._stream = None

    def add_frame(self, rgb565: U8Array, duration_ms: int) -> None:
        """Append one frame, an ``(height, width, 2)`` uint8 RGB565 big-endian array.

        Raises:
            ValueError: wrong shape/dtype or a duration outside 1..2**32-1 ms.
            DiskFull: the disk filled up (the partial file is removed).
        """
        check_rgb565_frame(rgb565, self.width, self.height)
        frame = np.ascontiguousarray(rgb565)
        if self._prev is None:
            rects = []
            payload: bytes | memoryview = frame.data.cast("B")
            key = True
        else:
            rects = dirty_rects(self._prev, frame)
            payload = b"".join(
                np.ascontiguousarray(frame[r.y0 : r.y1 + 1, r.x0 : r.x1 + 1]).tobytes() for r in rects
            )
            key = self._group_bytes + len(payload) > self._group_limit
            if key:
                payload = frame.data.cast("B")
        if key:
            self._finish_group()
            self._stream = self._compressor.compressobj()
            self._group_bytes = 0
        self._group_bytes += len(payload)
        chunk = self._stream.compress(payload) + self._stream.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        crc = _crc(frame)
        # A key frame's regions (against the frame before) are still what the player sends
        # when the panel holds that frame; only frame 0's wait for the last frame.
        self._out.add_chunk(chunk, duration_ms=duration_ms, pixel_crc=crc, rects=rects, key=key)
        self._keep(frame)

    def commit(self) -> Path:
        """Finish the stream, give frame 0 its loop-back regions, and commit the file atomically.

        Raises:
            EmptyMedia: no frame was added.
            DiskFull: the disk filled up (the partial file is removed).
        """
        self._finish_group()
        return self._commit()

    def abort(self) -> None:
        """Discard everything written. Safe to call more than once."""
        self._stream = None
        super().abort()


def _crc(frame: U8Array) -> int:
    return zlib.crc32(frame.data.cast("B"))


class ZstdDecoder(FrameDecoder):
    """Decodes a zstd-codec v2 file: a key frame replaces the canvas, a delta frame patches it."""

    cumulative = True

    def __init__(self, ff: FrameFileV2) -> None:
        super().__init__(ff)
        self._decompressor = zstandard.ZstdDecompressor(max_window_size=1 << WINDOW_LOG)
        self._stream: Any = None

    def _reset(self) -> None:
        self._stream = None

    def _decode(self, i: int, chunk: bytearray, pixels: bool) -> memoryview | None:
        entry = self.ff.entries[i]
        if entry.key:
            self._stream = self._decompressor.decompressobj()
        elif self._stream is None:
            raise damaged(self.ff, i, "decoding did not start at a key frame")
        rects = self.ff.rects(i)
        expected = self.ff.frame_bytes if entry.key else region_bytes(rects)
        try:
            data = self._stream.decompress(bytes(chunk)) if chunk else b""
        except zstandard.ZstdError as exc:
            raise damaged(self.ff, i, f"zstd: {exc}") from None
        if len(data) != expected:
            raise damaged(self.ff, i, f"{len(data)} bytes decoded, {expected} expected")
        raw = np.frombuffer(data, dtype=np.uint8)
        if entry.key:
            self.canvas.reshape(-1)[...] = raw
            return None
        pos = 0
        canvas = self.canvas
        for r in rects:
            n = 2 * r.pixels
            canvas[r.y0 : r.y1 + 1, r.x0 : r.x1 + 1] = raw[pos : pos + n].reshape(r.height, r.width, 2)
            pos += n
        return memoryview(data)
