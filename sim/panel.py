"""A byte-level model of an ILI9341 module: the other end of the wire from the encoder.

``Ili9341Panel`` takes every SPI transfer with the level of the D/C line and updates a model
of the controller (registers, write pointer, 18-bit frame memory) and of the module (colour
filter, how the glass shows memory, backlight). ``snapshot()`` is what a person sees. It knows
nothing about ``libloop.ili9341`` beyond the command codes, so any driver that follows the
datasheet (v1.11) renders correctly on it, and a driver that does not shows the mistake.

What the model does, and why:

* Frame memory is 320 rows (gates) × 240 columns (sources) × 18 bits, held as a numpy array
  of 6-bit levels. 16-bit RGB565 pixels are widened through the RGBSET look-up table, whose
  reset content repeats each 5-bit code's top bit as the new low bit; 18-bit pixels are three
  bytes whose high 6 bits count. Only the low 3 bits of COLMOD (the MCU-interface format, DBI)
  matter over SPI: 101 = 16 bits and 110 = 18 bits (luma.lcd sends 0x46, the Adafruit
  drivers 0x55). Anything else is reported and leaves the format as it was.
* MADCTL MY/MX/MV decide how host (column, page) addresses reach memory: MV makes CASET address
  memory rows and PASET memory columns; MX mirrors memory columns and MY memory rows whatever
  MV says. ML and MH only change the refresh scan direction, which a still picture does not
  show, so they are recorded but change nothing. The BGR bit decides which sub-pixel the first
  colour component drives.
* The module: ``bgr_filter`` (True on most ILI9341 modules) is the order of the colour filter,
  so a driver must set MADCTL BGR to get red where it asked for red. On the common module the
  glass shows memory column 0 on the right, seen in portrait with the ribbon at the bottom:
  upright portrait needs MADCTL MX, which is why the usual drivers send 0x48. ``mirror_x`` and
  ``mirror_y`` describe modules whose glass is mirrored relative to that common one.
  The DISCTRL (B6h) SS and GS bits mirror the glass the same way, as on the chip.
* Pixel data continues where it stopped, even mid-pixel, across transfers; the write pointer
  runs along the window's columns then pages and wraps back to the window start after the
  end. Data outside the panel's address range is dropped, as the datasheet says.
* Display off (DISPOFF) and sleep (before SLPOUT, after SLPIN) show a blank page; these
  modules use normally-white liquid crystal (DISCTRL REV=1), so blank glass is white, lit by
  the backlight. Inversion (INVON) inverts every level read from memory; idle mode keeps only
  each level's top bit (8 colours). The backlight scales the light; at 0 the glass is black.
* RAMRD/RAMRDC: ``read(n)`` answers a dummy byte, then three bytes a pixel (the 6-bit levels
  in the high bits), whatever COLMOD is, in memory order as written.
* Chip select (datasheet 7.1.10, "Read Cycle Sequence"): once the host has sent a read
  command, the following bytes go the other way until CSX rises, and a rising CSX ends the
  read. So a read only works when the command and the data are in one CSX-low frame:
  ``exchange(data, dc)`` is such a frame's full-duplex traffic. Writes are not cut by CSX:
  a memory write or a multi-byte parameter pauses while CSX is high and continues where it
  stopped (7.1.9 / 7.1.11, "Data Transfer Break / Pause"), which is why every driver may send
  a command and its data in separate transfers. Bytes clocked while CSX is high are ignored.
  Until a wiring drives ``csx()`` the line is taken as tied low (some modules ground it),
  and a read then lasts until the next command.
* Clocks: the wiring sets ``sclk_hz`` before each transfer. Reads faster than the serial read
  cycle allows (tSCYCR >= 150 ns, datasheet 19.4.2: 6.67 MHz) are reported and come back
  mis-sampled; pixel data written above ``reliable_hz`` (a property of the module and its
  wires, not of the chip: many are fine to ~60 MHz, some not above 40) arrives one bit late,
  the way a marginal link fails. Commands are kept intact so the controller stays sane.
* Unknown and vendor commands (luma sends the undocumented EFh) are accepted and recorded in
  ``commands``. Partial mode and vertical scrolling are recorded, not rendered.
* Frame memory after power-on is undefined on the chip; the model starts it black. Like the
  chip, resets leave memory alone.

Strict mode raises :class:`PanelViolation` at the offending write; otherwise each
:class:`Violation` is recorded in ``violations`` and the model carries on as the chip would
(commands sent during a reset wait are still executed, since the datasheet does not say which
would be lost; the record is the signal).
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt
from PIL import Image

from libloop._types import Buffer
from libloop.clock import Clock, MonotonicClock
from libloop.errors import LoopError
from libloop.ili9341 import Cmd, Rotation

__all__ = [
    "GLASS_STATE_WORDS",
    "Ili9341Panel",
    "PanelError",
    "PanelViolation",
    "Violation",
    "ViolationKind",
    "render_glass",
]

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
_CELL = np.dtype("<u4")  # one memory cell: bytes R, G, B levels and a zero pad, in that order

ROWS = 320  #: gate lines
COLUMNS = 240  #: source columns

_MY, _MX, _MV, _BGR = 0x80, 0x40, 0x20, 0x08
_RESET_WAIT = 0.005  # SWRESET / RESX: before any command
_SLEEP_WAIT = 0.120  # SLPOUT -> SLPIN, SLPIN -> SLPOUT, reset in sleep-out -> SLPOUT
_CMD_WAIT = 0.005  # SLPOUT / SLPIN -> any command
#: The fastest read clock the datasheet allows (serial read cycle tSCYCR >= 150 ns).
MAX_READ_HZ = 1e9 / 150


class PanelError(LoopError):
    """The simulated panel was driven in a way the ILI9341 datasheet does not allow."""

    code = "panel_error"


class ViolationKind(enum.Enum):
    """The datasheet rules the model checks."""

    DATA_WITHOUT_COMMAND = "pixel or parameter data that no command takes (not inside a RAMWR/RAMWRC)"
    BUSY = "a write during a reset or sleep-in/out wait"
    WINDOW_OUT_OF_RANGE = "a CASET/PASET address beyond the panel for the current MADCTL MV"
    WINDOW_REVERSED = "a CASET/PASET start after its end"
    PARAMETER_COUNT = "a command with the wrong number of parameters"
    PIXEL_FORMAT = "an unsupported COLMOD pixel format"
    INCOMPLETE_PIXEL = "a memory write stopped in the middle of a pixel"
    READ_WITHOUT_COMMAND = "a read with no read command before it in the same chip-select frame"
    CHIP_SELECT_INACTIVE = "bytes clocked while chip select was inactive (CSX high), which the chip ignores"
    READ_CLOCK = "a read clocked faster than the serial read cycle allows (tSCYCR >= 150 ns)"


@dataclass(frozen=True, slots=True)
class Violation:
    """One datasheet violation: what, the command in effect, and when (panel clock)."""

    kind: ViolationKind
    message: str
    command: int | None
    at: float


class PanelViolation(PanelError):
    """Strict mode: the driver broke a datasheet rule at this write."""

    code = "panel_violation"

    def __init__(self, violation: Violation) -> None:
        self.violation = violation
        super().__init__(violation.message)


# Commands that take no parameters, and those with a fixed count the model checks.
_NO_PARAMS = frozenset(
    {
        Cmd.NOP, Cmd.SWRESET, Cmd.SLPIN, Cmd.SLPOUT, Cmd.PTLON, Cmd.NORON, Cmd.INVOFF, Cmd.INVON,
        Cmd.DISPOFF, Cmd.DISPON, Cmd.TEOFF, Cmd.IDMOFF, Cmd.IDMON,
    }
)  # fmt: skip
_FIXED_PARAMS: dict[int, int] = {
    Cmd.CASET: 4, Cmd.PASET: 4, Cmd.MADCTL: 1, Cmd.COLMOD: 1, Cmd.PTLAR: 4, Cmd.VSCRDEF: 6,
    Cmd.VSCRSADD: 2, Cmd.GAMSET: 1, Cmd.TEON: 1, Cmd.RGBSET: 128,
}  # fmt: skip
_READS = frozenset({Cmd.RAMRD, Cmd.RAMRDC, Cmd.RDDID, Cmd.RDDST, Cmd.RDDMADCTL, Cmd.RDDCOLMOD, Cmd.RDID4})


def _glass_tables() -> tuple[U8, U8]:
    """8-bit light for each 6-bit level: (red/blue, green).

    Green is 6-bit bit replication. Red and blue levels that a 5-bit code produces through
    the reset LUT show as that code's bit replication, exactly what
    ``libloop.color.rgb565_to_rgb888`` promises; the other levels use 6-bit replication.
    Both tables rise strictly, so the glass keeps all 64 levels apart, and level ``63 - v``
    shows as ``255 - table[v]`` (inversion inverts the light exactly).
    """
    levels = np.arange(64, dtype=np.uint16)
    green = ((levels << 2) | (levels >> 4)).astype(np.uint8)
    red_blue = green.copy()
    for code in range(32):
        red_blue[(code << 1) | (code >> 4)] = (code << 3) | (code >> 2)
    return red_blue, green


_RB_LIGHT, _G_LIGHT = _glass_tables()
_WHITE = np.uint8(255)


#: How many integers :meth:`Ili9341Panel.glass_state` returns.
GLASS_STATE_WORDS = 11


def render_glass(cells: U8, state: tuple[int, ...], rotation: Rotation = Rotation.R0) -> U8:
    """What a person sees: frame memory (``(320, 240, 4)`` cells) lit as ``state`` says.

    ``state`` is :meth:`Ili9341Panel.glass_state`; the result is an ``(h, w, 3)`` uint8 array
    turned for ``rotation``, exactly :meth:`Ili9341Panel.glass`.
    """
    sleeping, display_on, idle, inverted, madctl, bgr_filter, mirror_x, mirror_y, ss, gs, backlight = state[
        :GLASS_STATE_WORDS
    ]
    if sleeping or not display_on:
        light = np.full((ROWS, COLUMNS, 3), _WHITE, dtype=np.uint8)
    else:
        mem = cells[:, :, :3]
        if idle:
            mem = np.where(mem >= 32, np.uint8(63), np.uint8(0))
        if inverted:
            mem = 63 - mem
        # The MADCTL BGR bit and the module's filter together decide which component is red.
        first, last = (0, 2) if bool(madctl & _BGR) == bool(bgr_filter) else (2, 0)
        light = np.empty((ROWS, COLUMNS, 3), dtype=np.uint8)
        light[:, :, 0] = _RB_LIGHT[mem[:, :, first]]
        light[:, :, 1] = _G_LIGHT[mem[:, :, 1]]
        light[:, :, 2] = _RB_LIGHT[mem[:, :, last]]
    # Common module: memory column 0 is on the right of the glass.
    flip_x = (not mirror_x) ^ bool(ss)
    flip_y = bool(mirror_y) ^ bool(gs)
    if flip_x:
        light = light[:, ::-1]
    if flip_y:
        light = light[::-1]
    level = max(0, min(100, int(backlight)))
    if level < 100:
        light = ((light.astype(np.uint16) * level + 50) // 100).astype(np.uint8)
    turns = {Rotation.R0: 0, Rotation.R90: 1, Rotation.R180: 2, Rotation.R270: 3}[Rotation(rotation)]
    # np.rot90 turns counter-clockwise: undo a clockwise content rotation.
    return np.ascontiguousarray(np.rot90(light, turns))


class Ili9341Panel:
    """An ILI9341 module fed byte by byte: ``write(data, dc)``, ``read(n)``, ``snapshot()``.

    Args:
        bgr_filter: the module's colour filter is B, G, R (most modules).
        mirror_x: the glass is mirrored left-right relative to the common module.
        mirror_y: the glass is mirrored top-bottom relative to the common module.
        strict: raise :class:`PanelViolation` at a datasheet violation instead of recording it.
        clock: the time base for reset and sleep waits (a ``FakeClock`` in tests).
        memory: a ``(320, 240, 4)`` uint8 array to keep frame memory in (e.g. shared memory,
            for :func:`render_glass` in another process); default: a new zeroed one.
        reliable_hz: the fastest write clock this module takes without errors (None: any).
        max_read_hz: the fastest read clock (the datasheet's, by default).
        command_log_limit: keep only the newest this-many commands in ``commands`` (None: all).
    """

    def __init__(
        self,
        *,
        bgr_filter: bool = True,
        mirror_x: bool = False,
        mirror_y: bool = False,
        strict: bool = False,
        clock: Clock | None = None,
        memory: U8 | None = None,
        reliable_hz: float | None = None,
        max_read_hz: float = MAX_READ_HZ,
        command_log_limit: int | None = None,
    ) -> None:
        self.bgr_filter = bgr_filter
        self.reliable_hz = reliable_hz
        self.max_read_hz = max_read_hz
        #: The serial clock of the transfer in progress, set by the wiring (None: unknown).
        self.sclk_hz: float | None = None
        self.mirror_x = mirror_x
        self.mirror_y = mirror_y
        self.strict = strict
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        #: Backlight level 0..100, set by the wiring.
        self.backlight = 100
        # Each memory cell is four bytes (three 6-bit levels and a pad) so that a pixel moves
        # as one 32-bit word: mirrored and transposed writes stay fast.
        if memory is None:
            memory = np.zeros((ROWS, COLUMNS, 4), dtype=np.uint8)
        elif memory.shape != (ROWS, COLUMNS, 4) or memory.dtype != np.uint8:
            raise ValueError(
                f"panel memory is a ({ROWS}, {COLUMNS}, 4) uint8 array, not {memory.shape} {memory.dtype}"
            )
        self._cells4: U8 = memory
        self._cells: U32 = self._cells4.view(_CELL)[:, :, 0]
        #: 18-bit frame memory: (row, column, component) 6-bit levels, in the order written.
        self.memory: U8 = self._cells4[:, :, :3]
        self.violations: list[Violation] = []
        #: Bumped whenever what the glass shows may have changed (viewers redraw on change).
        self.version = 0
        self.transfers = 0
        self.bytes_written = 0
        self._log: deque[tuple[int, bytearray]] = deque(maxlen=command_log_limit)
        self._ready_at = -1.0
        self._sleep_toggle_at = -1.0
        self._csx_high = False  # tied low until a wiring drives it
        self._late_bit = 0  # the bit a marginal link carries into the next byte
        self._reset_registers()

    # --- public ----------------------------------------------------------------------

    @property
    def commands(self) -> list[tuple[int, bytes]]:
        """Every command received (the newest ``command_log_limit``), in order, with its parameters."""
        return [(cmd, bytes(params)) for cmd, params in self._log]

    @property
    def madctl(self) -> int:
        """The current MADCTL value."""
        return self._madctl

    @property
    def bits_per_pixel(self) -> int:
        """16 or 18: the pixel format the MCU interface expects (COLMOD DBI)."""
        return self._bpp

    @property
    def sleeping(self) -> bool:
        return self._sleeping

    @property
    def display_on(self) -> bool:
        return self._display_on

    @property
    def inverted(self) -> bool:
        return self._inverted

    @property
    def window(self) -> tuple[int, int, int, int]:
        """``(start column, end column, start page, end page)`` as last set, inclusive."""
        return self._sc, self._ec, self._sp, self._ep

    def hardware_reset(self) -> None:
        """A pulse on RESX: registers to their defaults, memory kept.

        Commands may follow after 5 ms; SLPOUT after 120 ms if the panel was awake.
        """
        self._after_reset()

    def write(self, data: Buffer | U8, dc: bool) -> None:
        """One SPI transfer: ``dc`` False = every byte is a command, True = parameters or pixels.

        Raises:
            PanelViolation: strict mode, and the transfer breaks a datasheet rule.
        """
        view = memoryview(cast(Buffer, data))  # numpy arrays export the buffer protocol
        if view.ndim != 1 or view.format != "B":
            view = view.cast("B")
        if len(view) == 0 or not self._selected(len(view)):
            return
        self.transfers += 1
        self.bytes_written += len(view)
        self._receive(view, dc)

    def _receive(self, view: memoryview, dc: bool) -> None:
        now = self.clock.monotonic()
        if now < self._ready_at:
            self._violate(
                ViolationKind.BUSY,
                f"{'a command' if not dc else 'data'} arrived {(self._ready_at - now) * 1000:.1f} ms too "
                "early after a reset or sleep change; wait as the datasheet requires before writing",
            )
        if dc:
            self._data(view)
        else:
            for byte in view:
                self._command(byte, now)

    def _selected(self, n: int) -> bool:
        if self._csx_high:
            self._violate(
                ViolationKind.CHIP_SELECT_INACTIVE,
                f"{n} bytes were clocked while CSX was high, so the chip ignored them; check the SPI "
                "mode flags (cshigh, no_cs) and the chip-select wiring",
            )
            return False
        return True

    def csx(self, high: bool) -> None:
        """The CSX line: low selects the chip; a rising edge ends a read (datasheet 7.1.10)."""
        high = bool(high)
        if high and not self._csx_high and self._reading:
            self._finish_read()
            self._read_cut = True
        self._csx_high = high

    def exchange(self, data: Buffer, dc: bool) -> bytes:
        """One full-duplex transfer inside a CSX-low frame: returns what the chip puts on MISO.

        Bytes before and including a read command are taken as usual (MISO idles at 0); once a
        read command has been taken, the rest of the frame clocks the answer out and MOSI is
        ignored, as on the chip.
        """
        view = memoryview(data)
        if view.ndim != 1 or view.format != "B":
            view = view.cast("B")
        n = len(view)
        if n == 0 or not self._selected(n):
            return bytes(n)
        self.transfers += 1
        if self._reading or (dc and self._read_cut):  # the host means to read; say why it cannot
            return self._answer(n)
        if dc:
            self.bytes_written += n
            self._receive(view, True)
            return bytes(n)
        for i in range(n):
            self.bytes_written += 1
            self._receive(view[i : i + 1], False)
            if self._reading:
                return bytes(i + 1) + self._answer(n - i - 1)
        return bytes(n)

    def read(self, n: int) -> bytes:
        """Clock ``n`` bytes out of the panel (MISO) after a read command such as RAMRD."""
        if n <= 0:
            return b""
        return self._answer(n)

    def _answer(self, n: int) -> bytes:
        if n <= 0:
            return b""
        if not self._reading:
            why = "; chip select rose after the read command, which ended the read" if self._read_cut else ""
            self._violate(
                ViolationKind.READ_WITHOUT_COMMAND,
                f"a read came with no read command before it{why}; send the read command and clock "
                "the answer in one chip-select frame",
            )
            return bytes(n)
        assert self._cmd is not None
        if self._cmd in (Cmd.RAMRD, Cmd.RAMRDC):
            answer = self._read_memory(n)
        else:
            text = self._register_answer(self._cmd)
            start = self._read_offset
            self._read_offset += n
            answer = (text + bytes(max(0, start + n - len(text))))[start : start + n]
        hz = self.sclk_hz
        if hz is not None and hz > self.max_read_hz * 1.0001:
            self._violate(
                ViolationKind.READ_CLOCK,
                f"a read was clocked at {hz / 1e6:.2f} MHz but the ILI9341 reads at most "
                f"{self.max_read_hz / 1e6:.2f} MHz; read at a slower clock",
            )
            return self._late(answer)
        return answer

    def _late(self, data: bytes) -> bytes:
        """What a receiver sampling one bit late gets: every byte shifted right by one."""
        out = bytearray(len(data))
        carry = self._late_bit
        for i, b in enumerate(data):
            out[i] = (b >> 1) | (carry << 7)
            carry = b & 1
        self._late_bit = carry
        return bytes(out)

    def snapshot(self, rotation: Rotation = Rotation.R0) -> Image.Image:
        """What a person sees on the glass, as an RGB image.

        ``R0`` is the glass in portrait (240 wide, 320 tall, ribbon at the bottom); another
        rotation turns the picture so content drawn at that rotation is upright.
        """
        return Image.fromarray(self.glass(rotation))

    def glass(self, rotation: Rotation = Rotation.R0) -> U8:
        """The light of every glass pixel as an ``(h, w, 3)`` uint8 array (see :meth:`snapshot`)."""
        return render_glass(self._cells4, self.glass_state(), rotation)

    def glass_state(self) -> tuple[int, ...]:
        """Everything besides frame memory that decides what the glass shows, as integers.

        With the memory array, :func:`render_glass` turns it into :meth:`glass` anywhere.
        """
        return (
            int(self._sleeping),
            int(self._display_on),
            int(self._idle),
            int(self._inverted),
            self._madctl,
            int(self.bgr_filter),
            int(self.mirror_x),
            int(self.mirror_y),
            int(self._ss),
            int(self._gs),
            max(0, min(100, int(self.backlight))),
        )

    # --- registers -----------------------------------------------------------------------

    def _reset_registers(self) -> None:
        self._madctl = 0
        self._bpp = 18  # COLMOD resets to 0x66
        self._sleeping = True
        self._display_on = False
        self._inverted = False
        self._idle = False
        self._ss = False
        self._gs = False
        self._sc, self._ec, self._sp, self._ep = 0, COLUMNS - 1, 0, ROWS - 1
        self._x, self._y = 0, 0
        self._cmd: int | None = None
        self._params = bytearray()
        self._expected: int | None = None
        self._pending = bytearray()
        self._read_offset = 0
        self._reading = False
        self._read_cut = False
        self._lut_r = bytearray(((c << 1) | (c >> 4)) for c in range(32))
        self._lut_g = bytearray(range(64))
        self._lut_b = bytearray(((c << 1) | (c >> 4)) for c in range(32))
        self._lut16: U32 | None = None
        self.version += 1

    def _after_reset(self) -> None:
        now = self.clock.monotonic()
        was_awake = not self._sleeping
        self._finish_command()
        self._reset_registers()
        self._ready_at = now + _RESET_WAIT
        self._sleep_toggle_at = now + (_SLEEP_WAIT if was_awake else _RESET_WAIT)

    def _violate(self, kind: ViolationKind, message: str) -> None:
        record = Violation(kind, message[0].upper() + message[1:] + ".", self._cmd, self.clock.monotonic())
        if self.strict:
            raise PanelViolation(record)
        self.violations.append(record)

    # --- commands ------------------------------------------------------------------------

    def _finish_read(self) -> None:
        """A read ends: RAMRDC will go on after the pixels read."""
        if self._reading:
            if self._cmd in (Cmd.RAMRD, Cmd.RAMRDC) and self._read_offset > 1:
                self._advance((self._read_offset - 1) // 3)
            self._read_offset = 0
            self._reading = False
            self._cmd = None

    def _command(self, byte: int, now: float) -> None:
        self._finish_command()
        self._finish_read()
        self._cmd = byte
        self._reading = byte in _READS
        self._read_cut = False
        self._params = bytearray()
        self._log.append((byte, self._params))
        self._expected = 0 if byte in _NO_PARAMS else _FIXED_PARAMS.get(byte)
        self._read_offset = 0
        if byte == Cmd.SWRESET:
            self._after_reset()
            self._cmd = byte
            self._expected = 0
        elif byte in (Cmd.SLPOUT, Cmd.SLPIN):
            if now < self._sleep_toggle_at:
                name = "SLPOUT" if byte == Cmd.SLPOUT else "SLPIN"
                self._violate(
                    ViolationKind.BUSY,
                    f"{name} came {(self._sleep_toggle_at - now) * 1000:.1f} ms too early; the datasheet "
                    "needs 120 ms between sleep in and out, and after a reset taken while awake",
                )
            self._sleeping = byte == Cmd.SLPIN
            self._ready_at = now + _CMD_WAIT
            self._sleep_toggle_at = now + _SLEEP_WAIT
            self.version += 1
        elif byte in (Cmd.DISPON, Cmd.DISPOFF):
            self._display_on = byte == Cmd.DISPON
            self.version += 1
        elif byte in (Cmd.INVON, Cmd.INVOFF):
            self._inverted = byte == Cmd.INVON
            self.version += 1
        elif byte in (Cmd.IDMON, Cmd.IDMOFF):
            self._idle = byte == Cmd.IDMON
            self.version += 1
        elif byte in (Cmd.RAMWR, Cmd.RAMRD) or (
            # The "continue" commands start over when the window moved away from the pointer.
            byte in (Cmd.RAMWRC, Cmd.RAMRDC)
            and not (self._sc <= self._x <= self._ec and self._sp <= self._y <= self._ep)
        ):
            self._x, self._y = self._sc, self._sp

    def _finish_command(self) -> None:
        """The previous command ends: check what it was missing."""
        if self._pending:
            partial = len(self._pending)
            self._pending.clear()
            self._violate(
                ViolationKind.INCOMPLETE_PIXEL,
                f"a memory write ended {partial} byte(s) into a {2 if self._bpp == 16 else 3}-byte pixel, "
                "which the chip drops; send whole pixels",
            )
        if self._cmd is not None and self._expected and len(self._params) < self._expected:
            self._violate(
                ViolationKind.PARAMETER_COUNT,
                f"command {self._cmd:#04x} got {len(self._params)} parameter bytes of the "
                f"{self._expected} it needs and was ignored; send all its parameters",
            )

    def _data(self, view: memoryview) -> None:
        cmd = self._cmd
        if cmd in (Cmd.RAMWR, Cmd.RAMWRC):
            self._pixels(view)
            return
        if cmd is None or self._expected == 0 or cmd in _READS:
            self._violate(
                ViolationKind.DATA_WITHOUT_COMMAND,
                f"{len(view)} data bytes came with no memory write or parameter command to take them; "
                "send RAMWR (2Ch) before pixel data",
            )
            return
        before = len(self._params)
        self._params += view
        expected = self._expected
        if expected is None:
            if cmd == Cmd.DISCTRL and before < 2 <= len(self._params):
                self._ss = bool(self._params[1] & 0x20)
                self._gs = bool(self._params[1] & 0x40)
                self.version += 1
            return
        if len(self._params) > expected:
            self._violate(
                ViolationKind.PARAMETER_COUNT,
                f"command {cmd:#04x} takes {expected} parameter bytes but got {len(self._params)}; "
                "the extra bytes were ignored",
            )
        if before < expected <= len(self._params):
            self._apply(cmd, bytes(self._params[:expected]))

    def _apply(self, cmd: int, p: bytes) -> None:
        if cmd in (Cmd.CASET, Cmd.PASET):
            start, end = (p[0] << 8) | p[1], (p[2] << 8) | p[3]
            across_columns = (cmd == Cmd.CASET) != bool(self._madctl & _MV)
            limit = (COLUMNS if across_columns else ROWS) - 1
            name = "CASET" if cmd == Cmd.CASET else "PASET"
            if start > end:
                self._violate(
                    ViolationKind.WINDOW_REVERSED,
                    f"{name} start {start} is after its end {end}; the command was ignored",
                )
                return
            if end > limit:
                self._violate(
                    ViolationKind.WINDOW_OUT_OF_RANGE,
                    f"{name} {start}..{end} goes beyond {limit}, the last address for this MADCTL MV; "
                    "data outside the panel is dropped",
                )
            if cmd == Cmd.CASET:
                self._sc, self._ec = start, end
            else:
                self._sp, self._ep = start, end
        elif cmd == Cmd.MADCTL:
            self._madctl = p[0]
            self.version += 1
        elif cmd == Cmd.COLMOD:
            dbi = p[0] & 0x07
            if dbi == 0b101:
                self._bpp = 16
            elif dbi == 0b110:
                self._bpp = 18
            else:
                self._violate(
                    ViolationKind.PIXEL_FORMAT,
                    f"COLMOD {p[0]:#04x} asks for a pixel format the panel model does not support; "
                    "use 0x55 (16-bit) or 0x66 (18-bit)",
                )
        elif cmd == Cmd.RGBSET:
            self._lut_r = bytearray(v & 0x3F for v in p[0:32])
            self._lut_g = bytearray(v & 0x3F for v in p[32:96])
            self._lut_b = bytearray(v & 0x3F for v in p[96:128])
            self._lut16 = None

    def _register_answer(self, cmd: int) -> bytes:
        if cmd == Cmd.RDID4:
            return bytes((0x00, 0x00, 0x93, 0x41))
        if cmd == Cmd.RDDMADCTL:
            return bytes((0x00, self._madctl))
        if cmd == Cmd.RDDCOLMOD:
            return bytes((0x00, 0x05 if self._bpp == 16 else 0x06))
        return b"\x00"

    # --- frame memory --------------------------------------------------------------------

    def _host_view(self) -> U32:
        """Frame memory cells indexed [page, column] as the host addresses them under MADCTL."""
        view = self._cells
        if self._madctl & _MY:
            view = view[::-1]
        if self._madctl & _MX:
            view = view[:, ::-1]
        if self._madctl & _MV:
            view = view.T
        return view

    def _decode16(self, raw: U8) -> U32:
        if self._lut16 is None:
            codes = np.arange(65536, dtype=np.uint32)
            lut = np.zeros((65536, 4), dtype=np.uint8)
            lut[:, 0] = np.frombuffer(bytes(self._lut_r), np.uint8)[codes >> 11]
            lut[:, 1] = np.frombuffer(bytes(self._lut_g), np.uint8)[(codes >> 5) & 0x3F]
            lut[:, 2] = np.frombuffer(bytes(self._lut_b), np.uint8)[codes & 0x1F]
            self._lut16 = lut.view(_CELL).reshape(-1)
        cells: U32 = np.take(self._lut16, raw.view(">u2"))
        return cells

    def _pixels(self, view: memoryview) -> None:
        hz, limit = self.sclk_hz, self.reliable_hz
        if hz is not None and limit is not None and hz > limit:
            view = memoryview(self._late(bytes(view)))
        size = 2 if self._bpp == 16 else 3
        if self._pending:
            take = min(size - len(self._pending), len(view))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < size:
                return
            self._store(self._to_cells(np.frombuffer(bytes(self._pending), np.uint8)))
            self._pending.clear()
        whole = len(view) - len(view) % size
        if whole:
            self._store(self._to_cells(np.frombuffer(view[:whole], np.uint8)))
        if whole < len(view):
            self._pending += view[whole:]

    def _to_cells(self, raw: U8) -> U32:
        """Packed memory cells (R, G, B, 0 levels in little-endian bytes) for whole pixels."""
        if self._bpp == 16:
            return self._decode16(raw)
        n = len(raw) // 3
        cells = np.zeros(n, dtype=_CELL)
        np.right_shift(raw.reshape(n, 3), 2, out=cells.view(np.uint8).reshape(n, 4)[:, :3])
        return cells

    def _store(self, px: U32) -> None:
        """Write ``n`` cells at the pointer, running along the window and wrapping."""
        sc, ec, sp, ep = self._sc, self._ec, self._sp, self._ep
        width = ec - sc + 1
        view = self._host_view()
        x, y = self._x, self._y
        n, i = len(px), 0
        if x != sc:
            k = min(ec - x + 1, n)
            self._put(view, y, x, px[:k].reshape(1, k))
            i, x = k, x + k
            if x > ec:
                x, y = sc, (y + 1 if y < ep else sp)
        rows = (n - i) // width
        while rows:
            k = min(rows, ep - y + 1)
            self._put(view, y, sc, px[i : i + k * width].reshape(k, width))
            i, rows, y = i + k * width, rows - k, y + k
            if y > ep:
                y = sp
        if i < n:
            self._put(view, y, sc, px[i:].reshape(1, n - i))
            x = sc + n - i
        self._x, self._y = x, y
        self.version += 1

    @staticmethod
    def _put(view: U32, y: int, x: int, block: U32) -> None:
        pages, cols = view.shape
        k, w = block.shape
        y1, x1 = min(y + k, pages), min(x + w, cols)
        if y < y1 and x < x1:
            view[y:y1, x:x1] = block[: y1 - y, : x1 - x]

    def _advance(self, pixels: int) -> None:
        """Move the pointer ``pixels`` along the window, wrapping like a memory write."""
        width = self._ec - self._sc + 1
        count = width * (self._ep - self._sp + 1)
        index = ((self._y - self._sp) * width + (self._x - self._sc) + pixels) % count
        self._x, self._y = self._sc + index % width, self._sp + index // width

    def _read_memory(self, n: int) -> bytes:
        start = self._read_offset
        self._read_offset += n
        out = bytearray()
        if start == 0:
            out.append(0)  # the dummy byte the chip clocks out first
            start, n = 1, n - 1
        if n <= 0:
            return bytes(out)
        first_px, last_px = (start - 1) // 3, (start - 1 + n - 1) // 3
        width = self._ec - self._sc + 1
        count = width * (self._ep - self._sp + 1)
        origin = (self._y - self._sp) * width + (self._x - self._sc)
        index = (origin + np.arange(first_px, last_px + 1)) % count
        pages = self._sp + index // width
        cols = self._sc + index % width
        view = self._host_view()
        inside = (pages < view.shape[0]) & (cols < view.shape[1])
        cells = np.zeros(len(index), dtype=_CELL)
        cells[inside] = view[pages[inside], cols[inside]]
        data = (cells.view(np.uint8).reshape(-1, 4)[:, :3] << 2).tobytes()
        skip = (start - 1) - first_px * 3
        out += data[skip : skip + n]
        return bytes(out)
