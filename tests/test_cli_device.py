"""The `loop` command against a running `loop sim`: what a person sees from another terminal."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
from pathlib import Path

from tests.e2e_helpers import DeviceProcess


def loop(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loopapp", *argv], capture_output=True, text=True, timeout=60
    )


def test_health_of_a_running_device_is_a_summary(tmp_path: Path) -> None:
    data = tmp_path / "data"
    device = DeviceProcess(data)
    try:
        summary = loop("health", "--data", str(data))
        as_json = loop("health", "--json", "--data", str(data))
    finally:
        code, err = device.stop()
    assert code == 0, err

    assert summary.returncode == 0, summary.stderr
    lines = summary.stdout.splitlines()
    assert lines[0].startswith(f"LOOP on {data}: ")
    for name in ("player", "display", "web", "importer", "resources", "wifi"):
        (line,) = [line for line in lines if line.split()[:1] == [name]]
        assert line.split()[1] in ("ok", "STARTING"), line
    assert any(line.startswith("Resources: level ") and "MB free" in line for line in lines)
    assert any(line.startswith("Player: empty") for line in lines)
    assert "{" not in summary.stdout  # no raw JSON or dict dumps

    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert {c["name"] for c in report["components"]} >= {"player", "display", "web"}

    # Stopped: the same command now says so and fails.
    after = loop("health", "--data", str(data))
    assert after.returncode == 1 and "No LOOP device is running" in after.stderr


def test_loop_sim_without_data_uses_its_own_directory(tmp_path: Path) -> None:
    """Run as a person would: no --data, no $LOOP_DATA; a real device's directory stays untouched."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOOP_DATA", "NOTIFY_SOCKET")}
    env.update(HOME=str(tmp_path), XDG_DATA_HOME="", SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopapp", "sim", "--headless", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            assert sel.select(60), "loop sim printed nothing"
        assert b"LOOP is running" in proc.stdout.readline()
        state = json.loads((tmp_path / ".local/share/loop-sim/device.json").read_text())
        assert state["pid"] == proc.pid
        assert not (tmp_path / ".local/share/loop").exists()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode(errors="replace")
