"""The panel model, driven with hand-written byte streams (the datasheet's view, not the encoder's)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from libloop.clock import FakeClock
from libloop.ili9341 import Rotation
from sim.panel import Ili9341Panel, PanelError, PanelViolation, ViolationKind
from tests.strategies import rgb_images, split_points

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


class Wire:
    """A minimal hand-rolled driver: command bytes, parameter bytes, waits on a fake clock."""

    def __init__(self, **options: bool) -> None:
        self.clock = FakeClock()
        self.panel = Ili9341Panel(clock=self.clock, **options)

    def cmd(self, code: int, *params: int) -> None:
        self.panel.write(bytes([code]), False)
        if params:
            self.panel.write(bytes(params), True)

    def data(self, payload: bytes) -> None:
        self.panel.write(payload, True)

    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def start(self, *, madctl: int = 0x48, colmod: int = 0x55) -> None:
        """Reset, wake and light the panel the way the datasheet's power-on flow does."""
        self.panel.hardware_reset()
        self.wait(0.120)
        self.cmd(0x01)  # SWRESET
        self.wait(0.120)
        self.cmd(0x36, madctl)
        self.cmd(0x3A, colmod)
        self.cmd(0x11)  # SLPOUT
        self.wait(0.120)
        self.cmd(0x29)  # DISPON

    def window(self, x0: int, y0: int, x1: int, y1: int) -> None:
        self.cmd(0x2A, x0 >> 8, x0 & 0xFF, x1 >> 8, x1 & 0xFF)
        self.cmd(0x2B, y0 >> 8, y0 & 0xFF, y1 >> 8, y1 & 0xFF)

    def fill565(self, x0: int, y0: int, x1: int, y1: int, rgb: tuple[int, int, int]) -> None:
        r, g, b = rgb
        word = ((r & 0xF8) << 8) | ((g & 0xFC) << 3) | (b >> 3)
        self.window(x0, y0, x1, y1)
        self.cmd(0x2C)
        self.data(word.to_bytes(2, "big") * ((x1 - x0 + 1) * (y1 - y0 + 1)))


def glass(wire: Wire, rotation: Rotation = Rotation.R0) -> np.ndarray:
    return np.asarray(wire.panel.snapshot(rotation))


# --- what the glass shows ----------------------------------------------------------------


def test_a_panel_that_is_asleep_or_off_shows_white_and_keeps_its_memory() -> None:
    wire = Wire(strict=True)
    assert np.all(glass(wire) == 255)  # power-on: sleeping, display off, normally-white glass
    wire.start()
    assert np.all(glass(wire) == 0)  # awake, memory starts black
    wire.fill565(0, 0, 239, 319, RED)
    assert tuple(glass(wire)[5, 5]) == RED
    wire.cmd(0x28)  # DISPOFF
    assert np.all(glass(wire) == 255)
    wire.cmd(0x29)  # DISPON
    assert tuple(glass(wire)[5, 5]) == RED
    wire.cmd(0x10)  # SLPIN
    assert np.all(glass(wire) == 255) and wire.panel.sleeping
    wire.wait(0.120)
    wire.cmd(0x11)  # SLPOUT
    wire.wait(0.120)
    assert tuple(glass(wire)[5, 5]) == RED
    assert wire.panel.violations == []


def test_backlight_scales_the_light_and_zero_is_black() -> None:
    wire = Wire()
    wire.start()
    wire.fill565(0, 0, 239, 319, WHITE)
    wire.panel.backlight = 50
    assert tuple(glass(wire)[0, 0]) == (128, 128, 128)
    wire.panel.backlight = 0
    assert np.all(glass(wire) == 0)
    wire.cmd(0x28)
    assert np.all(glass(wire) == 0)  # a blank page is dark too without a backlight


