"""Opening any frame file, v1 or v2, as frames the panel takes; decode-ahead for the player.

``open_frames(path)`` looks at the version in the header: a v1 file opens as
``framefile.FrameFile`` (every frame stored whole), a v2 file as ``V2Frames``, which decodes its
chunks with the file's codec. Both answer the same questions — ``frame(i)`` (the whole frame,
RGB565 BE), ``regions(i)`` (the dirty rectangles from frame ``i-1`` with their pixels),
``rects(i)`` (the rectangles alone, no decoding), ``durations_ms``, ``loop_count`` — so the
player, ``loop export``, the previews and ``loop fsck`` never care which version a file is.

Decode-ahead (``open_frames(path, decode_ahead=True)``, what the device plays with): a worker
thread decodes the frames the player will want next into a small ring (``DEPTH`` frames), off
the send path and on another core where there is one (zstd and FFmpeg release the GIL while
they work). The player asks ``ready(i)`` before it sends frame ``i``; when the worker is
behind it waits until the next deadline and drops the frame rather than stalling. Memory is
bounded by the ring: ``DEPTH`` frames and their regions per open file (and the frame before them,
the one on the glass), whatever its length.
Without decode-ahead (export, previews, fsck, tests on a fake clock) each call decodes on the
caller's thread, and a view returned stays valid until the next call.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from libloop.errors import FrameFileError
from libloop.media._fileio import Closing
from libloop.media.codec import FrameDecoder
from libloop.media.codec_h264 import H264Decoder  # PyAV itself is imported when a video opens
from libloop.media.codec_zstd import ZstdDecoder
from libloop.media.framefile import FrameFile, Region
from libloop.media.framefile_v2 import CODEC_H264, CODEC_ZSTD, FrameFileV2, file_version
from libloop.media.regions import Rect

__all__ = ["DEPTH", "AnyFrames", "V2Frames", "open_frames", "upgrade_to_v2", "verify_any"]

#: Frames decoded ahead of the player per open file (200 ms at 30 fps).
DEPTH = 6
#: Longest a caller of ``frame``/``regions`` waits for the worker (a hung decoder is a fault).
WAIT_S = 5.0

U8Array = npt.NDArray[np.uint8]


def make_decoder(ff: FrameFileV2) -> FrameDecoder:
    """The decoder of ``ff``'s codec."""
    if ff.codec == CODEC_ZSTD:
        return ZstdDecoder(ff)
    if ff.codec == CODEC_H264:
        return H264Decoder(ff)
    raise FrameFileError(f"Frame file {ff.path.name} uses codec {ff.codec}, which this LOOP cannot decode.")


@dataclass(frozen=True, slots=True)
class _Slot:
    frame: bytes | memoryview
    regions: list[Region]


