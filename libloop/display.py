"""``Display``: the ILI9341 encoder joined to a transport, the same on a Pi and in the simulator.

The encoder (``libloop.ili9341``) decides every byte; this class is the short loop that performs
its ops — a ``Transfer`` sets the D/C line and writes through the bus, a ``Delay`` waits through
the injected ``sleep`` — plus the hardware-only steps the encoder cannot express: the RESET
pulse, the backlight, and opening and closing the lines.

Reset timing (ILI9341 datasheet v1.11, 15.4): RESX low for at least 10 µs (we hold it 20 µs),
then at least 5 ms before the first command, 120 ms if the chip was in sleep-out; we always wait
120 ms. The init sequence then carries its own SWRESET and SLPOUT waits.

An optional shadow copy of frame memory answers "what does the panel show now?" on a Pi without
MISO (the dashboard's live view). It costs one 150 KB array and, per blit, a copy of the blitted
pixels (a transposing copy at 90°/270°). On the (loaded, shared) development machine that was
50-300 µs per full frame, under 2 % of the frame's 19.2 ms wire time; ``nox -s bench`` reports
it ("shadow" rows). It is off unless ``shadow=True``; ``shadow_image()`` (about 1 ms) runs only
when someone looks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from libloop import ili9341
from libloop._types import Buffer
from libloop.color import rgb565_to_rgb888, rgb888_to_rgb565
from libloop.errors import TransferCut
from libloop.ili9341 import PANEL_HEIGHT, PANEL_WIDTH, RESET_DELAY_S, Delay, Op, Rotation, Transfer
from libloop.transport.backlight import check_level
from libloop.transport.base import Backlight, BusStats, OutputPin, SpiBus, SpiLink, byte_view

__all__ = ["RESET_PULSE_S", "Display", "Fit", "render_shadow"]

log = logging.getLogger(__name__)

#: How long RESET is held low (the datasheet asks for at least 10 µs).
RESET_PULSE_S = 20e-6

Fit = Literal["contain", "cover", "stretch"]
U8 = npt.NDArray[np.uint8]

# Rotation -> np.rot90 turns (counter-clockwise) that take logical content onto the glass.
_TO_GLASS = {Rotation.R0: 0, Rotation.R90: -1, Rotation.R180: 2, Rotation.R270: 1}


class Display:
    """An ILI9341 panel on a bus and a D/C line, with optional RESET line and backlight.

    Constructors do no I/O: ``open()`` (or ``with``) opens the lines, pulses RESET and runs the
    init sequence; ``close()`` turns the backlight off and releases everything.

    Args:
        bus: the SPI bus (``SpidevBus`` on a Pi, over ``sim.FakeSpiDev`` in the simulator).
        dc: the D/C line (low = command, high = data).
        reset: the RESET line, or None when it is tied high (SWRESET is used alone then).
        backlight: the backlight, or None when it is always on.
        rotation: the content's rotation on the glass.
        bgr: the module has a BGR colour filter (most ILI9341 modules).
        invert: send INVON (IPS modules need it for correct colours).
        sleep: how ``Delay`` ops and the reset waits are performed (inject a fake clock's).
        shadow: keep a copy of what was sent, for :meth:`shadow_image`; or the buffer to keep
            it in (``240 * 320 * 2`` uint8 bytes, e.g. shared memory read by another process
            with :func:`render_shadow`).
        brightness: backlight level after ``open()``, percent.
    """

    def __init__(
        self,
        bus: SpiBus,
        dc: OutputPin,
        reset: OutputPin | None = None,
        backlight: Backlight | None = None,
        *,
        rotation: Rotation = Rotation.R0,
        bgr: bool = True,
        invert: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        shadow: bool | U8 = False,
        brightness: int = 100,
    ) -> None:
        self.bus = bus
        self.dc = dc
        self.reset = reset
        self.backlight = backlight
        self._rotation = Rotation(rotation)
        self.bgr = bgr
        self._invert = invert
        self._sleep = sleep
        self._brightness = check_level(brightness)
        self._lock = threading.RLock()  # one bus conversation at a time
        self._shadow_lock = threading.Lock()  # separate, so a hung bus never blocks a reader
        self._dc_level: bool | None = None
        self._open = False
        self._asleep = False
        self._on = True
        self._shadow: U8 | None = None
        if isinstance(shadow, np.ndarray):
            if shadow.size != PANEL_HEIGHT * PANEL_WIDTH * 2 or shadow.dtype != np.uint8:
                raise ValueError(f"a shadow buffer is {PANEL_HEIGHT * PANEL_WIDTH * 2} uint8 bytes")
            self._shadow = shadow.reshape(PANEL_HEIGHT, PANEL_WIDTH, 2)
        elif shadow:
            self._shadow = np.zeros((PANEL_HEIGHT, PANEL_WIDTH, 2), np.uint8)

    # --- state -------------------------------------------------------------------------

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the drawing area at the current rotation."""
        return ili9341.logical_size(self._rotation)

    @property
    def rotation(self) -> Rotation:
        return self._rotation

    @property
    def brightness(self) -> int:
        return self._brightness

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def asleep(self) -> bool:
        return self._asleep

    @property
    def is_on(self) -> bool:
        """False after ``display_off()`` (memory is kept, the glass is blank)."""
        return self._on

    @property
    def inverted(self) -> bool:
        return self._invert

    @property
    def stats(self) -> BusStats:
        """Transfers and bytes the bus has sent, commands included (a snapshot)."""
        return self.bus.stats.copy()

    def link(self) -> SpiLink:
        """The bus's clocks and fault state (see :class:`~libloop.transport.base.SpiLink`)."""
        return self.bus.link()

    def __repr__(self) -> str:
        w, h = self.size
        return f"<Display {w}x{h} {self._rotation.name} {'open' if self._open else 'closed'} on {self.bus!r}>"

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> Display:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Open bus and lines, pulse RESET, initialise the panel and light the backlight.

        Raises:
            LoopError: a subclass from the transport (missing device, permission, extra, I/O).
        """
        with self._lock:
            if self._open:
                return
            opened: list[SpiBus | OutputPin | Backlight] = []
            try:
                for part in (self.bus, self.dc, self.reset, self.backlight):
                    if part is not None:
                        part.open()
                        opened.append(part)
                self._open = True
                self._initialise()
            except BaseException:
                self._open = False
                for part in reversed(opened):
                    part.close()
                raise

    def close(self) -> None:
        """Backlight off, then release lines and bus; safe to call twice."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            try:
                if self.backlight is not None:
                    self.backlight.set_level(0)
            finally:
                for part in (self.backlight, self.reset, self.dc, self.bus):
                    if part is not None:
                        part.close()

    def reinit(self) -> None:
        """Reset and initialise again after a fault, restoring rotation, inversion, on/off and brightness.

        Frame memory survives a reset on the chip, but a fault may have garbled it: redraw after this.
        """
        with self._lock:
            self._initialise()

    def _initialise(self) -> None:
        self._dc_level = None
        self._asleep = False
        self.hardware_reset()
        self.send(ili9341.init_sequence(self._rotation, self.bgr, self._invert))
        if not self._on:
            self.send(ili9341.display_off())
        if self.backlight is not None:
            self.backlight.set_level(self._brightness)

    def hardware_reset(self) -> None:
        """Pulse RESET low (20 µs) and wait 120 ms; without a RESET line, do nothing."""
        if self.reset is None:
            return
        with self._lock:
            self.reset.set(True)
            self.reset.set(False)
            self._sleep(RESET_PULSE_S)
            self.reset.set(True)
            self._sleep(RESET_DELAY_S)

    # --- the loop ------------------------------------------------------------------------

    def send(self, ops: Iterable[Op]) -> None:
        """Perform encoder ops: transfers go to the bus with D/C set, delays are slept.

        When the bus cuts a transfer short and changes how it sends (:class:`TransferCut`, the
        Pi 5's DMA fault), part of the data may have reached the panel; the ops are sent once
        more from the start, which every encoder sequence allows (each one sets its window).
        """
        batch = ops if isinstance(ops, list) else list(ops)
        with self._lock:
            try:
                self._perform(batch)
            except TransferCut as exc:
                log.warning("resending an operation the SPI bus cut short: %s", exc)
                self._dc_level = None
                self._perform(batch)

    def _perform(self, ops: list[Op]) -> None:
        with self._lock:
            write = self.bus.write
            for op in ops:
                if isinstance(op, Transfer):
                    if op.dc != self._dc_level:
                        self._dc_level = None  # unknown until the line has really changed
                        self.dc.set(op.dc)
                        self._dc_level = op.dc
                    write(op.data)
                elif isinstance(op, Delay):
                    self._sleep(op.seconds)
                else:
                    raise TypeError(f"not an encoder op: {op!r}")

    # --- drawing -------------------------------------------------------------------------

    def blit(self, x0: int, y0: int, x1: int, y1: int, data: Buffer) -> None:
        """Write RGB565 big-endian pixels to the inclusive window (x0, y0)-(x1, y1), without copying.

        Raises:
            ValueError: the window is outside the drawing area or ``data`` has the wrong length.
        """
        with self._lock:
            ops = ili9341.blit(x0, y0, x1, y1, data, self._rotation)
            self.send(ops)
            if self._shadow is not None:
                with self._shadow_lock:
                    self._shade(x0, y0, x1, y1, data)

    def read_memory(self, x0: int, y0: int, x1: int, y1: int) -> bytes:
        """Read a window of frame memory back over MISO: ``3 * w * h`` bytes, R, G, B a pixel.

        Each byte holds a 6-bit level in its high bits (RGB666, whatever COLMOD is). The read
        runs in chip-select frames that each carry their read command (RAMRD, then RAMRDC), at
        the bus's read clock, with D/C low throughout.

        Raises:
            ValueError: the window is outside the drawing area.
            TransportError: the bus failed.
        """
        with self._lock:
            window = ili9341.set_window(x0, y0, x1, y1, self._rotation)
            for attempt in (1, 2):
                try:
                    self.send(window)
                    self._set_dc(False)
                    out = bytearray()
                    for command, n in ili9341.read_frames(x0, y0, x1, y1, self.bus.max_read):
                        out += self.bus.read(command, n)[1:]  # the dummy byte first
                    return bytes(out)
                except TransferCut:
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")  # pragma: no cover

    def _set_dc(self, level: bool) -> None:
        if level != self._dc_level:
            self._dc_level = None
            self.dc.set(level)
            self._dc_level = level

    def show_frame(self, data: Buffer) -> None:
        """Write a whole frame (``width * height * 2`` bytes of RGB565 big-endian)."""
        w, h = self.size
        self.blit(0, 0, w - 1, h - 1, data)

    def fill(self, rgb: tuple[int, int, int]) -> None:
        """Paint the whole panel one colour (given as 8-bit RGB, shown as its RGB565 level)."""
        if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
            raise ValueError(f"a colour is three values 0..255, got {rgb!r}")
        pixel = rgb888_to_rgb565(np.array([[rgb]], dtype=np.uint8)).tobytes()
        w, h = self.size
        self.show_frame(pixel * (w * h))

    def show_image(self, image: Image.Image, *, fit: Fit = "contain", dither: bool = False) -> None:
        """Show a PIL image on the whole panel: EXIF-rotated, fitted, converted to RGB565.

        Args:
            image: any PIL image (converted to RGB; transparency shows black).
            fit: ``contain`` (letterbox in black), ``cover`` (crop to fill) or ``stretch``.
            dither: ordered dithering when reducing to RGB565.
        """
        size = self.size
        img = ImageOps.exif_transpose(image) or image
        if img.mode != "RGB":
            background = Image.new("RGB", img.size)
            rgba = img.convert("RGBA")
            background.paste(rgba, mask=rgba.getchannel("A"))
            img = background
        if fit == "contain":
            img = ImageOps.pad(img, size, Image.Resampling.BILINEAR, color=(0, 0, 0))
        elif fit == "cover":
            img = ImageOps.fit(img, size, Image.Resampling.BILINEAR)
        elif fit == "stretch":
            img = img.resize(size, Image.Resampling.BILINEAR)
        else:
            raise ValueError(f"fit must be contain, cover or stretch, not {fit!r}")
        self.show_frame(rgb888_to_rgb565(np.asarray(img, dtype=np.uint8), dither=dither).data)

    # --- panel state ---------------------------------------------------------------------

    def set_rotation(self, rotation: Rotation) -> None:
        """Draw at another rotation from now on (what is on the glass stays where it is)."""
        with self._lock:
            rotation = Rotation(rotation)
            self.send(ili9341.set_rotation(rotation, self.bgr))
            self._rotation = rotation

    def sleep(self) -> None:
        """Backlight off and SLPIN (the controller's lowest power; memory is kept)."""
        with self._lock:
            if self._asleep:
                return
            if self.backlight is not None:
                self.backlight.set_level(0)
            self.send(ili9341.sleep())
            self._asleep = True

    def wake(self) -> None:
        """SLPOUT (with its 120 ms) and the backlight back to its level."""
        with self._lock:
            if not self._asleep:
                return
            self.send(ili9341.wake())
            self._asleep = False
            if self.backlight is not None:
                self.backlight.set_level(self._brightness)

    def set_brightness(self, percent: int) -> None:
        """Backlight level 0..100 (on/off backlights: on above 0); applied at wake if asleep."""
        with self._lock:
            self._brightness = check_level(percent)
            if self.backlight is not None and self._open and not self._asleep:
                self.backlight.set_level(percent)

    def display_on(self) -> None:
        """DISPON: show frame memory."""
        with self._lock:
            self.send(ili9341.display_on())
            self._on = True

    def display_off(self) -> None:
        """DISPOFF: blank the glass; memory is kept and can still be drawn into."""
        with self._lock:
            self.send(ili9341.display_off())
            self._on = False

    def invert(self, on: bool) -> None:
        """INVON/INVOFF: invert every colour shown."""
        with self._lock:
            self.send(ili9341.invert(on))
            self._invert = on

    # --- shadow --------------------------------------------------------------------------

    def _shade(self, x0: int, y0: int, x1: int, y1: int, data: Buffer) -> None:
        """Copy a blit into the glass-oriented shadow (rows and columns as seen at R0).

        Pixels are moved as whole 16-bit values (a native-endian view of the same bytes), which
        makes the transposing copies of 90° and 270° several times cheaper than moving byte pairs.
        """
        assert self._shadow is not None
        w, h = x1 - x0 + 1, y1 - y0 + 1
        block = np.frombuffer(byte_view(data), dtype=np.uint16).reshape(h, w)
        glass = self._shadow.view(np.uint16).reshape(PANEL_HEIGHT, PANEL_WIDTH)
        lw, lh = self.size
        r = self._rotation
        if r is Rotation.R0:
            glass[y0 : y1 + 1, x0 : x1 + 1] = block
        elif r is Rotation.R90:  # logical (x, y) is glass (row x, column lh-1-y)
            glass[x0 : x1 + 1, lh - 1 - y1 : lh - y0] = np.rot90(block, -1)
        elif r is Rotation.R180:
            glass[lh - 1 - y1 : lh - y0, lw - 1 - x1 : lw - x0] = block[::-1, ::-1]
        else:  # R270: logical (x, y) is glass (row lw-1-x, column y)
            glass[lw - 1 - x1 : lw - x0, y0 : y1 + 1] = np.rot90(block, 1)

    def shadow_image(self, rotation: Rotation | None = None) -> Image.Image | None:
        """What was last drawn, as an RGB image turned upright for ``rotation`` (default: current).

        Shows frame memory as sent (RGB565 levels), ignoring backlight, sleep and inversion.
        None when the display was made without ``shadow=True``.
        """
        if self._shadow is None:
            return None
        with self._shadow_lock:
            raw = self._shadow.copy()
        return render_shadow(raw, self._rotation if rotation is None else rotation)

    def shadow_state(self) -> tuple[int, ...]:
        """The drawing rotation, whether the panel is open, asleep and on, and the brightness."""
        return (int(self._rotation), int(self._open), int(self._asleep), int(self._on), self._brightness)


def render_shadow(raw: U8, rotation: Rotation) -> Image.Image:
    """A shadow copy (glass-oriented RGB565, ``240 * 320 * 2`` bytes) as an upright RGB image."""
    rgb = rgb565_to_rgb888(raw.reshape(PANEL_HEIGHT, PANEL_WIDTH, 2), PANEL_WIDTH, PANEL_HEIGHT)
    turns = -_TO_GLASS[Rotation(rotation)]
    return Image.fromarray(np.ascontiguousarray(np.rot90(rgb, turns)), "RGB")
