"""Frame file format v2: each frame stored compressed, decoded a frame at a time when it plays.

Format v1 (``framefile``) stores every frame whole, raw: cheap to play, but a 5 s clip takes
23 MB. Version 2 keeps v1's promises — the file holds exactly what the panel will show, with
per-frame durations, checksums and the precomputed dirty regions, written atomically — and
stores each frame as a *chunk* of a codec, chosen per kind of media by measurement
(``bench/bench_storage.py``):

* ``CODEC_ZSTD`` (animations, pictures, and a v1 file converted by ``loop fsck --repair``):
  lossless. A key frame's chunk holds the whole frame, every other frame's chunk the pixels of
  its dirty regions only; the chunks of a group (a key frame and the frames after it) are the
  blocks of one zstd stream, so a frame can reuse what earlier frames of its group stored.
  See ``codec_zstd``.
* ``CODEC_H264`` (video): a panel-sized H.264 re-encode made at import, decoded at play time
  and dithered to RGB565 exactly as the import did; the panel shows the decoded re-encode and
  ``loop export`` writes the same decode. See ``codec_h264``.

Layout, all integers little-endian:

* header (64 bytes at offset 0, then zeros to 4096): magic ``LOOPFRM\\0``, version (2), header
  size, width, height (the logical panel size), pixel format (1 = RGB565 big-endian), codec,
  frame count, loop count (0 = forever), region count, flags (0), frame-table offset,
  region-table offset, data size, and a CRC-32 over the header (this field zero) and both tables;
* chunks, from offset 4096, in frame order;
* frame table (40 bytes a frame): chunk offset, chunk length, CRC-32 of the chunk, CRC-32 of
  the decoded frame (the whole frame as the panel gets it), duration in ms, index of the first
  region, region count, flags (bit 0: key frame, where decoding can start), reserved;
* region table (8 bytes a region): x0, y0, x1, y1, inclusive — the dirty rectangles that turn
  frame i-1 into frame i (frame 0's: the last frame into the first, for the loop).

The data size is where the tables end: what follows is not part of the frame format (the
index keeps its metadata block there, see ``framemeta``), so a reader refuses a file shorter
than that and ignores the rest. Every read is a ``pread`` into memory, never a memory map: a
file cut short or replaced under a reader is a ``FrameFileError``, not a SIGBUS. Frame 0 is
always a key frame.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from libloop.errors import FrameFileError
from libloop.media._fileio import (
    HEADER,
    MAGIC,
    MAX_SIDE,
    PAGE,
    PIXEL_FORMAT_RGB565_BE,
    AtomicFrameWriter,
    Closing,
    cannot_read,
    check_duration,
    damaged,
    open_fd,
    read_into,
    read_tables,
    replaced_or_shrunk,
    unpack_header,
)
from libloop.media.regions import Rect

__all__ = [
    "CODECS",
    "CODEC_H264",
    "CODEC_ZSTD",
    "FORMAT_VERSION",
    "PAGE",
    "ChunkWriter",
    "FrameEntry",
    "FrameFileV2",
    "file_version",
]

FORMAT_VERSION = 2
CODEC_ZSTD = 1
CODEC_H264 = 2
#: Codec ids and their names (``loop fsck`` and the bench print the names).
CODECS = {CODEC_ZSTD: "zstd", CODEC_H264: "h264"}
KEY_FRAME = 1

_FRAME = struct.Struct("<QIIIIIIII")
_REGION = struct.Struct("<HHHH")
assert _FRAME.size == 40 and _REGION.size == 8


@dataclass(frozen=True, slots=True)
class FrameEntry:
    """One frame's row of the frame table."""

    offset: int
    length: int
    chunk_crc: int
    pixel_crc: int
    duration_ms: int
    region_first: int
    region_count: int
    flags: int

    @property
    def key(self) -> bool:
        """Decoding can start at this frame."""
        return bool(self.flags & KEY_FRAME)