class V2Frames(Closing):
    """A v2 frame file opened for showing: see the module docstring.

    Raises (from ``frame`` and ``regions``):
        FrameFileError: a chunk is damaged, the file changed under the reader, or the
            decode-ahead worker failed or took longer than ``WAIT_S``.
    """

    def __init__(self, ff: FrameFileV2, *, decode_ahead: bool = False, depth: int = DEPTH) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self._ff = ff
        self.path = ff.path
        self.width = ff.width
        self.height = ff.height
        self.loop_count = ff.loop_count
        self.durations_ms = ff.durations_ms
        self.frame_bytes = ff.frame_bytes
        self.data_size = ff.data_size
        self.codec_name = ff.codec_name
        self.decode_ahead = decode_ahead
        self._depth = min(depth, ff.frame_count)
        self._decoder = make_decoder(ff)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._ring: dict[int, _Slot] = {}
        self._want: int | None = None
        self._error: tuple[int, FrameFileError] | None = None
        self._waker: tuple[int, threading.Event] | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        if decode_ahead:
            self._thread = threading.Thread(target=self._work, name=f"decode-{ff.path.name}", daemon=True)
            self._thread.start()

    @property
    def frame_count(self) -> int:
        return self._ff.frame_count

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def rects(self, i: int) -> list[Rect]:
        """The dirty rectangles of frame ``i`` (from the table: nothing is decoded)."""
        return self._ff.rects(i)

    # --- the caller's side --------------------------------------------------------------

    def _window(self) -> list[int]:
        if self._want is None:
            return []
        n = self._ff.frame_count
        return [(self._want + j) % n for j in range(self._depth)]

    def prefetch(self, i: int) -> None:
        """Frame ``i`` will be wanted soon: start decoding there if nothing is wanted yet."""
        self._ff.prefetch(i)
        if self._thread is None:
            return
        with self._cond:
            if self._want is None:
                self._want = i
                self._cond.notify_all()

    def ready(self, i: int, wake: threading.Event | None = None) -> bool:
        """Whether frame ``i`` can be had at once; the worker moves on to ``i`` either way.

        When it cannot, ``wake`` (if given) is set once it can. Without decode-ahead: True.

        Raises:
            FrameFileError: at frame 0 (once a pass), the file was cut short since it was opened.
        """
        if i == 0:
            self._ff.check_intact()  # frames held decoded never read the file again
        if self._thread is None:
            return True
        with self._cond:
            self._seek(i)
            if i in self._ring or self._error is not None or self._closed:
                return True
            self._waker = (i, wake) if wake is not None else None
            return False

    def _seek(self, i: int) -> None:
        if not 0 <= i < self._ff.frame_count:
            raise IndexError(f"frame {i} out of range 0..{self._ff.frame_count - 1}")
        if self._want != i:
            self._want = i
            # The frame before ``i`` is most likely the one on the glass: it stays decoded, so a
            # pause or a refresh band that redraws it never sends the decoder back to a key frame.
            keep = {*self._window(), (i - 1) % self._ff.frame_count}
            for k in [k for k in self._ring if k not in keep]:
                del self._ring[k]
            self._cond.notify_all()

    def _slot(self, i: int) -> _Slot:
        # The send path (``ready(i)`` came first) or the frame on the glass: no lock is needed,
        # as only this side (``_seek``) ever takes a slot out of the ring.
        slot = self._ring.get(i)
        if slot is not None:
            return slot
        if self._thread is None:
            self._decoder.goto(i)
            rects = self._ff.rects(i)
            return _Slot(
                self._decoder.canvas.data.cast("B"), _regions(rects, self._decoder.regions_payload())
            )
        with self._cond:
            self._seek(i)
            ok = self._cond.wait_for(
                lambda: i in self._ring or self._error is not None or self._closed, timeout=WAIT_S
            )
            if self._closed:
                raise ValueError("these frames are closed")
            slot = self._ring.get(i)
            if slot is not None:
                return slot
            if self._error is not None:
                raise self._error[1]
            if not ok:
                raise FrameFileError(
                    f"Decoding frame {i} of {self.path.name} took longer than {WAIT_S:g} s; the device is overloaded."
                )
            raise FrameFileError(f"Frame {i} of {self.path.name} was not decoded.")  # pragma: no cover

    def frame(self, i: int) -> memoryview:
        """The whole frame ``i``: width*height*2 bytes of RGB565 BE."""
        return memoryview(self._slot(i).frame)

    def frame_array(self, i: int) -> U8Array:
        """Frame ``i`` as a read-only ``(height, width, 2)`` uint8 array."""
        return np.frombuffer(self.frame(i), dtype=np.uint8).reshape(self.height, self.width, 2)

    def regions(self, i: int) -> list[Region]:
        """The dirty regions turning frame ``i-1`` (the last one, for ``i == 0``) into frame ``i``."""
        return list(self._slot(i).regions)

    # --- the worker's side --------------------------------------------------------------

    def _target(self) -> int | None:
        for k in self._window():
            if k not in self._ring:
                return k
        return None

    def _work(self) -> None:
        decoder = self._decoder
        while True:
            with self._cond:
                while not self._closed and (self._error is not None or self._target() is None):
                    self._cond.wait()
                if self._closed:
                    return
                target = self._target()
                assert target is not None
            try:
                decoder.goto(target)
                slot = _Slot(
                    bytes(decoder.canvas.data), _regions(self._ff.rects(target), decoder.regions_payload())
                )
            except FrameFileError as exc:
                with self._cond:
                    self._error = (target, exc)
                    self._wake_caller()
                continue
            except Exception as exc:  # a decoder bug must not hang the player: report it as a fault
                with self._cond:
                    self._error = (target, FrameFileError(f"Decoding {self.path.name} failed ({exc!r})."))
                    self._wake_caller()
                continue
            with self._cond:
                if target in self._window():
                    self._ring[target] = slot
                self._wake_caller()

    def _wake_caller(self) -> None:
        self._cond.notify_all()
        if self._waker is not None:
            index, event = self._waker
            if index in self._ring or index not in self._window() or self._error is not None:
                event.set()
                self._waker = None

    # --- the rest -------------------------------------------------------------------------

    def verify(self) -> list[str]:
        """Decode every frame and check it against the checksum the writer recorded."""
        problems: list[str] = []
        decoder = make_decoder(self._ff)
        try:
            for i in range(self._ff.frame_count):
                try:
                    decoder.goto(i)
                except FrameFileError as exc:
                    problems.append(f"frame {i}: {exc}")
                    next_key = next(
                        (k for k in range(i + 1, self._ff.frame_count) if self._ff.entries[k].key), None
                    )
                    if next_key is None:
                        break
                    continue
                if not decoder.check_pixels():
                    problems.append(f"frame {i}: decoded pixels differ from the recorded checksum")
        finally:
            decoder.close()
        return problems

    def changed_on_disk(self) -> bool:
        """True when the path no longer names this open file (replaced, deleted) or it shrank."""
        return self._ff.changed_on_disk()

    def close(self) -> None:
        """Stop the worker and release the file. Views handed out stay valid (they own their bytes)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._ring.clear()
            self._cond.notify_all()
            if self._waker is not None:
                self._waker[1].set()
                self._waker = None
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(WAIT_S)
        self._decoder.close()
        self._ff.close()


def _regions(rects: Sequence[Rect], payload: memoryview) -> list[Region]:
    out: list[Region] = []
    pos = 0
    for r in rects:
        n = 2 * r.pixels
        out.append(Region(r.x0, r.y0, r.x1, r.y1, payload[pos : pos + n]))
        pos += n
    return out


AnyFrames = FrameFile | V2Frames


def open_frames(path: Path, *, decode_ahead: bool = False, depth: int = DEPTH) -> AnyFrames:
    """Open the frame file at ``path``, whichever its version (see the module docstring).

    Raises:
        FrameFileError: the file is missing, unreadable, damaged, or of an unknown version.
    """
    version = file_version(path)
    if version == 1:
        return FrameFile.open(path)
    if version == 2:
        ff = FrameFileV2.open(path)
        try:
            return V2Frames(ff, decode_ahead=decode_ahead, depth=depth)
        except BaseException:
            ff.close()
            raise
    raise FrameFileError(
        f"Frame file {Path(path).name} has format version {version}, this LOOP reads 1 and 2; "
        "update LOOP or re-import the item."
    )


def verify_any(path: Path) -> list[str]:
    """Problems with the frame file at ``path``, v1 or v2 (empty when it is sound); never raises for a bad file."""
    try:
        frames = open_frames(path)
    except FrameFileError as exc:
        return [str(exc)]
    with contextlib.closing(frames):
        try:
            return frames.verify()
        except FrameFileError as exc:
            return [str(exc)]


def upgrade_to_v2(src: Path, dest: Path, *, video: bool = False) -> int:
    """Write the v1 frame file ``src`` as a v2 file at ``dest`` (lossless zstd codec); return its size.

    Every frame, duration, loop count and dirty region stays as it was: the player sends the
    same bytes from either file. Whatever follows v1's frame data (the index's metadata block,
    see ``framemeta``) is carried over after v2's, on a page boundary, as it was. Write to a
    staging path and rename it over ``src``: readers that have ``src`` open keep reading it.

    With ``video`` the frames are compressed at the codec's faster video level.

    Raises:
        FrameFileError: ``src`` is not a sound v1 frame file.
        DiskFull: the disk filled up.
    """
    from libloop.media.codec_zstd import LEVEL, VIDEO_LEVEL, ZstdWriter
    from libloop.media.framefile_v2 import PAGE

    with FrameFile.open(src) as old:
        problems = old.verify()
        if problems:
            raise FrameFileError(
                f"Frame file {Path(src).name} is damaged ({problems[0]}); it cannot be converted."
            )
        data_end = int(getattr(old, "data_size", Path(src).stat().st_size))
        level = VIDEO_LEVEL if video else LEVEL
        with ZstdWriter(dest, old.width, old.height, loop_count=old.loop_count, level=level) as writer:
            for i in range(old.frame_count):
                writer.add_frame(np.array(old.frame_array(i)), old.durations_ms[i])
            writer.commit()
    with open(src, "rb") as f:
        f.seek((data_end + PAGE - 1) // PAGE * PAGE)
        trailer = f.read()
    if trailer:
        with open(dest, "r+b") as f:
            start = (f.seek(0, os.SEEK_END) + PAGE - 1) // PAGE * PAGE
            f.truncate(start)
            f.seek(start)
            f.write(trailer)
            f.flush()
            os.fsync(f.fileno())
    return Path(dest).stat().st_size
