"""Media pipeline: any GIF, picture or video in, a display-ready frame file out.

``import_media`` is the entry point; ``FrameFile`` reads what it wrote. The import queue lives
in ``libloop.media.jobs`` (not imported here: it depends on the index, which imports this package).
"""

from __future__ import annotations

from libloop.media.decode import DelayPolicy, open_media
from libloop.media.export import export_frames
from libloop.media.fit import FitMode, fit_frame
from libloop.media.framefile import FrameFile, FrameFileWriter, Region, verify_file
from libloop.media.importer import ImportOptions, ImportResult, content_hash, import_media
from libloop.media.limits import Limits
from libloop.media.regions import REGION_OVERHEAD_BYTES, TRANSFER_OVERHEAD_BYTES, Rect, dirty_rects

__all__ = [
    "REGION_OVERHEAD_BYTES",
    "TRANSFER_OVERHEAD_BYTES",
    "DelayPolicy",
    "FitMode",
    "FrameFile",
    "FrameFileWriter",
    "ImportOptions",
    "ImportResult",
    "Limits",
    "Rect",
    "Region",
    "content_hash",
    "dirty_rects",
    "export_frames",
    "fit_frame",
    "import_media",
    "open_media",
    "verify_file",
]
