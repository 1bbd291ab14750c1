"""The whole device as a person runs it: `loop sim --headless`, driven over HTTP, stopped with SIGTERM."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e_helpers import (
    DeviceProcess,
    close_to,
    dominant_colour,
    http,
    multipart,
    solid_gif,
    wait_until,
)

pytestmark = pytest.mark.e2e

MAGENTA = (248, 0, 248)


@pytest.fixture
def device(tmp_path: Path) -> Iterator[DeviceProcess]:
    proc = DeviceProcess(tmp_path / "data")
    try:
        yield proc
    finally:
        proc.kill()


def panel_colour(device: DeviceProcess, headers: dict[str, str] | None = None) -> tuple[int, int, int]:
    result = http("GET", f"{device.url}/api/display.png", headers=headers)
    assert result.status == 200
    return dominant_colour(result.body)


def test_upload_show_delete_and_stop_cleanly(device: DeviceProcess) -> None:
    # A fresh device has an empty library and says how to add media.
    assert http("GET", f"{device.url}/api/media").json()["items"] == []
    assert http("GET", f"{device.url}/api/player").json()["state"] == "empty"

    body, content_type = multipart([("magenta.gif", solid_gif([MAGENTA, MAGENTA]))])
    created = http("POST", f"{device.url}/api/media?wait=true", body, {"Content-Type": content_type})
    assert created.status == 201, created.body
    (job,) = created.json()["jobs"]
    assert job["status"] == "done"
    item_id = job["item"]["id"]
    assert [i["id"] for i in http("GET", f"{device.url}/api/media").json()["items"]] == [item_id]

    wait_until(lambda: close_to(panel_colour(device), MAGENTA), 20, "the GIF on the panel")

    deleted = http("DELETE", f"{device.url}/api/media/{item_id}")
    assert deleted.status in (200, 204), deleted.body
    # The delete guarantee: when DELETE returns the panel already shows something else.
    assert not close_to(panel_colour(device), MAGENTA)
    assert http("GET", f"{device.url}/api/media").json()["items"] == []
    assert http("GET", f"{device.url}/api/media/{item_id}").status in (404, 405)

    code, stderr = device.stop()
    assert code == 0, stderr
    assert "Traceback" not in stderr


def test_speaks_sd_notify_like_the_service(tmp_path: Path) -> None:
    """With NOTIFY_SOCKET set, `loop sim` sends READY, STATUS, WATCHDOG and STOPPING on the socket."""
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(30)
        proc = DeviceProcess(tmp_path / "data", env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "3000000"})
        try:
            seen: list[str] = []

            def receive_until(key: str) -> None:
                while not any(line.startswith(key) for line in seen):
                    seen.extend(sock.recv(4096).decode().splitlines())

            receive_until("READY=1")
            receive_until("WATCHDOG=1")
            assert any(line.startswith("STATUS=") for line in seen)
            code, stderr = proc.stop()
            receive_until("STOPPING=1")
        finally:
            proc.kill()
    assert code == 0, stderr
    assert "Traceback" not in stderr


def test_cli_reaches_the_running_device_even_with_a_password(device: DeviceProcess, tmp_path: Path) -> None:
    body, content_type = multipart([("magenta.gif", solid_gif([MAGENTA]))])
    created = http("POST", f"{device.url}/api/media?wait=true", body, {"Content-Type": content_type})
    item_id = created.json()["jobs"][0]["item"]["id"]
    wait_until(lambda: close_to(panel_colour(device), MAGENTA), 20, "the picture on the panel")
    password = json.dumps({"password": "correct horse battery"}).encode()
    assert http(
        "POST", f"{device.url}/api/settings/password", password, {"Content-Type": "application/json"}
    ).ok
    assert http("GET", f"{device.url}/api/media").status == 401  # the dashboard now asks for the password

    data = str(tmp_path / "data")
    health = subprocess.run(
        [sys.executable, "-m", "loopapp", "health", "--json", "--data", data], capture_output=True, text=True
    )
    assert health.returncode == 0, health.stderr
    assert {c["name"] for c in json.loads(health.stdout)["components"]} >= {"player", "web"}

    removed = subprocess.run(
        [sys.executable, "-m", "loopapp", "rm", item_id, "--data", data], capture_output=True, text=True
    )
    assert removed.returncode == 0, removed.stderr
    # `loop rm` went through the device, so the delete guarantee held: the panel moved off.
    token = json.loads((tmp_path / "data" / "device.json").read_text())["token"]
    assert not close_to(panel_colour(device, {"Authorization": f"Bearer {token}"}), MAGENTA)
    assert device.stop()[0] == 0
