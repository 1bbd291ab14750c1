"""The sans-IO encoder: its values, its checks, and that the panel shows what it encodes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from libloop import ili9341 as enc
from libloop.clock import FakeClock
from libloop.color import quantize, rgb888_to_rgb565
from libloop.ili9341 import Cmd, Delay, Op, Rotation, Transfer
from sim.panel import Ili9341Panel
from tests.strategies import Blit, blits, rotations, split_points, windows

GOLDEN = Path(__file__).parent / "golden" / "init_sequence.txt"


def feed(panel: Ili9341Panel, clock: FakeClock, ops: list[Op], cuts: list[int] | None = None) -> None:
    """Send ops to the panel like a transport would; ``cuts`` splits every data transfer."""
    for op in ops:
        if isinstance(op, Delay):
            clock.advance(op.seconds)
            continue
        data = memoryview(op.data)
        pieces = [c for c in cuts or [] if 0 < c < len(data)] if op.dc else []
        start = 0
        for cut in pieces:
            panel.write(data[start:cut], op.dc)
            start = cut
        panel.write(data[start:], op.dc)


def fresh_panel(rotation: Rotation = Rotation.R0, **options: bool) -> tuple[Ili9341Panel, FakeClock]:
    clock = FakeClock()
    panel = Ili9341Panel(strict=True, clock=clock, **options)
    panel.hardware_reset()
    clock.advance(0.120)
    feed(panel, clock, enc.init_sequence(rotation))
    return panel, clock


def portrait_xy(rotation: Rotation, x: int, y: int) -> tuple[int, int]:
    """Where logical (x, y) lands on the portrait glass: the module docstring's convention."""
    return {
        Rotation.R0: (x, y),
        Rotation.R90: (239 - y, x),
        Rotation.R180: (239 - x, 319 - y),
        Rotation.R270: (y, 319 - x),
    }[rotation]


# --- values -------------------------------------------------------------------------------


def test_command_codes_follow_the_datasheet() -> None:
    assert (Cmd.SWRESET, Cmd.SLPOUT, Cmd.DISPON, Cmd.CASET, Cmd.PASET, Cmd.RAMWR) == (
        0x01,
        0x11,
        0x29,
        0x2A,
        0x2B,
        0x2C,
    )
    assert (Cmd.MADCTL, Cmd.COLMOD, Cmd.RAMWRC, Cmd.RAMRD, Cmd.DISCTRL) == (0x36, 0x3A, 0x3C, 0x2E, 0xB6)
    assert Cmd["PIXSET"] is Cmd.COLMOD
    assert Cmd["PGAMCTRL"] is Cmd.GMCTRP1 and Cmd["NGAMCTRL"] is Cmd.GMCTRN1


def test_rotations_use_the_common_drivers_madctl_values() -> None:
    # MX for upright portrait, then MV, MY, MX|MY|MV: 0x48, 0x28, 0x88, 0xE8 with BGR.
    assert [enc.madctl(r, True) for r in Rotation] == [0x48, 0x28, 0x88, 0xE8]
    assert [enc.madctl(r, False) for r in Rotation] == [0x40, 0x20, 0x80, 0xE0]
    assert [enc.logical_size(r) for r in Rotation] == [(240, 320), (320, 240), (240, 320), (320, 240)]


def test_transfers_are_never_empty_and_delays_never_negative() -> None:
    with pytest.raises(ValueError, match="at least one byte"):
        Transfer(True, b"")
    with pytest.raises(ValueError):
        Delay(-0.001)


def transfers(ops: list[Op]) -> list[Transfer]:
    return [op for op in ops if isinstance(op, Transfer)]


def commands(ops: list[Op]) -> list[int]:
    return [op.data[0] for op in transfers(ops) if not op.dc]


