"""Video through PyAV (FFmpeg): MP4, MOV, WebM, MKV, decoded and scaled one frame at a time.

PyAV is imported only here, when a video is opened; without it the import fails with
``MissingExtra`` ("Video import needs the video extra"). A long video never sits in memory:
each decoded frame is scaled by FFmpeg's scaler straight to the size the fitting step needs,
handed on, and dropped.

Caps (``Limits``): playing time (``max_video_seconds``, the rest is cut and the result marked
truncated) and frame rate (``max_fps``): frames are kept on a fixed time grid of 1/max_fps, so
a 60 fps clip keeps every other frame, and each kept frame lasts until the next kept frame's
timestamp (durations come from timestamps, not from the nominal rate, so variable frame rate
video keeps its timing). The display-matrix rotation phones write is applied.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from libloop.errors import CorruptMedia, EmptyMedia, MissingExtra, UnsupportedMedia
from libloop.media.decode import MediaSource, Prescale, SourceFrame
from libloop.media.limits import Limits

__all__ = ["VideoSource"]


def _import_av() -> Any:
    try:
        import av
    except ImportError as exc:
        raise MissingExtra("Video import", "video", "av") from exc
    return av


class VideoSource(MediaSource):
    """A video file with at least one video stream (container opened, nothing decoded yet).

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
            self._coded = (w, h)
            self.width, self.height = w, h
            self._duration = self._known_duration()
        except BaseException:
            self._container.close()
            raise

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
        rotation = round(getattr(frame, "rotation", 0) or 0) % 360
        w, h = frame.width, frame.height
        shown = (h, w) if rotation in (90, 270) else (w, h)
        tw, th = self.prescale(*shown) if self.prescale is not None else shown
        tw, th = min(tw, shown[0]), min(th, shown[1])
        if rotation in (90, 270):
            tw, th = th, tw
        rgb = frame.reformat(width=max(1, tw), height=max(1, th), format="rgb24", interpolation="AREA")
        image = Image.fromarray(rgb.to_ndarray())
        if rotation:
            image = image.rotate(rotation, expand=True)
        return image

    def frames(self) -> Iterator[SourceFrame]:
        av = self._av
        interval = 1.0 / self.limits.max_fps
        length = self._expected_length()
        start: float | None = None
        next_slot = 0.0
        pending: tuple[Image.Image, float] | None = None
        last_gap = interval
        produced = 0
        self._stream.thread_type = "AUTO"
        try:
            for index, frame in enumerate(self._container.decode(self._stream)):
                t = frame.time
                if t is None:
                    t = index / float(self._stream.average_rate or self.limits.max_fps)
                if start is None:
                    start = t
                t -= start
                if t >= self.limits.max_video_seconds:
                    self.truncated = True
                    break
                if t < next_slot - 1e-6:
                    continue  # frame-rate cap: this frame falls between two grid slots
                next_slot = (math.floor(t / interval + 1e-6) + 1) * interval
                if pending is not None:
                    image, pt = pending
                    last_gap = max(t - pt, 1e-3)
                    produced += 1
                    # Rounded on the timeline, not per frame, so durations add up without drift.
                    duration = max(1, round(t * 1000) - round(pt * 1000))
                    yield SourceFrame(image, duration, min(0.99, t / length))
                    if produced >= self.limits.max_frames:
                        self.truncated = True
                        pending = None
                        break
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
