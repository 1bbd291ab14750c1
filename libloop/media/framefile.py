"""The display-ready frame file: every frame as the panel takes it, plus precomputed dirty regions.

Converted once at import, played from memory-mapped pages: the player never decodes, resizes
or converts anything, and memory does not grow with the library (the kernel pages frames in
and out). Layout, all integers little-endian:

* header (64 bytes at offset 0): magic ``LOOPFRM\\0``, version, header size, width, height
  (the logical panel size at import time), pixel format (1 = RGB565 big-endian), frame count,
  loop count (0 = forever, n = play n times), region count, frame-table offset, region-table
  offset, file size, and a CRC-32 over the header (with this field zero) and both tables;
* pixel data, from offset 4096: each frame WHOLE at a page-aligned offset (so a frame maps onto
  whole pages and the player can redraw any frame when the panel's content is unknown), then
  the pixels of that frame's dirty regions, each region contiguous. A region that spans full rows
  points into the whole frame instead (full-motion video costs no extra space);
* frame table (24 bytes a frame): offset, duration in ms, CRC-32 of the whole frame, index of
  the first region and region count;
* region table (24 bytes a region): x0, y0, x1, y1 (inclusive), data offset, data length.

The header's file size is where the frame data ends: what follows it is not part of the frame
format (the index keeps its metadata block there, see ``framemeta``), so a reader refuses a
file shorter than that size and ignores anything after it.

Regions of frame i are against frame i-1; frame 0's are against the LAST frame, for the loop.
A still (one frame) has no regions. The writer streams (it keeps only the first and the
previous frame) and commits atomically: ``dest.partial`` in the same directory, fsync, rename,
fsync the directory. A crash leaves the whole file or nothing.

Reading: ``FrameFile.open(path)`` reads frames with ``preadv`` into two buffers of its own
(one whole frame, one frame's regions), straight from the page cache. A memory map is the
other way (``mapped=True``: zero-copy views) but a mapped page of a file that someone
truncates kills the process with SIGBUS, which Python cannot catch; a read only comes back
short, and the frame is refused with ``FrameFileError``. The device plays from reads.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

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
    check_rgb565_frame,
    damaged,
    open_fd,
    read_into,
    read_tables,
    replaced_or_shrunk,
    unpack_header,
)
from libloop.media.regions import Rect, dirty_rects

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_SIDE",
    "PAGE",
    "PIXEL_FORMAT_RGB565_BE",
    "FrameFile",
    "FrameFileWriter",
    "Region",
    "data_end",
    "verify_file",
    "write_item_meta",
]

FORMAT_VERSION = 1

_FRAME = struct.Struct("<QIIII")
_REGION = struct.Struct("<HHHHQII")
assert _FRAME.size == 24 and _REGION.size == 24

U8Array = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Region:
    """One dirty rectangle of a frame (inclusive coordinates) and its pixels, RGB565 BE, row-major."""

    x0: int
    y0: int
    x1: int
    y1: int
    data: memoryview


@dataclass(frozen=True, slots=True)
class _FrameEntry:
    offset: int
    duration_ms: int
    crc: int
    region_first: int
    region_count: int


@dataclass(frozen=True, slots=True)
class _RegionEntry:
    rect: Rect
    offset: int
    length: int


# --- writing ---------------------------------------------------------------------------


class FrameFileWriter(AtomicFrameWriter):
    """Streams frames into a new frame file and renames it into place on ``commit()``.

    Memory stays bounded: only the first and the previous frame are kept (to compute regions).
    Used as a context manager it aborts (removes the partial file) when the block raises.

    Raises:
        DiskFull: the disk filled up while writing (the partial file is removed).
    """

    def __init__(self, dest: Path, width: int, height: int, *, loop_count: int = 0) -> None:
        super().__init__(dest, width, height, loop_count)
        self._frame_bytes = width * height * 2
        self._frames: list[_FrameEntry] = []
        self._regions: list[_RegionEntry] = []
        self._first: U8Array | None = None
        self._prev: U8Array | None = None

    @property
    def frame_count(self) -> int:
        """Frames written so far."""
        return len(self._frames)

    def _write_regions(self, frame: U8Array, frame_offset: int, rects: list[Rect]) -> tuple[int, int]:
        first = len(self._regions)
        row_bytes = self.width * 2
        for r in rects:
            length = r.pixels * 2
            if r.x0 == 0 and r.x1 == self.width - 1:
                offset = frame_offset + r.y0 * row_bytes  # full rows: point into the whole frame
            else:
                offset = self._write(np.ascontiguousarray(frame[r.y0 : r.y1 + 1, r.x0 : r.x1 + 1]).tobytes())
            self._regions.append(_RegionEntry(r, offset, length))
        return first, len(rects)

    def add_frame(self, rgb565: U8Array, duration_ms: int) -> None:
        """Append one frame, an ``(height, width, 2)`` uint8 RGB565 big-endian array.

        Raises:
            ValueError: wrong shape/dtype or a duration outside 1..2**32-1 ms.
            DiskFull: the disk filled up (the partial file is removed).
        """
        check_rgb565_frame(rgb565, self.width, self.height)
        check_duration(duration_ms)
        frame = np.ascontiguousarray(rgb565)
        self._open()
        self._pad_to(PAGE)
        offset = self._write(frame.data.cast("B"))
        crc = zlib.crc32(frame.data.cast("B"))
        if self._prev is None:
            first, count = 0, 0  # frame 0: regions against the last frame, filled in at commit
            self._first = frame.copy()
        else:
            first, count = self._write_regions(frame, offset, dirty_rects(self._prev, frame))
        self._frames.append(_FrameEntry(offset, int(duration_ms), crc, first, count))
        if self._prev is None:
            self._prev = frame.copy()
        else:
            np.copyto(self._prev, frame)

    def commit(self) -> Path:
        """Write the tables and header, fsync, and rename to ``dest`` atomically; returns ``dest``.

        Raises:
            EmptyMedia: no frame was added.
            DiskFull: the disk filled up (the partial file is removed).
        """
        if not self._frames:
            self._no_frames()
        self._open()
        assert self._first is not None and self._prev is not None
        if len(self._frames) > 1:
            f0 = self._frames[0]
            first, count = self._write_regions(self._first, f0.offset, dirty_rects(self._prev, self._first))
            self._frames[0] = _FrameEntry(f0.offset, f0.duration_ms, f0.crc, first, count)
        frame_table = b"".join(
            _FRAME.pack(e.offset, e.duration_ms, e.crc, e.region_first, e.region_count) for e in self._frames
        )
        region_table = b"".join(
            _REGION.pack(e.rect.x0, e.rect.y0, e.rect.x1, e.rect.y1, e.offset, e.length, 0)
            for e in self._regions
        )
        dest = self._finish(
            version=FORMAT_VERSION,
            codec=0,
            frame_count=len(self._frames),
            region_count=len(self._regions),
            frame_table=frame_table,
            region_table=region_table,
        )
        self._first = self._prev = None
        return dest

    def abort(self) -> None:
        """Discard everything written; removes the partial file. Safe to call more than once."""
        self._first = self._prev = None
        super().abort()


# --- reading ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Parsed:
    width: int
    height: int
    loop_count: int
    data_size: int
    frames: list[_FrameEntry]
    regions: list[_RegionEntry]


def _parse(path: Path, read: Callable[[int, int], bytes], size: int) -> _Parsed:
    """Validate the header and the tables, read through ``read(offset, length)``."""
    h = unpack_header(path, read(0, HEADER.size))
    if h.version != FORMAT_VERSION or h.header_size != HEADER.size:
        raise FrameFileError(
            f"Frame file {path.name} has format version {h.version}, this LOOP reads {FORMAT_VERSION}; "
            "re-import the item."
        )
    width, height, n_frames, file_size = h.width, h.height, h.frame_count, h.data_size
    if h.pixel_format != PIXEL_FORMAT_RGB565_BE:
        raise damaged(path, f"unknown pixel format {h.pixel_format}")
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE) or n_frames < 1:
        raise damaged(path, f"size {width}x{height}, {n_frames} frames")
    frame_table, region_table = read_tables(
        path, read, h, size=size, frame_row=_FRAME.size, region_row=_REGION.size, tables_from=HEADER.size
    )
    frame_bytes = width * height * 2
    regions: list[_RegionEntry] = []
    for x0, y0, x1, y1, off, length, _ in _REGION.iter_unpack(region_table):
        if not (x0 <= x1 < width and y0 <= y1 < height):
            raise damaged(path, f"region {len(regions)} outside the frame")
        rect = Rect(x0, y0, x1, y1)
        if length != rect.pixels * 2 or off + length > file_size:
            raise damaged(path, f"region {len(regions)} data out of bounds")
        regions.append(_RegionEntry(rect, off, length))
    frames: list[_FrameEntry] = []
    for off, duration, fcrc, first, count in _FRAME.iter_unpack(frame_table):
        if off % PAGE or off + frame_bytes > file_size or first + count > h.region_count or duration < 1:
            raise damaged(path, f"frame {len(frames)} entry out of bounds")
        frames.append(_FrameEntry(off, duration, fcrc, first, count))
    return _Parsed(width, height, h.loop_count, file_size, frames, regions)


class FrameFile(Closing):
    """An opened frame file: ``frame(i)`` and ``regions(i)`` give its pixels as the panel takes them.

    Read mode (the default, what the device plays from): every call reads from the page cache
    into a buffer of this object, so a file truncated or damaged while open is a
    ``FrameFileError`` for that frame, never a crash. A view from ``frame()`` is valid until
    the next ``frame()`` call, a view from ``regions()`` until the next ``regions()`` call.

    Mapped mode (``open(path, mapped=True)``): zero-copy views of a memory map, valid until
    ``close()``; only for files nobody can change while they are open.

    One thread at a time: in read mode the buffers are shared by every call.
    """

    def __init__(
        self, path: Path, parsed: _Parsed, *, fd: int | None = None, mm: mmap.mmap | None = None
    ) -> None:
        if (fd is None) == (mm is None):
            raise ValueError("a frame file is read either through a descriptor or a map")
        self.path = path
        self.width = parsed.width
        self.height = parsed.height
        self.loop_count = parsed.loop_count
        #: Where the frame data ends (the header's file size); a metadata block may follow.
        self.data_size = parsed.data_size
        self._frames = parsed.frames
        self._regions = parsed.regions
        self.durations_ms: tuple[int, ...] = tuple(f.duration_ms for f in parsed.frames)
        self.frame_bytes = parsed.width * parsed.height * 2
        self._fd = fd
        self._mm = mm
        self._view: memoryview | None = memoryview(mm) if mm is not None else None
        self._closed = False
        self._region_cache: dict[int, list[Region]] = {}
        self._region_runs: dict[int, list[tuple[memoryview, int]]] = {}  # read mode: (into, file offset)
        self._frame_buf: memoryview | None = None
        self._region_buf: memoryview | None = None
        self._identity: tuple[int, int] = (-1, -1)  # (st_dev, st_ino) when opened

    @property
    def frame_count(self) -> int:
        return len(self._frames)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height): the logical panel size the file was made for."""
        return self.width, self.height

    @property
    def mapped(self) -> bool:
        """True when the pixels are views of a memory map (``open(..., mapped=True)``)."""
        return self._mm is not None

    def changed_on_disk(self) -> bool:
        """True when the path no longer names this open file (replaced, deleted) or the file shrank."""
        return self._closed or replaced_or_shrunk(self.path, self._identity, self.data_size)

    @classmethod
    def open(cls, path: Path, *, mapped: bool = False) -> FrameFile:
        """Open a frame file and validate its header and tables (not the pixel checksums: see ``verify``).

        Raises:
            FrameFileError: the file is missing, unreadable, truncated, of another version or
                its tables are damaged.
        """
        path = Path(path)
        fd = open_fd(path)
        mm: mmap.mmap | None = None
        try:
            st = os.fstat(fd)
            size = st.st_size
            if size < HEADER.size:
                raise FrameFileError(f"{path.name} is too short to be a frame file; re-import the item.")
            if mapped:
                mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
                view = mm
                parsed = _parse(path, lambda off, n: view[off : off + n], size)
                os.close(fd)
                ff = cls(path, parsed, mm=mm)
            else:
                parsed = _parse(path, lambda off, n: os.pread(fd, n, off), size)
                ff = cls(path, parsed, fd=fd)
            ff._identity = (st.st_dev, st.st_ino)
            return ff
        except OSError as exc:
            if mm is not None:
                mm.close()
            os.close(fd)
            raise cannot_read(path, exc) from exc
        except BaseException:
            if mm is not None:
                mm.close()
            with contextlib.suppress(OSError):
                os.close(fd)
            raise

    def _check(self, i: int) -> _FrameEntry:
        if self._closed:
            raise ValueError("this frame file is closed")
        if not 0 <= i < len(self._frames):
            raise IndexError(f"frame {i} out of range 0..{len(self._frames) - 1}")
        return self._frames[i]

    def _read_into(self, dest: memoryview, offset: int, what: str) -> None:
        """Fill ``dest`` from the file at ``offset``; FrameFileError when the file is cut off or unreadable."""
        assert self._fd is not None
        read_into(self._fd, dest, offset, self.path, what)

    def frame(self, i: int) -> memoryview:
        """The whole frame ``i``: width*height*2 bytes of RGB565 BE (see the class docstring)."""
        e = self._check(i)
        if self._view is not None:
            return self._view[e.offset : e.offset + self.frame_bytes]
        if self._frame_buf is None:
            self._frame_buf = memoryview(bytearray(self.frame_bytes))
        self._read_into(self._frame_buf, e.offset, f"frame {i}")
        return self._frame_buf

    def frame_array(self, i: int) -> U8Array:
        """Frame ``i`` as a read-only ``(height, width, 2)`` uint8 array (a view of ``frame(i)``)."""
        return np.frombuffer(self.frame(i), dtype=np.uint8).reshape(self.height, self.width, 2)

    def regions(self, i: int) -> list[Region]:
        """The dirty regions turning frame ``i-1`` (the last one, for ``i == 0``) into frame ``i``."""
        e = self._check(i)
        cached = self._region_cache.get(i)
        if cached is None:
            cached = self._region_plan(i, e)
        if self._view is None:
            for dest, offset in self._region_runs[i]:  # regions stored one after the other: one read
                self._read_into(dest, offset, f"the regions of frame {i}")
        return list(cached)

    def _region_plan(self, i: int, e: _FrameEntry) -> list[Region]:
        """The Region objects of frame ``i`` (kept), and in read mode the reads that fill them."""
        entries = self._entries_of(e)
        if self._view is not None:
            view = self._view
            plan = [
                Region(r.rect.x0, r.rect.y0, r.rect.x1, r.rect.y1, view[r.offset : r.offset + r.length])
                for r in entries
            ]
            self._region_cache[i] = plan
            return plan
        if self._region_buf is None:
            most = max((sum(r.length for r in self._entries_of(f)) for f in self._frames), default=0)
            self._region_buf = memoryview(bytearray(most))
        buf = self._region_buf
        plan = []
        runs: list[tuple[memoryview, int]] = []
        run_file = run_buf = run_len = pos = 0
        for r in entries:
            if run_len and r.offset != run_file + run_len:
                runs.append((buf[run_buf : run_buf + run_len], run_file))
                run_len = 0
            if not run_len:
                run_file, run_buf = r.offset, pos
            run_len += r.length
            plan.append(Region(r.rect.x0, r.rect.y0, r.rect.x1, r.rect.y1, buf[pos : pos + r.length]))
            pos += r.length
        if run_len:
            runs.append((buf[run_buf : run_buf + run_len], run_file))
        self._region_cache[i] = plan
        self._region_runs[i] = runs
        return plan

    def region_rects(self, i: int) -> list[tuple[int, int, int, int, int]]:
        """``(x0, y0, x1, y1, byte count)`` of each region of frame ``i``, from the table (nothing is read)."""
        e = self._check(i)
        return [(r.rect.x0, r.rect.y0, r.rect.x1, r.rect.y1, r.length) for r in self._entries_of(e)]

    def _entries_of(self, e: _FrameEntry) -> list[_RegionEntry]:
        return self._regions[e.region_first : e.region_first + e.region_count]

    def _advise(self, start: int, length: int) -> None:
        begin = start // PAGE * PAGE
        if self._mm is not None:
            advice = getattr(mmap, "MADV_WILLNEED", None)
            if advice is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._mm.madvise(advice, begin, min(len(self._mm), start + length) - begin)
        elif self._fd is not None and hasattr(os, "posix_fadvise"):
            with contextlib.suppress(OSError):
                os.posix_fadvise(self._fd, begin, start + length - begin, os.POSIX_FADV_WILLNEED)

    def prefetch(self, i: int) -> None:
        """Ask the kernel to page in frame ``i`` and its region data (non-blocking)."""
        e = self._check(i)
        end = e.offset + self.frame_bytes
        for r in self._entries_of(e):
            end = max(end, r.offset + r.length)
        self._advise(e.offset, end - e.offset)

    def prefetch_all(self) -> None:
        """Ask the kernel to page in the whole file (e.g. the next playlist item) without blocking."""
        if not self._closed:
            self._advise(0, self.data_size)

    def verify(self) -> list[str]:
        """Check every frame's CRC-32 and that every region's pixels match its frame; returns problems."""
        problems: list[str] = []
        for i, e in enumerate(self._frames):
            data = self.frame(i)
            if zlib.crc32(data) != e.crc:
                problems.append(f"frame {i}: checksum mismatch")
                continue
            arr = self.frame_array(i)
            for k, reg in enumerate(self.regions(i)):
                expected = arr[reg.y0 : reg.y1 + 1, reg.x0 : reg.x1 + 1]
                got = np.frombuffer(reg.data, dtype=np.uint8).reshape(expected.shape)
                if not np.array_equal(got, expected):
                    problems.append(f"frame {i}: region {k} does not match the frame")
        return problems

    def close(self) -> None:
        """Release the file. Views from ``frame``/``regions`` must not be used afterwards."""
        if self._closed:
            return
        self._closed = True
        self._region_cache.clear()
        self._region_runs.clear()
        self._frame_buf = self._region_buf = None
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._mm is not None and self._view is not None:
            mm, view = self._mm, self._view
            self._mm = self._view = None
            try:
                view.release()
                mm.close()
            except BufferError:
                pass  # a caller still holds a view: the map is released when the last view goes


