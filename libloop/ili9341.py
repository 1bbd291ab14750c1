"""Sans-IO ILI9341 command encoder: turns display intents into (D/C level, bytes) transfers.

Nothing here touches a bus. Every function returns a list of :data:`Op` values — a
:class:`Transfer` (one SPI write with the D/C line low for a command byte, high for data) or a
:class:`Delay` (the caller must wait this long before the next transfer). ``Display`` hands
them to a transport; the panel model in ``sim`` parses the same bytes back.

Pixel data is passed through as a ``memoryview`` of the caller's buffer, never copied: a full
frame is 153,600 bytes and the host cost of pushing one must stay tiny. Small command
transfers are pre-encoded once at import.

Orientation. The glass is 240 columns by 320 rows, natively portrait. On the common ILI9341
modules the glass shows frame-memory column 0 on the *right*, so upright portrait needs MADCTL
MX (this is why the usual C drivers use ``0x48`` for rotation 0). :class:`Rotation` names how
the content is turned on the glass, looking at it in portrait with the FPC ribbon at the bottom:

* ``R0``   portrait, 240×320, upright (MADCTL MX).
* ``R90``  landscape, 320×240, the content turned 90° clockwise: turn the device a quarter
  turn counter-clockwise to view it (MADCTL MV; the common drivers' "rotation 1").
* ``R180`` portrait upside down (MADCTL MY).
* ``R270`` landscape, the content turned 90° counter-clockwise (MADCTL MX | MY | MV).

Timings follow the ILI9341 datasheet v1.11: 5 ms after SWRESET before the next command
(120 ms if the panel was awake, which we always assume), 5 ms after SLPOUT before any command
and 120 ms before SLPIN, 120 ms after SLPIN before SLPOUT.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy as np
    import numpy.typing as npt

    from libloop._types import Buffer

    #: Any C-contiguous bytes-like object, including a numpy uint8 array.
    PixelData: TypeAlias = Buffer | npt.NDArray[np.uint8]

__all__ = [
    "MADCTL_BGR",
    "MADCTL_MH",
    "MADCTL_ML",
    "MADCTL_MV",
    "MADCTL_MX",
    "MADCTL_MY",
    "PANEL_HEIGHT",
    "PANEL_WIDTH",
    "RESET_DELAY_S",
    "SLEEP_DELAY_S",
    "Cmd",
    "Delay",
    "Op",
    "Rotation",
    "Transfer",
    "blit",
    "command",
    "decode_read",
    "display_off",
    "display_on",
    "init_sequence",
    "invert",
    "logical_size",
    "madctl",
    "read_frames",
    "read_length",
    "read_memory",
    "set_rotation",
    "set_window",
    "sleep",
    "wake",
    "write_pixels",
]


class Cmd(IntEnum):
    """ILI9341 command codes, named as in the datasheet (v1.11, sections 8.2 and 8.3)."""

    # Level 1 (regulative) commands.
    NOP = 0x00
    SWRESET = 0x01
    RDDID = 0x04
    RDDST = 0x09
    RDDPM = 0x0A
    RDDMADCTL = 0x0B
    RDDCOLMOD = 0x0C
    RDDIM = 0x0D
    RDDSM = 0x0E
    RDDSDR = 0x0F
    SLPIN = 0x10
    SLPOUT = 0x11
    PTLON = 0x12
    NORON = 0x13
    INVOFF = 0x20
    INVON = 0x21
    GAMSET = 0x26
    DISPOFF = 0x28
    DISPON = 0x29
    CASET = 0x2A
    PASET = 0x2B
    RAMWR = 0x2C
    RGBSET = 0x2D
    RAMRD = 0x2E
    PTLAR = 0x30
    VSCRDEF = 0x33
    TEOFF = 0x34
    TEON = 0x35
    MADCTL = 0x36
    VSCRSADD = 0x37
    IDMOFF = 0x38
    IDMON = 0x39
    COLMOD = 0x3A
    PIXSET = 0x3A  # the datasheet's name for COLMOD ("Pixel Format Set"); an alias
    RAMWRC = 0x3C
    RAMRDC = 0x3E
    WRDISBV = 0x51
    RDDISBV = 0x52
    WRCTRLD = 0x53
    # Level 2 (extended) commands.
    IFMODE = 0xB0
    FRMCTR1 = 0xB1
    FRMCTR2 = 0xB2
    FRMCTR3 = 0xB3
    INVTR = 0xB4
    PRCTR = 0xB5
    DISCTRL = 0xB6
    ETMOD = 0xB7
    PWCTR1 = 0xC0
    PWCTR2 = 0xC1
    VMCTR1 = 0xC5
    VMCTR2 = 0xC7
    RDID4 = 0xD3
    GMCTRP1 = 0xE0
    PGAMCTRL = 0xE0  # alias: Positive Gamma Correction
    GMCTRN1 = 0xE1
    NGAMCTRL = 0xE1  # alias: Negative Gamma Correction
    IFCTL = 0xF6
    # Extended commands used by every common init sequence.
    PWCTRA = 0xCB  # Power control A
    PWCTRB = 0xCF  # Power control B
    DTCTRA = 0xE8  # Driver timing control A
    DTCTRB = 0xEA  # Driver timing control B
    PWRSEQ = 0xED  # Power on sequence control
    EN3G = 0xF2  # Enable 3 gamma control
    PUMPRC = 0xF7  # Pump ratio control


# MADCTL (36h) parameter bits, datasheet 8.2.29.
MADCTL_MY = 0x80  #: row address order (mirror the frame-memory rows)
MADCTL_MX = 0x40  #: column address order (mirror the frame-memory columns)
MADCTL_MV = 0x20  #: row/column exchange (CASET addresses rows, PASET columns)
MADCTL_ML = 0x10  #: vertical refresh order (scan direction only; the picture is unchanged)
MADCTL_BGR = 0x08  #: send the first colour component to the B sub-pixel (BGR colour filter)
MADCTL_MH = 0x04  #: horizontal refresh order (scan direction only)

PANEL_WIDTH = 240  #: native columns (sources)
PANEL_HEIGHT = 320  #: native rows (gates)

#: Wait after SWRESET or a hardware reset; 120 ms covers a reset taken in sleep-out mode.
RESET_DELAY_S = 0.120
#: Wait after SLPOUT (before SLPIN) and after SLPIN (before SLPOUT).
SLEEP_DELAY_S = 0.120


@dataclass(frozen=True, slots=True)
class Transfer:
    """One SPI write: ``dc`` False = command byte(s), True = parameters or pixel data.

    ``data`` is never empty: the Linux spidev driver rejects an empty write.
    """

    dc: bool
    data: bytes | memoryview

    def __post_init__(self) -> None:
        if len(self.data) == 0:
            raise ValueError("a Transfer must carry at least one byte; drop empty writes before encoding")


@dataclass(frozen=True, slots=True)
class Delay:
    """The caller must wait ``seconds`` before sending the next transfer."""

    seconds: float

    def __post_init__(self) -> None:
        if not self.seconds >= 0:
            raise ValueError(f"a Delay must be zero or positive seconds, got {self.seconds!r}")


Op = Transfer | Delay


class Rotation(IntEnum):
    """How the content is turned on the glass, in degrees clockwise (see the module docstring)."""

    R0 = 0
    R90 = 90
    R180 = 180
    R270 = 270


_ROTATION_MADCTL: dict[Rotation, int] = {
    Rotation.R0: MADCTL_MX,
    Rotation.R90: MADCTL_MV,
    Rotation.R180: MADCTL_MY,
    Rotation.R270: MADCTL_MX | MADCTL_MY | MADCTL_MV,
}

# Pre-encoded command transfers: one shared frozen value per command byte.
_CMD: dict[int, Transfer] = {c.value: Transfer(False, bytes((c.value,))) for c in Cmd}


def logical_size(rotation: Rotation) -> tuple[int, int]:
    """``(width, height)`` of the drawing area at ``rotation``: 240×320 or 320×240."""
    if Rotation(rotation) in (Rotation.R90, Rotation.R270):
        return PANEL_HEIGHT, PANEL_WIDTH
    return PANEL_WIDTH, PANEL_HEIGHT


def madctl(rotation: Rotation, bgr: bool) -> int:
    """The MADCTL parameter that shows ``rotation`` upright on a common module.

    Args:
        rotation: the content's rotation on the glass.
        bgr: True for modules with a BGR colour filter (most ILI9341 modules).
    """
    value = _ROTATION_MADCTL[Rotation(rotation)]
    return value | MADCTL_BGR if bgr else value


def command(cmd: int, params: bytes = b"") -> list[Op]:
    """A command byte followed by its parameters (if any) as one data transfer."""
    head = _CMD.get(cmd) or Transfer(False, bytes((cmd,)))
    return [head, Transfer(True, params)] if params else [head]


# Init values. Each is a legal setting per the datasheet's register tables; the power,
# timing and gamma values are the ones the panel vendors' reference code (and hence every
# common driver) uses, proven on the 2.2"–3.2" modules.
_GAMMA_POSITIVE = bytes(
    (0x0F, 0x31, 0x2B, 0x0C, 0x0E, 0x08, 0x4E, 0xF1, 0x37, 0x07, 0x10, 0x03, 0x0E, 0x09, 0x00)
)
_GAMMA_NEGATIVE = bytes(
    (0x00, 0x0E, 0x14, 0x03, 0x11, 0x07, 0x31, 0xC1, 0x48, 0x08, 0x0F, 0x0C, 0x31, 0x36, 0x0F)
)
_POWER_AND_TIMING: tuple[tuple[Cmd, bytes], ...] = (
    (Cmd.PWCTRB, bytes((0x00, 0xC1, 0x30))),  # power control B: PCEQ on, DC_ena (ESD protection)
    (Cmd.PWRSEQ, bytes((0x64, 0x03, 0x12, 0x81))),  # power-on sequence; DDVDH enhance mode
    (Cmd.DTCTRA, bytes((0x85, 0x00, 0x78))),  # driver timing A: gate/EQ/pre-charge timing
    (Cmd.PWCTRA, bytes((0x39, 0x2C, 0x00, 0x34, 0x02))),  # power control A: vcore 1.6 V, DDVDH 5.6 V
    (Cmd.PUMPRC, bytes((0x20,))),  # pump ratio: DDVDH = 2 x VCI
    (Cmd.DTCTRB, bytes((0x00, 0x00))),  # driver timing B: gate driver timing 0 units
    (Cmd.PWCTR1, bytes((0x23,))),  # GVDD = 4.60 V
    (Cmd.PWCTR2, bytes((0x10,))),  # step-up factor for VGH/VGL
    (Cmd.VMCTR1, bytes((0x3E, 0x28))),  # VCOMH 4.250 V, VCOML -1.500 V
    (Cmd.VMCTR2, bytes((0x86,))),  # nVM = 1, VCOM offset VMH-58 VML-58
)


def init_sequence(rotation: Rotation = Rotation.R0, bgr: bool = True, invert: bool = False) -> list[Op]:
    """Everything from software reset to a lit, 16-bit RGB565 panel at ``rotation``.

    SWRESET and its wait, power and VCOM control, COLMOD 0x55 (16 bits per pixel over the
    MCU interface), MADCTL, frame rate (70 Hz, the reset default), display function control
    (320 lines), gamma curve 1 with the vendor correction tables, inversion, SLPOUT and its
    120 ms, DISPON. Frame memory is left as it was (undefined after power-on): draw before or
    right after calling this.
    """
    ops: list[Op] = [_CMD[Cmd.SWRESET], Delay(RESET_DELAY_S)]
    for cmd, params in _POWER_AND_TIMING:
        ops += command(cmd, params)
    ops += command(Cmd.MADCTL, bytes((madctl(rotation, bgr),)))
    ops += command(Cmd.COLMOD, b"\x55")
    ops += command(Cmd.FRMCTR1, bytes((0x00, 0x1B)))  # DIVA = fosc, RTNA = 27 clocks: 70 Hz
    # Display function control: interval scan in porches, normally-white LC (REV=1),
    # scan cycle 5 frames, NL = 0x27 -> (0x27 + 1) * 8 = 320 lines.
    ops += command(Cmd.DISCTRL, bytes((0x08, 0x82, 0x27)))
    ops += command(Cmd.EN3G, b"\x00")  # 3-gamma off
    ops += command(Cmd.GAMSET, b"\x01")  # gamma curve 1 (2.2)
    ops += command(Cmd.GMCTRP1, _GAMMA_POSITIVE)
    ops += command(Cmd.GMCTRN1, _GAMMA_NEGATIVE)
    ops.append(_CMD[Cmd.INVON if invert else Cmd.INVOFF])
    ops += [_CMD[Cmd.SLPOUT], Delay(SLEEP_DELAY_S)]
    ops.append(_CMD[Cmd.DISPON])
    return ops


def set_rotation(rotation: Rotation, bgr: bool = True) -> list[Op]:
    """MADCTL for ``rotation``; the next window must use that rotation's logical size."""
    return command(Cmd.MADCTL, bytes((madctl(rotation, bgr),)))