def test_inversion_inverts_every_shown_level_and_idle_mode_keeps_eight_colours() -> None:
    wire = Wire(strict=True)
    wire.start()
    wire.fill565(0, 0, 239, 319, (200, 100, 30))
    shown = glass(wire)[0, 0].astype(int)
    wire.cmd(0x21)  # INVON
    assert tuple(glass(wire)[0, 0]) == tuple(255 - shown)
    wire.cmd(0x20)  # INVOFF
    wire.cmd(0x39)  # IDMON: only the top bit of each level
    assert tuple(glass(wire)[0, 0]) == (255, 0, 0)
    wire.cmd(0x38)
    assert tuple(glass(wire)[0, 0]) == tuple(shown)


@pytest.mark.parametrize(
    ("bgr_filter", "madctl_bgr", "expect"),
    [(True, True, RED), (True, False, BLUE), (False, False, RED), (False, True, BLUE)],
)
def test_colour_filter_order_and_madctl_bgr_decide_where_red_goes(
    bgr_filter: bool, madctl_bgr: bool, expect: tuple[int, int, int]
) -> None:
    wire = Wire(bgr_filter=bgr_filter)
    wire.start(madctl=0x40 | (0x08 if madctl_bgr else 0))
    wire.fill565(0, 0, 0, 0, RED)
    assert tuple(glass(wire)[0, 0]) == expect


def test_the_common_module_needs_mx_for_upright_portrait_and_mirror_options_flip_the_glass() -> None:
    corner = (0, 0, 0, 0)
    for madctl, mirror_x, mirror_y, where in [
        (0x48, False, False, (0, 0)),  # the usual drivers' 0x48: memory column 239 on the left
        (0x08, False, False, (0, 239)),  # no MX on the common module: mirrored
        (0x08, True, False, (0, 0)),  # a module with the other source order
        (0x48, False, True, (319, 0)),
        (0x88 | 0x40, False, False, (319, 0)),  # MY
    ]:
        wire = Wire(mirror_x=mirror_x, mirror_y=mirror_y, strict=True)
        wire.start(madctl=madctl)
        wire.fill565(*corner, GREEN)
        lit = np.argwhere(glass(wire)[:, :, 1] > 0)
        assert [tuple(p) for p in lit] == [where], (hex(madctl), mirror_x, mirror_y)


def test_disctrl_source_and_gate_scan_bits_mirror_the_glass() -> None:
    wire = Wire(strict=True)
    wire.start()
    wire.fill565(0, 0, 0, 0, GREEN)
    wire.cmd(0xB6, 0x08, 0x82 | 0x20, 0x27)  # SS = 1: sources scan S720 -> S1
    assert glass(wire)[0, 239, 1] > 0
    wire.cmd(0xB6, 0x08, 0x82 | 0x40, 0x27)  # GS = 1 only
    assert glass(wire)[319, 0, 1] > 0


def test_refresh_order_bits_do_not_change_the_picture() -> None:
    wire = Wire(strict=True)
    wire.start()
    wire.fill565(10, 20, 50, 60, BLUE)
    before = glass(wire)
    wire.cmd(0x36, 0x48 | 0x10 | 0x04)  # ML and MH
    assert np.array_equal(glass(wire), before)


@pytest.mark.parametrize("rotation", list(Rotation))
def test_snapshot_turns_the_glass_for_each_rotation(rotation: Rotation) -> None:
    wire = Wire()
    image = wire.panel.snapshot(rotation)
    assert image.mode == "RGB"
    assert image.size == ((240, 320) if rotation in (Rotation.R0, Rotation.R180) else (320, 240))


# --- memory writes -----------------------------------------------------------------------