def verify_file(path: Path) -> list[str]:
    """Problems with the frame file at ``path`` (empty when it is sound); never raises for a bad file."""
    try:
        ff = FrameFile.open(path)
    except FrameFileError as exc:
        return [str(exc)]
    with ff:
        try:
            return ff.verify()
        except FrameFileError as exc:
            return [str(exc)]


def data_end(path: Path) -> int:
    """Where the frame data of the file at ``path`` ends (its header's file or data size), v1 or v2.

    Raises:
        FrameFileError: the file is missing, unreadable or not a frame file.
    """
    from libloop.media.framefile_v2 import FORMAT_VERSION as V2
    from libloop.media.framefile_v2 import FrameFileV2, file_version

    if file_version(path) == V2:
        with FrameFileV2.open(path) as v2:
            return v2.data_size
    with FrameFile.open(path) as ff:
        return ff.data_size


def write_item_meta(path: Path, meta: Mapping[str, Any]) -> bool:
    """Store the index's metadata of an item in its frame file's metadata block (see ``framemeta``).

    A file made before metadata blocks existed gets one appended. Returns False when the file
    ends in something else (nothing is written then).

    Raises:
        FrameFileError: the file is not a readable frame file.
        OSError: the file cannot be written (a full or read-only disk).
    """
    from libloop.media.framemeta import write_meta

    return write_meta(path, meta, data_end=data_end(path))
