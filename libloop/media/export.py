"""``loop export``: a frame file's frames as PNG files, exactly as the panel will show them.

Each RGB565 frame is expanded the way the panel's DAC shows it (``rgb565_to_rgb888``), so the
PNGs show the dithering and the 5/6/5-bit levels, not the source. A v2 file is decoded as the
player decodes it (``libloop.media.frames``): a video's PNGs are its panel-sized re-encode. ``frames.json`` records the
durations and the loop count, so the export is a complete record of what will be played.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path

from PIL import Image

from libloop.color import rgb565_to_rgb888
from libloop.errors import ExportError
from libloop.media.frames import open_frames

__all__ = ["export_frames"]


def export_frames(frame_file_path: Path, out_dir: Path) -> list[Path]:
    """Write ``frame_0000.png``... and ``frames.json`` into ``out_dir``; return the PNG paths.

    ``frames.json``: ``{"width", "height", "loop_count", "durations_ms": [...], "frames": [names]}``.
    ``out_dir`` (and its missing parents) is created. When writing fails part-way, the files
    and directories this call made are removed again.

    Raises:
        FrameFileError: the frame file is missing or damaged.
        ExportError: ``out_dir`` is a file, or cannot be created or written (one sentence).
    """
    out_dir = Path(out_dir)
    with open_frames(Path(frame_file_path)) as ff:
        created = _make_dir(out_dir)
        written: list[Path] = []
        try:
            for i in range(ff.frame_count):
                rgb = rgb565_to_rgb888(ff.frame(i), ff.width, ff.height)
                path = out_dir / f"frame_{i:04d}.png"
                written.append(path)
                Image.fromarray(rgb).save(path, format="PNG")
            meta = {
                "width": ff.width,
                "height": ff.height,
                "loop_count": ff.loop_count,
                "durations_ms": list(ff.durations_ms),
                "frames": [p.name for p in written],
            }
            written.append(out_dir / "frames.json")
            written[-1].write_text(json.dumps(meta, indent=2) + "\n")
        except OSError as exc:
            for path in written:
                with contextlib.suppress(OSError):
                    path.unlink()
            for directory in created:
                with contextlib.suppress(OSError):
                    directory.rmdir()
            raise ExportError(_sentence(out_dir, exc)) from None
    return written[:-1]


def _make_dir(out_dir: Path) -> list[Path]:
    """Create ``out_dir`` if needed and check it can be written; the directories made, deepest first."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(
            f"{out_dir} is a file, not a directory; give a directory to write the frames into "
            "(a missing one is created)."
        )
    missing = [d for d in (out_dir, *out_dir.parents) if not d.exists()]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        for directory in missing:
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise ExportError(_sentence(out_dir, exc)) from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ExportError(_sentence(out_dir, PermissionError(errno.EACCES, "permission denied")))
    return [d for d in missing if d.is_dir()]


def _sentence(out_dir: Path, exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return f"Cannot write into {out_dir}: permission denied; choose a directory this user can write to."
    if isinstance(exc, FileExistsError | NotADirectoryError):
        return f"Cannot create {out_dir} because part of that path is a file; choose another directory."
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"The disk filled up while writing the frames into {out_dir}; free some space and retry."
    reason = exc.strerror or str(exc)
    return f"Cannot write the frames into {out_dir} ({reason}); choose another directory."
