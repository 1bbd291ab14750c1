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
import errno
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, NoReturn, Self

from libloop.errors import DiskFull, EmptyMedia, FrameFileError
from libloop.media.regions import Rect

__all__ = [
    "CODECS",
    "CODEC_H264",
    "CODEC_ZSTD",
    "FORMAT_VERSION",
    "ChunkWriter",
    "FrameEntry",
    "FrameFileV2",
    "file_version",
]

MAGIC = b"LOOPFRM\x00"
FORMAT_VERSION = 2
PIXEL_FORMAT_RGB565_BE = 1
PAGE = 4096
MAX_SIDE = 4096
CODEC_ZSTD = 1
CODEC_H264 = 2
#: Codec ids and their names (``loop fsck`` and the bench print the names).
CODECS = {CODEC_ZSTD: "zstd", CODEC_H264: "h264"}
KEY_FRAME = 1

_HEADER = struct.Struct("<8sHHHHHHIIIIQQQI")
_FRAME = struct.Struct("<QIIIIIIII")
_REGION = struct.Struct("<HHHH")
_CRC_OFFSET = _HEADER.size - 4
assert _HEADER.size == 64 and _FRAME.size == 40 and _REGION.size == 8


def _align(n: int, to: int) -> int:
    return (n + to - 1) // to * to


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


class ChunkWriter:
    """Streams chunks into ``dest.partial`` and renames the finished file to ``dest`` on ``commit()``.

    The codec writers (``codec_zstd.ZstdWriter``, ``codec_h264.H264Writer``) build on it. Only
    the tables stay in memory (48 bytes a frame and 8 a region), never the pixels.

    Raises:
        DiskFull: the disk filled up while writing (the partial file is removed).
    """

    def __init__(self, dest: Path, width: int, height: int, codec: int, *, loop_count: int = 0) -> None:
        if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
            raise ValueError(f"frame size {width}x{height} is outside 1..{MAX_SIDE}")
        if not 0 <= loop_count <= 0xFFFFFFFF:
            raise ValueError(f"loop_count must be 0..2**32-1, got {loop_count}")
        if codec not in CODECS:
            raise ValueError(f"unknown codec {codec}")
        self.dest = Path(dest)
        self.partial = self.dest.with_name(self.dest.name + ".partial")
        self.width = width
        self.height = height
        self.codec = codec
        self.loop_count = loop_count
        self._frames: list[FrameEntry] = []
        self._regions: list[Rect] = []
        self._file: BinaryIO | None = None
        self._pos = 0
        self._done = False

    @property
    def frame_count(self) -> int:
        """Frames written so far."""
        return len(self._frames)

    @property
    def bytes_written(self) -> int:
        """What the file would take if committed now (chunks, tables and header)."""
        return max(self._pos, PAGE) + _FRAME.size * len(self._frames) + _REGION.size * len(self._regions) + 8

    def _open(self) -> BinaryIO:
        if self._done:
            raise ValueError("this frame file writer was already committed or aborted")
        if self._file is None:
            try:
                self._file = open(self.partial, "wb")  # noqa: SIM115 - closed in commit/abort
                self._file.write(b"\x00" * PAGE)  # header placeholder: an unfinished file is invalid
            except OSError as exc:
                self._fail(exc)
            self._pos = PAGE
        return self._file

    def _fail(self, exc: OSError) -> NoReturn:
        self.abort()
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(
                f"The disk filled up while writing {self.dest.name}; free some space (delete items) and retry."
            ) from exc
        raise exc

    def _write(self, data: bytes | bytearray | memoryview) -> int:
        f = self._open()
        offset = self._pos
        try:
            f.write(data)
        except OSError as exc:
            self._fail(exc)
        self._pos += len(data)
        return offset

    def add_chunk(
        self, chunk: bytes, *, duration_ms: int, pixel_crc: int, rects: Sequence[Rect], key: bool
    ) -> None:
        """Append frame ``frame_count``: its chunk, duration, decoded checksum and dirty regions.

        Raises:
            ValueError: a duration outside 1..2**32-1 ms, frame 0 not a key frame, or a rectangle
                outside the frame.
            DiskFull: the disk filled up (the partial file is removed).
        """
        if not 1 <= duration_ms <= 0xFFFFFFFF:
            raise ValueError(f"a frame lasts 1..2**32-1 ms, got {duration_ms}")
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
            self.abort()
            raise EmptyMedia(
                f"No frames were produced for {self.dest.name}; the source has no picture in it."
            )
        f = self._open()
        pad = _align(self._pos, 8) - self._pos
        if pad:
            self._write(b"\x00" * pad)
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
        frame_table_offset = self._write(frame_table)
        region_table_offset = self._write(region_table)
        header = bytearray(
            _HEADER.pack(
                MAGIC,
                FORMAT_VERSION,
                _HEADER.size,
                self.width,
                self.height,
                PIXEL_FORMAT_RGB565_BE,
                self.codec,
                len(self._frames),
                self.loop_count,
                len(self._regions),
                0,
                frame_table_offset,
                region_table_offset,
                self._pos,
                0,
            )
        )
        crc = zlib.crc32(region_table, zlib.crc32(frame_table, zlib.crc32(header)))
        struct.pack_into("<I", header, _CRC_OFFSET, crc)
        try:
            f.seek(0)
            f.write(header)
            f.flush()
            os.fsync(f.fileno())
            f.close()
            self._file = None
            os.replace(self.partial, self.dest)
        except OSError as exc:
            self._fail(exc)
        self._done = True
        _fsync_dir(self.dest.parent)
        return self.dest

    def abort(self) -> None:
        """Discard everything written; removes the partial file. Safe to call more than once."""
        self._done = True
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            self.partial.unlink()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None or not self._done:
            self.abort()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- reading ---------------------------------------------------------------------------

