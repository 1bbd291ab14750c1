"""The `loop` command against a running `loop sim`: what a person sees from another terminal."""

from __future__ import annotations

import json
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
