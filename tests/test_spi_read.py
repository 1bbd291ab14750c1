"""Reading frame memory back: one chip-select frame per read, at a clock the datasheet allows.

The panel model ends a read when CSX rises and checks the read clock in strict mode, and the
fake spidev device keeps py-spidev's 4096-byte ``xfer2`` limit, so the ways a read fails on a
Pi fail here too; the display's read path is proved against them.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libloop import ili9341
from libloop.color import rgb565_to_rgb888
from libloop.ili9341 import Cmd, Rotation, logical_size
from libloop.transport.spidev_bus import SpidevBus
from sim.panel import PanelViolation, ViolationKind
from sim.wiring import SimWiring
from tests.strategies import rotations, windows


def opened(**kwargs: object) -> tuple[SimWiring, object]:
    wiring = SimWiring(strict=True, **kwargs)  # type: ignore[arg-type]
    display = wiring.display()
    display.open()
    return wiring, display


@settings(max_examples=25, deadline=None)
@given(rotation=rotations(), bufsiz=st.sampled_from([64, 4096, 65536]), data=st.data())
def test_read_memory_returns_what_was_written_in_frames_within_the_limits(
    rotation: Rotation, bufsiz: int, data: st.DataObject
) -> None:
    wiring = SimWiring(strict=True, bufsiz=bufsiz, record_payloads=False)
    display = wiring.display(rotation=rotation)
    display.open()
    w, h = logical_size(rotation)
    x0, y0, x1, y1 = data.draw(windows(w, h, max_side=80))
    pixels = np.random.default_rng(x0 + 7 * y1).integers(0, 256, (y1 - y0 + 1) * (x1 - x0 + 1) * 2, np.uint8)
    display.blit(x0, y0, x1, y1, pixels)
    start = len(wiring.device.transcript)
    raw = display.read_memory(x0, y0, x1, y1)
    expected = rgb565_to_rgb888(pixels, x1 - x0 + 1, y1 - y0 + 1).reshape(-1) & 0xFC
    assert np.array_equal(np.frombuffer(raw, np.uint8) & 0xFC, expected)
    reads = [e for e in list(wiring.device.transcript)[start:] if e.kind == "xfer"]
    assert reads and all(e.nbytes <= min(4096, bufsiz) for e in reads)
    assert all(e.hz <= 1e9 / 150 and not e.dc for e in reads)  # the read clock, D/C low throughout
    assert wiring.panel.violations == []


def test_a_command_and_its_answer_in_separate_transfers_fails_as_on_the_chip() -> None:
    wiring, display = opened()
    display.send(ili9341.set_window(0, 0, 0, 0))
    display.send(ili9341.command(Cmd.RAMRD))  # chip select rises at the end of this transfer
    display.dc.set(True)
    with pytest.raises(PanelViolation) as info:
        wiring.device.xfer2([0] * 4, 6_000_000)
    assert info.value.violation.kind is ViolationKind.READ_WITHOUT_COMMAND
    assert "chip select rose" in str(info.value)


def test_a_read_at_the_write_clock_is_reported_in_strict_mode() -> None:
    wiring, display = opened()
    fast = SpidevBus(spidev_factory=lambda: wiring.device, bufsiz=4096, read_speed_hz=64_000_000,
                     controller=wiring.device.controller, model_path=None)  # fmt: skip
    wiring.bus.close()
    fast.open()
    display.bus = fast
    with pytest.raises(PanelViolation) as info:
        display.read_memory(0, 0, 9, 0)
    assert info.value.violation.kind is ViolationKind.READ_CLOCK
    assert "62.50 MHz" in str(info.value)  # the Pi 4 runs 64 MHz as 62.5


def test_reads_over_the_xfer2_limit_are_refused_before_the_driver_sees_them() -> None:
    wiring, _ = opened(bufsiz=65536)
    assert wiring.bus.max_read == 4096
    with pytest.raises(ValueError, match="at most 4096"):
        wiring.bus.read(b"\x2e", 4096)
    with pytest.raises(OverflowError, match="4096"):  # what py-spidev would have said
        wiring.device.xfer2([0] * 4097)


def test_read_frames_plan_ramrd_then_ramrdc_with_whole_pixels() -> None:
    frames = ili9341.read_frames(0, 0, 239, 319, 4096)
    assert frames[0][0] == b"\x2e" and all(cmd == b"\x3e" for cmd, _ in frames[1:])
    assert all((n - 1) % 3 == 0 and n + 1 <= 4096 for _, n in frames)
    assert sum((n - 1) // 3 for _, n in frames) == 240 * 320
    with pytest.raises(ValueError, match="at least 5"):
        ili9341.read_frames(0, 0, 0, 0, 4)


def test_a_leftover_cshigh_would_hide_every_byte_and_the_bus_clears_it() -> None:
    wiring = SimWiring(strict=True)
    wiring.device.kernel_mode = 0x04  # SPI_CS_HIGH, left by another program
    display = wiring.display()
    display.open()  # SpidevBus.open clears it, so the init sequence reaches the chip
    display.fill((255, 0, 0))
    assert tuple(np.asarray(wiring.snapshot())[5, 5]) == (255, 0, 0)
    wiring.device.cshigh = True  # what would have happened without the reset
    with pytest.raises(PanelViolation) as info:
        display.fill((0, 0, 255))
    assert info.value.violation.kind is ViolationKind.CHIP_SELECT_INACTIVE


def test_pixel_data_over_the_modules_reliable_clock_arrives_garbled() -> None:
    wiring = SimWiring(strict=True, reliable_hz=55_000_000)
    display = wiring.display()
    display.open()
    card = np.arange(240 * 320 * 2, dtype=np.uint32).astype(np.uint8)
    for speed, intact in ((50_000_000, True), (64_000_000, False)):  # 50 and 62.5 MHz on a Pi 4
        wiring.bus.set_clock(speed)
        display.show_frame(card)
        back = np.frombuffer(display.read_memory(0, 0, 239, 319), np.uint8) & 0xFC
        expected = rgb565_to_rgb888(card, 240, 320).reshape(-1) & 0xFC
        assert np.array_equal(back, expected) is intact
    assert wiring.panel.violations == []
