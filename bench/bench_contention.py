"""Isolation: the player under load in the previous design and in its own process, same run.

The real ``Device`` runs in this process (this process *is* the web process: the dashboard,
the API, the import queue), over the simulated panel with the fake bus *paced*: each transfer
really takes its wire time at 64 MHz, slept through with the GIL released, as a thread in the
spidev ioctl does on a Pi. Three arrangements are measured one after the other:

* **thread** — the previous design: the player and the display on a thread of this process;
* **process** — the player, the display, the fake bus and the panel model in a process of
  their own (``[player] isolation = "process"``), with SCHED_FIFO where the OS allows it;
* **thread-fifo** — the alternative of a thread with its own priority: the previous design
  with the player's threads (loop, watcher, bounded hardware calls) at SCHED_FIFO.

Loads, each for one measuring window after an idle one: (a) eight HTTP clients (in another
process) polling ``/api/display.png`` and ``/api/player`` as fast as they are answered while a
ninth uploads a new GIF every second; (b) one CPU-bound Python thread in this process; (c) an
import running (a 150-frame GIF, again and again, through the device's import queue).

Also here: the periodic refresh's bytes as a share of the content's on a counter and a
blinking cursor (new vs previous design), and host CPU per frame of the whole player.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
import secrets
import shutil
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from PIL import Image

from bench.previous_player import PREVIOUS_REVISION, load_previous_player
from bench.report import Report, Section
from libloop.clock import FakeClock, MonotonicClock
from libloop.color import rgb888_to_rgb565
from libloop.index import Library, NewItem
from libloop.media.codec_h264 import H264Writer
from libloop.media.codec_zstd import VIDEO_LEVEL, ZstdWriter
from libloop.media.framefile import FrameFile, FrameFileWriter
from libloop.player import Player
from loopapp.config import load_config
from loopapp.device import Device
from loopapp.hardware import sim_hardware
from sim.wiring import SimWiring

W, H = 240, 320
FULL = W * H * 2
WIRE_HZ = 64_000_000
FRAME_MS = 40  # 25 fps


# --- content -----------------------------------------------------------------------------------


def full_motion_rgb(n: int) -> list[np.ndarray]:
    """Every pixel changes every frame (a panning video), RGB888."""
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    return [np.roll(base, 5 * i, axis=1) // 2 + np.uint8(i % 64) for i in range(n)]


def full_motion(n: int) -> list[np.ndarray]:
    """``full_motion_rgb`` in the panel's RGB565."""
    return [rgb888_to_rgb565(f) for f in full_motion_rgb(n)]


def scattered(n: int, spots: int = 60) -> list[np.ndarray]:
    """A video with scattered changes: small patches all over the frame change each frame."""
    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    frames = []
    for _ in range(n):
        rgb = rgb.copy()
        for _ in range(spots):
            x, y = int(rng.integers(0, W - 8)), int(rng.integers(0, H - 8))
            rgb[y : y + 8, x : x + 8] = rng.integers(0, 255, 3, dtype=np.uint8)
        frames.append(rgb888_to_rgb565(rgb))
    return frames


