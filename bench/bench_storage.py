"""Frame storage: bytes on the card, import time and the CPU to produce a frame, per candidate format.

The corpus: three GIFs like the ones people upload (a sprite over a still scene, a news ticker
scrolling under a static logo, a big counter), a full-motion video (a 720p pan across a
textured scene with a moving block: every pixel changes every frame), a 30 s 720p H.264 clip
(the test corpus's film-grain picture, ``tests.real_corpus``) and a 12 MP camera JPEG.

Candidates, all producing exactly what the panel is sent except H.264:

* ``v1 raw``: every frame whole (format v1, what LOOP wrote before);
* ``lz4 frames``: key frame + dirty-region pixels, each frame compressed on its own with lz4
  (measured from the v1 frames, not a file format);
* ``zstd stream`` (v2 lossless, ``codec_zstd``): key frames + dirty-region pixels as the blocks
  of a zstd stream;
* ``h264`` (v2, videos, ``codec_h264``): a panel-sized re-encode, decoded and dithered when played;
  its quality against the lossless frames is given as PSNR.

"CPU per frame" is the thread CPU time to produce one frame's panel bytes (whole frame and
dirty regions) in play order, on this machine; the Pi Zero 2 W figure multiplies it by 10
(its Cortex-A53 cores are about a tenth of this machine's). Then each v2 file is played by
the real player on the real clock, with decode-ahead on its worker thread and the fake spidev
bus (wire time modelled, not slept): frames dropped, lateness and the send's host CPU.
"""

from __future__ import annotations

import math
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bench.report import Report, Section
from libloop.clock import MonotonicClock
from libloop.color import rgb565_to_rgb888
from libloop.index import Library, NewItem
from libloop.media.framefile import FrameFile
from libloop.media.frames import open_frames
from libloop.media.importer import ImportOptions, ImportResult, import_media
from libloop.media.limits import Limits
from libloop.player import Player
from sim.wiring import SimWiring

PI_FACTOR = 10
WIRE_HZ = 64_000_000
#: What the importer would cut: nothing here (the bench measures whole inputs).
NO_CUTS = Limits(max_item_bytes=1 << 40, max_frames=100_000)


# --- the corpus ------------------------------------------------------------------------------


def make_sprite(path: Path, n: int = 60) -> None:
    """A 320x240 sticker: sky, ground and clouds, a ball bouncing across, 64 colours, 40 ms."""
    w, h = 320, 240
    y, _ = np.mgrid[0:h, 0:w]
    sky = np.stack([np.full_like(y, 80), 140 + y * 60 // h, 230 - y * 40 // h], -1).astype(np.uint8)
    sky[170:] = (70, 160, 60)
    base = Image.fromarray(sky)
    d = ImageDraw.Draw(base)
    for k in range(6):
        d.ellipse((20 + k * 50, 30 + (k % 2) * 20, 70 + k * 50, 60 + (k % 2) * 20), fill=(245, 245, 250))
    frames = []
    for i in range(n):
        im = base.copy()
        dd = ImageDraw.Draw(im)
        t = i / n * 2 * math.pi
        cx, cy = int(160 + 120 * math.cos(t)), int(140 - 60 * abs(math.sin(2 * t)))
        dd.ellipse((cx - 24, cy - 24, cx + 24, cy + 24), fill=(230, 50, 40), outline=(0, 0, 0), width=3)
        dd.ellipse((cx - 10, cy - 12, cx - 2, cy - 4), fill=(255, 255, 255))
        dd.ellipse((cx + 2, cy - 12, cx + 10, cy - 4), fill=(255, 255, 255))
        frames.append(im.quantize(64, dither=Image.Dither.NONE))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40, loop=0, optimize=True)


def make_ticker(path: Path, n: int = 120) -> None:
    """A 320x240 news ticker: a static logo, a red band whose text scrolls 6 px a frame, 50 ms."""
    w, h = 320, 240
    font = ImageFont.load_default(size=28)
    text = (
        "  LOOP ticker: BTC 91,204 +1.2%  ETH 3,310 -0.4%  WEATHER 14C light rain  NEWS: panel shows GIFs  "
    )
    base = Image.new("RGB", (w, h), (20, 24, 40))
    d = ImageDraw.Draw(base)
    d.rectangle((10, 10, 310, 180), fill=(40, 60, 110))
    d.text((30, 60), "LOOP NEWS", font=ImageFont.load_default(size=44), fill=(250, 250, 250))
    strip = Image.new("RGB", (int(d.textlength(text, font=font)) + w, 40), (200, 30, 30))
    ImageDraw.Draw(strip).text((0, 4), text, font=font, fill=(255, 255, 255))
    frames = []
    for i in range(n):
        im = base.copy()
        off = (i * 6) % (strip.width - w)
        im.paste(strip.crop((off, 0, off + w, 40)), (0, 195))
        frames.append(im.quantize(32, dither=Image.Dither.NONE))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0, optimize=True)


