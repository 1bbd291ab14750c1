"""The player in its own process, as the device runs it: the delete guarantee, the controls,
the supervisor's liveness checks and the shared framebuffer, across the process boundary.

Each test runs the real ``Device`` in this process with its player process spawned as on a
Pi, over the simulated panel (the fake spidev bus and the panel model live in the child).
Waits are bounded and poll state the device exposes; nothing sleeps for synchronisation.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from libloop.color import rgb888_to_rgb565
from libloop.errors import ItemNotFound
from libloop.index import NewItem
from libloop.media.framefile import FrameFileWriter
from libloop.player.framebuffer import SharedFramebuffer
from libloop.player.host import apply_realtime
from loopapp.config import load_config
from loopapp.device import Device
from loopapp.hardware import sim_hardware
from tests.e2e_helpers import wait_until
from tests.test_player_concurrency import _add, _code
from tests.webapp_fixtures import add_solid_item

FAST_LADDER = {
    "check_interval": 0.05,
    "start_grace": 20.0,
    "backoff_initial": 0.05,
    "backoff_max": 0.2,
    "emergency_after": 3,
    "exit_after": 5,
    "call_timeout": 10.0,
    "window": 3.0,
    "player_stale_after": 1.5,
}
GREEN, BLUE = (0, 255, 0), (0, 0, 255)


def make_device(tmp_path: Path, rotation: int = 0, **options: Any) -> Device:
    config = load_config(None, data_dir=tmp_path / "data")
    if rotation:
        config = replace(config, display=replace(config.display, rotation=rotation))
    device = Device(
        config,
        sim_hardware(config),
        host="127.0.0.1",
        port=0,
        import_worker="inline",
        supervisor_options=FAST_LADDER,
        player_mode="process",
        **options,
    )
    device.start()
    return device


@pytest.fixture
def device(tmp_path: Path) -> Iterator[Device]:
    dev = make_device(tmp_path)
    try:
        yield dev
    finally:
        dev.stop()


def centre(device: Device) -> tuple[int, int, int]:
    pixel: Any = device.display_image().getpixel((120, 160))
    return (int(pixel[0]), int(pixel[1]), int(pixel[2]))


def on_panel(device: Device, item_id: str) -> bool:
    return device.player.status().on_panel == item_id


def component(device: Device, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in device.health()["components"] if c["name"] == name)
    return found


def test_the_player_runs_in_its_own_process_and_the_panel_is_read_from_shared_memory(device: Device) -> None:
    process = device.player_process
    assert process is not None and process.pid is not None and process.pid != os.getpid()
    item = add_solid_item(device.library, "green", [GREEN, GREEN])
    wait_until(lambda: on_panel(device, item.id), 20, "the item on the panel")
    wait_until(lambda: centre(device) == GREEN, 10, "the green frame in display.png")
    isolation = device.health()["isolation"]
    assert isolation["mode"] == "process" and isolation["pid"] == process.pid
    assert isolation["scheduling"]["policy"] in ("fifo", "other")


def test_a_landscape_panel_is_read_back_upright(tmp_path: Path) -> None:
    device = make_device(tmp_path, rotation=90)
    try:
        # A landscape item: green on the left half, blue on the right, as the person sees it.
        rgb = np.zeros((240, 320, 3), dtype=np.uint8)
        rgb[:, :160] = GREEN
        rgb[:, 160:] = BLUE
        path = device.library.staging_path()
        with FrameFileWriter(path, 320, 240) as writer:
            writer.add_frame(rgb888_to_rgb565(rgb), 1000)
            writer.commit()
        item = device.library.add(path, NewItem("wide", "image", 1, 1000, 320, 240, "wide.png", "wide"))
        wait_until(lambda: on_panel(device, item.id), 20, "the landscape item on the panel")
        image = device.display_image()
        assert image.size == (320, 240)
        left: Any = image.getpixel((40, 120))
        right: Any = image.getpixel((280, 120))
        assert tuple(left) == GREEN and tuple(right) == BLUE
    finally:
        device.stop()


def test_controls_and_typed_errors_cross_the_boundary(device: Device) -> None:
    a = add_solid_item(device.library, "a", [GREEN, GREEN])
    b = add_solid_item(device.library, "b", [BLUE, BLUE])
    player = device.player
    wait_until(lambda: player.status().current is not None, 20, "playing")
    player.show(b.id)
    wait_until(lambda: on_panel(device, b.id), 10, "b shown")
    before = player.version
    player.pause()
    assert player.status().state == "paused"
    # The status counter other faces (MQTT) wait on moves, read from shared memory.
    assert player.wait_for_change(before, 5.0) != before
    player.resume()
    player.next()
    wait_until(lambda: on_panel(device, a.id), 10, "next: a")
    player.set_brightness(30)
    assert player.status().brightness == 30
    player.sleep()
    assert player.status().state == "sleeping"
    player.wake()
    wait_until(lambda: player.status().state == "playing", 10, "awake again")
    with pytest.raises(ItemNotFound):
        player.show("no-such-item")
    with pytest.raises(ValueError):
        player.set_brightness(140)


@pytest.mark.parametrize("seed", range(3))
def test_no_frame_of_a_deleted_item_reaches_the_bus_after_delete_returns(tmp_path: Path, seed: int) -> None:
    """The fake bus in the player process records every payload with the (system-wide)
    monotonic time it started; after ``DELETE`` returned here, none of the item may start."""
    rng = random.Random(seed)
    device = make_device(tmp_path, player_host_options={"record_payloads": True})
    process = device.player_process
    assert process is not None
    codes: dict[bytes, int] = {}
    ids: dict[int, str] = {}
    deleted_at: dict[int, float] = {}
    try:
        for i in range(3):
            for v in range(4):
                codes[_code(i, v)] = i
            ids[i] = _add(device.library, i)
        wait_until(lambda: device.player.status().on_panel is not None, 20, "playing")
        next_index = 3
        for _ in range(20):
            live = [i for i in ids if i not in deleted_at]
            if live:
                wait_until(lambda: device.player.status().on_panel is not None, 5, "a frame on the panel")
            op = rng.choice(["delete", "delete", "add", "next"])
            if op == "add" or not live:
                for v in range(4):
                    codes[_code(next_index, v)] = next_index
                ids[next_index] = _add(device.library, next_index)
                next_index += 1
            elif op == "delete":
                current = device.player.status().on_panel
                i = next((j for j in live if ids[j] == current), rng.choice(live))
                device.delete_item(ids[i])
                deleted_at[i] = time.monotonic()
            else:
                device.player.next()
        # An observation window, not synchronisation: a late frame of a deleted item would land
        # in the transcript while a last item plays.
        for v in range(4):
            codes[_code(next_index, v)] = next_index
        last = _add(device.library, next_index)
        wait_until(lambda: on_panel(device, last), 10, "the last item on the panel")
        shown_before = device.player.status().stats.frames_shown
        wait_until(lambda: device.player.status().stats.frames_shown > shown_before + 5, 10, "more frames")
        transcript = process.call("transcript", timeout=10.0)
    finally:
        device.stop()
    assert deleted_at, "the run deleted nothing"
    pixel_transfers = 0
    for t, _dc, nbytes, head in transcript:
        owner = codes.get(head[:2]) if nbytes >= 32 else None  # shorter: window coordinates
        if owner is None:
            continue
        pixel_transfers += 1
        if owner in deleted_at:
            assert t <= deleted_at[owner], f"item {owner} reached the bus after its delete returned"
    assert pixel_transfers > 20  # it really was playing all along


def test_a_stuck_player_process_is_killed_and_replaced(device: Device) -> None:
    item = add_solid_item(device.library, "green", [GREEN, BLUE])
    wait_until(lambda: on_panel(device, item.id), 20, "the item on the panel")
    process = device.player_process
    assert process is not None
    stuck = process.pid
    assert stuck is not None
    os.kill(stuck, signal.SIGSTOP)  # frozen: no heartbeat, no answers
    try:
        wait_until(lambda: process.pid not in (None, stuck) and process.running, 40, "a new player process")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stuck, signal.SIGCONT)
    with pytest.raises(ProcessLookupError):
        os.kill(stuck, 0)  # the stuck one was killed, not left behind
    wait_until(lambda: on_panel(device, item.id), 20, "the item back on the panel")
    wait_until(lambda: device.health()["state"] == "ok", 20, "healthy again")
    assert component(device, "player")["restarts"] >= 1
    assert not device.exit_requested.is_set()


def test_a_player_process_that_dies_is_restarted(device: Device) -> None:
    item = add_solid_item(device.library, "green", [GREEN, BLUE])
    wait_until(lambda: on_panel(device, item.id), 20, "the item on the panel")
    process = device.player_process
    assert process is not None and process.pid is not None
    dead = process.pid
    os.kill(dead, signal.SIGKILL)
    wait_until(lambda: process.pid not in (None, dead) and process.running, 40, "a new player process")
    wait_until(lambda: on_panel(device, item.id), 20, "the item back on the panel")
    assert any("exited" in str(f) for f in device.health()["faults"])


def test_without_real_time_scheduling_the_web_side_is_niced(tmp_path: Path) -> None:
    config = load_config(None, data_dir=tmp_path / "data")
    config = replace(config, player=replace(config.player, realtime_priority=0, web_nice=4))
    device = Device(
        config, sim_hardware(config), host="127.0.0.1", port=0, import_worker="inline", player_mode="process"
    )
    device.start()
    try:
        isolation = device.health()["isolation"]
        assert isolation["scheduling"]["policy"] == "other"
        assert "off in the config" in isolation["scheduling"]["reason"]
        assert isolation["web_nice"] == 4
        # A request thread that served the API lowered its own priority by that much; the
        # player process kept its own.
        seen: set[int] = set()

        def record(environ: Any, start_response: Any) -> Any:
            seen.add(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            return inner(environ, start_response)

        niced = device._app.wsgi_app
        inner = niced.app  # type: ignore[attr-defined]
        niced.app = record  # type: ignore[attr-defined]
        with urllib.request.urlopen(f"{device.server.url}/api/player", timeout=10) as response:
            response.read()
        assert seen == {min(19, os.getpriority(os.PRIO_PROCESS, 0) + 4)}  # 19 is the floor
        assert device.player_process is not None and device.player_process.pid is not None
        assert os.getpriority(os.PRIO_PROCESS, device.player_process.pid) == os.getpriority(
            os.PRIO_PROCESS, 0
        )
    finally:
        device.stop()
    assert apply_realtime(None)["policy"] == "other"


def _realtime_under(rtprio: int) -> dict[str, Any] | None:
    """``apply_realtime(10)`` in a process without CAP_SYS_NICE under RLIMIT_RTPRIO ``rtprio``
    (what the systemd unit's user gets); None when this machine cannot set that up."""
    import json
    import shutil
    import subprocess
    import sys

    if not (shutil.which("prlimit") and shutil.which("setpriv")):
        return None
    code = (
        "import json; from libloop.player.host import apply_realtime; print(json.dumps(apply_realtime(10)))"
    )
    done = subprocess.run(
        ["prlimit", f"--rtprio={rtprio}", "setpriv", "--bounding-set=-sys_nice", "--inh-caps=-sys_nice",
         sys.executable, "-c", code],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], timeout=60,
    )  # fmt: skip
    if done.returncode != 0:
        return None
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_without_permission_the_player_process_says_why_it_has_no_real_time_scheduling() -> None:
    refused = _realtime_under(0)
    if refused is None:
        pytest.skip("prlimit/setpriv cannot drop CAP_SYS_NICE here")
    assert refused["policy"] == "other" and "LimitRTPRIO" in refused["reason"]