def sprite(n: int) -> list[np.ndarray]:
    """A GIF sticker: a still background, a 48x48 sprite moving round."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    out = []
    for i in range(n):
        rgb = base.copy()
        x = int(96 + 80 * np.cos(i * 2 * np.pi / n))
        y = int(136 + 120 * np.sin(i * 2 * np.pi / n))
        rgb[y : y + 48, x : x + 48] = (255, 200, 0)
        out.append(rgb888_to_rgb565(rgb))
    return out


def counter(n: int) -> list[np.ndarray]:
    """A counter: one small digit changes each frame on a black panel."""
    frames = []
    for i in range(n):
        rgb = np.zeros((H, W, 3), dtype=np.uint8)
        x = 100 + (i % 10) * 2
        rgb[150:158, x : x + 6] = 255
        frames.append(rgb888_to_rgb565(rgb))
    return frames


def cursor(n: int = 2) -> list[np.ndarray]:
    """A blinking text cursor: an 8x20 block on and off."""
    frames = []
    for i in range(n):
        rgb = np.full((H, W, 3), 20, dtype=np.uint8)
        rgb[40:48, 20:200] = 200  # a line of "text"
        if i % 2 == 0:
            rgb[60:80, 20:28] = 255
        frames.append(rgb888_to_rgb565(rgb))
    return frames


def add_item(
    library: Library, frames: list[np.ndarray], duration_ms: int, name: str, *, codec: str = "zstd"
) -> str:
    """Add ``frames`` (RGB565, or RGB888 for ``codec="h264"``) as a frame file.

    ``zstd`` and ``h264`` write v2 files, as imports do (animations and videos), so the device's
    background upgrade has nothing to do during a measurement; ``v1`` writes the previous
    format, for the previous design's baseline.
    """
    path = library.staging_path()
    writer: Any
    if codec == "v1":
        writer = FrameFileWriter(path, W, H)
    elif codec == "h264":
        writer = H264Writer(path, W, H)
    else:
        writer = ZstdWriter(path, W, H, level=VIDEO_LEVEL)
    with writer:
        for f in frames:
            writer.add_frame(f, duration_ms)
        writer.commit()
    meta = NewItem(
        name, "video", len(frames), duration_ms * len(frames), W, H, f"{name}.mp4", secrets.token_hex(8)
    )
    return library.add(path, meta).id


def random_gif(frames: int, seed: int, size: tuple[int, int] = (320, 240)) -> bytes:
    rng = np.random.default_rng(seed)
    images = [
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(frames)
    ]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=40, loop=0)
    return out.getvalue()


# --- loads -----------------------------------------------------------------------------------------


def _poll(url: str, stop: Any) -> None:
    while not stop.is_set():
        for path in ("/api/display.png", "/api/player"):
            with contextlib.suppress(OSError), urllib.request.urlopen(url + path, timeout=10) as r:
                r.read()


def _upload(url: str, stop: Any) -> None:
    seed = 0
    while not stop.is_set():
        seed += 1
        gif = random_gif(20, seed, (160, 120))
        boundary = secrets.token_hex(8)
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="u{seed}.gif"\r\n'
                "Content-Type: image/gif\r\n\r\n"
            ).encode()
            + gif
            + f"\r\n--{boundary}--\r\n".encode()
        )
        request = urllib.request.Request(
            url + "/api/media",
            data=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=30) as r:
            r.read()
        stop.wait(1.0)


def _http_load(url: str, stop: Any) -> None:
    """Eight pollers and one uploader, in their own process (the clients are not the device)."""
    threads = [threading.Thread(target=_poll, args=(url, stop), daemon=True) for _ in range(8)]
    threads.append(threading.Thread(target=_upload, args=(url, stop), daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@contextlib.contextmanager
def http_load(device: Device) -> Iterator[None]:
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    proc = ctx.Process(target=_http_load, args=(device.server.url, stop), daemon=True)
    proc.start()
    try:
        yield
    finally:
        stop.set()
        proc.join(30)
        if proc.is_alive():
            proc.kill()


@contextlib.contextmanager
def cpu_thread(device: Device) -> Iterator[None]:
    stop = threading.Event()

    def burn() -> None:
        x = 0
        while not stop.is_set():
            for i in range(10_000):  # pure Python: holds the GIL for its switch interval
                x += i * i

    t = threading.Thread(target=burn, name="bench-burn", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()


@contextlib.contextmanager
def import_load(device: Device, gif: Path) -> Iterator[None]:
    stop = threading.Event()

    def keep_importing() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            copy = device.upload_dir / f"bench-import-{i}.gif"
            shutil.copyfile(gif, copy)
            job = device.imports.submit(copy, f"import-{i}.gif")
            device.imports.wait(job.id, 120)
            done = device.imports.get(job.id)
            if done.item is not None:
                with contextlib.suppress(Exception):
                    device.library.delete(done.item.id)

    t = threading.Thread(target=keep_importing, name="bench-import", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(180)


# --- the contention table ------------------------------------------------------------------------


def _wait(predicate: Callable[[], bool], timeout: float, every: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return False


def _fifo_player_threads() -> int:
    """Give the player's threads in this process (its loop, watcher and bounded hardware calls)
    SCHED_FIFO, as the "thread with its own priority" alternative would; how many got it."""
    import os

    done = 0
    for t in threading.enumerate():
        if t.native_id is not None and t.name.startswith(("loop-player", "bounded:")):
            with contextlib.suppress(OSError):
                os.sched_setscheduler(t.native_id, os.SCHED_FIFO, os.sched_param(10))
                done += 1
    return done


def _start_device(tmp: Path, arrangement: str) -> Device:
    config = load_config(None, data_dir=tmp / f"data-{arrangement}-{secrets.token_hex(3)}")
    config = replace(config, wiring=replace(config.wiring, speed_hz=WIRE_HZ))
    hardware = sim_hardware(config, clock=MonotonicClock(), pace=True)
    device = Device(
        config,
        hardware,
        host="127.0.0.1",
        port=0,
        import_worker="process",
        player_mode="process" if arrangement == "process" else "thread",
        player_host_options={"pace": True},
    )
    device.start()
    return device


def _window(device: Device, frames: int) -> dict[str, float]:
    """Measure the next ``frames`` frame slots: shown, dropped, late p99."""
    player: Any = device.player
    player.reset_stats_window()
    s0 = player.status().stats
    deadline = time.monotonic() + frames * FRAME_MS / 1000 * 2 + 30
    _wait(
        lambda: (lambda s: s.frames_shown + s.frames_dropped >= s0.frames_shown + s0.frames_dropped + frames)(
            player.status().stats
        ),
        max(1.0, deadline - time.monotonic()),
    )
    s1 = player.status().stats
    return {
        "shown": s1.frames_shown - s0.frames_shown,
        "dropped": s1.frames_dropped - s0.frames_dropped,
        "p99": s1.late_p99_ms,
    }


def _contention(sec: Section, tmp: Path, frames: int) -> None:
    gif = tmp / "import.gif"
    gif.write_bytes(random_gif(150, 1))
    items = {
        "full-motion video": (full_motion(50), "zstd"),
        "scattered-change video": (scattered(50), "zstd"),
        # What a phone video becomes: panel-sized H.264, decoded ahead in the player process.
        "full-motion video as H.264": (full_motion_rgb(50), "h264"),
    }
    results: dict[tuple[str, str, str], dict[str, float]] = {}
    loads: list[tuple[str, Callable[[Device], Any]]] = [
        ("idle", lambda d: contextlib.nullcontext()),
        ("8 HTTP pollers + uploads", http_load),
        ("CPU-bound thread in the web process", cpu_thread),
        ("an import running", lambda d: import_load(d, gif)),
    ]
    for item_name, (content, codec) in items.items():
        for arrangement in ("thread", "thread-fifo", "process"):
            device = _start_device(tmp, arrangement)
            try:
                fifo = arrangement == "thread-fifo"
                measured = _under_loads(device, content, loads, frames, fifo=fifo, codec=codec)
                for load_name, figures in measured.items():
                    results[(item_name, load_name, arrangement)] = figures
            finally:
                device.stop()
    for item_name in items:
        for load_name, _ in loads:
            new = results[(item_name, load_name, "process")]
            old = results[(item_name, load_name, "thread")]
            fifo = results[(item_name, load_name, "thread-fifo")]
            sec.add(
                f"{item_name}, {load_name}",
                _fmt(new),
                f"previous design: {_fmt(old)}",
                f"{frames} frame slots at 25 fps; the alternative of a thread with its own priority "
                f"(the player's threads at SCHED_FIFO in the web process): {_fmt(fifo)}",
            )


def _under_loads(
    device: Device,
    content: list[np.ndarray],
    loads: list[tuple[str, Callable[[Device], Any]]],
    frames: int,
    *,
    fifo: bool = False,
    codec: str = "zstd",
) -> dict[str, dict[str, float]]:
    """Play ``content`` on ``device`` and measure a window under each load in turn."""
    item_id = add_item(device.library, content, FRAME_MS, "video", codec=codec)
    device.library.update(item_id, min_seconds=86_400)  # its turn outlasts the run
    _wait(lambda: device.player.status().on_panel == item_id, 30)
    _wait(lambda: device.player.status().stats.frames_shown > 25, 30)
    if fifo:
        _wait(lambda: _fifo_player_threads() >= 3, 10)  # loop, watcher and the bus's worker
    out = {}
    for load_name, load in loads:
        with load(device):
            time.sleep(1.0)  # the load is up to speed
            out[load_name] = _window(device, frames)
    return out


def _fmt(r: dict[str, float]) -> str:
    return f"{r['shown']:.0f} shown, {r['dropped']:.0f} dropped, late p99 {r['p99']:.1f} ms"


# --- host CPU per frame ----------------------------------------------------------------------------


def _in_process_cpu(
    player_cls: type[Any], tmp: Path, frames: list[np.ndarray], n: int, *, previous: bool = False
) -> float:
    """CPU seconds per frame of this process (the player's threads, decode-ahead included), the
    player on its own thread, no panel model. ``previous``: the previous design, playing the
    previous format (v1 files, read in place) as it did."""
    clock = MonotonicClock()
    wiring = SimWiring(clock=clock, speed_hz=WIRE_HZ, pace=True)
    wiring.device.sink = None
    display = wiring.display()
    display.open()
    library = Library(tmp / f"cpu-{secrets.token_hex(3)}", clock=clock).open()
    add_item(library, frames, FRAME_MS, "cpu", codec="v1" if previous else "zstd")
    opener = {"open_frames": FrameFile.open} if previous else {}
    player = player_cls(display, library, clock=clock, wire_hz=WIRE_HZ, refresh_interval=5.0, **opener)
    player.start()
    try:
        _wait(lambda: player.stats.frames_shown > 10, 30)
        c0, f0 = time.process_time(), player.stats.frames_shown
        _wait(lambda: player.stats.frames_shown >= f0 + n, n * FRAME_MS / 1000 * 3 + 30, every=1.0)
        c1, f1 = time.process_time(), player.stats.frames_shown
    finally:
        player.stop()
        library.close()
    return (c1 - c0) / max(1, f1 - f0)


def _process_cpu(tmp: Path, frames: list[np.ndarray], n: int) -> float:
    """CPU seconds per frame of the whole player process (every thread), no panel model."""
    config = load_config(None, data_dir=tmp / f"cpu-proc-{secrets.token_hex(3)}")
    device = Device(
        config,
        sim_hardware(config),
        host="127.0.0.1",
        port=0,
        import_worker="inline",
        player_mode="process",
        player_host_options={"pace": True, "panel": False},
    )
    device.start()
    try:
        add_item(device.library, frames, FRAME_MS, "cpu")
        player: Any = device.player
        _wait(lambda: player.status().stats.frames_shown > 10, 30)
        child = psutil.Process(device.player_process.pid if device.player_process else 0)
        t0, f0 = child.cpu_times(), player.status().stats.frames_shown
        # Asked rarely: a status call is work for the child too (the dashboard asks every second).
        _wait(lambda: player.status().stats.frames_shown >= f0 + n, n * FRAME_MS / 1000 * 3 + 30, every=1.0)
        t1, f1 = child.cpu_times(), player.status().stats.frames_shown
    finally:
        device.stop()
    return ((t1.user + t1.system) - (t0.user + t0.system)) / max(1, f1 - f0)


def _host_cpu(sec: Section, tmp: Path, n: int) -> None:
    previous, why = load_previous_player()
    for name, frames in (("sprite animation", sprite(60)), ("full-motion video", full_motion(50))):
        ours_thread = _in_process_cpu(Player, tmp, frames, n)
        ours_process = _process_cpu(tmp, frames, n)
        if previous is not None:
            old = _in_process_cpu(previous, tmp, frames, n, previous=True)
            baseline = f"previous design ({PREVIOUS_REVISION}): {old * 1000:.3f} ms"
        else:
            baseline = f"previous design: not measured ({why})"
        sec.add(
            f"host CPU per frame, {name}: the whole player process",
            f"{ours_process * 1000:.3f} ms",
            baseline,
            f"this design on a thread (same code, no process): {ours_thread * 1000:.3f} ms; "
            f"{n} frames at 25 fps; wire time of a full frame 19.2 ms",
        )


# --- refresh share -------------------------------------------------------------------------------------


def _refresh_run(
    player_cls: type[Any],
    tmp: Path,
    frames: list[np.ndarray],
    duration_ms: int,
    seconds: float,
    *,
    previous: bool = False,
) -> tuple[float, float]:
    """(content bytes a frame, refresh bytes a frame) over ``seconds`` of simulated time
    (``previous``: the previous design on v1 files)."""
    clock = FakeClock(0.0)
    wiring = SimWiring(clock=clock, speed_hz=WIRE_HZ)
    display = wiring.display()
    display.open()
    library = Library(tmp / f"refresh-{secrets.token_hex(3)}", clock=clock).open()
    add_item(library, frames, duration_ms, "refresh", codec="v1" if previous else "zstd")
    opener = {"open_frames": FrameFile.open} if previous else {}
    player = player_cls(display, library, clock=clock, wire_hz=WIRE_HZ, refresh_interval=5.0, **opener)
    player.run_frames(len(frames) + 1)  # the first whole frame is not the animation's cost
    s0 = player.stats
    player.run_until(clock.monotonic() + seconds)
    s1 = player.stats
    player.stop()
    library.close()
    shown = max(1, s1.frames_shown - s0.frames_shown)
    refresh = s1.refresh_bytes - s0.refresh_bytes
    content = (s1.bytes_sent - s0.bytes_sent) - refresh
    return content / shown, refresh / shown


def _refresh(sec: Section, tmp: Path, seconds: float) -> None:
    previous, why = load_previous_player()
    for name, frames, ms in (
        ("counter, 10 fps", counter(10), 100),
        ("blinking cursor, 2 fps", cursor(), 500),
    ):
        content, refresh = _refresh_run(Player, tmp, frames, ms, seconds)
        if previous is not None:
            old_content, old_refresh = _refresh_run(previous, tmp, frames, ms, seconds, previous=True)
            baseline = (
                f"previous design: {old_refresh:,.0f} B/frame = {old_refresh / max(1.0, old_content) * 100:.0f} % "
                f"of {old_content:,.0f} B/frame content"
            )
        else:
            baseline = f"previous design: not measured ({why})"
        sec.add(
            f"refresh bytes / content bytes, {name}",
            f"{refresh / max(1.0, content) * 100:.1f} % ({refresh:,.0f} of {content:,.0f} B/frame)",
            baseline,
            f"goal <= 10 %; {seconds / 60:.0f} simulated minutes",
        )


def run(report: Report, quick: bool) -> None:
    """Add the isolation section to the report."""
    sec = report.section(
        "Isolation: playback under load",
        "The device in this process (the web process), the fake bus paced at 64 MHz (transfers take their wire "
        "time, GIL released), the panel model behind it. Value: the player in its own process (SCHED_FIFO where "
        "allowed); baseline: the previous design, the player on a thread of the web process. Goal: loaded equals "
        "idle, 0 dropped. Refresh rows: fake clock, bytes counted on the bus. Host CPU rows: no panel model, "
        "CPU time of the player's threads (or of the whole player process) per frame shown.",
    )
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        _refresh(sec, tmp, 120.0 if quick else 600.0)
        _host_cpu(sec, tmp, 100 if quick else 500)
        _contention(sec, tmp, 100 if quick else 500)
