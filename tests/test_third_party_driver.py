"""Other people's ILI9341 drivers render correctly on the panel model, not only ours.

Two drivers, neither built on ``libloop.ili9341``:

* luma.lcd's ``ili9341``, unmodified, through a tiny luma serial interface that hands its
  ``command()``/``data()`` calls to the panel with the D/C level luma would set. luma sends
  18-bit pixels (COLMOD 0x46: only the low three bits, 110 = 18-bit, count over SPI), sets
  MADCTL MV for its native 320×240 landscape and rotates the image in software for its
  ``rotate`` option. Two things it does that look odd, and why:
  its ``bgr`` flag is inverted (``bgr=False``, the default, sets MADCTL BGR, which is what the
  common BGR modules need), and it waits 0 s after the reset pulse by default
  (``reset_release_time=0``), which the datasheet's 5 ms rule forbids.
* A byte stream in the style of the common C drivers (Adafruit_ILI9341, TFT_eSPI), written
  here from the datasheet: reset, power setup, MADCTL 0x48/0x28/0x88/0xE8 for their
  rotations 0-3, RGB565, single-pixel windows and small transfers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from PIL import Image, ImageDraw

from libloop.clock import FakeClock
from libloop.ili9341 import Rotation
from sim.panel import Ili9341Panel, ViolationKind
from tests.strategies import make_image, rgb_images

luma_device = pytest.importorskip("luma.lcd.device")
luma_framebuffer = pytest.importorskip("luma.core.framebuffer")


class PanelSerial:
    """A luma.core serial interface (``command``, ``data``, ``cleanup``) wired to the panel.

    Like luma's ``spi`` interface it pulses reset when created, waits ``reset_release_time``,
    and splits data into ``transfer_size`` chunks with D/C high.
    """

    def __init__(
        self, panel: Ili9341Panel, clock: FakeClock, *, reset_release_time: float, transfer_size: int = 4096
    ) -> None:
        self.panel = panel
        self.transfer_size = transfer_size
        panel.hardware_reset()
        clock.advance(reset_release_time)

    def command(self, *cmd: int) -> None:
        self.panel.write(bytes(cmd), False)

    def data(self, data: Sequence[int] | bytes) -> None:
        payload = bytes(data)
        for i in range(0, len(payload), self.transfer_size):
            self.panel.write(payload[i : i + self.transfer_size], True)

    def cleanup(self) -> None:
        pass


class BacklightGpio:
    """The slice of the RPi.GPIO API luma's backlight uses, driving the panel's backlight."""

    OUT, HIGH, LOW = 0, 1, 0

    def __init__(self, panel: Ili9341Panel) -> None:
        self.panel = panel

    def setup(self, pin: int, mode: int) -> None:
        pass

    def output(self, pin: int, value: int) -> None:
        self.panel.backlight = 100 if value else 0

    def cleanup(self, pin: int | None = None) -> None:
        pass


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    """A fake clock that luma's own ``sleep`` calls advance (no real waiting)."""
    fake = FakeClock()
    monkeypatch.setattr(luma_device, "sleep", fake.advance)
    yield fake


def make_luma(
    panel: Ili9341Panel, clock: FakeClock, *, rotate: int = 0, bgr: bool = False, release: float = 0.150
) -> Any:
    serial = PanelSerial(panel, clock, reset_release_time=release)
    device = luma_device.ili9341(
        serial_interface=serial,
        gpio=BacklightGpio(panel),
        width=320,
        height=240,
        rotate=rotate,
        bgr=bgr,
        framebuffer=luma_framebuffer.full_frame(),
    )
    device.persist = True  # its atexit hook must not blank a panel another test may inspect
    return device


#: luma draws its 320×240 landscape with MADCTL MV (our R90), then its ``rotate`` turns the
#: image a further quarter turn clockwise per step.
LUMA_ROTATION = {0: Rotation.R90, 1: Rotation.R180, 2: Rotation.R270, 3: Rotation.R0}


def shown_6bit(panel: Ili9341Panel, rotation: Rotation) -> np.ndarray:
    return np.asarray(panel.snapshot(rotation)) >> 2


@pytest.mark.parametrize("rotate", [0, 1, 2, 3])
def test_luma_images_show_upright_with_6_bits_per_channel(clock: FakeClock, rotate: int) -> None:
    panel = Ili9341Panel(strict=True, clock=clock)
    device = make_luma(panel, clock, rotate=rotate)
    width, height = device.size
    for pattern, seed in [("ramps", 1), ("noise", 2), ("primaries", 3)]:
        image = make_image(width, height, pattern, seed)
        device.display(Image.fromarray(image))
        assert np.array_equal(shown_6bit(panel, LUMA_ROTATION[rotate]), image >> 2), pattern
    assert panel.bits_per_pixel == 18
    assert (0xEF, b"\x03\x80\x02") in panel.commands  # its undocumented vendor command, recorded
    assert panel.violations == []


