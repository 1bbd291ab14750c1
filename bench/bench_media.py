"""Media pipeline figures: import time and peak memory, and dirty-region wire bytes.

Import runs in a fresh child process per input, which reports its own peak resident set size
(``ru_maxrss``: native memory of numpy, Pillow and FFmpeg included, which tracemalloc misses),
next to a baseline child that only imports the same modules.

Wire bytes: for a set of generated animations, the bytes the display puts on the bus to play
them with dirty regions (pixels + CASET/PASET/RAMWR commands per region), against full frames
(frames x 153600). The "with overhead" column adds the fixed per-transfer cost of the cost
model (``TRANSFER_OVERHEAD_BYTES`` per transfer) that the region search optimises.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from bench.report import Report
from libloop.color import rgb888_to_rgb565
from libloop.media.regions import REGION_OVERHEAD_BYTES, TRANSFER_OVERHEAD_BYTES, dirty_rects

FULL_FRAME = 240 * 320 * 2
_COMMAND_BYTES = 11  # CASET + 4, PASET + 4, RAMWR

# Peak RSS: VmHWM of this process image (ru_maxrss survives execve on Linux and would report the
# forking parent's size); ru_maxrss where /proc is missing.
_CHILD = """
import json, resource, sys, time
from pathlib import Path
from libloop.media.importer import import_media
def peak_kb():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if sys.argv[1] == "baseline":
    print(json.dumps({"rss_kb": peak_kb()}))
    raise SystemExit
t = time.perf_counter()
r = import_media(Path(sys.argv[1]), Path(sys.argv[2]))
elapsed = time.perf_counter() - t
print(json.dumps({"seconds": elapsed, "frames": r.frames, "kind": r.kind,
                  "rss_kb": peak_kb()}))
"""


def _run_child(*args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _make_gif(path: Path, frames: int) -> None:
    y, x = np.mgrid[0:240, 0:320]
    base = np.stack([x * 255 // 319, y * 255 // 239, np.full_like(x, 120)], -1).astype(np.uint8)
    images = []
    for i in range(frames):
        a = base.copy()
        px, py = (i * 3) % 280, (i * 2) % 200
        a[py : py + 40, px : px + 40] = (255, 255, 255)
        images.append(Image.fromarray(a).quantize(64))
    images[0].save(path, save_all=True, append_images=images[1:], duration=40, loop=0)


def _make_video(path: Path, seconds: int, fps: int) -> str:
    import av

    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"  # type: ignore[union-attr]
        y, x = np.mgrid[0:720, 0:1280]
        for i in range(seconds * fps):
            a = np.stack([(x + i * 8) % 256, (y + i * 4) % 256, (x + y) % 256], -1).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):  # type: ignore[union-attr, arg-type]
                container.mux(packet)
        for packet in stream.encode():  # type: ignore[union-attr]
            container.mux(packet)
    return codec


def _animations(n: int) -> dict[str, list[np.ndarray]]:
    y, x = np.mgrid[0:320, 0:240]
    backdrop = np.stack([x * 255 // 239, y * 255 // 319, (x + y) % 256], -1).astype(np.uint8)
    rng = np.random.default_rng(5)
    out: dict[str, list[np.ndarray]] = {"sprite": [], "clock": [], "full-motion": [], "fade": []}
    for i in range(n):
        a = backdrop.copy()
        a[100 + (i % 20) : 124 + (i % 20), (i * 4) % 200 : (i * 4) % 200 + 24] = (255, 40, 40)
        out["sprite"].append(a)
        c = np.zeros((320, 240, 3), dtype=np.uint8)
        c[150:170, 60 + (i % 10) * 12 : 72 + (i % 10) * 12] = 255  # the digit that changes
        c[150:170, 40:52] = 255 if (i // 10) % 2 else 0
        out["clock"].append(c)
        noise = rng.integers(0, 64, (320, 240, 3), dtype=np.uint8)
        out["full-motion"].append(((backdrop.astype(np.uint16) + i * 7 + noise) % 256).astype(np.uint8))
        out["fade"].append((backdrop.astype(np.float32) * (1 - i / (n + 1))).astype(np.uint8))
    return out


def _wire(frames: list[np.ndarray]) -> tuple[int, int, int]:
    rgb565 = [rgb888_to_rgb565(f, dither=True) for f in frames]
    wire = with_overhead = regions = 0
    for prev, cur in zip([rgb565[-1], *rgb565[:-1]], rgb565, strict=True):  # includes the loop back
        for r in dirty_rects(prev, cur):
            regions += 1
            wire += _COMMAND_BYTES + 2 * r.pixels
            with_overhead += REGION_OVERHEAD_BYTES + 2 * r.pixels
    return wire, with_overhead, regions


def run(report: Report, quick: bool) -> None:
    """Add the media section to ``report``."""
    section = report.section(
        "Media pipeline",
        "Import time and peak RSS measured in a fresh child process per input; wire bytes of "
        "dirty-region playback (loop back included) vs full frames. Cost model: "
        f"{TRANSFER_OVERHEAD_BYTES} B per transfer, {REGION_OVERHEAD_BYTES} B per region.",
    )
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        gif_frames = 20 if quick else 100
        _make_gif(d / "anim.gif", gif_frames)
        seconds = 2 if quick else 10
        codec = _make_video(d / "clip.mp4", seconds, 30)
        base = _run_child("baseline")
        section.add(
            "baseline child RSS", f"{base['rss_kb'] / 1024:.0f} MB", note="python + numpy + Pillow + libloop"
        )
        g = _run_child(str(d / "anim.gif"), str(d / "anim.loop"))
        section.add(
            f"import {gif_frames}-frame 320x240 GIF",
            f"{g['seconds']:.2f} s, peak RSS {g['rss_kb'] / 1024:.0f} MB",
            f"{g['seconds'] / gif_frames * 1000:.1f} ms/frame",
            f"{int(g['frames'])} frames written",
        )
        v = _run_child(str(d / "clip.mp4"), str(d / "clip.loop"))
        section.add(
            f"import {seconds} s 1280x720 30 fps video ({codec})",
            f"{v['seconds']:.2f} s, peak RSS {v['rss_kb'] / 1024:.0f} MB",
            f"{v['seconds'] / max(1, v['frames']) * 1000:.1f} ms/frame",
            f"{int(v['frames'])} frames written; {(d / 'clip.loop').stat().st_size / 1e6:.1f} MB frame file",
        )
    n = 20 if quick else 60
    for name, frames in _animations(n).items():
        wire, overhead, regions = _wire(frames)
        full = len(frames) * FULL_FRAME
        section.add(
            f"wire bytes, {name} ({len(frames)} frames)",
            f"{wire / full * 100:.1f} % of full frames ({wire / 1e6:.2f} MB)",
            f"full frames: {full / 1e6:.2f} MB",
            f"{regions} regions; with per-transfer overhead {overhead / full * 100:.1f} %",
        )