@pytest.mark.parametrize("rotation", list(Rotation))
@pytest.mark.parametrize("invert", [False, True])
def test_init_sequence_orders_reset_setup_and_wake_as_the_datasheet_requires(
    rotation: Rotation, invert: bool
) -> None:
    ops = enc.init_sequence(rotation, bgr=True, invert=invert)
    assert ops[0] == Transfer(False, b"\x01")
    assert ops[1] == Delay(0.120)
    cmds = commands(ops)
    assert cmds[-2:] == [Cmd.SLPOUT, Cmd.DISPON]
    slpout = next(i for i, op in enumerate(ops) if op == Transfer(False, bytes([Cmd.SLPOUT])))
    assert ops[slpout + 1] == Delay(0.120)
    flat = [(op.dc, bytes(op.data)) for op in transfers(ops)]
    assert flat[flat.index((False, b"\x3a")) + 1] == (True, b"\x55")
    assert flat[flat.index((False, b"\x36")) + 1] == (True, bytes([enc.madctl(rotation, True)]))
    assert (Cmd.INVON if invert else Cmd.INVOFF) in cmds
    assert all(len(t.data) > 0 for t in transfers(ops))


def render_ops(ops: list[Op]) -> str:
    lines = []
    for op in ops:
        if isinstance(op, Delay):
            lines.append(f"wait {op.seconds * 1000:g} ms")
        else:
            kind = "data" if op.dc else "cmd "
            lines.append(f"{kind} {bytes(op.data).hex(' ').upper()}")
    return "\n".join(lines) + "\n"


def test_init_sequence_matches_the_golden_transcript() -> None:
    """A byte-level change to the init sequence must be deliberate: regenerate with LOOP_UPDATE_GOLDEN=1."""
    rendered = "# init_sequence(Rotation.R0, bgr=True, invert=False)\n" + render_ops(enc.init_sequence())
    if os.environ.get("LOOP_UPDATE_GOLDEN"):
        GOLDEN.write_text(rendered)
    assert rendered == GOLDEN.read_text()


# --- windows and pixel writes ---------------------------------------------------------------


@given(st.data(), rotations())
def test_set_window_encodes_inclusive_big_endian_ranges(data: st.DataObject, rotation: Rotation) -> None:
    width, height = enc.logical_size(rotation)
    x0, y0, x1, y1 = data.draw(windows(width, height))
    ops = enc.set_window(x0, y0, x1, y1, rotation)
    assert [(op.dc, bytes(op.data)) for op in transfers(ops)] == [
        (False, b"\x2a"),
        (True, bytes([x0 >> 8, x0 & 0xFF, x1 >> 8, x1 & 0xFF])),
        (False, b"\x2b"),
        (True, bytes([y0 >> 8, y0 & 0xFF, y1 >> 8, y1 & 0xFF])),
    ]


@given(
    rotations(),
    st.tuples(st.integers(-5, 330), st.integers(-5, 330), st.integers(-5, 330), st.integers(-5, 330)),
)
def test_set_window_rejects_anything_outside_or_reversed(
    rotation: Rotation, corners: tuple[int, int, int, int]
) -> None:
    x0, y0, x1, y1 = corners
    width, height = enc.logical_size(rotation)
    valid = 0 <= x0 <= x1 < width and 0 <= y0 <= y1 < height
    if valid:
        assert len(enc.set_window(x0, y0, x1, y1, rotation)) == 4
    else:
        with pytest.raises(ValueError, match="not inside"):
            enc.set_window(x0, y0, x1, y1, rotation)


def test_pixel_data_is_passed_through_without_a_copy() -> None:
    frame = np.zeros((320, 240, 2), dtype=np.uint8)
    ops = enc.blit(0, 0, 239, 319, frame)
    data = transfers(ops)[-1].data
    assert isinstance(data, memoryview) and len(data) == 153_600
    frame[0, 0, 0] = 0xAB  # the transfer sees the caller's buffer, not a snapshot of it
    assert data[0] == 0xAB
    raw = bytearray(8)
    sent = transfers(enc.write_pixels(raw))[-1].data
    assert isinstance(sent, memoryview) and sent.obj is raw


def test_write_pixels_commands_and_the_empty_case() -> None:
    assert enc.write_pixels(b"") == [Transfer(False, b"\x2c")]
    assert enc.write_pixels(b"", continue_=True) == [Transfer(False, b"\x3c")]
    ops = enc.write_pixels(b"\x12\x34", continue_=True)
    assert [(op.dc, bytes(op.data)) for op in transfers(ops)] == [(False, b"\x3c"), (True, b"\x12\x34")]