@given(rgb_images(max_width=12, max_height=12), st.data())
def test_rgb666_pixels_straddling_transfers_continue_where_they_stopped(
    image: np.ndarray, data: st.DataObject
) -> None:
    wire = Wire(strict=True)
    wire.start(colmod=0x66)
    h, w = image.shape[:2]
    wire.window(3, 5, 3 + w - 1, 5 + h - 1)
    wire.cmd(0x2C)
    stream = image.tobytes()
    start = 0
    for cut in [*data.draw(split_points(len(stream), max_splits=10)), len(stream)]:
        wire.data(stream[start:cut])
        start = cut
    shown = glass(wire)[5 : 5 + h, 3 : 3 + w]
    assert np.array_equal(shown >> 2, image >> 2)  # 6 bits per channel survive
    assert wire.panel.bits_per_pixel == 18


def test_luma_style_colmod_0x46_is_18_bit_over_spi() -> None:
    wire = Wire(strict=True)
    wire.start(colmod=0x46)  # DPI bits (RGB interface) are irrelevant over SPI
    assert wire.panel.bits_per_pixel == 18


def test_the_write_pointer_wraps_within_the_window() -> None:
    wire = Wire(strict=True)
    wire.start()
    wire.window(10, 10, 11, 11)
    wire.cmd(0x2C)
    px = [0xF800, 0x07E0, 0x001F, 0xFFFF, 0x0000, 0xFFE0]  # six pixels into a 2x2 window
    wire.data(b"".join(p.to_bytes(2, "big") for p in px))
    g = glass(wire)
    assert tuple(g[10, 10]) == BLACK and tuple(g[10, 11]) == (255, 255, 0)  # overwritten
    assert tuple(g[11, 10]) == BLUE and tuple(g[11, 11]) == WHITE
    assert wire.panel.violations == []


def test_ramwrc_continues_and_ramwr_starts_over() -> None:
    wire = Wire(strict=True)
    wire.start()
    wire.window(0, 0, 3, 0)
    wire.cmd(0x2C, 0xF8, 0x00)  # red at x=0
    wire.cmd(0x3C, 0x07, 0xE0)  # RAMWRC: green at x=1
    wire.cmd(0x2C, 0x00, 0x1F)  # RAMWR again: blue at x=0
    g = glass(wire)
    assert [tuple(g[0, x]) for x in range(3)] == [BLUE, GREEN, BLACK]


def test_ramrd_answers_a_dummy_byte_then_three_bytes_a_pixel() -> None:
    wire = Wire(strict=True)
    wire.start(colmod=0x66)
    wire.window(7, 9, 8, 9)
    wire.cmd(0x2C, 0xFC, 0x80, 0x04, 0x10, 0x20, 0x30)
    wire.cmd(0x2E)
    answer = wire.panel.read(1 + 6)
    assert answer == bytes([0x00, 0xFC, 0x80, 0x04, 0x10, 0x20, 0x30])
    wire.cmd(0x3E)  # RAMRDC continues after the two pixels read: past the window end, so its start
    assert wire.panel.read(4) == bytes([0x00, 0xFC, 0x80, 0x04])  # wrapped to the window start
    wire.cmd(0x2E)
    assert wire.panel.read(4) == bytes([0x00, 0xFC, 0x80, 0x04])
    wire.cmd(0x3E)
    assert wire.panel.read(4) == bytes([0x00, 0x10, 0x20, 0x30])
    wire.cmd(0xD3)  # RDID4: the controller's id
    assert wire.panel.read(4) == bytes([0x00, 0x00, 0x93, 0x41])


def test_rgbset_defines_the_16_to_18_bit_mapping() -> None:
    wire = Wire(strict=True)
    wire.start()
    lut = [0] * 32 + list(range(64)) + [0] * 32
    lut[31] = 0x20  # red code 31 -> level 32
    wire.cmd(0x2D, *lut)
    wire.fill565(0, 0, 0, 0, RED)
    wire.cmd(0x2E)
    assert wire.panel.read(4)[1] == 0x20 << 2