def test_under_the_units_rtprio_limit_the_player_process_gets_sched_fifo() -> None:
    granted = _realtime_under(20)
    if granted is None:
        pytest.skip("this machine does not let RLIMIT_RTPRIO be raised")
    assert granted == {"policy": "fifo", "priority": 10}


# --- the framebuffer ------------------------------------------------------------------------------


def _writer(name: str, frames: int, done: Any) -> None:
    fb = SharedFramebuffer.attach(name)
    pixels = fb.pixels
    for i in range(frames):
        fb.begin()
        value = i % 251
        half = pixels.size // 2
        pixels[:half] = value  # a frame written in two steps, as blits are
        pixels[half:] = value
        fb.end()
    del pixels
    done.set()
    fb.close()


def test_readers_in_another_process_never_see_a_torn_frame() -> None:
    fb = SharedFramebuffer.create(240 * 320 * 4)
    try:
        ctx = multiprocessing.get_context("spawn")
        done = ctx.Event()
        writer = ctx.Process(target=_writer, args=(fb.name, 3000, done))
        writer.start()
        copy = np.zeros(fb.size, dtype=np.uint8)
        reads = 0
        seen = set()
        while not done.is_set() or reads == 0:
            got = fb.read(copy)
            if got is None:
                continue
            reads += 1
            first = int(copy[0])
            assert (copy == first).all(), "a copy mixed two frames"
            seen.add(first)
        writer.join(30)
        assert writer.exitcode == 0
        assert reads > 0 and len(seen) > 1  # it really read while frames changed
        assert fb.sequence % 2 == 0
    finally:
        fb.close()


