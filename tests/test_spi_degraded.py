"""The Pi 5's SPI DMA fault: long transfers end in ETIMEDOUT; the device plays on with short ones.

raspberrypi/linux issues 5696, 5865 and 6020: on the RP1's SSI, spidev transfers longer than
the 64-byte FIFO go through DMA, which can stop completing ("DMA transaction timed out",
errno 110), at times until a reboot. The fake device models it on demand; the bus switches to
64-byte transfers, the display resends what was cut, health says so, and full size is tried
again later.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from libloop.clock import FakeClock
from libloop.errors import TransferCut
from libloop.transport.spidev_bus import DEGRADED_TRANSFER, SpidevBus
from loopapp.config import ConfigError, load_config
from loopapp.device import Device
from loopapp.hardware import sim_hardware
from sim.fakespi import FakeSpiDev
from sim.wiring import SimWiring
from tests.e2e_helpers import wait_until
from tests.test_device_faults import FAST_LADDER
from tests.webapp_fixtures import add_solid_item


class Sink:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes, dc: bool) -> None:
        self.writes.append(data)


def test_the_fake_times_out_long_transfers_after_sending_a_fifo_of_them() -> None:
    sink = Sink()
    dev = FakeSpiDev(sink, bufsiz=4096)
    dev.open(0, 0)
    dev.time_out_long_transfers()
    dev.writebytes2(bytes(64))
    with pytest.raises(OSError) as info:
        dev.writebytes2(bytes(range(65)))
    assert info.value.errno == errno.ETIMEDOUT
    assert [len(w) for w in sink.writes] == [64, 64]  # the FIFO's worth went out anyway
    dev.clear_faults()
    dev.writebytes2(bytes(4096))
    assert len(sink.writes[-1]) == 4096


def make_bus(clock: FakeClock) -> tuple[FakeSpiDev, SpidevBus]:
    dev = FakeSpiDev(Sink(), bufsiz=4096, clock=clock)
    bus = SpidevBus(spidev_factory=lambda: dev, bufsiz=4096, clock=clock, model_path=None,
                    retry_after_s=10.0, retry_max_s=40.0)  # fmt: skip
    bus.open()
    return dev, bus


def test_the_bus_degrades_to_short_transfers_and_backs_off_before_trying_full_size() -> None:
    clock = FakeClock(0.0, auto_advance=False)
    dev, bus = make_bus(clock)
    dev.time_out_long_transfers()
    with pytest.raises(TransferCut):
        bus.write(bytes(1000))
    link = bus.link()
    assert link.degraded and link.max_transfer == DEGRADED_TRANSFER and "ETIMEDOUT" in (link.reason or "")
    assert bus.stats.degraded
    start = len(dev.transcript)
    bus.write(bytes(1000))  # works, in 64-byte transfers
    assert {e.nbytes for e in list(dev.transcript)[start:]} == {64, 1000 % 64}
    for wait in (10.0, 20.0, 40.0, 40.0):  # each failed full-size try doubles the wait, up to the cap
        clock.advance(wait - 0.5)
        bus.write(bytes(1000))  # too early: short transfers, no error
        clock.advance(0.5)
        with pytest.raises(TransferCut):
            bus.write(bytes(1000))  # the full-size try fails
        assert bus.link().retry_in_s == pytest.approx(min(wait * 2, 40.0))
    dev.clear_faults()  # the driver recovers (in real life: often only after a reboot)
    clock.advance(40.0)
    bus.write(bytes(1000))
    assert not bus.link().degraded and bus.max_transfer == 4096 and not bus.stats.degraded


def test_the_display_resends_what_was_cut_so_the_glass_is_right() -> None:
    wiring = SimWiring(strict=True)
    display = wiring.display()
    display.open()
    wiring.device.time_out_long_transfers()
    card = np.random.default_rng(3).integers(0, 256, 240 * 320 * 2, np.uint8)
    display.show_frame(card)  # the first transfer times out after 64 bytes, then all is resent
    from libloop.color import rgb565_to_rgb888

    assert np.array_equal(np.asarray(wiring.snapshot()), rgb565_to_rgb888(card, 240, 320))
    assert display.link().degraded
    assert max(e.nbytes for e in list(wiring.device.transcript)[-100:]) <= DEGRADED_TRANSFER
    assert wiring.panel.violations == []
    back = np.frombuffer(display.read_memory(0, 0, 239, 9), np.uint8)  # reads fit in 64 bytes too
    assert len(back) == 240 * 10 * 3


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
        player_mode="thread",  # the test drives the simulated bus in this process
    )
    dev.hardware.bus.retry_after_s = 0.3  # try full size again soon, so the test sees recovery
    dev.hardware.bus.retry_max_s = 0.6
    dev.start()
    try:
        yield dev
    finally:
        dev.hardware.wiring.device.clear_faults()
        dev.stop()


GREEN, BLUE = (0, 255, 0), (0, 0, 255)


def shows_item(device: Device) -> bool:
    glass = np.asarray(device.hardware.panel.snapshot())
    return any(bool((glass == colour).all()) for colour in (GREEN, BLUE))


def test_the_device_plays_on_degraded_says_so_and_recovers(device: Device) -> None:
    add_solid_item(device.library, "item", [GREEN, BLUE])
    wait_until(lambda: shows_item(device), 10, "the item on the panel")
    device.hardware.wiring.device.time_out_long_transfers()

    def spi() -> dict[str, object]:
        return dict(device.health()["display"]["spi"])

    wait_until(lambda: spi()["degraded"] is True, 10, "the bus to switch to short transfers")
    shown = device.player.status().to_dict()["stats"]["frames_shown"]
    wait_until(
        lambda: device.player.status().to_dict()["stats"]["frames_shown"] > shown + 3,
        10,
        "frames to keep coming",
    )
    wait_until(lambda: shows_item(device), 10, "a whole frame on the glass, not a torn one")
    stats = device.player.status().to_dict()["stats"]
    assert stats["spi_degraded"] is True and stats["spi_clock_hz"] == 62_500_000
    display = next(c for c in device.health()["components"] if c["name"] == "display")
    wait_until(
        lambda: (
            "degraded"
            in str(next(c for c in device.health()["components"] if c["name"] == "display")["detail"])
        ),
        10,
        "the display component to say it is degraded",
    )
    assert display["alive"]
    device.hardware.wiring.device.clear_faults()
    wait_until(lambda: spi()["degraded"] is False, 10, "full-size transfers to come back")
    assert device.player.status().to_dict()["stats"]["spi_degraded"] is False
    assert component_restarts(device) == 0


def component_restarts(device: Device) -> int:
    return sum(int(c["restarts"]) for c in device.health()["components"])


def test_the_simulator_can_start_in_the_pi5_failure(tmp_path: Path) -> None:
    path = tmp_path / "loop.toml"
    path.write_text('[sim]\nfaults = ["pi5-dma-timeout"]\n')
    config = load_config(path, data_dir=tmp_path / "data")
    bus = sim_hardware(config).bus
    bus.open()
    with pytest.raises(TransferCut):  # the bus finds the driver's failure and goes degraded
        bus.write(b"\x00" * 4096)
    path.write_text('[sim]\nfaults = ["gremlins"]\n')
    with pytest.raises(ConfigError, match=r"sim\.faults: 'gremlins' is not a fault drill"):
        load_config(path)