def file_version(path: Path) -> int:
    """The format version in the header of the frame file at ``path``.

    Raises:
        FrameFileError: the file cannot be read or is not a LOOP frame file.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(10)
    except OSError as exc:
        raise FrameFileError(
            f"Cannot open frame file {Path(path).name} ({exc.strerror}); re-import the item."
        ) from exc
    if len(head) < 10 or head[:8] != MAGIC:
        raise FrameFileError(f"{Path(path).name} is not a LOOP frame file; re-import the item.")
    return int.from_bytes(head[8:10], "little")


# --- writing ---------------------------------------------------------------------------


class ChunkWriter(AtomicFrameWriter):
    """Streams chunks into ``dest.partial`` and renames the finished file to ``dest`` on ``commit()``.

    The codec writers (``codec_zstd.ZstdWriter``, ``codec_h264.H264Writer``) build on it. Only
    the tables stay in memory (48 bytes a frame and 8 a region), never the pixels.

    Raises:
        DiskFull: the disk filled up while writing (the partial file is removed).
    """

    def __init__(self, dest: Path, width: int, height: int, codec: int, *, loop_count: int = 0) -> None:
        super().__init__(dest, width, height, loop_count)
        if codec not in CODECS:
            raise ValueError(f"unknown codec {codec}")
        self.codec = codec
        self._frames: list[FrameEntry] = []
        self._regions: list[Rect] = []

    @property
    def frame_count(self) -> int:
        """Frames written so far."""
        return len(self._frames)

    @property
    def bytes_written(self) -> int:
        """What the file would take if committed now (chunks, tables and header)."""
        return max(self._pos, PAGE) + _FRAME.size * len(self._frames) + _REGION.size * len(self._regions) + 8

    def add_chunk(
        self, chunk: bytes, *, duration_ms: int, pixel_crc: int, rects: Sequence[Rect], key: bool
    ) -> None:
        """Append frame ``frame_count``: its chunk, duration, decoded checksum and dirty regions.

        Raises:
            ValueError: a duration outside 1..2**32-1 ms, frame 0 not a key frame, or a rectangle
                outside the frame.
            DiskFull: the disk filled up (the partial file is removed).
        """
        check_duration(duration_ms)
        if not self._frames and not key:
            raise ValueError("frame 0 must be a key frame")
        for r in rects:
            if not (0 <= r.x0 <= r.x1 < self.width and 0 <= r.y0 <= r.y1 < self.height):
                raise ValueError(f"region {r} is outside the {self.width}x{self.height} frame")
        offset = self._write(chunk)
        first = len(self._regions)
        self._regions.extend(rects)
        self._frames.append(
            FrameEntry(
                offset,
                len(chunk),
                zlib.crc32(chunk),
                pixel_crc & 0xFFFFFFFF,
                int(duration_ms),
                first,
                len(rects),
                KEY_FRAME if key else 0,
            )
        )

    def extend_last_chunk(self, tail: bytes) -> None:
        """Append bytes to the last frame's chunk (a codec's end-of-stream marker), fixing its CRC."""
        if not self._frames or not tail:
            return
        last = self._frames[-1]
        if last.offset + last.length != self._pos:
            raise ValueError("the last chunk is not at the end of the file")
        self._write(tail)
        crc = zlib.crc32(tail, last.chunk_crc)
        self._frames[-1] = FrameEntry(
            last.offset,
            last.length + len(tail),
            crc,
            last.pixel_crc,
            last.duration_ms,
            last.region_first,
            last.region_count,
            last.flags,
        )

    def set_first_regions(self, rects: Sequence[Rect]) -> None:
        """Give frame 0 its regions (the last frame into the first, known only at the end)."""
        if not self._frames:
            raise ValueError("no frame was added")
        f0 = self._frames[0]
        first = len(self._regions)
        self._regions.extend(rects)
        self._frames[0] = FrameEntry(
            f0.offset, f0.length, f0.chunk_crc, f0.pixel_crc, f0.duration_ms, first, len(rects), f0.flags
        )

    def commit(self) -> Path:
        """Write the tables and header, fsync, and rename to ``dest`` atomically; returns ``dest``.

        Raises:
            EmptyMedia: no frame was added.
            DiskFull: the disk filled up (the partial file is removed).
        """
        if not self._frames:
            self._no_frames()
        frame_table = b"".join(
            _FRAME.pack(
                e.offset,
                e.length,
                e.chunk_crc,
                e.pixel_crc,
                e.duration_ms,
                e.region_first,
                e.region_count,
                e.flags,
                0,
            )
            for e in self._frames
        )
        region_table = b"".join(_REGION.pack(r.x0, r.y0, r.x1, r.y1) for r in self._regions)
        return self._finish(
            version=FORMAT_VERSION,
            codec=self.codec,
            frame_count=len(self._frames),
            region_count=len(self._regions),
            frame_table=frame_table,
            region_table=region_table,
        )


# --- reading ---------------------------------------------------------------------------


class FrameFileV2(Closing):
    """A v2 frame file opened for reading: its tables, and its chunks read one at a time.

    Decoding is the codecs' business (``codec_zstd``, ``codec_h264``); ``open_frames`` in
    ``libloop.media.frames`` gives what the player, export and previews use.
    """

    def __init__(
        self,
        path: Path,
        fd: int,
        *,
        width: int,
        height: int,
        codec: int,
        loop_count: int,
        data_size: int,
        frames: list[FrameEntry],
        regions: list[Rect],
        identity: tuple[int, int],
    ) -> None:
        self.path = path
        self._fd: int | None = fd
        self.width = width
        self.height = height
        self.codec = codec
        self.loop_count = loop_count
        #: Where the frame data ends (the header's data size); a metadata block may follow.
        self.data_size = data_size
        self.entries = frames
        self._regions = regions
        self.durations_ms: tuple[int, ...] = tuple(f.duration_ms for f in frames)
        self.frame_bytes = width * height * 2
        self._identity = identity

    @property
    def frame_count(self) -> int:
        return len(self.entries)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height): the logical panel size the file was made for."""
        return self.width, self.height

    @property
    def codec_name(self) -> str:
        return CODECS[self.codec]

    @classmethod
    def open(cls, path: Path) -> FrameFileV2:
        """Open a v2 frame file and validate its header and tables (not the chunks: see ``read_chunk``).

        Raises:
            FrameFileError: the file is missing, unreadable, truncated, of another version or
                its tables are damaged.
        """
        path = Path(path)
        fd = open_fd(path)
        try:
            st = os.fstat(fd)
            return cls._parse(path, fd, st.st_size, (st.st_dev, st.st_ino))
        except OSError as exc:
            os.close(fd)
            raise cannot_read(path, exc) from exc
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise

    @classmethod
    def _parse(cls, path: Path, fd: int, size: int, identity: tuple[int, int]) -> FrameFileV2:
        h = unpack_header(path, os.pread(fd, HEADER.size, 0))
        if h.version != FORMAT_VERSION or h.header_size != HEADER.size:
            raise FrameFileError(
                f"Frame file {path.name} has format version {h.version}, this reader takes {FORMAT_VERSION}; "
                "re-import the item."
            )
        width, height, codec, n_frames = h.width, h.height, h.codec, h.frame_count
        if h.pixel_format != PIXEL_FORMAT_RGB565_BE:
            raise damaged(path, f"unknown pixel format {h.pixel_format}")
        if codec not in CODECS:
            raise damaged(path, f"unknown codec {codec}")
        if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE) or n_frames < 1:
            raise damaged(path, f"size {width}x{height}, {n_frames} frames")
        frame_table, region_table = read_tables(
            path,
            lambda off, n: os.pread(fd, n, off),
            h,
            size=size,
            frame_row=_FRAME.size,
            region_row=_REGION.size,
            tables_from=PAGE,
        )
        regions: list[Rect] = []
        for x0, y0, x1, y1 in _REGION.iter_unpack(region_table):
            if not (x0 <= x1 < width and y0 <= y1 < height):
                raise damaged(path, f"region {len(regions)} outside the frame")
            regions.append(Rect(x0, y0, x1, y1))
        chunks_end = min(h.frame_table_offset, h.region_table_offset)
        frames: list[FrameEntry] = []
        for off, length, ccrc, pcrc, duration, first, count, flags, _ in _FRAME.iter_unpack(frame_table):
            if off < PAGE or off + length > chunks_end or first + count > h.region_count or duration < 1:
                raise damaged(path, f"frame {len(frames)} entry out of bounds")
            frames.append(FrameEntry(off, length, ccrc, pcrc, duration, first, count, flags))
        if not frames[0].key:
            raise damaged(path, "frame 0 is not a key frame")
        return cls(
            path,
            fd,
            width=width,
            height=height,
            codec=codec,
            loop_count=h.loop_count,
            data_size=h.data_size,
            frames=frames,
            regions=regions,
            identity=identity,
        )

    def _check(self, i: int) -> FrameEntry:
        if self._fd is None:
            raise ValueError("this frame file is closed")
        if not 0 <= i < len(self.entries):
            raise IndexError(f"frame {i} out of range 0..{len(self.entries) - 1}")
        return self.entries[i]

    def rects(self, i: int) -> list[Rect]:
        """The dirty rectangles turning frame ``i-1`` (the last one, for ``i == 0``) into frame ``i``."""
        e = self._check(i)
        return self._regions[e.region_first : e.region_first + e.region_count]

    def key_at_or_before(self, i: int) -> int:
        """The nearest key frame at or before frame ``i`` (decoding frame ``i`` starts there)."""
        self._check(i)
        while not self.entries[i].key:
            i -= 1
        return i

    def read_chunk(self, i: int) -> bytearray:
        """Frame ``i``'s chunk, read from the file and checked against its CRC-32.

        Raises:
            FrameFileError: the file was cut short, changed under the reader, or is damaged.
        """
        e = self._check(i)
        assert self._fd is not None
        buf = bytearray(e.length)
        read_into(self._fd, memoryview(buf), e.offset, self.path, f"frame {i}")
        if zlib.crc32(buf) != e.chunk_crc:
            raise damaged(self.path, f"frame {i} fails its checksum")
        return buf

    def prefetch(self, i: int, count: int = 1) -> None:
        """Ask the kernel to read frames ``i`` .. ``i + count - 1`` into the page cache (non-blocking)."""
        if self._fd is None or not hasattr(os, "posix_fadvise"):
            return
        e = self._check(i)
        last = self.entries[min(len(self.entries), i + count) - 1]
        with contextlib.suppress(OSError):
            os.posix_fadvise(self._fd, e.offset, last.offset + last.length - e.offset, os.POSIX_FADV_WILLNEED)

    def check_intact(self) -> None:
        """Raise if the open file was cut short since it was opened (one ``fstat``).

        Frames held decoded in memory never touch the file again, so a player calls this once
        a pass to find a truncation that no read would.

        Raises:
            FrameFileError: the file is closed, unreadable or shorter than its contents.
        """
        if self._fd is None:
            raise FrameFileError(f"Frame file {self.path.name} is closed.")
        try:
            size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise FrameFileError(f"Frame file {self.path.name} cannot be read ({exc.strerror}).") from exc
        if size < self.data_size:
            raise FrameFileError(
                f"Frame file {self.path.name} changed on disk while in use "
                f"({size} bytes left of {self.data_size}); re-import the item."
            )

    def changed_on_disk(self) -> bool:
        """True when the path no longer names this open file (replaced, deleted) or the file shrank."""
        return self._fd is None or replaced_or_shrunk(self.path, self._identity, self.data_size)

    def close(self) -> None:
        """Release the file descriptor."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
