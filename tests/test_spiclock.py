"""The clock a Pi really makes of a requested SPI clock (spi-bcm2835 and the RP1's spi-dw)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libloop.transport.spiclock import SpiController, controller_for_model, read_model
from libloop.transport.spidev_bus import READ_SPEED_HZ

MODELS = {
    "Raspberry Pi 4 Model B Rev 1.4": 62_500_000,
    "Raspberry Pi 400 Rev 1.0": 62_500_000,
    "Raspberry Pi 3 Model B Plus Rev 1.3": 50_000_000,
    "Raspberry Pi Zero 2 W Rev 1.0": 50_000_000,
    "Raspberry Pi 5 Model B Rev 1.0": 50_000_000,
    "Raspberry Pi Compute Module 4 Rev 1.0": 62_500_000,
}


@pytest.mark.parametrize(("model", "expected"), MODELS.items())
def test_64_mhz_requested_is_what_each_pi_divides_it_to(model: str, expected: int) -> None:
    controller = controller_for_model(model)
    assert controller is not None
    assert controller.effective_hz(64_000_000) == expected
    assert controller.effective_hz(READ_SPEED_HZ) <= 1e9 / 150  # reads stay under the datasheet's limit


def test_other_boards_have_no_model() -> None:
    assert controller_for_model("Some Other Board") is None
    assert controller_for_model(None) is None


def test_the_model_is_read_from_the_device_tree(tmp_path: Path) -> None:
    path = tmp_path / "model"
    path.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\0")
    assert read_model(path) == "Raspberry Pi 5 Model B Rev 1.0"
    assert read_model(tmp_path / "missing") is None


def bcm2835_divider(source: int, speed: int) -> int:
    """spi-bcm2835.c, transcribed: the fastest is /2, odd dividers go up by one, 65536 is the slowest."""
    if speed >= source // 2:
        return 2
    cdiv = -(-source // speed)
    cdiv += cdiv % 2
    return 65536 if cdiv >= 65536 else cdiv


@given(source=st.sampled_from([250_000_000, 400_000_000, 500_000_000]), speed=st.integers(1, 200_000_000))
def test_bcm2835_dividers_follow_the_driver(source: int, speed: int) -> None:
    controller = SpiController("spi-bcm2835", source)
    assert controller.divider(speed) == bcm2835_divider(source, speed)
    if speed >= source // 65536 and speed < source // 2:
        assert controller.effective_hz(speed) <= speed  # never faster than asked


@given(speed=st.integers(1, 300_000_000))
def test_dw_dividers_are_even_and_never_faster_than_asked(speed: int) -> None:
    controller = SpiController("spi-dw", 200_000_000)
    divider = controller.divider(speed)
    assert divider % 2 == 0 and 2 <= divider <= 0xFFFE
    if 200_000_000 // 0xFFFE <= speed <= 100_000_000:
        assert controller.effective_hz(speed) <= speed


@given(st.sampled_from(list(MODELS)), st.integers(1, 400).map(lambda k: 2 * k))
def test_the_request_for_a_divider_gets_that_divider(model: str, divider: int) -> None:
    controller = controller_for_model(model)
    assert controller is not None
    request = controller.request_for(divider)
    assert controller.divider(request) == divider


def test_the_clocks_between_two_bounds_are_listed_slowest_first() -> None:
    controller = controller_for_model("Raspberry Pi 4 Model B Rev 1.4")
    assert controller is not None
    clocks = controller.clocks(40_000_000, 130_000_000)
    assert [hz for _, hz in clocks] == [41_666_666, 50_000_000, 62_500_000, 83_333_333, 125_000_000]
    assert all(controller.effective_hz(request) == hz for request, hz in clocks)