def test_unknown_and_vendor_commands_are_accepted_and_recorded() -> None:
    wire = Wire(strict=True)
    wire.start()
    wire.cmd(0xEF, 0x03, 0x80, 0x02)  # undocumented; luma sends it
    wire.cmd(0xF6, 0x01, 0x00, 0x00)
    assert (0xEF, b"\x03\x80\x02") in wire.panel.commands
    assert wire.panel.commands[-1] == (0xF6, b"\x01\x00\x00")


# --- strict mode -------------------------------------------------------------------------


def _data_without_ramwr(wire: Wire) -> None:
    wire.cmd(0x29)
    wire.data(b"\xf8\x00")


def _command_during_reset(wire: Wire) -> None:
    wire.cmd(0x01)
    wire.wait(0.004)
    wire.cmd(0x29)


def _command_after_hardware_reset(wire: Wire) -> None:
    wire.panel.hardware_reset()
    wire.cmd(0x01)


def _slpout_too_soon(wire: Wire) -> None:
    wire.cmd(0x10)
    wire.wait(0.119)
    wire.cmd(0x11)


def _window_beyond_panel(wire: Wire) -> None:
    wire.cmd(0x2A, 0, 0, 0x01, 0x3F)  # 319 columns are only legal with MV


def _window_reversed(wire: Wire) -> None:
    wire.cmd(0x2B, 0, 20, 0, 10)


def _short_parameters(wire: Wire) -> None:
    wire.cmd(0x2A, 0, 0, 0)
    wire.cmd(0x2C)


def _extra_parameters(wire: Wire) -> None:
    wire.cmd(0x36, 0x48, 0x00)


def _unsupported_colmod(wire: Wire) -> None:
    wire.cmd(0x3A, 0x33)


def _half_a_pixel(wire: Wire) -> None:
    wire.cmd(0x2C, 0xF8)
    wire.cmd(0x29)


def _read_without_command(wire: Wire) -> None:
    wire.cmd(0x29)
    wire.panel.read(3)


VIOLATIONS: list[tuple[ViolationKind, Callable[[Wire], None]]] = [
    (ViolationKind.DATA_WITHOUT_COMMAND, _data_without_ramwr),
    (ViolationKind.BUSY, _command_during_reset),
    (ViolationKind.BUSY, _command_after_hardware_reset),
    (ViolationKind.BUSY, _slpout_too_soon),
    (ViolationKind.WINDOW_OUT_OF_RANGE, _window_beyond_panel),
    (ViolationKind.WINDOW_REVERSED, _window_reversed),
    (ViolationKind.PARAMETER_COUNT, _short_parameters),
    (ViolationKind.PARAMETER_COUNT, _extra_parameters),
    (ViolationKind.PIXEL_FORMAT, _unsupported_colmod),
    (ViolationKind.INCOMPLETE_PIXEL, _half_a_pixel),
    (ViolationKind.READ_WITHOUT_COMMAND, _read_without_command),
]


@pytest.mark.parametrize(("kind", "offend"), VIOLATIONS, ids=[f.__name__.strip("_") for _, f in VIOLATIONS])
def test_strict_mode_raises_at_the_offending_write(
    kind: ViolationKind, offend: Callable[[Wire], None]
) -> None:
    wire = Wire(strict=True)
    wire.start()
    with pytest.raises(PanelViolation) as caught:
        offend(wire)
    assert caught.value.violation.kind is kind
    assert isinstance(caught.value, PanelError)
    message = str(caught.value)
    assert message.endswith(".") and message.count(". ") == 0  # one sentence


@pytest.mark.parametrize(("kind", "offend"), VIOLATIONS, ids=[f.__name__.strip("_") for _, f in VIOLATIONS])
def test_lenient_mode_records_and_carries_on(kind: ViolationKind, offend: Callable[[Wire], None]) -> None:
    wire = Wire()
    wire.start()
    offend(wire)
    assert [v.kind for v in wire.panel.violations] == [kind]
    # The panel still works afterwards.
    wire.wait(0.200)
    wire.cmd(0x11)
    wire.wait(0.200)
    wire.cmd(0x3A, 0x55)
    wire.cmd(0x36, 0x48)
    wire.cmd(0x29)
    wire.fill565(1, 2, 1, 2, GREEN)
    assert tuple(glass(wire)[2, 1]) == GREEN


