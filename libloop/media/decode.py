"""Decoding: recognise a file by its CONTENT and stream its frames as composited RGBA images.

What a file is comes from its first bytes, never from its name: a PNG named ``.gif`` imports
as a picture, a text file named ``.mp4`` is refused. Three decoders share one interface,
``MediaSource``:

* GIF (``decode_gif``): our own compositor, with browser semantics (see that module);
* APNG (``decode_apng``): our own chunk walker and compositor (the spec's blend and dispose
  rules), Pillow decoding each frame's pixels;
* pictures and animated WebP (``decode_image``): Pillow, for PNG, JPEG (EXIF orientation
  applied), BMP and WebP (animated or not);
* video (``decode_video``): PyAV (FFmpeg) for MP4/MOV, WebM and MKV, streamed.

Every decoder checks dimensions on the header before decoding pixels, yields one frame at a
time (memory stays bounded whatever the input) and raises only ``MediaError`` subclasses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from PIL import Image

from libloop.errors import EmptyMedia, UnsupportedMedia
from libloop.media.limits import Limits

__all__ = [
    "DelayPolicy",
    "Kind",
    "MediaSource",
    "Prescale",
    "SourceFrame",
    "open_media",
    "sniff",
]

Kind = Literal["gif", "image", "video"]

#: Maps a source size (w, h) to the smallest decoded size the fitting step still needs; lets
#: JPEG (draft mode) and video (scaler) decode smaller, which is much faster on a Pi.
Prescale = Callable[[int, int], tuple[int, int]]


@dataclass(frozen=True, slots=True)
class DelayPolicy:
    """How frame delays are turned into display durations.

    Browsers (Chrome, Firefox) play GIF delays of 0 or 1 centisecond as 100 ms, because
    many old GIFs rely on it; we do the same by default.

    Attributes:
        short_delay_ms: the duration given to frames whose delay is at most ``short_threshold_ms``.
        short_threshold_ms: delays up to this (10 ms, i.e. 0 or 1 cs) count as "no delay given".
        min_delay_ms: any other delay is raised to at least this (the panel cannot go faster
            than ~19 ms for a full frame at 64 MHz anyway).
        still_ms: how long a still picture's single frame lasts.
    """

    short_delay_ms: int = 100
    short_threshold_ms: int = 10
    min_delay_ms: int = 20
    still_ms: int = 10_000

    def __post_init__(self) -> None:
        if min(self.short_delay_ms, self.min_delay_ms, self.still_ms) < 1 or self.short_threshold_ms < 0:
            raise ValueError("delays must be at least 1 ms (threshold at least 0)")

    def animation_delay(self, delay_ms: float | None) -> int:
        """The display duration of an animation frame whose file says ``delay_ms``."""
        if delay_ms is None or delay_ms <= self.short_threshold_ms:
            return self.short_delay_ms
        return max(self.min_delay_ms, round(delay_ms))


@dataclass(frozen=True, slots=True)
class SourceFrame:
    """One decoded frame: an RGB or RGBA image at (about) source size, its duration and progress 0..1."""

    image: Image.Image
    duration_ms: int
    progress: float


class MediaSource(ABC):
    """A decoded input: what it is, its size, and its frames, one at a time."""

    kind: Kind
    format: str
    width: int
    height: int
    #: Player semantics: 0 = loop forever, n = play n times.
    loop_count: int = 0
    #: Set once iteration stopped at a limit (max frames, max seconds).
    truncated: bool = False

    @abstractmethod
    def frames(self) -> Iterator[SourceFrame]:
        """Yield the frames in order; raises only MediaError subclasses."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the file and decoder."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


_MP4_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


def sniff(head: bytes) -> Literal["gif", "video", "picture", "unknown"]:
    """What the first bytes of a file say it is."""
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"\x1a\x45\xdf\xa3" or (len(head) >= 8 and head[4:8] in _MP4_BOXES):
        return "video"  # Matroska/WebM, ISO base media (MP4, MOV)
    if (
        head[:8] == b"\x89PNG\r\n\x1a\n"
        or head[:3] == b"\xff\xd8\xff"
        or head[:2] == b"BM"
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    ):
        return "picture"
    return "unknown"


def open_media(
    path: Path,
    *,
    limits: Limits | None = None,
    delays: DelayPolicy | None = None,
    prescale: Prescale | None = None,
    name: str | None = None,
) -> MediaSource:
    """Recognise ``path`` by content and open the right decoder (headers read, no pixels yet).

    Args:
        path: the file.
        limits: size/frame/length limits (defaults: ``Limits()``).
        delays: frame delay policy (defaults: ``DelayPolicy()``).
        prescale: optional mapping from source size to the smallest size worth decoding.
        name: how to call the file in error messages (defaults to its file name).

    Raises:
        EmptyMedia: zero bytes.
        UnsupportedMedia: not a picture, animation or video LOOP reads.
        CorruptMedia: the header is damaged.
        MediaTooLarge: over a limit in ``limits``.
        MissingExtra: a video, and PyAV is not installed.
    """
    limits = limits or Limits()
    delays = delays or DelayPolicy()
    label = name or path.name
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(32)
    except OSError as exc:
        raise UnsupportedMedia(f"{label} cannot be read ({exc.strerror}).") from exc
    if size == 0:
        raise EmptyMedia(f"{label} is empty (zero bytes); upload the file again.")
    limits.check_file_size(size, label)
    what = sniff(head)
    if what == "gif":
        from libloop.media.decode_gif import GifSource

        return GifSource(path, limits=limits, delays=delays, name=label)
    if what == "picture":
        from libloop.media.decode_apng import ApngSource, is_animated_png
        from libloop.media.decode_image import open_picture

        if is_animated_png(path):
            return ApngSource(path, limits=limits, delays=delays, name=label)

        return open_picture(path, limits=limits, delays=delays, prescale=prescale, name=label)
    if what == "video":
        from libloop.media.decode_video import VideoSource

        return VideoSource(path, limits=limits, prescale=prescale, name=label)
    raise UnsupportedMedia(
        f"{label} is not a picture, GIF or video LOOP can read; use GIF, PNG, JPEG, BMP, WebP, "
        "MP4, MOV, WebM or MKV."
    )