def _check_window(x0: int, y0: int, x1: int, y1: int, rotation: Rotation) -> tuple[int, int]:
    width, height = logical_size(rotation)
    if not (0 <= x0 <= x1 < width and 0 <= y0 <= y1 < height):
        raise ValueError(
            f"window ({x0}, {y0})-({x1}, {y1}) is not inside the {width}x{height} area of rotation "
            f"{Rotation(rotation).name}; give inclusive corners with x0 <= x1 < {width} and y0 <= y1 < {height}"
        )
    return x1 - x0 + 1, y1 - y0 + 1


_PACK_RANGE = struct.Struct(">HH").pack


def set_window(x0: int, y0: int, x1: int, y1: int, rotation: Rotation = Rotation.R0) -> list[Op]:
    """CASET and PASET for the inclusive logical rectangle (x0, y0)-(x1, y1).

    Raises:
        ValueError: a corner is outside the rotation's logical size, or the range is reversed.
    """
    _check_window(x0, y0, x1, y1, rotation)
    return [
        _CMD[Cmd.CASET],
        Transfer(True, _PACK_RANGE(x0, x1)),
        _CMD[Cmd.PASET],
        Transfer(True, _PACK_RANGE(y0, y1)),
    ]


def _as_bytes_view(data: PixelData) -> memoryview:
    view = memoryview(cast("Buffer", data))  # numpy arrays export the buffer protocol
    if view.format == "B" and view.ndim == 1:
        return view
    try:
        return view.cast("B")
    except TypeError as exc:
        raise ValueError(
            "pixel data must be a C-contiguous bytes-like object (bytes, bytearray, memoryview or a "
            "contiguous numpy uint8 array); use numpy.ascontiguousarray first"
        ) from exc


