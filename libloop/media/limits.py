"""Documented limits on what an import accepts, so that no upload can exhaust a Pi Zero (512 MB).

Checks happen on the header, BEFORE any pixel is decoded. Pillow's own guard
(``Image.MAX_IMAGE_PIXELS``, about 89 megapixels, a warning below twice that) is far too lax for
a Pi Zero: a 89-megapixel RGBA canvas alone is 356 MB. We refuse anything above
``max_pixels`` (40 megapixels by default) and any side longer than ``max_side``; the decoder
also turns Pillow's ``DecompressionBombWarning`` into ``MediaTooLarge``.

Long inputs are cut, not refused: animations after ``max_frames`` frames, videos after
``max_video_seconds``, and any item once its frame file would pass ``max_item_bytes`` (the
storage budget of one item); the import result says it was cut (``truncated=True``). Videos
have no frame cap: at 30 fps a minute is 1,800 frames, and the budget decides what is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from libloop.errors import MediaTooLarge

__all__ = ["Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    """What an import accepts.

    Attributes:
        max_file_bytes: largest upload accepted (200 MB).
        max_pixels: largest frame, in source pixels (40 megapixels, ~160 MB as RGBA).
        max_side: longest side of a source frame in pixels (16384).
        max_aspect: most elongated shape accepted, long side / short side (50: refuses 1x100000).
        max_frames: animations are cut after this many frames (1000); videos are not (their
            length and the storage budget limit them).
        max_video_seconds: videos are cut after this much playing time (10 minutes; the storage
            budget usually decides first).
        max_fps: videos are thinned to at most this frame rate (30 fps).
        max_item_bytes: the storage budget of one item: an import stops before its frame file
            would pass it (48 MiB: several minutes of panel-sized H.264 even for full-motion
            video, whose frames the bench measures at about 0.1 MB a second; a GIF of 1000
            noisy full frames that zstd cannot shrink is cut after about 320).
    """

    max_file_bytes: int = 200 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_side: int = 16384
    max_aspect: float = 50.0
    max_frames: int = 1000
    max_video_seconds: float = 600.0
    max_fps: float = 30.0
    max_item_bytes: int = 48 * 1024 * 1024

    def __post_init__(self) -> None:
        if min(self.max_file_bytes, self.max_pixels, self.max_side, self.max_frames) < 1:
            raise ValueError("every limit must be at least 1")
        if self.max_item_bytes < 1 << 20:
            raise ValueError("max_item_bytes must be at least 1 MiB")
        if self.max_aspect < 1 or self.max_video_seconds <= 0 or self.max_fps <= 0:
            raise ValueError("max_aspect must be >= 1, max_video_seconds and max_fps > 0")

    def check_file_size(self, size: int, name: str) -> None:
        """Raise MediaTooLarge when a file of ``size`` bytes is over ``max_file_bytes``."""
        if size > self.max_file_bytes:
            raise MediaTooLarge(
                f"{name} is {size / 1e6:.0f} MB; the largest file LOOP imports is "
                f"{self.max_file_bytes / 1e6:.0f} MB, so shorten or compress it first."
            )

    def check_dimensions(self, width: int, height: int, name: str) -> None:
        """Raise MediaTooLarge (or for zero sizes, ValueError-free MediaTooLarge) for frames LOOP refuses."""
        if width < 1 or height < 1:
            raise MediaTooLarge(f"{name} claims a size of {width}x{height} pixels, which cannot be shown.")
        if width > self.max_side or height > self.max_side or width * height > self.max_pixels:
            raise MediaTooLarge(
                f"{name} is {width}x{height} pixels; LOOP imports at most {self.max_pixels / 1e6:.0f} "
                f"megapixels and {self.max_side} pixels a side, so scale it down first."
            )
        if max(width, height) / min(width, height) > self.max_aspect:
            raise MediaTooLarge(
                f"{name} is {width}x{height} pixels, too elongated to show (more than "
                f"{self.max_aspect:g}:1); crop it first."
            )