def test_blit_checks_the_data_length_and_layout() -> None:
    with pytest.raises(ValueError, match="needs 8 bytes"):
        enc.blit(0, 0, 1, 1, bytes(6))
    strided = np.zeros((4, 4, 2), dtype=np.uint8)[:, ::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        enc.blit(0, 0, 1, 3, strided)
    with pytest.raises(ValueError, match="not inside"):
        enc.blit(0, 0, 240, 0, bytes(482))


def test_power_and_display_helpers() -> None:
    assert commands(enc.sleep()) == [Cmd.SLPIN] and enc.sleep()[-1] == Delay(0.120)
    assert commands(enc.wake()) == [Cmd.SLPOUT] and enc.wake()[-1] == Delay(0.120)
    assert commands(enc.display_on() + enc.display_off()) == [Cmd.DISPON, Cmd.DISPOFF]
    assert commands(enc.invert(True) + enc.invert(False)) == [Cmd.INVON, Cmd.INVOFF]
    assert commands(enc.set_rotation(Rotation.R270, bgr=False)) == [Cmd.MADCTL]


# --- encoder -> panel -----------------------------------------------------------------------


@given(blits(), st.data())
def test_any_blit_shows_the_quantised_image_in_place(blit: Blit, data: st.DataObject) -> None:
    """Encoder bytes, split anywhere, land on a BGR module exactly as RGB565 quantises them."""
    panel, clock = fresh_panel(Rotation.R0)
    background = np.full((320, 240, 3), (10, 200, 90), dtype=np.uint8)
    feed(panel, clock, enc.blit(0, 0, 239, 319, rgb888_to_rgb565(background)))
    feed(panel, clock, enc.set_rotation(blit.rotation, bgr=True))

    pixels = rgb888_to_rgb565(blit.image)
    ops = enc.blit(blit.x0, blit.y0, blit.x1, blit.y1, pixels, rotation=blit.rotation)
    assert all(len(t.data) > 0 for t in transfers(ops))
    cuts = data.draw(split_points(pixels.nbytes))
    feed(panel, clock, ops, cuts)

    expected = quantize(blit.image)
    upright = panel.glass(blit.rotation)
    assert np.array_equal(upright[blit.y0 : blit.y1 + 1, blit.x0 : blit.x1 + 1], expected)
    # And at the documented place on the portrait glass.
    portrait = panel.glass(Rotation.R0)
    ys, xs = np.mgrid[blit.y0 : blit.y1 + 1, blit.x0 : blit.x1 + 1]
    gx, gy = portrait_xy(blit.rotation, xs, ys)
    assert np.array_equal(portrait[gy, gx], expected)
    # Nothing outside the window changed.
    mask = np.ones((320, 240), dtype=bool)
    mask[gy, gx] = False
    assert np.all(portrait[mask] == quantize(background)[0, 0])
    assert panel.violations == []


@given(rotations(), st.data())
def test_read_memory_returns_what_was_written(rotation: Rotation, data: st.DataObject) -> None:
    panel, clock = fresh_panel(rotation)
    width, height = enc.logical_size(rotation)
    x0, y0, x1, y1 = data.draw(windows(width, height, max_side=16))
    image = np.random.default_rng(x0 * 7 + y1).integers(0, 256, (y1 - y0 + 1, x1 - x0 + 1, 3), np.uint8)
    feed(panel, clock, enc.blit(x0, y0, x1, y1, rgb888_to_rgb565(image), rotation))
    feed(panel, clock, enc.read_memory(x0, y0, x1, y1, rotation))
    answer = panel.read(enc.read_length(x0, y0, x1, y1))
    levels = np.frombuffer(enc.decode_read(answer, x1 - x0 + 1, y1 - y0 + 1), np.uint8).reshape(image.shape)
    # Red and blue keep their 5 bits, green its 6, in the high bits of each byte.
    assert np.array_equal(levels[:, :, 0] >> 3, image[:, :, 0] >> 3)
    assert np.array_equal(levels[:, :, 1] >> 2, image[:, :, 1] >> 2)
    assert np.array_equal(levels[:, :, 2] >> 3, image[:, :, 2] >> 3)
    with pytest.raises(ValueError, match="answers"):
        enc.decode_read(answer[:-1], x1 - x0 + 1, y1 - y0 + 1)