def write_pixels(data: PixelData, *, continue_: bool = False) -> list[Op]:
    """RAMWR (or RAMWRC to continue where the last write stopped) and the pixel bytes.

    The data goes out as one zero-copy transfer; splitting it to the bus limit is the
    transport's job. Empty data gives just the command (RAMWR then only resets the write
    pointer to the window start), since a transfer is never empty.
    """
    view = _as_bytes_view(data)
    head = _CMD[Cmd.RAMWRC if continue_ else Cmd.RAMWR]
    return [head, Transfer(True, view)] if len(view) else [head]


def blit(x0: int, y0: int, x1: int, y1: int, data: PixelData, rotation: Rotation = Rotation.R0) -> list[Op]:
    """Window, RAMWR and exactly ``w * h`` RGB565 pixels for the inclusive rectangle.

    Raises:
        ValueError: bad window, or ``data`` is not ``w * h * 2`` bytes.
    """
    width, height = _check_window(x0, y0, x1, y1, rotation)
    view = _as_bytes_view(data)
    if len(view) != width * height * 2:
        raise ValueError(
            f"a {width}x{height} RGB565 blit needs {width * height * 2} bytes, got {len(view)}; "
            "pass exactly two bytes per pixel of the window"
        )
    return [
        _CMD[Cmd.CASET],
        Transfer(True, _PACK_RANGE(x0, x1)),
        _CMD[Cmd.PASET],
        Transfer(True, _PACK_RANGE(y0, y1)),
        _CMD[Cmd.RAMWR],
        Transfer(True, view),
    ]


