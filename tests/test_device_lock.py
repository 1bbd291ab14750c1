"""One device per data directory: a second `loop sim` on the same data is refused, and never
touches the first one's state; a killed device leaves no lock behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loopapp.devicelock import DeviceAlreadyRunning, DeviceLock
from tests.e2e_helpers import DeviceProcess, http


def test_a_second_lock_on_the_same_directory_is_refused_and_names_the_holder(tmp_path: Path) -> None:
    first, second = DeviceLock(tmp_path / "data"), DeviceLock(tmp_path / "data")
    first.acquire()
    with pytest.raises(DeviceAlreadyRunning) as refused:
        second.acquire()
    assert refused.value.pid == os.getpid() and f"PID {os.getpid()}" in str(refused.value)
    assert not second.held
    first.release()
    first.release()  # twice is harmless
    second.acquire()  # released: the next device may start
    assert second.held
    second.release()
    assert (tmp_path / "data" / "device.lock").exists()  # never unlinked (see the module)


def _second_sim(data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    env.pop("NOTIFY_SOCKET", None)
    return subprocess.run(
        [sys.executable, "-m", "loopapp", "sim", "--headless", "--port", "0", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_a_second_device_on_the_same_data_is_refused_in_one_sentence(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = DeviceProcess(data)
    try:
        state_before = (data / "device.json").read_bytes()
        assert json.loads(state_before)["pid"] == first.proc.pid

        second = _second_sim(data)

        assert second.returncode == 1
        assert second.stderr.count("\n") == 1, second.stderr
        assert f"PID {first.proc.pid}" in second.stderr and str(data) in second.stderr
        assert "http://" not in second.stdout  # it never started a dashboard
        # The first device is untouched: its state file, and it still answers.
        assert (data / "device.json").read_bytes() == state_before
        assert http("GET", f"{first.url}/api/player").ok
    finally:
        code, err = first.stop()
    assert code == 0, err


def test_a_killed_device_leaves_no_lock_behind(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = DeviceProcess(data)
    first.kill()  # SIGKILL: no clean-up ran, device.json is stale; the kernel dropped the lock
    assert (data / "device.json").exists()
    again = DeviceProcess(data)
    try:
        assert json.loads((data / "device.json").read_text())["pid"] == again.proc.pid
        assert http("GET", f"{again.url}/api/player").ok
    finally:
        code, err = again.stop()
    assert code == 0, err
