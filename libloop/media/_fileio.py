"""What the frame file formats v1 (``framefile``) and v2 (``framefile_v2``) share: the header and the file I/O.

Both formats begin with the same 64-byte header (magic, version, header size, width, height,
pixel format, a codec slot that v1 leaves zero, frame count, loop count, region count, a flags
slot, frame-table offset, region-table offset, data size, and a CRC-32 over the header and
both tables) in a first page of its own. Both are written the same way: into ``dest.partial``
behind a blank first page, the header written last, then fsync, rename and an fsync of the
directory, so a crash leaves the whole file or nothing. Both are read with ``pread`` (a file
cut short under a reader is a ``FrameFileError``, not a crash) and report every failure in one
sentence. What differs — the tables and what the pixel data is — stays in their own modules.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, NoReturn, Self

import numpy as np
import numpy.typing as npt

from libloop.errors import DiskFull, EmptyMedia, FrameFileError

MAGIC = b"LOOPFRM\x00"
PIXEL_FORMAT_RGB565_BE = 1
PAGE = 4096
MAX_SIDE = 4096

HEADER = struct.Struct("<8sHHHHHHIIIIQQQI")
CRC_OFFSET = HEADER.size - 4
assert HEADER.size == 64

_preadv = getattr(os, "preadv", None)


def align(n: int, to: int = PAGE) -> int:
    """``n`` rounded up to a multiple of ``to``."""
    return (n + to - 1) // to * to


# --- what the writers accept ---------------------------------------------------------------


def check_duration(duration_ms: int) -> None:
    """Raise ValueError unless a frame's duration fits the frame table (1..2**32-1 ms)."""
    if not 1 <= duration_ms <= 0xFFFFFFFF:
        raise ValueError(f"a frame lasts 1..2**32-1 ms, got {duration_ms}")


def check_rgb565_frame(rgb565: npt.NDArray[np.uint8], width: int, height: int) -> None:
    """Raise ValueError unless ``rgb565`` is an ``(height, width, 2)`` uint8 frame."""
    if rgb565.shape != (height, width, 2) or rgb565.dtype != np.uint8:
        raise ValueError(f"expected a ({height}, {width}, 2) uint8 frame, got {rgb565.shape} {rgb565.dtype}")


# --- writing -------------------------------------------------------------------------------


class WriterContext:
    """``with`` support for a writer: a block that raises, or ends before ``commit()``, aborts."""

    def _finished(self) -> bool:
        """True once the file was committed or aborted."""
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None or not self._finished():
            self.abort()


class AtomicFrameWriter(WriterContext):
    """Writes a frame file into ``dest.partial`` front to back, then its header, and renames it to ``dest``.

    The format's writer (``FrameFileWriter``, ``ChunkWriter``) adds the frames and builds the
    tables; this part owns the file: the blank first page, where the next byte goes, a full
    disk turned into ``DiskFull`` (the partial file removed), and the atomic commit.
    """

    def __init__(self, dest: Path, width: int, height: int, loop_count: int) -> None:
        if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
            raise ValueError(f"frame size {width}x{height} is outside 1..{MAX_SIDE}")
        if not 0 <= loop_count <= 0xFFFFFFFF:
            raise ValueError(f"loop_count must be 0..2**32-1, got {loop_count}")
        self.dest = Path(dest)
        self.partial = self.dest.with_name(self.dest.name + ".partial")
        self.width = width
        self.height = height
        self.loop_count = loop_count
        self._file: BinaryIO | None = None
        self._pos = 0
        self._done = False

    def _finished(self) -> bool:
        return self._done

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

    def _pad_to(self, boundary: int) -> None:
        pad = align(self._pos, boundary) - self._pos
        if pad:
            self._write(b"\x00" * pad)

    def _no_frames(self) -> NoReturn:
        """Abort a commit that has nothing to write."""
        self.abort()
        raise EmptyMedia(f"No frames were produced for {self.dest.name}; the source has no picture in it.")

    def _finish(
        self,
        *,
        version: int,
        codec: int,
        frame_count: int,
        region_count: int,
        frame_table: bytes,
        region_table: bytes,
    ) -> Path:
        """Write both tables and the header, fsync, rename to ``dest`` and fsync the directory."""
        f = self._open()
        self._pad_to(8)
        frame_table_offset = self._write(frame_table)
        region_table_offset = self._write(region_table)
        header = bytearray(
            HEADER.pack(
                MAGIC,
                version,
                HEADER.size,
                self.width,
                self.height,
                PIXEL_FORMAT_RGB565_BE,
                codec,
                frame_count,
                self.loop_count,
                region_count,
                0,
                frame_table_offset,
                region_table_offset,
                self._pos,
                0,
            )
        )
        crc = zlib.crc32(region_table, zlib.crc32(frame_table, zlib.crc32(header)))
        struct.pack_into("<I", header, CRC_OFFSET, crc)
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
        fsync_dir(self.dest.parent)
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


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable, where the platform allows (errors are ignored)."""
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


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    """The fields of a frame file's header, as stored (``raw``: its 64 bytes)."""

    raw: bytes
    version: int
    header_size: int
    width: int
    height: int
    pixel_format: int
    codec: int  # v2; zero in v1
    frame_count: int
    loop_count: int
    region_count: int
    flags: int
    frame_table_offset: int
    region_table_offset: int
    data_size: int
    crc: int


