"""Hardware conformance: the same test bodies over the simulated rig and a Pi with the panel.

On the Pi every step is exercised; what the panel holds is checked by reading its frame
memory back where MISO is wired (LOOP_HIL_MISO=1): RAMRD/RAMRDC, each in one chip-select frame
with its answer, at the 6 MHz read clock. The simulator always checks, both frame memory
(through the same read path, against a panel model that ends a read when chip select rises
and refuses reads above the datasheet's clock) and the glass a person would see. Measured
throughput, the SPI clock really on the wire and the clock sweep's result go to
``artifacts/hil/<rig>.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from hil.rig import Rig, SimRig
from libloop.color import quantize, rgb888_to_rgb565
from libloop.display import Display
from libloop.ili9341 import Rotation, logical_size
from libloop.sweep import candidate_clocks, sweep
from libloop.transport.spidev_bus import SpidevBus

pytestmark = pytest.mark.hil

RESULTS = Path(__file__).resolve().parent.parent / "artifacts" / "hil"


def pattern(width: int, height: int) -> np.ndarray:
    """An asymmetric test card: gradients, a red corner block top-left, a white bar along the top."""
    y, x = np.mgrid[0:height, 0:width]
    card = np.zeros((height, width, 3), np.uint8)
    card[..., 0] = (x * 255 // max(1, width - 1)).astype(np.uint8)
    card[..., 1] = (y * 255 // max(1, height - 1)).astype(np.uint8)
    card[..., 2] = ((x + y) % 64 * 4).astype(np.uint8)
    card[:20, :40] = (255, 0, 0)
    card[:4, :] = (255, 255, 255)
    return card


def expect_memory(rig: Rig, display: Display, rgb: np.ndarray, x0: int, y0: int) -> None:
    """Frame memory holds `rgb` (RGB565-quantised) at (x0, y0), if the rig can tell."""
    h, w = rgb.shape[:2]
    seen = rig.observe(display, x0, y0, x0 + w - 1, y0 + h - 1)
    if seen is None:
        return  # no MISO: the step ran, but only a person can see the result
    assert np.array_equal(seen, quantize(rgb) & 0xFC)


def expect_glass(rig: Rig, rotation: Rotation, rgb: np.ndarray) -> None:
    """On the simulator, a person looking at the glass (turned to `rotation`) sees `rgb`."""
    if isinstance(rig, SimRig):
        glass = np.asarray(rig.wiring.snapshot(rotation))
        assert np.array_equal(glass, quantize(rgb))
        assert rig.violations == []


def record(rig: Rig, **figures: float | str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{rig.name}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(figures)
    path.write_text(json.dumps(data, indent=2))


def test_init_brings_the_panel_up(rig: Rig) -> None:
    display = rig.open()
    assert display.is_open and display.is_on and not display.asleep
    display.fill((0, 0, 0))
    w, h = display.size
    expect_memory(rig, display, np.zeros((h, w, 3), np.uint8), 0, 0)
    expect_glass(rig, Rotation.R0, np.zeros((h, w, 3), np.uint8))


@pytest.mark.parametrize("rotation", list(Rotation))
def test_every_rotation_shows_the_card_upright(rig: Rig, rotation: Rotation) -> None:
    display = rig.open(rotation)
    w, h = logical_size(rotation)
    card = pattern(w, h)
    display.show_frame(rgb888_to_rgb565(card).data)
    expect_memory(rig, display, card, 0, 0)
    expect_glass(rig, rotation, card)


@pytest.mark.parametrize(
    "window",
    [(0, 0, 0, 0), (239, 319, 239, 319), (10, 20, 41, 83), (0, 100, 239, 100), (120, 0, 120, 319)],
    ids=["top-left pixel", "bottom-right pixel", "block", "one row", "one column"],
)
def test_partial_windows_change_only_their_pixels(rig: Rig, window: tuple[int, int, int, int]) -> None:
    display = rig.open()
    base = np.full((320, 240, 3), (0, 0, 64), np.uint8)
    display.show_frame(rgb888_to_rgb565(base).data)
    x0, y0, x1, y1 = window
    patch = pattern(x1 - x0 + 1, y1 - y0 + 1)
    display.blit(x0, y0, x1, y1, rgb888_to_rgb565(patch).data)
    expected = base.copy()
    expected[y0 : y1 + 1, x0 : x1 + 1] = patch
    expect_memory(rig, display, patch, x0, y0)
    expect_glass(rig, Rotation.R0, expected)


def test_full_frame_throughput(rig: Rig) -> None:
    display = rig.open()
    frames = [rgb888_to_rgb565(np.full((320, 240, 3), c, np.uint8)) for c in ((255, 0, 0), (0, 0, 255))]
    count = 60
    start_bytes = display.stats.bytes
    start = time.perf_counter()
    for i in range(count):
        display.show_frame(frames[i % 2].data)
    elapsed = time.perf_counter() - start
    sent = display.stats.bytes - start_bytes
    assert sent >= count * 240 * 320 * 2
    link = display.link()
    assert link.requested_hz == rig.speed_hz and 0 < link.clock_hz <= link.requested_hz
    record(
        rig,
        fps=count / elapsed,
        throughput_mb_s=sent / elapsed / 1e6,
        wire_limit_fps=link.clock_hz / (240 * 320 * 16),
        speed_hz=link.requested_hz,
        clock_hz=link.clock_hz,
        read_clock_hz=link.read_clock_hz,
        controller=link.controller,
    )
    expect_glass(rig, Rotation.R0, np.full((320, 240, 3), (0, 0, 255), np.uint8))


def test_recovers_after_reset(rig: Rig) -> None:
    display = rig.open()
    display.fill((255, 255, 0))
    display.reinit()  # hardware reset + init, as the supervisor does after a fault
    assert display.is_open and display.is_on
    card = pattern(240, 320)
    display.show_frame(rgb888_to_rgb565(card).data)
    expect_memory(rig, display, card, 0, 0)
    expect_glass(rig, Rotation.R0, card)


def test_frame_memory_reads_back_what_was_written(rig: Rig) -> None:
    if not rig.can_observe:
        pytest.skip("MISO is not wired on this rig (set LOOP_HIL_MISO=1 if it is)")
    display = rig.open(Rotation.R90)
    card = pattern(64, 48)
    display.blit(100, 50, 163, 97, rgb888_to_rgb565(card).data)
    seen = rig.observe(display, 100, 50, 163, 97)
    assert seen is not None
    assert np.array_equal(seen, quantize(card) & 0xFC)


def test_spi_sweep_finds_the_fastest_reliable_clock(rig: Rig) -> None:
    if not rig.can_observe:
        pytest.skip("the clock sweep reads back over MISO (set LOOP_HIL_MISO=1 if it is wired)")
    display = rig.open()
    bus = display.bus
    assert isinstance(bus, SpidevBus)
    result = sweep(display, bus, candidate_clocks(bus.controller), rounds=1)
    assert result.miso, result.summary()
    assert result.fastest is not None, result.summary()
    record(rig, sweep_fastest_hz=result.fastest.clock_hz, sweep_config=result.config_line() or "",
           sweep_stopped=result.stopped)  # fmt: skip
    if isinstance(rig, SimRig):
        assert result.fastest.clock_hz == 62_500_000  # the last Pi 4 clock under the module's 70 MHz
        assert rig.violations == []
    # The sweep leaves the panel working at the configured clock.
    card = pattern(240, 320)
    display.show_frame(rgb888_to_rgb565(card).data)
    expect_memory(rig, display, card, 0, 0)
