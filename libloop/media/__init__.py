"""Media pipeline: any GIF, picture or video in, a display-ready frame file out."""

from __future__ import annotations

from libloop.media.framefile import FrameFile, FrameFileWriter, Region, verify_file
from libloop.media.regions import REGION_OVERHEAD_BYTES, TRANSFER_OVERHEAD_BYTES, Rect, dirty_rects

__all__ = [
    "REGION_OVERHEAD_BYTES",
    "TRANSFER_OVERHEAD_BYTES",
    "FrameFile",
    "FrameFileWriter",
    "Rect",
    "Region",
    "dirty_rects",
    "verify_file",
]
