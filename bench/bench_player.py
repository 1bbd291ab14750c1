"""Player benchmark: timing on the real clock, host cost, wire bytes, memory with a 1 GB library,
and wire bytes against luma.lcd's ILI9341 driver with its ``diff_to_previous`` framebuffer.

The bus is the simulator's fake spidev with the wire time at 64 MHz *modelled, not slept*:
on the real clock the player then measures its own scheduling and host cost without the
panel model's parsing (the fake bus gets no panel behind it here), and the wire utilisation
it would need on a Pi is computed from the bytes. Lateness and drift are measured with
``time.monotonic``; nothing here is a pass/fail timing test.
"""

from __future__ import annotations

import multiprocessing as mp
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from PIL import Image

from bench.report import Report
from libloop.clock import FakeClock, MonotonicClock
from libloop.color import rgb565_to_rgb888, rgb888_to_rgb565
from libloop.index import Library, NewItem
from libloop.media.framefile import FrameFileWriter
from libloop.player import Player
from sim.wiring import SimWiring

W, H = 240, 320
FULL = W * H * 2
WIRE_HZ = 64_000_000


def _sprite_frames(n: int, seed: int = 0) -> list[np.ndarray]:
    """A typical GIF sticker: a still background with a 48x48 sprite moving around."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    frames = []
    for i in range(n):
        rgb = base.copy()
        x = int(96 + 80 * np.cos(i * 2 * np.pi / n))
        y = int(136 + 120 * np.sin(i * 2 * np.pi / n))
        rgb[y : y + 48, x : x + 48] = (255, 200, 0)
        frames.append(rgb888_to_rgb565(rgb))
    return frames


def _video_frames(n: int, seed: int = 0) -> list[np.ndarray]:
    """Full-motion video: every pixel changes every frame."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    return [rgb888_to_rgb565(np.roll(base, 3 * i, axis=1) // 2 + np.uint8(i % 64)) for i in range(n)]


def _add(library: Library, frames: list[np.ndarray], duration: int, name: str) -> str:
    path = library.staging_path()
    with FrameFileWriter(path, W, H) as writer:
        for f in frames:
            writer.add_frame(f, duration)
        writer.commit()
    meta = NewItem(
        name, "gif", len(frames), duration * len(frames), W, H, f"{name}.gif", secrets.token_hex(8)
    )
    return library.add(path, meta).id


def _rig(clock: Any) -> SimWiring:
    wiring = SimWiring(clock=clock, speed_hz=WIRE_HZ)
    return wiring


def _import_worker(src: str, dest_dir: str, seconds: float) -> None:
    """Import the GIF again and again for ``seconds``: an import runs during the whole measurement."""
    from libloop.media.importer import import_media

    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        dest = Path(dest_dir) / f"imported-{i}.loop"
        import_media(Path(src), dest)
        dest.unlink(missing_ok=True)
        i += 1


def _make_gif(path: Path, n: int) -> None:
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)) for _ in range(n)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=40, loop=0)


def _play_real_clock(tmp: Path, frames: int, duration_ms: int, *, with_import: bool) -> dict[str, float]:
    """Play the sprite animation for ``frames`` frames on the real clock; returns the figures."""
    clock = MonotonicClock()
    wiring = _rig(clock)
    display = wiring.display()
    display.open()
    wiring.device.sink = None  # measure the player and the bus code, not the panel model
    library = Library(tmp / f"lib-{with_import}", clock=clock).open()
    _add(library, _sprite_frames(60), duration_ms, "sprite")
    done = threading.Event()
    target = frames + 1

    import_end: list[float] = []

    def beat() -> None:
        if worker is not None and not import_end and not worker.is_alive():
            import_end.append(time.monotonic())
        if player.stats.frames_shown >= target:
            done.set()

    player = Player(display, library, clock=clock, heartbeat=beat, wire_hz=WIRE_HZ, refresh_interval=5.0)
    worker: Any = None
    if with_import:
        gif = tmp / "import.gif"
        _make_gif(gif, 150)
        ctx = mp.get_context("spawn")
        seconds = frames * duration_ms / 1000
        worker = ctx.Process(target=_import_worker, args=(str(gif), str(tmp), seconds))
        worker.start()
    t_start = time.monotonic()
    player.start()
    done.wait(frames * duration_ms / 1000 * 3 + 30)
    player.stop()
    st = player.stats
    import_s, import_ok = 0.0, 1.0
    if worker is not None:
        worker.join(120)
        end = import_end[0] if import_end else time.monotonic()
        import_s, import_ok = end - t_start, float(worker.exitcode == 0)
    library.close()
    return {
        "frames": st.frames_shown,
        "dropped": st.frames_dropped,
        "p50": st.late_p50_ms,
        "p99": st.late_p99_ms,
        "host_ms": st.host_ms_per_frame,
        "bytes_ratio": st.bytes_sent / (st.frames_shown * FULL) if st.frames_shown else 0.0,
        "wire_util": st.wire_utilisation,
        "import_s": import_s,
        "import_ok": import_ok,
    }