def test_a_hung_transfer_in_the_player_process_is_ended_with_the_process(device: Device) -> None:
    """The fake bus in the child hangs in a transfer, as a wedged spidev driver does: the
    heartbeat stops, and the device kills that process and plays on in a new one."""
    item = add_solid_item(device.library, "green", [GREEN, BLUE])
    wait_until(lambda: on_panel(device, item.id), 20, "the item on the panel")
    process = device.player_process
    assert process is not None
    hung = process.pid
    process.call("sim_fault", "hang_transfer", 1)
    wait_until(lambda: process.pid not in (None, hung) and process.running, 40, "a new player process")
    wait_until(lambda: on_panel(device, item.id), 20, "the item back on the panel")
    wait_until(lambda: centre(device) in (GREEN, BLUE), 10, "its frames in display.png")
    assert any("heartbeat" in str(f) for f in device.health()["faults"])


def test_the_simulator_window_shows_the_player_processs_framebuffer(device: Device) -> None:
    from sim.viewer import Viewer

    viewer = Viewer(device.panel_view, headless=True, scale=1)
    viewer.open()
    try:
        item = add_solid_item(device.library, "green", [GREEN, GREEN])
        wait_until(lambda: on_panel(device, item.id), 20, "the item on the panel")
        drawn = viewer.frames_drawn
        wait_until(lambda: viewer.pump() and viewer.frames_drawn > drawn, 10, "the window redrawn")
        shot = viewer.save_png(device.data_dir / "window.png")
        pixel: Any = Image.open(shot).convert("RGB").getpixel((120, 160))
        assert tuple(pixel) == GREEN
    finally:
        viewer.close()


def test_a_new_rotation_turns_the_panel_in_the_player_process_before_the_change_returns(
    device: Device,
) -> None:
    item = add_solid_item(device.library, "green", [GREEN, GREEN])
    wait_until(lambda: on_panel(device, item.id), 20, "the item on the panel")
    device.settings.patch({"rotation": 90})
    # The player process read the setting from its own library and turned the panel at once.
    assert device.rotation == 90
    wait_until(lambda: device.display_image().size == (320, 240), 10, "the landscape picture")
    assert device.player.status().on_panel == item.id or device.player.status().current == item.id
