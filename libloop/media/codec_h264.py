"""The video v2 codec: a panel-sized H.264 re-encode, decoded and dithered to RGB565 at play time.

At import each fitted RGB frame is converted to YUV 4:2:0 (BT.601, limited range) and encoded
with libx264 at the panel's size — no B-frames, so each
chunk decodes to its frame at once and decode order is play order. The writer decodes every
packet again, exactly as the player will (FFmpeg's H.264 decoder is bit-exact, the YUV to RGB
conversion and the ordered dither are ours and integer), and computes the dirty regions and
the frame checksums from that decode: what the panel shows is the decoded re-encode, and
``loop export``, the previews and the dirty regions all see the same pixels.

Parameters chosen by measurement (``bench/bench_storage.py``): CRF 20 with the ``faster``
preset, a key frame at least every ``GOP_FRAMES`` frames. On the bench corpus that is well
under the source's size and costs about 1 ms a frame to decode and convert on the bench
machine (about 10 ms on a Pi Zero 2 W, a third of a 30 fps frame period, on a core of its
own). Needs PyAV (the ``video`` extra), imported when a video file is written or opened.
"""

from __future__ import annotations

import collections
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from libloop.color import dithered_rgb565
from libloop.errors import FrameFileError, MissingExtra
from libloop.media._fileio import check_duration
from libloop.media.codec import CodecWriter, FrameDecoder, damaged
from libloop.media.framefile_v2 import CODEC_H264, FrameFileV2
from libloop.media.regions import Rect, dirty_rects

__all__ = [
    "CRF",
    "GOP_FRAMES",
    "PRESET",
    "H264Decoder",
    "H264Writer",
    "h264_available",
    "yuv420_to_rgb565",
]

CRF = 20
PRESET = "faster"
#: At most this many frames between key frames (x264 adds more at scene cuts).
GOP_FRAMES = 60
#: Encoder threads (the import runs in a niced child process; one thread keeps it gentle).
ENCODER_THREADS = 1

U8Array = npt.NDArray[np.uint8]
I32Array = npt.NDArray[np.int32]


def _av() -> Any:
    try:
        import av
    except ImportError as exc:
        raise MissingExtra("Video", "video", "av") from exc
    return av


def h264_available() -> bool:
    """Whether PyAV is installed and its FFmpeg can encode H.264 (libx264) and decode it."""
    try:
        av = _av()
    except MissingExtra:
        return False
    codecs = av.codecs_available
    return "libx264" in codecs and "h264" in codecs


# --- colour: BT.601 limited range, integer arithmetic, the same on every machine -----------


def _tables() -> tuple[I32Array, I32Array, I32Array, I32Array, I32Array]:
    k = np.arange(256, dtype=np.int32)
    return (
        298 * (k - 16) + 128,  # luma, with the rounding term
        409 * (k - 128),  # V -> R
        -100 * (k - 128),  # U -> G
        -208 * (k - 128),  # V -> G
        516 * (k - 128),  # U -> B
    )


_Y, _RV, _GU, _GV, _BU = _tables()