@settings(max_examples=15)
@given(rgb_images(width=320, height=240))
def test_luma_partial_redraws_land_in_place(image: np.ndarray) -> None:
    clock = FakeClock()
    panel = Ili9341Panel(strict=True, clock=clock)
    serial = PanelSerial(panel, clock, reset_release_time=0.150)
    original_sleep = luma_device.sleep
    luma_device.sleep = clock.advance
    try:
        device = luma_device.ili9341(
            serial_interface=serial, gpio=BacklightGpio(panel), bgr=False
        )  # default: diff_to_previous framebuffer, so later frames send only what changed
        device.persist = True
    finally:
        luma_device.sleep = original_sleep
    first = make_image(320, 240, "gradient", 7)
    device.display(Image.fromarray(first))
    second = first.copy()
    second[40:120, 100:260] = image[40:120, 100:260]
    device.display(Image.fromarray(second))
    assert np.array_equal(shown_6bit(panel, Rotation.R90), second >> 2)


def test_luma_bgr_flag_is_inverted_and_matches_rgb_modules(clock: FakeClock) -> None:
    red = Image.new("RGB", (320, 240), (255, 0, 0))
    common = Ili9341Panel(bgr_filter=True, clock=clock)
    make_luma(common, clock, bgr=False).display(red)
    assert tuple(common.snapshot().getpixel((0, 0))) == (255, 0, 0)  # type: ignore[arg-type]
    swapped = Ili9341Panel(bgr_filter=True, clock=clock)
    make_luma(swapped, clock, bgr=True).display(red)
    assert tuple(swapped.snapshot().getpixel((0, 0))) == (0, 0, 255)  # type: ignore[arg-type]
    rgb_module = Ili9341Panel(bgr_filter=False, clock=clock)
    make_luma(rgb_module, clock, bgr=True).display(red)
    assert tuple(rgb_module.snapshot().getpixel((0, 0))) == (255, 0, 0)  # type: ignore[arg-type]


def test_luma_backlight_and_hide_show(clock: FakeClock) -> None:
    panel = Ili9341Panel(strict=True, clock=clock)
    device = make_luma(panel, clock)
    device.display(Image.new("RGB", (320, 240), (0, 0, 255)))
    device.hide()
    assert np.all(np.asarray(panel.snapshot()) == 255)  # DISPOFF: blank, normally-white glass
    device.show()
    assert tuple(panel.snapshot().getpixel((3, 3))) == (0, 0, 255)  # type: ignore[arg-type]
    device.backlight(False)
    assert panel.backlight == 0 and np.all(np.asarray(panel.snapshot()) == 0)


def test_luma_default_reset_release_time_breaks_the_5ms_rule(clock: FakeClock) -> None:
    panel = Ili9341Panel(clock=clock)
    device = make_luma(panel, clock, release=0.0)  # luma.core's spi default
    device.display(make_image_pil(320, 240))
    kinds = {v.kind for v in panel.violations}
    assert kinds == {ViolationKind.BUSY}
    # The lenient model still runs the commands, so the picture is there; a real chip may not.
    assert np.array_equal(shown_6bit(panel, Rotation.R90), np.asarray(make_image_pil(320, 240)) >> 2)


def make_image_pil(width: int, height: int) -> Image.Image:
    return Image.fromarray(make_image(width, height, "ramps", 5))


# --- a C-driver-style byte stream, from the datasheet ---------------------------------------

#: (command, parameters, wait after in seconds). Values are legal per the datasheet tables.
C_STYLE_INIT: list[tuple[int, bytes, float]] = [
    (0x01, b"", 0.150),  # SWRESET
    (0xEF, bytes([0x03, 0x80, 0x02]), 0.0),  # vendor, undocumented: must be harmless
    (0xCF, bytes([0x00, 0xC1, 0x30]), 0.0),  # power control B
    (0xED, bytes([0x64, 0x03, 0x12, 0x81]), 0.0),  # power on sequence control
    (0xE8, bytes([0x85, 0x00, 0x78]), 0.0),  # driver timing control A
    (0xCB, bytes([0x39, 0x2C, 0x00, 0x34, 0x02]), 0.0),  # power control A
    (0xF7, bytes([0x20]), 0.0),  # pump ratio control
    (0xEA, bytes([0x00, 0x00]), 0.0),  # driver timing control B
    (0xC0, bytes([0x23]), 0.0),  # power control 1
    (0xC1, bytes([0x10]), 0.0),  # power control 2
    (0xC5, bytes([0x3E, 0x28]), 0.0),  # VCOM control 1
    (0xC7, bytes([0x86]), 0.0),  # VCOM control 2
    (0x36, bytes([0x48]), 0.0),  # MADCTL: MX | BGR, portrait
    (0x37, bytes([0x00, 0x00]), 0.0),  # vertical scroll start address 0
    (0x3A, bytes([0x55]), 0.0),  # 16 bits per pixel
    (0xB1, bytes([0x00, 0x18]), 0.0),  # frame rate 79 Hz
    (0xB6, bytes([0x08, 0x82, 0x27]), 0.0),  # display function control
    (0xF2, bytes([0x00]), 0.0),  # 3-gamma off
    (0x26, bytes([0x01]), 0.0),  # gamma curve 1
    (0x11, b"", 0.150),  # SLPOUT
    (0x29, b"", 0.150),  # DISPON
]

