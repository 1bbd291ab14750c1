"""Video through PyAV (FFmpeg): MP4, MOV, WebM, MKV, decoded and scaled one frame at a time.

PyAV is imported only here, when a video is opened; without it the import fails with
``MissingExtra`` ("Video import needs the video extra"). A long video never sits in memory:
each decoded frame is scaled by FFmpeg's scaler straight to the size the fitting step needs,
handed on, and dropped.

Caps (``Limits``): playing time (``max_video_seconds``, the rest is cut and the result marked
truncated; there is no frame cap for video, the importer's storage budget stands in) and frame rate (``max_fps``): frames are kept on a fixed time grid of 1/max_fps, so
a 60 fps clip keeps every other frame, and each kept frame lasts until the next kept frame's
timestamp (durations come from timestamps, not from the nominal rate, so variable frame rate
video keeps its timing).

Orientation: phones store video as the sensor sees it and record how to show it, as a display
matrix in the container (MP4/MOV ``tkhd``, which FFmpeg hands to each decoded frame as
``DISPLAYMATRIX`` side data); older tools wrote a ``rotate`` stream tag instead (degrees
clockwise; FFmpeg still reads it from Matroska tags). We read the matrix itself, not just its
rotation angle, so mirrored matrices (front cameras, editors) are shown as players show them,
and fall back to the tag. The first frame is decoded when the file is opened, because that is
where FFmpeg puts the matrix; ``width`` and ``height`` are the size as shown.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from libloop.errors import CorruptMedia, EmptyMedia, MissingExtra, UnsupportedMedia
from libloop.media.decode import MediaSource, Prescale, SourceFrame
from libloop.media.limits import Limits

__all__ = ["Orientation", "VideoSource"]


@dataclass(frozen=True, slots=True)
class Orientation:
    """How a decoded frame is turned to be shown: transposed first, then rows and/or columns reversed.

    These three operations express the eight axis-aligned rotations and mirrors.
    """

    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False

    @classmethod
    def from_display_matrix(cls, matrix: tuple[int, ...]) -> Orientation:
        """The orientation of an FFmpeg display matrix (9 int32, 16.16 fixed point, row-major).

        FFmpeg's convention: a source point (x, y) (y pointing down) is shown at
        ``(x*a + y*c, x*b + y*d)`` where a, b, c, d are entries 0, 1, 3 and 4. With b = c = 0 the
        axes stay (a < 0 mirrors columns, d < 0 mirrors rows); with a = d = 0 they swap (the
        frame is transposed, then b < 0 reverses its rows and c < 0 its columns). A matrix at
        another angle is taken as the nearest of these.
        """
        a, b, c, d = matrix[0], matrix[1], matrix[3], matrix[4]
        if abs(a) + abs(d) >= abs(b) + abs(c):
            return cls(False, flip_rows=d < 0, flip_cols=a < 0)
        return cls(True, flip_rows=b < 0, flip_cols=c < 0)

    @classmethod
    def from_clockwise(cls, degrees: float) -> Orientation:
        """The orientation of a legacy ``rotate`` tag: degrees clockwise (multiples of 90 count)."""
        turn = round(degrees / 90) % 4
        return [cls(), cls(True, False, True), cls(False, True, True), cls(True, True, False)][turn]

    def apply(self, pixels: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """The (h, w, channels) array as shown (a contiguous copy when anything changed)."""
        if not (self.transpose or self.flip_rows or self.flip_cols):
            return pixels
        if self.transpose:
            pixels = pixels.transpose(1, 0, 2)
        if self.flip_rows:
            pixels = pixels[::-1]
        if self.flip_cols:
            pixels = pixels[:, ::-1]
        return np.ascontiguousarray(pixels)


def _frame_display_matrix(frame: Any) -> tuple[int, ...] | None:
    for side in getattr(frame, "side_data", None) or ():
        kind = getattr(getattr(side, "type", None), "name", None)
        if kind == "DISPLAYMATRIX":
            raw = bytes(side)
            if len(raw) >= 36:
                return tuple(int(v) for v in np.frombuffer(raw[:36], dtype=np.int32))
    return None


def _orientation(frame: Any, stream_metadata: dict[str, str]) -> Orientation:
    """The display matrix of the frame, else the stream's legacy ``rotate`` tag, else upright."""
    matrix = _frame_display_matrix(frame)
    if matrix is not None:
        return Orientation.from_display_matrix(matrix)
    rotation = getattr(frame, "rotation", 0) or 0  # PyAV's reading of the matrix, if side data is hidden
    if rotation:
        return Orientation.from_clockwise(-float(rotation))
    for key, value in stream_metadata.items():
        if key.lower() == "rotate":
            try:
                return Orientation.from_clockwise(float(value))
            except ValueError:
                break
    return Orientation()


def _import_av() -> Any:
    try:
        import av
    except ImportError as exc:
        raise MissingExtra("Video import", "video", "av") from exc
    return av