def _drift_run(tmp: Path, frames: int, duration_ms: int) -> tuple[float, float]:
    """Drift over ``frames`` frames on the real clock: (end - scheduled end) ms, elapsed s."""
    clock = MonotonicClock()
    wiring = _rig(clock)
    display = wiring.display()
    display.open()
    wiring.device.sink = None
    library = Library(tmp / "drift", clock=clock).open()
    _add(library, _sprite_frames(50), duration_ms, "sprite")
    player = Player(display, library, clock=clock, wire_hz=WIRE_HZ)
    player.step()
    turn = player._turn
    assert turn is not None
    t0 = turn.timeline.t0
    player.run_frames(frames)
    end = time.monotonic()
    # Frame `frames` (0-based count since t0) was due at t0 + frames * duration (single item,
    # fixed duration, turn boundaries re-anchor exactly on the schedule).
    scheduled = t0 + frames * duration_ms / 1000
    player.stop()
    library.close()
    return (end - scheduled) * 1000, end - t0


def _luma_bytes(frames: list[np.ndarray]) -> tuple[int, int]:
    """Bytes and transfers luma.lcd's ili9341 (diff_to_previous) puts on the wire for ``frames``."""
    from luma.core.framebuffer import diff_to_previous
    from luma.lcd.device import ili9341

    class CountingSerial:
        def __init__(self) -> None:
            self.bytes = 0
            self.transfers = 0

        def command(self, *cmd: int) -> None:
            self.bytes += len(cmd)
            self.transfers += 1

        def data(self, data: Any) -> None:
            n = len(data)
            self.bytes += n
            self.transfers += max(1, -(-n // 4096))

        def cleanup(self) -> None:
            pass

    class NoGpio:
        """Stands in for RPi.GPIO (the backlight line luma drives); does nothing."""

        OUT = IN = HIGH = BCM = 1
        LOW = 0

        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: None

    serial = CountingSerial()
    device = ili9341(
        serial, width=320, height=240, rotate=1, framebuffer=diff_to_previous(num_segments=4), gpio=NoGpio()
    )
    base = (serial.bytes, serial.transfers)
    for f in frames:
        img = Image.fromarray(rgb565_to_rgb888(f.tobytes(), W, H))
        device.display(img)
    return serial.bytes - base[0], serial.transfers - base[1]


def _ours_bytes(tmp: Path, frames: list[np.ndarray], name: str) -> tuple[int, int]:
    """Bytes and transfers our player sends for the same frames (one item, played once through)."""
    clock = FakeClock(0.0)
    wiring = _rig(clock)
    display = wiring.display()
    display.open()
    library = Library(tmp / f"ours-{name}", clock=clock).open()
    _add(library, frames, 40, name)
    player = Player(display, library, clock=clock, wire_hz=WIRE_HZ, refresh_interval=5.0)
    before = display.stats
    player.run_frames(len(frames))
    after = display.stats
    player.stop()
    library.close()
    return after.bytes - before.bytes, after.transfers - before.transfers


def _memory_run(tmp: Path, total_frames: int) -> dict[str, float]:
    """RSS while playing a library of ``total_frames`` full-motion frames (~150 KB each)."""
    proc = psutil.Process()
    clock = FakeClock(0.0)
    wiring = _rig(clock)
    display = wiring.display()
    display.open()
    wiring.device.sink = None
    library = Library(tmp / "big", clock=clock).open()
    per_item = 200
    t_gen = time.perf_counter()
    frames = _video_frames(per_item, seed=3)
    for i in range(total_frames // per_item):
        _add(library, frames, 40, f"clip{i}")
    gen_s = time.perf_counter() - t_gen
    size = sum(p.stat().st_size for p in (tmp / "big" / "frames").glob("*.loop"))
    rss0 = proc.memory_info().rss
    peak = rss0
    player = Player(display, library, clock=clock, wire_hz=WIRE_HZ)
    shown = 0
    while shown < total_frames:
        player.run_frames(100)
        shown += 100
        peak = max(peak, proc.memory_info().rss)
    rss_end = proc.memory_info().rss
    player.stop()
    library.close()
    return {
        "size_mb": size / 2**20,
        "rss0": rss0 / 2**20,
        "peak": peak / 2**20,
        "end": rss_end / 2**20,
        "gen_s": gen_s,
    }


def run(report: Report, quick: bool) -> None:
    """Add the player's section to the report."""
    sec = report.section(
        "Player",
        "Real clock, fake spidev bus with the wire time at 64 MHz modelled but not slept (no panel model "
        "behind it, so host time is the player + display + bus code). Lateness = send start - deadline.",
    )
    n = 300 if quick else 2000
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        drift_ms, elapsed = _drift_run(tmp, n, 20)
        sec.add(
            f"drift after {n} frames of 20 ms", f"{drift_ms:.2f} ms", "0 ms ideal", f"over {elapsed:.1f} s"
        )
        for with_import in (False, True):
            r = _play_real_clock(tmp, n, 20, with_import=with_import)
            label = "while an import runs" if with_import else "idle"
            sec.add(
                f"lateness p50 / p99, {label}",
                f"{r['p50']:.2f} / {r['p99']:.2f} ms",
                "",
                f"{r['frames']} frames",
            )
            note = ""
            if with_import:
                note = "a worker process imported a 150-frame GIF back to back for the whole run"
                note += f" ({'ended' if r['import_ok'] else 'FAILED'} after {r['import_s']:.1f} s)"
            sec.add(f"frames dropped, {label}", f"{r['dropped']}", "0", note)
            sec.add(
                f"host CPU per frame, {label}",
                f"{r['host_ms']:.3f} ms",
                "19.2 ms wire time of a full frame at 64 MHz",
                f"{r['host_ms'] / 19.2 * 100:.2f} % of it",
            )
            sec.add(
                f"bytes sent / full frames, {label}",
                f"{r['bytes_ratio'] * 100:.1f} %",
                "100 %",
                "sprite animation",
            )
            sec.add(f"wire utilisation at 64 MHz, {label}", f"{r['wire_util'] * 100:.1f} %", "", "")
        # Wire bytes against luma.lcd on the same animations.
        for name, frames in (("sprite", _sprite_frames(60)), ("video", _video_frames(60))):
            ours, ours_t = _ours_bytes(tmp, frames, name)
            luma, luma_t = _luma_bytes(frames)
            sec.add(
                f"wire bytes, 60 frames of {name}",
                f"{ours / 1e6:.2f} MB in {ours_t} transfers",
                f"luma.lcd diff_to_previous: {luma / 1e6:.2f} MB in ~{luma_t} transfers",
                f"{ours / luma * 100:.0f} % of luma; full frames: {60 * FULL / 1e6:.2f} MB",
            )
        total = 700 if quick else 7000
        m = _memory_run(tmp, total)
        sec.add(
            f"resident memory playing a {m['size_mb']:.0f} MB library ({total} frames)",
            f"{m['rss0']:.0f} MB before, {m['peak']:.0f} MB peak, {m['end']:.0f} MB after",
            "library size",
            f"generated in {m['gen_s']:.0f} s; every frame played once",
        )