C_STYLE_MADCTL = {0: 0x48, 1: 0x28, 2: 0x88, 3: 0xE8}  # MX, MV, MY, MX|MY|MV (all | BGR)


class CStyleDriver:
    """setRotation / setAddrWindow / drawPixel / fillRect, as byte streams with small transfers."""

    def __init__(self, panel: Ili9341Panel, clock: FakeClock, chunk: int = 64) -> None:
        self.panel, self.clock, self.chunk = panel, clock, chunk
        panel.hardware_reset()
        clock.advance(0.150)
        for cmd, params, wait in C_STYLE_INIT:
            self.send(cmd, params)
            clock.advance(wait)
        self.width, self.height = 240, 320

    def send(self, cmd: int, params: bytes = b"") -> None:
        self.panel.write(bytes([cmd]), False)
        for i in range(0, len(params), self.chunk):
            self.panel.write(params[i : i + self.chunk], True)

    def set_rotation(self, m: int) -> None:
        self.send(0x36, bytes([C_STYLE_MADCTL[m]]))
        self.width, self.height = (240, 320) if m % 2 == 0 else (320, 240)

    def set_addr_window(self, x: int, y: int, w: int, h: int) -> None:
        x1, y1 = x + w - 1, y + h - 1
        self.send(0x2A, bytes([x >> 8, x & 0xFF, x1 >> 8, x1 & 0xFF]))
        self.send(0x2B, bytes([y >> 8, y & 0xFF, y1 >> 8, y1 & 0xFF]))
        self.panel.write(b"\x2c", False)

    @staticmethod
    def color565(r: int, g: int, b: int) -> bytes:
        return (((r & 0xF8) << 8) | ((g & 0xFC) << 3) | (b >> 3)).to_bytes(2, "big")

    def fill_rect(self, x: int, y: int, w: int, h: int, rgb: tuple[int, int, int]) -> None:
        self.set_addr_window(x, y, w, h)
        stream = self.color565(*rgb) * (w * h)
        for i in range(0, len(stream), self.chunk):
            self.panel.write(stream[i : i + self.chunk], True)

    def draw_pixel(self, x: int, y: int, rgb: tuple[int, int, int]) -> None:
        self.set_addr_window(x, y, 1, 1)
        self.panel.write(self.color565(*rgb), True)


@pytest.mark.parametrize("m", [0, 1, 2, 3])
def test_c_style_driver_draws_upright_in_each_rotation(m: int) -> None:
    clock = FakeClock()
    panel = Ili9341Panel(strict=True, clock=clock)
    driver = CStyleDriver(panel, clock)
    driver.set_rotation(m)
    w, h = driver.width, driver.height
    reference = Image.new("RGB", (w, h), (0, 0, 0))
    draw = ImageDraw.Draw(reference)
    shapes = [
        (0, 0, w, h, (20, 40, 60)),
        (5, 7, 50, 30, (255, 0, 0)),
        (w - 40, h - 25, 40, 25, (0, 255, 0)),
        (w // 2, 3, 13, h - 6, (0, 0, 255)),
    ]
    for x, y, rw, rh, rgb in shapes:
        driver.fill_rect(x, y, rw, rh, rgb)
        draw.rectangle((x, y, x + rw - 1, y + rh - 1), fill=rgb)
    for i in range(40):  # a diagonal of single pixels pins the orientation down exactly
        driver.draw_pixel(i * 3, i * 2 + 1, (255, 255, 255))
        reference.putpixel((i * 3, i * 2 + 1), (255, 255, 255))

    shown = np.asarray(panel.snapshot(Rotation(90 * m))).astype(int)
    ref = np.asarray(reference).astype(int)
    # RGB565: red and blue keep 5 bits, green 6.
    assert np.array_equal(shown[:, :, 0] >> 3, ref[:, :, 0] >> 3)
    assert np.array_equal(shown[:, :, 1] >> 2, ref[:, :, 1] >> 2)
    assert np.array_equal(shown[:, :, 2] >> 3, ref[:, :, 2] >> 3)
    assert panel.violations == []