def yuv420_to_rgb565(y: U8Array, u: U8Array, v: U8Array, out: U8Array) -> None:
    """Convert 4:2:0 planes (``(h, w)``, ``(h/2, w/2)`` twice) into ``out``, RGB565 BE, dithered.

    BT.601 limited range in integer arithmetic (so every machine decodes a file to the same
    pixels), chroma repeated over each 2x2 block, then the ordered dither of ``libloop.color``:
    the same look as frames imported without a re-encode.
    """
    h, w = y.shape
    luma = np.take(_Y, y).reshape(h // 2, 2, w // 2, 2)

    def channel(chroma: I32Array) -> U8Array:
        full = (luma + chroma[:, None, :, None]) >> 8
        plane: U8Array = np.clip(full, 0, 255).astype(np.uint8).reshape(h, w)
        return plane

    red = channel(np.take(_RV, v))
    green = channel(np.take(_GU, u) + np.take(_GV, v))
    blue = channel(np.take(_BU, u))
    out.view(">u2").reshape(h, w)[...] = dithered_rgb565(red, green, blue)


def _planes(frame: Any, width: int, height: int) -> tuple[U8Array, U8Array, U8Array]:
    """The Y, U and V planes of a decoded yuv420p frame, as views (strides dropped)."""
    if frame.format.name != "yuv420p" or frame.width != width or frame.height != height:
        raise ValueError(f"decoded a {frame.width}x{frame.height} {frame.format.name} frame")
    sizes = ((height, width), (height // 2, width // 2), (height // 2, width // 2))
    planes = []
    for plane, (ph, pw) in zip(frame.planes, sizes, strict=True):
        raw = np.frombuffer(plane, dtype=np.uint8)
        planes.append(raw[: ph * plane.line_size].reshape(ph, plane.line_size)[:, :pw])
    return planes[0], planes[1], planes[2]


def _decoder_context(av: Any) -> Any:
    ctx = av.CodecContext.create("h264", "r")
    ctx.thread_count = 1  # one core, and each packet out as its frame at once
    ctx.thread_type = "NONE"
    # The streams have no B-frames: without this FFmpeg holds a picture back until it knows.
    ctx.flags = int(ctx.flags) | int(av.codec.context.Flags.low_delay)
    return ctx


# --- writing -------------------------------------------------------------------------------


class H264Writer(CodecWriter):
    """Streams fitted RGB frames into a v2 frame file with the H.264 codec.

    ``add_frame`` takes the RGB888 frame *before* the RGB565 conversion (``wants_rgb888``):
    the dither is applied after decoding, as at play time. Memory stays bounded: the encoder's
    look-ahead (a few dozen YUV frames, about 4 MB at 240x320), the first and the previous
    decoded frame, and the tables.

    Raises:
        MissingExtra: PyAV is not installed.
        ValueError: a side is odd (4:2:0 needs even sides).
        DiskFull: the disk filled up while writing (the partial file is removed).
    """

    wants_rgb888 = True

    def __init__(
        self,
        dest: Path,
        width: int,
        height: int,
        *,
        loop_count: int = 0,
        crf: int = CRF,
        preset: str = PRESET,
        gop: int = GOP_FRAMES,
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"H.264 frame files need even sides, got {width}x{height}")
        av = self._av = _av()
        super().__init__(dest, width, height, CODEC_H264, loop_count=loop_count)
        enc = av.CodecContext.create("libx264", "w")
        enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
        enc.time_base = Fraction(1, 1000)
        enc.gop_size = gop
        enc.max_b_frames = 0  # decode order is play order: one chunk, one picture
        enc.thread_count = ENCODER_THREADS
        enc.options = {"crf": str(crf), "preset": preset}
        self._enc = enc
        self._dec = _decoder_context(av)
        self._pts = 0
        self._largest = 0
        self._durations: collections.deque[int] = collections.deque()
        self._packets: collections.deque[tuple[bytes, bool]] = collections.deque()
        self._decoded = np.zeros((height, width, 2), dtype=np.uint8)

    @property
    def bytes_upper_bound(self) -> int:
        """The file's size once the frames the encoder still holds are out, at most (about)."""
        held = len(self._durations)
        return self._out.bytes_written + held * max(self._largest, self.width * self.height // 8)

    def add_frame(self, rgb: U8Array, duration_ms: int) -> None:
        """Append one frame, an ``(height, width, 3)`` uint8 RGB array, lasting ``duration_ms``.

        Raises:
            ValueError: wrong shape/dtype or a duration outside 1..2**32-1 ms.
            DiskFull: the disk filled up (the partial file is removed).
        """
        if rgb.shape[:2] != (self.height, self.width) or rgb.ndim != 3 or rgb.dtype != np.uint8:
            raise ValueError(
                f"expected a ({self.height}, {self.width}, 3) uint8 frame, got {rgb.shape} {rgb.dtype}"
            )
        check_duration(duration_ms)
        # FFmpeg's scaler makes the encoder's YUV (BT.601, limited range, what the decoder
        # side assumes); only the decoding side needs to be ours, for what the panel shows.
        rgb_frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:, :, :3]), format="rgb24")
        frame = rgb_frame.reformat(format="yuv420p")
        frame.pts = self._pts
        frame.time_base = self._enc.time_base
        self._pts += int(duration_ms)
        self._durations.append(int(duration_ms))
        self._take(self._enc.encode(frame))

    def _take(self, packets: list[Any]) -> None:
        for packet in packets:
            data = bytes(packet)
            self._largest = max(self._largest, len(data))
            self._packets.append((data, bool(packet.is_keyframe)))
            for decoded in self._dec.decode(self._av.Packet(data)):
                self._store(decoded)

    def _store(self, decoded: Any) -> None:
        if not self._packets or not self._durations:
            raise RuntimeError("the H.264 decoder returned more frames than were encoded")
        chunk, key = self._packets.popleft()
        duration = self._durations.popleft()
        yuv420_to_rgb565(*_planes(decoded, self.width, self.height), self._decoded)
        frame = self._decoded
        rects: list[Rect] = [] if self._prev is None else dirty_rects(self._prev, frame)
        self._out.add_chunk(
            chunk, duration_ms=duration, pixel_crc=zlib.crc32(frame.data.cast("B")), rects=rects, key=key
        )
        self._keep(frame)

    def commit(self) -> Path:
        """Drain the encoder, give frame 0 its loop-back regions, and commit the file atomically.

        Raises:
            EmptyMedia: no frame was added.
            DiskFull: the disk filled up (the partial file is removed).
        """
        if self._durations:
            self._take(self._enc.encode(None))
            for decoded in self._dec.decode(None):
                self._store(decoded)
        if self._durations or self._packets:
            self.abort()
            raise RuntimeError("the H.264 encoder and decoder lost frames")
        return self._commit()

    def abort(self) -> None:
        """Discard everything written. Safe to call more than once."""
        self._durations.clear()
        self._packets.clear()
        super().abort()


# --- reading -------------------------------------------------------------------------------


class H264Decoder(FrameDecoder):
    """Decodes an H.264-codec v2 file; frames nobody will see are decoded but not converted."""

    cumulative = False

    def __init__(self, ff: FrameFileV2) -> None:
        super().__init__(ff)
        try:
            self._av = _av()
        except MissingExtra as exc:
            raise FrameFileError(f"{ff.path.name} is a video; playing it {exc}") from None
        self._ctx: Any = None
        self._last: Any = None

    def _reset(self) -> None:
        self._ctx = None
        self._last = None

    def _decode(self, i: int, chunk: bytearray, pixels: bool) -> memoryview | None:
        av = self._av
        if self._ctx is None:
            if not self.ff.entries[i].key:
                raise damaged(self.ff, i, "decoding did not start at a key frame")
            self._ctx = _decoder_context(av)
        try:
            frames = self._ctx.decode(av.Packet(bytes(chunk)))
        except (av.FFmpegError, ValueError) as exc:
            raise damaged(self.ff, i, f"H.264: {exc}") from None
        if len(frames) != 1:
            raise damaged(self.ff, i, f"{len(frames)} pictures in one chunk")
        self._last = frames[0]
        if pixels:
            self._convert()
        return None

    def _convert(self) -> None:
        if self._last is None:
            raise damaged(self.ff, self.position, "nothing decoded")
        try:
            planes = _planes(self._last, self.ff.width, self.ff.height)
        except ValueError as exc:
            raise damaged(self.ff, self.position, str(exc)) from None
        yuv420_to_rgb565(*planes, self.canvas)
