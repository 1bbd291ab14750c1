"""``loop export``: a frame file's frames as PNG files, exactly as the panel will show them.

Each RGB565 frame is expanded the way the panel's DAC shows it (``rgb565_to_rgb888``), so the
PNGs show the dithering and the 5/6/5-bit levels, not the source. ``frames.json`` records the
durations and the loop count, so the export is a complete record of what will be played.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from libloop.color import rgb565_to_rgb888
from libloop.media.framefile import FrameFile

__all__ = ["export_frames"]


def export_frames(frame_file_path: Path, out_dir: Path) -> list[Path]:
    """Write ``frame_0000.png``... and ``frames.json`` into ``out_dir``; return the PNG paths.

    ``frames.json``: ``{"width", "height", "loop_count", "durations_ms": [...], "frames": [names]}``.

    Raises:
        FrameFileError: the frame file is missing or damaged.
        OSError: ``out_dir`` cannot be written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    with FrameFile.open(Path(frame_file_path)) as ff:
        for i in range(ff.frame_count):
            rgb = rgb565_to_rgb888(ff.frame(i), ff.width, ff.height)
            path = out_dir / f"frame_{i:04d}.png"
            Image.fromarray(rgb).save(path, format="PNG")
            paths.append(path)
        meta = {
            "width": ff.width,
            "height": ff.height,
            "loop_count": ff.loop_count,
            "durations_ms": list(ff.durations_ms),
            "frames": [p.name for p in paths],
        }
    (out_dir / "frames.json").write_text(json.dumps(meta, indent=2) + "\n")
    return paths