def damaged(path: Path, what: str) -> FrameFileError:
    """The error for a frame file whose header or tables do not hold together."""
    return FrameFileError(f"Frame file {path.name} is damaged ({what}); re-import the item.")


def open_fd(path: Path) -> int:
    """A read-only descriptor of the frame file at ``path``.

    Raises:
        FrameFileError: the file cannot be opened.
    """
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FrameFileError(
            f"Cannot open frame file {path.name} ({exc.strerror}); re-import the item."
        ) from exc


def cannot_read(path: Path, exc: OSError) -> FrameFileError:
    """The error for a frame file that failed to read while it was being opened."""
    return FrameFileError(f"Cannot read frame file {path.name} ({exc.strerror}); re-import the item.")


def unpack_header(path: Path, raw: bytes) -> Header:
    """The header read from the start of the file at ``path``, if it is a LOOP frame file at all.

    Raises:
        FrameFileError: ``raw`` is short or does not start with the magic.
    """
    if len(raw) < HEADER.size:
        raise FrameFileError(f"{path.name} is too short to be a frame file; re-import the item.")
    magic, *fields = HEADER.unpack(raw)
    if magic != MAGIC:
        raise FrameFileError(f"{path.name} is not a LOOP frame file; re-import the item.")
    return Header(raw, *fields)


def read_tables(
    path: Path,
    read: Callable[[int, int], bytes],
    header: Header,
    *,
    size: int,
    frame_row: int,
    region_row: int,
    tables_from: int,
) -> tuple[bytes, bytes]:
    """Read the frame and region tables the header points at, and check the header's CRC over them.

    ``read(offset, length)`` reads the file, ``size`` is its size on disk, ``frame_row`` and
    ``region_row`` the sizes of a table row, ``tables_from`` the lowest offset a table may have.

    Raises:
        FrameFileError: the file is shorter than its header says, a table lies outside the data
            or is cut off, or the checksum does not match.
    """
    data_size = header.data_size
    if data_size > size:
        raise damaged(path, f"{size} bytes on disk, header says {data_size}")
    ft_off, rt_off = header.frame_table_offset, header.region_table_offset
    ft_end = ft_off + header.frame_count * frame_row
    rt_end = rt_off + header.region_count * region_row
    if not (tables_from <= ft_off <= ft_end <= data_size and tables_from <= rt_off <= rt_end <= data_size):
        raise damaged(path, "tables outside the file")
    frame_table = read(ft_off, ft_end - ft_off)
    region_table = read(rt_off, rt_end - rt_off)
    if len(frame_table) != ft_end - ft_off or len(region_table) != rt_end - rt_off:
        raise damaged(path, "cut off inside its tables")
    blank = bytearray(header.raw)
    struct.pack_into("<I", blank, CRC_OFFSET, 0)
    if zlib.crc32(region_table, zlib.crc32(frame_table, zlib.crc32(blank))) != header.crc:
        raise damaged(path, "header checksum mismatch")
    return frame_table, region_table


def read_into(fd: int, dest: memoryview, offset: int, path: Path, what: str) -> None:
    """Fill ``dest`` from the file ``fd`` (named ``path``) at ``offset``.

    Raises:
        FrameFileError: the file ends before ``dest`` is full (it changed under the reader) or
            cannot be read; ``what`` names the part (``"frame 3"``).
    """
    done = 0
    try:
        while done < len(dest):
            part = dest[done:]
            if _preadv is not None:
                n = _preadv(fd, [part], offset + done)
            else:  # pragma: no cover - platforms without preadv
                chunk = os.pread(fd, len(part), offset + done)
                n = len(chunk)
                part[:n] = chunk
            if n == 0:
                raise FrameFileError(
                    f"Frame file {path.name} changed on disk while in use ({what} is cut off); "
                    "re-import the item."
                )
            done += n
    except OSError as exc:
        raise FrameFileError(
            f"Cannot read {what} of frame file {path.name} ({exc.strerror}); re-import the item."
        ) from exc


def replaced_or_shrunk(path: Path, identity: tuple[int, int], data_size: int) -> bool:
    """True when ``path`` no longer names the file ``identity`` (``(st_dev, st_ino)``) or it shrank."""
    try:
        st = os.stat(path)
    except OSError:
        return True
    return (st.st_dev, st.st_ino) != identity or st.st_size < data_size


class Closing:
    """``with`` support for a reader: the block gets the reader, leaving it calls ``close()``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
