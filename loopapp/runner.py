"""Running the device in the foreground: `loop run` on a Pi, `loop sim` on a laptop.

SIGTERM and SIGINT stop the device cleanly (exit 0). When the supervisor asks for a restart
(the last rung of its recovery ladder) the device stops and the process exits with that
status, so systemd starts a fresh one.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from loopapp.config import Config
from loopapp.device import Device
from loopapp.hardware import pi_hardware, sim_hardware

log = logging.getLogger(__name__)

#: How often the simulator window is redrawn (frames per second).
VIEWER_FPS = 30


def run_device(
    config: Config,
    *,
    simulated: bool,
    headless: bool = True,
    host: str | None = None,
    port: int | None = None,
    screenshot: Path | None = None,
) -> int:
    """Build, start and run the device until a signal or a restart request; return the exit status."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    hardware = sim_hardware(config) if simulated else pi_hardware(config)
    device = Device(config, hardware, host=host, port=port, simulated=simulated)
    try:
        device.start()
        freeze_startup_objects()
        what = "simulated panel" if simulated else "panel"
        print(f"LOOP is running on the {what}. Dashboard: {device.dashboard_url}", flush=True)
        if simulated and device.dashboard_url != f"http://127.0.0.1:{device.port}":
            print(f"On this machine: http://127.0.0.1:{device.port}", flush=True)
        if simulated and not headless:
            _run_window(device, stop)
        else:
            _wait(device, stop)
        if screenshot is not None:
            screenshot.write_bytes(device.display_png())
    finally:
        device.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    if device.exit_requested.is_set():
        print(f"loop: stopping for a restart: {device.supervisor.exit_reason}", file=sys.stderr)
        return device.exit_code or 1
    return 0


def freeze_startup_objects() -> None:
    """Take what start-up made (modules, the web app, caches: alive as long as the process) out
    of the garbage collector's sight.

    A full collection over them costs about 30 ms of CPU with the GIL held on a laptop, several
    times that on a Pi Zero, and the player pays it as late or dropped frames whenever the
    collector runs one; frozen, a collection only looks at what was made since.
    """
    import gc

    gc.collect()
    gc.freeze()


def _run_window(device: Device, stop: threading.Event) -> None:
    """Show the simulated panel in a pygame window until it is closed or a signal arrives.

    Without a screen (no X11 or Wayland display) the device keeps running headless and says so.
    """
    from sim.viewer import Viewer

    viewer = Viewer(device.panel_view, rotation=device.rotation, title="LOOP simulator")
    try:
        viewer.open()
    except Exception as exc:  # pygame.error: no video device; the device itself is fine
        print(
            f"loop sim: no window ({exc}); running headless. Use --headless to skip the window.",
            file=sys.stderr,
        )
        _wait(device, stop)
        return
    period = 1.0 / VIEWER_FPS
    try:
        next_frame = time.monotonic()
        while not stop.is_set() and not device.exit_requested.is_set():
            viewer.rotation = device.rotation  # the window turns with the live setting
            if not viewer.pump():
                break  # the window was closed
            next_frame += period
            stop.wait(max(0.0, next_frame - time.monotonic()))
    finally:
        viewer.close()


def _wait(device: Device, stop: threading.Event) -> None:
    """Run until a signal (``stop``) or the supervisor's restart request."""
    while not stop.is_set() and not device.exit_requested.is_set():
        stop.wait(0.5)