class VideoSource(MediaSource):
    """A video file with at least one video stream (opened; its first frame decoded, for the orientation).

    Raises:
        MissingExtra: PyAV is not installed.
        UnsupportedMedia: no video stream.
        CorruptMedia: FFmpeg cannot read the container.
        MediaTooLarge: the frame size is over the limits.
    """

    kind = "video"

    def __init__(self, path: Path, *, limits: Limits, prescale: Prescale | None, name: str) -> None:
        av = self._av = _import_av()
        self.name = name
        self.limits = limits
        self.prescale = prescale
        self.loop_count = 0
        try:
            self._container = av.open(str(path), mode="r")
        except av.error.EOFError as exc:
            raise EmptyMedia(f"{name} is a video with no frames in it (zero length, or cut short).") from exc
        except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
            raise CorruptMedia(f"{name} is a damaged or unreadable video; upload it again.") from exc
        try:
            if not self._container.streams.video:
                raise UnsupportedMedia(
                    f"{name} has no video in it; LOOP shows pictures and video, not sound."
                )
            self._stream = self._container.streams.video[0]
            ctx = self._stream.codec_context
            self.format = str(self._container.format.name).split(",")[0]
            w, h = int(ctx.width or 0), int(ctx.height or 0)
            limits.check_dimensions(w, h, name)
            self._duration = self._known_duration()
            self._stream.thread_type = "AUTO"
            self._decoded = self._container.decode(self._stream)
            self._first = self._peek()
            self.orientation = (
                _orientation(self._first, dict(self._stream.metadata or {}))
                if self._first is not None
                else Orientation()
            )
            self.width, self.height = (h, w) if self.orientation.transpose else (w, h)
        except BaseException:
            self._container.close()
            raise

    def _peek(self) -> Any:
        av = self._av
        try:
            return next(self._decoded, None)
        except (av.FFmpegError, ValueError, OSError) as exc:
            raise CorruptMedia(f"{self.name} is a damaged video (decoding failed); upload it again.") from exc

    def _known_duration(self) -> float | None:
        s = self._stream
        if s.duration is not None and s.time_base is not None:
            return float(s.duration * s.time_base)
        if self._container.duration is not None:
            return float(self._container.duration) / 1_000_000
        return None

    def _expected_length(self) -> float:
        cap = self.limits.max_video_seconds
        return min(self._duration, cap) if self._duration else cap

    def _to_image(self, frame: Any) -> Image.Image:
        w, h = frame.width, frame.height
        turned = self.orientation.transpose
        shown = (h, w) if turned else (w, h)
        tw, th = self.prescale(*shown) if self.prescale is not None else shown
        tw, th = min(tw, shown[0]), min(th, shown[1])
        if turned:
            tw, th = th, tw
        rgb = frame.reformat(width=max(1, tw), height=max(1, th), format="rgb24", interpolation="AREA")
        return Image.fromarray(self.orientation.apply(rgb.to_ndarray()))

    def frames(self) -> Iterator[SourceFrame]:
        av = self._av
        interval = 1.0 / self.limits.max_fps
        # Timestamps are rounded to the stream's time base (Matroska/WebM: whole milliseconds,
        # so 30 fps arrives as 0, 33, 67, 100 ms): a frame that falls short of its slot by up to
        # that rounding still fills the slot, or a 30 fps WebM would lose every third frame.
        tick = float(self._stream.time_base) if self._stream.time_base else 0.0
        slack = min(interval / 4, max(1e-6, 1.5 * tick))
        length = self._expected_length()
        start: float | None = None
        next_slot = 0.0
        pending: tuple[Image.Image, float] | None = None
        last_gap = interval
        produced = 0
        decoded = itertools.chain([self._first] if self._first is not None else [], self._decoded)
        self._first = None
        try:
            for index, frame in enumerate(decoded):
                t = frame.time
                if t is None:
                    t = index / float(self._stream.average_rate or self.limits.max_fps)
                if start is None:
                    start = t
                t -= start
                if t >= self.limits.max_video_seconds:
                    self.truncated = True
                    break
                if t + slack < next_slot:
                    continue  # frame-rate cap: this frame falls between two grid slots
                next_slot = (math.floor((t + slack) / interval) + 1) * interval
                if pending is not None:
                    image, pt = pending
                    last_gap = max(t - pt, 1e-3)
                    produced += 1
                    # Rounded on the timeline, not per frame, so durations add up without drift.
                    duration = max(1, round(t * 1000) - round(pt * 1000))
                    yield SourceFrame(image, duration, min(0.99, t / length))
                pending = (self._to_image(frame), t)
        except (av.FFmpegError, ValueError, OSError) as exc:
            raise CorruptMedia(f"{self.name} is a damaged video (decoding failed); upload it again.") from exc
        if pending is not None:
            image, pt = pending
            end = self._duration if self._duration and not self.truncated else None
            gap = end - pt if end is not None and end - pt > 1e-3 else last_gap
            produced += 1
            duration = max(1, round((pt + min(gap, 10.0)) * 1000) - round(pt * 1000))
            yield SourceFrame(image, duration, 1.0)
        if produced == 0:
            raise EmptyMedia(f"{self.name} is a video with no frames in it (zero length).")

    def close(self) -> None:
        self._container.close()