def sleep() -> list[Op]:
    """SLPIN, then 120 ms: 5 ms before any command, 120 ms before SLPOUT may follow."""
    return [_CMD[Cmd.SLPIN], Delay(SLEEP_DELAY_S)]


def wake() -> list[Op]:
    """SLPOUT, then 120 ms (the supply and clock settle; SLPIN may not follow sooner)."""
    return [_CMD[Cmd.SLPOUT], Delay(SLEEP_DELAY_S)]


def display_on() -> list[Op]:
    """DISPON: show frame memory on the glass."""
    return [_CMD[Cmd.DISPON]]


def display_off() -> list[Op]:
    """DISPOFF: blank the glass; frame memory is kept and may still be written."""
    return [_CMD[Cmd.DISPOFF]]


def invert(on: bool) -> list[Op]:
    """INVON or INVOFF: invert every colour shown (memory is unchanged)."""
    return [_CMD[Cmd.INVON if on else Cmd.INVOFF]]


def read_memory(x0: int, y0: int, x1: int, y1: int, rotation: Rotation = Rotation.R0) -> list[Op]:
    """Window and RAMRD: afterwards read :func:`read_length` bytes from the bus.

    The chip answers a dummy byte, then three bytes per pixel (R, G, B, each 6 bits in the
    high bits), whatever COLMOD is; decode them with :func:`decode_read`.
    """
    return [*set_window(x0, y0, x1, y1, rotation), _CMD[Cmd.RAMRD]]