def test_lenient_mode_drops_data_outside_the_panel_but_keeps_the_rest() -> None:
    wire = Wire()
    wire.start()
    wire.fill565(238, 0, 241, 0, RED)  # two columns exist, two do not
    g = glass(wire)
    assert tuple(g[0, 238]) == RED and tuple(g[0, 239]) == RED
    assert [v.kind for v in wire.panel.violations] == [ViolationKind.WINDOW_OUT_OF_RANGE]


def test_data_outside_ramwr_leaves_memory_alone() -> None:
    wire = Wire()
    wire.start()
    wire.cmd(0x29)
    wire.data(b"\xff\xff" * 10)
    assert np.all(glass(wire) == 0)


# --- against a per-pixel reference ---------------------------------------------------------


def reference_cells(
    madctl: int, window: tuple[int, int, int, int], codes: list[int]
) -> dict[tuple[int, int], int]:
    """Where each RGB565 code lands in (row, column) memory, one pixel at a time.

    Straight from the datasheet's address-counter table: MV sends the column address to
    memory rows and the page address to memory columns; MX mirrors memory columns and MY
    memory rows; the pointer runs along the columns, then the pages, and wraps to the start.
    """
    sc, ec, sp, ep = window
    width, count = ec - sc + 1, (ec - sc + 1) * (ep - sp + 1)
    cells: dict[tuple[int, int], int] = {}
    for k, code in enumerate(codes):
        col, page = sc + (k % count) % width, sp + (k % count) // width
        row, column = (col, page) if madctl & 0x20 else (page, col)
        if row >= 320 or column >= 240:
            continue  # outside the panel: dropped
        if madctl & 0x40:
            column = 239 - column
        if madctl & 0x80:
            row = 319 - row
        cells[(row, column)] = code
    return cells


@given(st.integers(0, 255), st.data())
def test_memory_writes_match_a_per_pixel_reference_for_any_madctl(madctl: int, data: st.DataObject) -> None:
    wire = Wire()  # lenient: some windows hang over the edge
    wire.start(madctl=madctl)
    cols, pages = (320, 240) if madctl & 0x20 else (240, 320)
    sc = data.draw(st.integers(0, cols + 2))
    ec = data.draw(st.integers(sc, min(sc + 12, cols + 4)))
    sp = data.draw(st.integers(0, pages + 2))
    ep = data.draw(st.integers(sp, min(sp + 12, pages + 4)))
    area = (ec - sc + 1) * (ep - sp + 1)
    codes = data.draw(st.lists(st.integers(1, 0xFFFF), min_size=1, max_size=2 * area + 3))
    wire.cmd(0x2A, sc >> 8, sc & 0xFF, ec >> 8, ec & 0xFF)
    wire.cmd(0x2B, sp >> 8, sp & 0xFF, ep >> 8, ep & 0xFF)
    wire.cmd(0x2C)
    stream = b"".join(c.to_bytes(2, "big") for c in codes)
    start = 0
    for cut in [*data.draw(split_points(len(stream))), len(stream)]:
        wire.data(stream[start:cut])
        start = cut

    expected = reference_cells(madctl, (sc, ec, sp, ep), codes)
    memory = wire.panel.memory
    written = {tuple(p) for p in np.argwhere(memory.any(axis=2))}
    assert written == set(expected)
    for (row, column), code in expected.items():
        r5, g6, b5 = code >> 11, (code >> 5) & 0x3F, code & 0x1F
        assert tuple(memory[row, column]) == ((r5 << 1) | (r5 >> 4), g6, (b5 << 1) | (b5 >> 4))
