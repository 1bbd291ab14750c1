"""The whole device under hardware faults, through the fake SPI bus: retried, recovered, or a clean exit.

The device runs in this process on the real clock with a shortened supervisor ladder; every
wait is bounded and polls state the device exposes (no fixed sleeps).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from libloop.index import Library
from loopapp.config import load_config
from loopapp.device import Device
from loopapp.hardware import sim_hardware
from tests.e2e_helpers import wait_until
from tests.webapp_fixtures import add_solid_item

FAST_LADDER = {
    "check_interval": 0.05,
    "start_grace": 2.0,
    "backoff_initial": 0.05,
    "backoff_max": 0.2,
    "emergency_after": 2,
    "exit_after": 3,
    "call_timeout": 3.0,
    "window": 3.0,
}
GREEN, BLUE = (0, 255, 0), (0, 0, 255)
#: Two different frames, so every frame puts bytes on the bus.
FRAMES = [GREEN, BLUE]


@pytest.fixture
def device(tmp_path: Path) -> Iterator[Device]:
    config = load_config(None, data_dir=tmp_path / "data")
    dev = Device(
        config,
        sim_hardware(config),
        host="127.0.0.1",
        port=0,
        import_worker="inline",
        supervisor_options=FAST_LADDER,
        player_mode="thread",  # the faults are injected into this process's fake bus
    )
    dev.start()
    try:
        yield dev
    finally:
        dev.hardware.wiring.device.clear_faults()
        dev.stop()


def shows_item(device: Device) -> bool:
    """The panel shows a frame of the test item (whole, not a half-drawn or stale screen)."""
    glass = np.asarray(device.hardware.panel.snapshot())
    return any(bool((glass == colour).all()) for colour in FRAMES)


def component(device: Device, name: str) -> dict[str, object]:
    return next(c for c in device.health()["components"] if c["name"] == name)


def test_transient_spi_errors_are_retried_without_a_restart(device: Device) -> None:
    add_solid_item(device.library, "item", FRAMES)
    wait_until(lambda: shows_item(device), 10, "the item on the panel")
    fake = device.hardware.wiring.device
    errors_before = fake.errors
    for nth in (1, 3, 5):
        fake.fail_transfer(nth)
    wait_until(lambda: fake.errors >= errors_before + 3, 10, "the injected errors to happen")
    frames_before = device.player.status().to_dict()["stats"]["frames_shown"]
    wait_until(
        lambda: device.player.status().to_dict()["stats"]["frames_shown"] > frames_before + 2,
        10,
        "play to go on",
    )
    assert component(device, "player")["restarts"] == 0
    assert shows_item(device)


def test_a_hung_transfer_is_detected_and_the_display_recovers(device: Device) -> None:
    add_solid_item(device.library, "item", FRAMES)
    wait_until(lambda: shows_item(device), 10, "the item on the panel")
    fake = device.hardware.wiring.device
    fake.hang_transfer(1)
    wait_until(
        lambda: component(device, "player")["restarts"] >= 1, 15, "the supervisor to restart the player"
    )
    fake.release()  # the stuck driver call finally returns (its thread was abandoned meanwhile)
    wait_until(lambda: device.health()["state"] == "ok", 15, "the device to be healthy again")
    wait_until(lambda: shows_item(device), 10, "the item back on the panel")
    assert not device.exit_requested.is_set()
    assert any("did not finish" in str(f) or "hung" in str(f) or "timeout" in str(f).lower()
               for f in device.health()["faults"])  # fmt: skip


def test_a_persistent_fault_ends_in_a_clean_exit_for_systemd_and_loses_no_data(
    device: Device, tmp_path: Path
) -> None:
    item = add_solid_item(device.library, "item", FRAMES)
    wait_until(lambda: shows_item(device), 10, "the item on the panel")
    device.hardware.wiring.device.fail_randomly(1.0)  # the bus is dead for good
    wait_until(device.exit_requested.is_set, 30, "the supervisor to ask for a restart")
    assert device.exit_code != 0
    device.stop()
    with Library(tmp_path / "data") as library:
        assert [i.id for i in library.items()] == [item.id]
        assert library.fsck().ok


def test_emergency_mode_shows_the_error_screen_and_recovery_clears_it(device: Device) -> None:
    add_solid_item(device.library, "item", FRAMES)
    wait_until(lambda: shows_item(device), 10, "the item on the panel")
    for n in range(1, FAST_LADDER["emergency_after"] + 1):
        device.supervisor.report_failure("web", "the dashboard stopped answering (test)")
        wait_until(lambda n=n: component(device, "web")["restarts"] >= n, 10, "the dashboard to be restarted")
    wait_until(lambda: device.health()["emergency"] is not None, 10, "emergency mode")

    def error_screen_up() -> bool:
        glass = np.asarray(device.hardware.panel.snapshot()).astype(int)
        return bool((glass[:, :, 0] > glass[:, :, 2]).mean() > 0.5)

    wait_until(error_screen_up, 10, "the red error screen")
    assert "dashboard stopped answering" in device.player.status().to_dict()["error"]
    # The dashboard comes back and stays up for a whole window: back to playing.
    wait_until(lambda: device.health()["emergency"] is None, 20, "emergency mode to end")
    wait_until(lambda: shows_item(device), 10, "the item back on the panel")