def read_frames(x0: int, y0: int, x1: int, y1: int, max_frame: int) -> list[tuple[bytes, int]]:
    """How to read a window's pixels in chip-select frames of at most ``max_frame`` bytes.

    The chip ends a read when chip select rises (datasheet 7.1.10), so each frame carries its
    own command: RAMRD for the first, RAMRDC (which goes on after the last pixel read) for the
    rest. Returns ``(command, nbytes)`` per frame: the command byte goes out first in the
    frame, then ``nbytes`` are clocked in — a dummy byte and whole 3-byte pixels. Send
    :func:`set_window` first; :func:`decode_read` each answer.

    Raises:
        ValueError: ``max_frame`` cannot hold a command, a dummy byte and one pixel.
    """
    per_frame = (max_frame - 2) // 3
    if per_frame < 1:
        raise ValueError(f"a read frame needs at least 5 bytes (command, dummy, one pixel), not {max_frame}")
    left = (x1 - x0 + 1) * (y1 - y0 + 1)
    if left < 1:
        raise ValueError(f"the window ({x0}, {y0})-({x1}, {y1}) is empty")
    frames: list[tuple[bytes, int]] = []
    while left:
        k = min(left, per_frame)
        frames.append((bytes((Cmd.RAMRDC if frames else Cmd.RAMRD,)), 1 + 3 * k))
        left -= k
    return frames


def read_length(x0: int, y0: int, x1: int, y1: int) -> int:
    """Bytes to read after :func:`read_memory`: one dummy byte plus 3 per pixel."""
    return 1 + 3 * (x1 - x0 + 1) * (y1 - y0 + 1)


def decode_read(data: PixelData, width: int, height: int) -> bytes:
    """Strip the dummy byte from a RAMRD answer: ``width * height`` pixels of 3 bytes (RGB666 high bits).

    Raises:
        ValueError: the answer is not ``1 + 3 * width * height`` bytes.
    """
    view = _as_bytes_view(data)
    expected = 1 + 3 * width * height
    if len(view) != expected:
        raise ValueError(f"a RAMRD of {width}x{height} pixels answers {expected} bytes, got {len(view)}")
    return bytes(view[1:])