_preadv = getattr(os, "preadv", None)


def _damaged(path: Path, what: str) -> FrameFileError:
    return FrameFileError(f"Frame file {path.name} is damaged ({what}); re-import the item.")


class FrameFileV2:
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
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise FrameFileError(
                f"Cannot open frame file {path.name} ({exc.strerror}); re-import the item."
            ) from exc
        try:
            st = os.fstat(fd)
            return cls._parse(path, fd, st.st_size, (st.st_dev, st.st_ino))
        except OSError as exc:
            os.close(fd)
            raise FrameFileError(
                f"Cannot read frame file {path.name} ({exc.strerror}); re-import the item."
            ) from exc
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise

    @classmethod
    def _parse(cls, path: Path, fd: int, size: int, identity: tuple[int, int]) -> FrameFileV2:
        header = os.pread(fd, _HEADER.size, 0)
        if len(header) < _HEADER.size:
            raise FrameFileError(f"{path.name} is too short to be a frame file; re-import the item.")
        (
            magic,
            version,
            header_size,
            width,
            height,
            pixfmt,
            codec,
            n_frames,
            loop_count,
            n_regions,
            _flags,
            ft_off,
            rt_off,
            data_size,
            crc,
        ) = _HEADER.unpack(header)
        if magic != MAGIC:
            raise FrameFileError(f"{path.name} is not a LOOP frame file; re-import the item.")
        if version != FORMAT_VERSION or header_size != _HEADER.size:
            raise FrameFileError(
                f"Frame file {path.name} has format version {version}, this reader takes {FORMAT_VERSION}; "
                "re-import the item."
            )
        if pixfmt != PIXEL_FORMAT_RGB565_BE:
            raise _damaged(path, f"unknown pixel format {pixfmt}")
        if codec not in CODECS:
            raise _damaged(path, f"unknown codec {codec}")
        if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE) or n_frames < 1:
            raise _damaged(path, f"size {width}x{height}, {n_frames} frames")
        if data_size > size:
            raise _damaged(path, f"{size} bytes on disk, header says {data_size}")
        ft_end = ft_off + n_frames * _FRAME.size
        rt_end = rt_off + n_regions * _REGION.size
        if not (PAGE <= ft_off <= ft_end <= data_size and PAGE <= rt_off <= rt_end <= data_size):
            raise _damaged(path, "tables outside the file")
        frame_table = os.pread(fd, ft_end - ft_off, ft_off)
        region_table = os.pread(fd, rt_end - rt_off, rt_off)
        if len(frame_table) != ft_end - ft_off or len(region_table) != rt_end - rt_off:
            raise _damaged(path, "cut off inside its tables")
        blank = bytearray(header)
        struct.pack_into("<I", blank, _CRC_OFFSET, 0)
        if zlib.crc32(region_table, zlib.crc32(frame_table, zlib.crc32(blank))) != crc:
            raise _damaged(path, "header checksum mismatch")
        regions: list[Rect] = []
        for x0, y0, x1, y1 in _REGION.iter_unpack(region_table):
            if not (x0 <= x1 < width and y0 <= y1 < height):
                raise _damaged(path, f"region {len(regions)} outside the frame")
            regions.append(Rect(x0, y0, x1, y1))
        chunks_end = min(ft_off, rt_off)
        frames: list[FrameEntry] = []
        for off, length, ccrc, pcrc, duration, first, count, flags, _ in _FRAME.iter_unpack(frame_table):
            if off < PAGE or off + length > chunks_end or first + count > n_regions or duration < 1:
                raise _damaged(path, f"frame {len(frames)} entry out of bounds")
            frames.append(FrameEntry(off, length, ccrc, pcrc, duration, first, count, flags))
        if not frames[0].key:
            raise _damaged(path, "frame 0 is not a key frame")
        return cls(
            path,
            fd,
            width=width,
            height=height,
            codec=codec,
            loop_count=loop_count,
            data_size=data_size,
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
        view = memoryview(buf)
        done = 0
        try:
            while done < e.length:
                if _preadv is not None:
                    n = _preadv(self._fd, [view[done:]], e.offset + done)
                else:  # pragma: no cover - platforms without preadv
                    part = os.pread(self._fd, e.length - done, e.offset + done)
                    n = len(part)
                    view[done : done + n] = part
                if n == 0:
                    raise FrameFileError(
                        f"Frame file {self.path.name} changed on disk while in use (frame {i} is cut off); "
                        "re-import the item."
                    )
                done += n
        except OSError as exc:
            raise FrameFileError(
                f"Cannot read frame {i} of frame file {self.path.name} ({exc.strerror}); re-import the item."
            ) from exc
        if zlib.crc32(buf) != e.chunk_crc:
            raise _damaged(self.path, f"frame {i} fails its checksum")
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
        if self._fd is None:
            return True
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self._identity or st.st_size < self.data_size

    def close(self) -> None:
        """Release the file descriptor."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