def make_counter(path: Path, n: int = 100) -> None:
    """A 240x240 counter: big digits 00..99 on a dark plate, 16 colours, 100 ms."""
    font = ImageFont.load_default(size=110)
    frames = []
    for i in range(n):
        im = Image.new("RGB", (240, 240), (250, 250, 245))
        d = ImageDraw.Draw(im)
        d.rounded_rectangle((10, 40, 230, 200), 20, fill=(30, 30, 35))
        d.text((120, 120), f"{i:02d}", font=font, fill=(120, 255, 140), anchor="mm")
        frames.append(im.quantize(16, dither=Image.Dither.NONE))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0, optimize=True)


def make_full_motion(path: Path, seconds: int) -> None:
    """1280x720 30 fps H.264 (ultrafast, CRF 23): a pan across a blurred texture, a block moving."""
    import av
    from PIL import ImageFilter

    rng = np.random.default_rng(3)
    w, h = 1280, 720
    small = rng.integers(0, 256, (h // 8, (w * 3) // 8, 3), dtype=np.uint8)
    scene = np.asarray(
        Image.fromarray(small)
        .resize((w * 3, h), Image.Resampling.BICUBIC)
        .filter(ImageFilter.GaussianBlur(2))
    )
    with av.open(str(path), "w") as container:
        stream: Any = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        for i in range(seconds * 30):
            x = (i * 6) % (w * 2)
            f = scene[:, x : x + w].copy()
            f[300:420, (i * 10) % 1100 : (i * 10) % 1100 + 180] = (250, 220, 0)
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def corpus(d: Path, quick: bool) -> list[tuple[str, Path]]:
    from tests.real_corpus import h264_720p_30s, jpeg_12mp

    out = []
    for name, make in (
        ("sprite GIF", make_sprite),
        ("ticker GIF", make_ticker),
        ("counter GIF", make_counter),
    ):
        path = d / f"{name.split()[0]}.gif"
        make(path)
        out.append((name, path))
    motion = d / "full_motion.mp4"
    make_full_motion(motion, 3 if quick else 10)
    out.append((f"full-motion video, {3 if quick else 10} s 720p", motion))
    if not quick:
        out.append(("30 s 720p H.264 video", h264_720p_30s(d).path))
    out.append(("12 MP photo", jpeg_12mp(d, 1).path))
    return out


# --- measuring -------------------------------------------------------------------------------


def _import(src: Path, dest: Path, fmt: str) -> tuple[ImportResult, float]:
    t = time.perf_counter()
    result = import_media(src, dest, ImportOptions(format=fmt, limits=NO_CUTS))
    return result, time.perf_counter() - t


def _cpu_per_frame(path: Path) -> float:
    """Thread CPU seconds to produce each frame's panel bytes (frame + regions), in play order."""
    with open_frames(path) as frames:
        n = frames.frame_count
        start = time.thread_time()
        for i in range(n):
            bytes(frames.frame(i))
            for r in frames.regions(i):
                bytes(r.data)
        return (time.thread_time() - start) / n


def _lz4_frames(v1: Path) -> tuple[int, float]:
    """lz4 candidate: bytes of key frame + per-frame region pixels compressed alone, decode CPU per frame."""
    import lz4.block

    chunks: list[bytes] = []
    rects: list[list[tuple[int, int, int, int]]] = []
    with FrameFile.open(v1) as ff:
        for i in range(ff.frame_count):
            if i == 0:
                chunks.append(lz4.block.compress(bytes(ff.frame(0))))
                rects.append([])
                continue
            regions = ff.regions(i)
            chunks.append(lz4.block.compress(b"".join(bytes(r.data) for r in regions)))
            rects.append([(r.x0, r.y0, r.x1, r.y1) for r in regions])
        w, h = ff.width, ff.height
    canvas = np.zeros((h, w, 2), dtype=np.uint8)
    start = time.thread_time()
    for i, chunk in enumerate(chunks):
        data = np.frombuffer(lz4.block.decompress(chunk), dtype=np.uint8)
        if i == 0:
            canvas.reshape(-1)[...] = data
            continue
        pos = 0
        for x0, y0, x1, y1 in rects[i]:
            n = (x1 - x0 + 1) * (y1 - y0 + 1) * 2
            canvas[y0 : y1 + 1, x0 : x1 + 1] = data[pos : pos + n].reshape(y1 - y0 + 1, x1 - x0 + 1, 2)
            pos += n
    return sum(len(c) + 16 for c in chunks), (time.thread_time() - start) / len(chunks)


def _psnr(lossy: Path, exact: Path) -> float:
    err, n = 0.0, 0
    with open_frames(lossy) as a, open_frames(exact) as b:
        for i in range(0, a.frame_count, max(1, a.frame_count // 30)):
            x = rgb565_to_rgb888(a.frame(i), a.width, a.height).astype(np.float64)
            y = rgb565_to_rgb888(b.frame(i), b.width, b.height).astype(np.float64)
            err += float(((x - y) ** 2).mean())
            n += 1
    return 10 * math.log10(255**2 / max(err / n, 1e-9))


def _play(tmp: Path, path: Path, result: ImportResult, seconds: float) -> dict[str, float]:
    """Play the file on the real clock (decode-ahead thread, modelled bus) for about ``seconds``."""
    clock = MonotonicClock()
    wiring = SimWiring(clock=clock, speed_hz=WIRE_HZ)
    display = wiring.display()
    display.open()
    wiring.device.sink = None  # the player, decoder and bus code, not the panel model
    library = Library(tmp / f"play-{secrets.token_hex(4)}", clock=clock).open()
    staged = library.staging_path()
    staged.write_bytes(path.read_bytes())
    meta = NewItem(
        "item", result.kind, result.frames, result.duration_ms, 240, 320, path.name, secrets.token_hex(8)
    )
    library.add(staged, meta)
    done = threading.Event()
    end = time.monotonic() + seconds

    def beat() -> None:
        if time.monotonic() >= end:
            done.set()

    player = Player(display, library, clock=clock, heartbeat=beat, wire_hz=WIRE_HZ)
    player.start()
    done.wait(seconds + 30)
    player.stop()
    st = player.stats
    library.close()
    display.close()
    return {
        "frames": st.frames_shown,
        "dropped": st.frames_dropped,
        "p99": st.late_p99_ms,
        "host_ms": st.host_ms_per_frame,
    }


def _memory(tmp: Path, files: list[tuple[Path, ImportResult]], copies: int) -> dict[str, float]:
    """RSS while the real player (decode-ahead on) goes through a library of many v2 items."""
    import psutil

    proc = psutil.Process()
    clock = MonotonicClock()
    wiring = SimWiring(clock=clock, speed_hz=WIRE_HZ)
    display = wiring.display()
    display.open()
    wiring.device.sink = None
    library = Library(tmp / "memory", clock=clock).open()
    total = 0
    for k in range(copies):
        for path, result in files:
            staged = library.staging_path()
            staged.write_bytes(path.read_bytes())
            total += result.bytes
            meta = NewItem(
                f"item {k}",
                result.kind,
                result.frames,
                result.duration_ms,
                240,
                320,
                path.name,
                secrets.token_hex(8),
            )
            library.add(staged, meta)
    player = Player(display, library, clock=clock, wire_hz=WIRE_HZ)
    rss_before = proc.memory_info().rss
    peak = rss_before
    player.start()
    seen = 0
    first_pass = rss_before
    for _ in range(len(library.items())):
        if seen == len(files):
            first_pass = proc.memory_info().rss
        target = player.stats.frames_shown + 3
        deadline = time.monotonic() + 1.0
        while player.stats.frames_shown < target and time.monotonic() < deadline:
            time.sleep(0.02)  # pacing the measurement, not synchronisation
            peak = max(peak, proc.memory_info().rss)
        player.next()
        seen += 1
    player.stop()
    after = proc.memory_info().rss
    library.close()
    display.close()
    return {
        "items": seen,
        "library_mb": total / 1e6,
        "before": rss_before / 1e6,
        "first_pass": first_pass / 1e6,
        "peak": peak / 1e6,
        "after": after / 1e6,
        "kinds": len(files),
    }


def _mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _row(
    section: Section, name: str, cand: str, size: int, src: int, imp: float | None, cpu: float, note: str = ""
) -> None:
    imported = f"import {imp:.2f} s" if imp is not None else "not a file format"
    section.add(
        f"{name}: {cand}",
        f"{_mb(size)} = {size / src:.2f}x source",
        f"source {_mb(src)}",
        f"{imported}; CPU per frame {cpu * 1e3:.3f} ms (Pi Zero 2 W ~{cpu * 1e3 * PI_FACTOR:.2f} ms){'; ' + note if note else ''}",
    )


def run(report: Report, quick: bool) -> None:
    """Add the storage section to ``report``."""
    section = report.section(
        "Frame storage (v1 and the v2 candidates)",
        "Bytes on the card per candidate, as a multiple of the uploaded file; import time in this "
        "process; CPU per frame = thread CPU to produce one frame's panel bytes in play order "
        f"(Pi Zero 2 W estimate: x{PI_FACTOR}). Goal: v2 <= 3x the source for videos, <= 1x for GIFs.",
    )
    play = report.section(
        "Playing v2 files (real clock, decode-ahead thread, 64 MHz bus modelled)",
        "Each item's v2 file played alone by the real player with decode-ahead, for 8 s. Host CPU is "
        "the send path's, measured over the simulator's fake spidev at bufsiz 4096, whose own Python "
        "costs about 0.18 ms a full frame (see the display section; the 1 % bar is for the real "
        "driver). Baseline: the same item's v1 file played the same way in the same run.",
    )
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        kept: list[tuple[Path, ImportResult]] = []
        for name, src in corpus(d, quick):
            src_bytes = src.stat().st_size
            v1, t1 = _import(src, d / "v1.loop", "v1")
            _row(
                section,
                name,
                "v1 raw",
                v1.bytes,
                src_bytes,
                t1,
                _cpu_per_frame(v1.path),
                f"{v1.frames} frames",
            )
            lz4_bytes, lz4_cpu = _lz4_frames(v1.path)
            _row(section, name, "lz4 frames", lz4_bytes, src_bytes, None, lz4_cpu)
            zs, tz = _import(src, d / "zstd.loop", "zstd")
            _row(section, name, "zstd stream (v2 lossless)", zs.bytes, src_bytes, tz, _cpu_per_frame(zs.path))
            chosen, chosen_path = zs, zs.path
            if zs.kind == "video":
                hv, th = _import(src, d / "h264.loop", "h264")
                psnr = _psnr(hv.path, v1.path)
                _row(
                    section,
                    name,
                    "h264 (v2 for video)",
                    hv.bytes,
                    src_bytes,
                    th,
                    _cpu_per_frame(hv.path),
                    f"PSNR {psnr:.1f} dB against the lossless frames",
                )
                chosen, chosen_path = hv, hv.path
            seconds = 3.0 if quick else 8.0
            base = _play(d, v1.path, v1, seconds)
            v1.path.unlink()
            figures = _play(d, chosen_path, chosen, seconds)
            play.add(
                f"{name} ({chosen.codec})",
                f"{int(figures['dropped'])} dropped of {int(figures['frames'] + figures['dropped'])}",
                f"v1: {int(base['dropped'])} dropped; p99 {base['p99']:.2f} ms; host {base['host_ms']:.3f} ms",
                f"lateness p99 {figures['p99']:.2f} ms; send host CPU {figures['host_ms']:.3f} ms/frame "
                f"= {figures['host_ms'] / 19.2 * 100:.2f} % of 19.2 ms",
            )
            keep = d / f"kept-{len(kept)}.loop"
            chosen_path.rename(keep)
            kept.append((keep, chosen))
            for p in (d / "zstd.loop", d / "h264.loop"):
                p.unlink(missing_ok=True)
        copies = 2 if quick else 10
        m = _memory(d, kept, copies)
        play.add(
            f"resident memory going through {int(m['items'])} v2 items ({m['library_mb']:.0f} MB of frame files)",
            f"{m['first_pass']:.0f} MB after the first {int(m['kinds'])} items, {m['peak']:.0f} MB peak, "
            f"{m['after']:.0f} MB after all",
            f"{m['before']:.0f} MB before playing (the first pass loads FFmpeg and the codecs)",
            "the corpus above, each file added again and again; the player shows each item for 3 frames "
            "(or 1 s), then next; at most three files are open, each with a ring of 6 decoded frames",
        )
