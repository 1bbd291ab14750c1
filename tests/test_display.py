"""Display -> SpidevBus -> FakeSpiDev -> panel model: the glass shows what was drawn."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from libloop.clock import FakeClock
from libloop.color import quantize, rgb888_to_rgb565
from libloop.display import RESET_PULSE_S, Display
from libloop.errors import DeviceNotFound, TransportError
from libloop.ili9341 import Cmd, Rotation, logical_size
from libloop.transport import SpidevBus
from sim.fakespi import FakeSpiDev
from sim.pins import FakePin
from sim.wiring import SimWiring

U8 = npt.NDArray[np.uint8]


def rig(**kwargs: object) -> tuple[SimWiring, Display]:
    shadow = bool(kwargs.pop("shadow", True))
    kwargs.setdefault("strict", True)
    wiring = SimWiring(**kwargs)  # type: ignore[arg-type]
    display = wiring.display(shadow=shadow)
    display.open()
    return wiring, display


def glass(wiring: SimWiring, rotation: Rotation) -> U8:
    return np.asarray(wiring.panel.snapshot(rotation))


@st.composite
def drawings(draw: st.DrawFn) -> tuple[Rotation, tuple[int, int, int, int], U8, int]:
    rotation = draw(st.sampled_from(list(Rotation)))
    width, height = logical_size(rotation)
    x0 = draw(st.integers(0, width - 1))
    y0 = draw(st.integers(0, height - 1))
    x1 = draw(st.integers(x0, min(width - 1, x0 + draw(st.sampled_from([0, 3, 40, width])))))
    y1 = draw(st.integers(y0, min(height - 1, y0 + draw(st.sampled_from([0, 5, 40, height])))))
    seed = draw(st.integers(0, 2**32 - 1))
    pixels = np.random.default_rng(seed).integers(0, 256, (y1 - y0 + 1, x1 - x0 + 1, 3), dtype=np.uint8)
    bufsiz = draw(st.sampled_from([64, 4095, 4096, 65536]))
    return rotation, (x0, y0, x1, y1), pixels, bufsiz


@given(drawings())
def test_any_image_rotation_and_window_shows_exactly_the_quantised_image(
    case: tuple[Rotation, tuple[int, int, int, int], U8, int],
) -> None:
    rotation, (x0, y0, x1, y1), pixels, bufsiz = case
    wiring, display = rig(bufsiz=bufsiz)
    display.set_rotation(rotation)
    background = np.random.default_rng(7).integers(0, 256, (*reversed(display.size), 3), dtype=np.uint8)
    display.show_frame(rgb888_to_rgb565(background).data)
    display.blit(x0, y0, x1, y1, rgb888_to_rgb565(pixels).data)
    expected = quantize(background)
    expected[y0 : y1 + 1, x0 : x1 + 1] = quantize(pixels)
    seen = glass(wiring, rotation)
    assert np.array_equal(seen, expected)
    assert np.array_equal(np.asarray(display.shadow_image()), seen)
    assert all(0 < n <= bufsiz for n in wiring.device.sizes())
    assert wiring.panel.violations == []


def test_open_pulses_reset_and_waits_before_the_first_command() -> None:
    wiring, _ = rig()
    (t_low, low), (t_high, high) = [s for s in wiring.reset.states if True][-2:]
    assert (low, high) == (False, True)
    assert t_high - t_low >= 10e-6 and RESET_PULSE_S >= 10e-6
    first = wiring.device.transcript[0]
    assert first.t - t_high >= 0.005  # the datasheet minimum; we wait 120 ms
    assert not first.dc
    assert wiring.panel.commands[0][0] == Cmd.SWRESET
    assert wiring.panel.display_on and not wiring.panel.sleeping


def test_every_command_byte_goes_with_dc_low() -> None:
    wiring = SimWiring(record_payloads=True)
    display = wiring.display()
    display.open()
    display.fill((10, 200, 30))
    commands = [e for e in wiring.device.transcript if not e.dc]
    assert commands and all(e.nbytes == 1 and e.data is not None and e.data[0] in set(Cmd) for e in commands)
    assert [e.data for e in commands[-3:]] == [bytes([Cmd.CASET]), bytes([Cmd.PASET]), bytes([Cmd.RAMWR])]


def test_fill_show_image_and_stats() -> None:
    wiring, display = rig()
    display.fill((255, 0, 0))
    assert (glass(wiring, Rotation.R0) == [255, 0, 0]).all()
    image = Image.new("RGB", (100, 50), (0, 0, 255))  # letterboxed into 240x320 in black
    display.show_image(image)
    seen = glass(wiring, Rotation.R0)
    assert (seen[160, 120] == [0, 0, 255]).all() and (seen[5, 120] == [0, 0, 0]).all()
    display.show_image(image, fit="cover")
    assert (glass(wiring, Rotation.R0) == [0, 0, 255]).all()
    with pytest.raises(ValueError):
        display.show_image(image, fit="zoom")  # type: ignore[arg-type]
    assert display.stats.bytes == wiring.device.bytes
    assert display.stats.transfers == wiring.device.transfers


def test_show_image_at_a_rotation_is_upright() -> None:
    wiring, display = rig()
    display.set_rotation(Rotation.R90)
    image = Image.new("RGB", (320, 240), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 160, 240))  # left half white
    display.show_image(image)
    seen = glass(wiring, Rotation.R90)
    assert seen.shape == (240, 320, 3)
    assert (seen[:, :160] == 255).all() and (seen[:, 160:] == 0).all()


def test_brightness_sleep_wake_on_off_invert_reach_the_panel() -> None:
    wiring, display = rig()
    display.set_brightness(30)
    assert wiring.panel.backlight == 30
    display.sleep()
    assert wiring.panel.sleeping and wiring.panel.backlight == 0
    display.set_brightness(60)  # remembered while asleep
    assert wiring.panel.backlight == 0
    display.wake()
    assert not wiring.panel.sleeping and wiring.panel.backlight == 60
    display.display_off()
    assert not wiring.panel.display_on and not display.is_on
    display.display_on()
    display.invert(True)
    assert wiring.panel.inverted and display.inverted
    with pytest.raises(ValueError):
        display.set_brightness(101)
    assert wiring.panel.violations == []


def test_sleep_and_wake_wait_120_ms_in_simulated_time() -> None:
    wiring, display = rig()
    assert isinstance(wiring.clock, FakeClock)
    before = wiring.clock.monotonic()
    display.sleep()
    display.wake()
    assert wiring.clock.monotonic() - before >= 0.240


def test_close_turns_the_backlight_off_and_releases_everything() -> None:
    wiring, display = rig()
    display.close()
    display.close()
    assert wiring.panel.backlight == 0
    assert not wiring.dc.opened and not wiring.reset.opened and wiring.device.closed


def test_pin_backlight_rig() -> None:
    wiring = SimWiring(pwm_backlight=False)
    with wiring.display(brightness=40) as display:
        assert wiring.panel.backlight == 100
        display.set_brightness(0)
        assert wiring.panel.backlight == 0


def test_reinit_recovers_after_a_bus_fault() -> None:
    wiring, display = rig(strict=False)  # the fault leaves a half-sent command, as on the wire
    display.set_rotation(Rotation.R270)
    display.invert(True)
    display.display_off()
    wiring.device.fail_transfer(1)
    frame = np.full((240, 320, 3), 99, np.uint8)
    with pytest.raises(TransportError):
        display.show_frame(rgb888_to_rgb565(frame).data)
    display.reinit()
    assert wiring.panel.inverted and not wiring.panel.display_on
    display.display_on()
    display.show_frame(rgb888_to_rgb565(frame).data)
    assert np.array_equal(glass(wiring, Rotation.R270), 255 - quantize(frame))  # inverted


def test_a_failing_dc_line_leaves_the_display_recoverable() -> None:
    wiring, display = rig(strict=False)
    wiring.dc.fail_next(1)
    with pytest.raises(TransportError):
        display.fill((1, 2, 3))
    display.reinit()
    display.fill((0, 255, 0))
    assert (glass(wiring, Rotation.R0) == [0, 255, 0]).all()


def test_constructor_does_no_io_and_a_failed_open_closes_what_it_opened() -> None:
    dev = FakeSpiDev(present=False)
    dc, reset = FakePin("dc"), FakePin("reset", initial=True)
    display = Display(SpidevBus(spidev_factory=lambda: dev, bufsiz=4096), dc, reset)
    assert not dc.opened
    with pytest.raises(DeviceNotFound):
        display.open()
    assert not display.is_open and not dc.opened and not reset.opened


def test_without_a_reset_line_swreset_does_the_job() -> None:
    wiring = SimWiring(strict=True)
    display = Display(wiring.bus, wiring.dc, None, None, sleep=wiring.sleep)
    display.open()
    display.fill((255, 255, 255))
    assert (glass(wiring, Rotation.R0) == 255).all()
    assert wiring.panel.violations == []


def test_blit_checks_window_and_length() -> None:
    _, display = rig()
    with pytest.raises(ValueError):
        display.blit(0, 0, 240, 0, bytes(241 * 2))
    with pytest.raises(ValueError):
        display.blit(0, 0, 1, 1, bytes(6))


def test_shadow_is_optional_and_follows_rotation() -> None:
    _, plain = rig(shadow=False)
    assert plain.shadow_image() is None
    wiring, display = rig()
    display.set_rotation(Rotation.R180)
    display.fill((255, 255, 0))
    display.blit(0, 0, 9, 9, bytes(200))
    for rotation in Rotation:
        image = display.shadow_image(rotation)
        assert image is not None
        assert np.array_equal(np.asarray(image), glass(wiring, rotation))
