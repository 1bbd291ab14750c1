"""A fake ``spidev.SpiDev`` that fails exactly like py-spidev over the Linux spidev driver.

Two layers are modelled, because the real failures come from both:

* **The Python module** (py-spidev 3.8, ``spidev_module.c``, checked against the installed C
  extension): ``writebytes2`` takes a buffer without copying (an empty buffer is a silent
  no-op) or any iterable of ints, and splits it into blocks of the module's cached ``bufsiz``
  (capped at 65535); ``xfer3`` splits the same way, one ``SPI_IOC_MESSAGE`` (one chip-select
  frame) per block. ``writebytes``/``xfer``/``xfer2`` take a sequence of at most 4096 ints
  (``SPIDEV_MAXPATH``) whatever ``bufsiz`` says, with the length held in 16 bits (65536 items
  look empty, 65537 send one byte), and ``readbytes`` silently clamps to 1..4096; wrong types
  and empty lists raise ``TypeError`` with the module's own messages. ``open`` leaves its file
  descriptor open when an ioctl after the ``open(2)`` fails (the object keeps it until
  ``close``). The mode flags (``cshigh``, ``lsbfirst``, ``threewire``, ``loop``, ``no_cs``)
  each rewrite the whole mode byte, and ``mode`` only changes CPOL/CPHA.
* **The kernel driver** (``drivers/spi/spidev.c``, ``drivers/spi/spi.c``): each
  ``write``/``read``/``SPI_IOC_MESSAGE`` longer than ``bufsiz`` fails with ``OSError(EMSGSIZE,
  "Message too long")``; a closed device is ``EBADF``; a missing node is ``FileNotFoundError``,
  a forbidden one ``PermissionError``. The spi_device keeps its mode between opens, so flags a
  previous program set are still there (``kernel_mode``); mode bits the controller does not
  support are refused with ``EINVAL`` (``spi_setup``). Each transfer runs at the controller's
  real rate for the requested clock (``libloop.transport.spiclock``).
* **The wire**: chip select goes low for each kernel transfer and high after it (inverted with
  ``cshigh``, untouched with ``no_cs``); ``lsbfirst`` reverses every byte's bits and
  ``threewire`` leaves MISO unread. A sink with ``csx`` and ``exchange`` (the panel model)
  sees those frames; a plain sink gets ``write(data, dc)`` and, if it has one, ``read(n)``.

Each kernel-level transfer is forwarded, with the level of the D/C pin at that moment, to a
sink (the panel model), counted, timed and written to a transcript. Wire time is
``nbytes * 8 / clock + overhead_s`` per transfer; the default overhead, 15 µs, is an
estimate of a Pi 4's cost per spidev ``write(2)`` (syscall, message setup, DMA start and
chip-select gaps). With a ``FakeClock`` the clock is advanced by that time, so a test sees the
timing a real bus would impose without sleeping.

Faults on demand: ``OSError(EIO)`` on the n-th transfer or at random (seeded), a transfer that
hangs until ``release()`` (it blocks on an ``Event``, for watchdog tests), transfers that
are silently dropped (the host believes they were sent; the panel never sees them), and the
Pi 5's DMA failure (raspberrypi/linux issues 5696, 5865, 6020): every transfer longer than
64 bytes (the RP1 SSI's FIFO; longer ones use DMA) ends in ``ETIMEDOUT`` after its first
64 bytes went out, until ``clear_faults()``.
"""

from __future__ import annotations

import errno
import os
import random
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

from libloop.clock import Clock, FakeClock
from libloop.transport.spiclock import SpiController, controller_for_model

__all__ = [
    "DEFAULT_OVERHEAD_S",
    "SPI_3WIRE",
    "SPI_CPHA",
    "SPI_CPOL",
    "SPI_CS_HIGH",
    "SPI_LOOP",
    "SPI_LSB_FIRST",
    "SPI_NO_CS",
    "FakeSpiDev",
    "SpiFrameSink",
    "SpiSink",
    "TranscriptEntry",
]

#: Modelled host cost per kernel transfer (see the module docstring).
DEFAULT_OVERHEAD_S = 15e-6
#: py-spidev caps its block size at this, whatever bufsiz says.
MODULE_MAX_BLOCK = 65535
#: py-spidev's fixed buffer for writebytes/xfer/xfer2/readbytes (SPIDEV_MAXPATH).
XFER_MAX = 4096
#: The clock a freshly opened spidev node reports (the Pi device tree's spi-max-frequency).
DEFAULT_MAX_SPEED_HZ = 125_000_000
#: The board the fake's controller is modelled on unless told otherwise.
DEFAULT_MODEL = "Raspberry Pi 4 Model B Rev 1.4"

# Mode bits (include/uapi/linux/spi/spi.h).
SPI_CPHA, SPI_CPOL, SPI_CS_HIGH, SPI_LSB_FIRST = 0x01, 0x02, 0x04, 0x08
SPI_3WIRE, SPI_LOOP, SPI_NO_CS = 0x10, 0x20, 0x40
#: What each controller driver accepts (its ``mode_bits``); anything else is EINVAL.
MODE_BITS = {
    "spi-bcm2835": SPI_CPOL | SPI_CPHA | SPI_CS_HIGH | SPI_NO_CS | SPI_3WIRE,
    "spi-dw": SPI_CPOL | SPI_CPHA | SPI_LOOP | SPI_CS_HIGH | SPI_NO_CS,
}
#: The Pi 5's DMA failure: transfers longer than the RP1 SSI FIFO.
PI5_DMA_LIMIT = 64
DEFAULT_CONTROLLER = controller_for_model(DEFAULT_MODEL)
_REVERSED = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))

_C_LONG_MIN = -(2**63)
_C_LONG_MAX = 2**63 - 1


class SpiSink(Protocol):
    """What sits at the other end of the wire: ``write(data, dc)`` per transfer."""

    def write(self, data: bytes, dc: bool) -> None: ...


@runtime_checkable
class SpiFrameSink(Protocol):
    """A sink that sees chip select, the clock and full-duplex frames (the panel model)."""

    sclk_hz: float | None

    def write(self, data: bytes, dc: bool) -> None: ...

    def csx(self, high: bool) -> None: ...

    def exchange(self, data: bytes, dc: bool) -> bytes: ...


class _LevelSource(Protocol):
    value: bool


class TranscriptEntry(NamedTuple):
    """One kernel-level transfer as it went over the (fake) wire."""

    t: float  #: clock time when the transfer started
    dc: bool  #: D/C level during the transfer (True = data)
    nbytes: int
    kind: str  #: "write", "xfer" (full duplex) or "read"
    dropped: bool = False
    data: bytes | None = None  #: the payload, when ``record_payloads`` is on
    hz: int = 0  #: the clock on the wire (the controller's rate for the requested one)


def _bool_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"The {name} attribute must be boolean")
    return value


@dataclass
class _Fault:
    kind: str  # "error", "hang", "drop"
    errno_: int = errno.EIO


def _os_error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def _fast_sequence(obj: object) -> list[Any] | tuple[Any, ...]:
    """What ``PySequence_Fast(obj, "expected a sequence")`` does."""
    if isinstance(obj, list | tuple):
        return obj
    try:
        items: list[Any] = list(obj)  # type: ignore[call-overload]
        return items
    except TypeError:
        raise TypeError("expected a sequence") from None


def _u8(value: object) -> int:
    """``(__u8)PyLong_AS_LONG(value)`` with the module's error for a non-int."""
    if not isinstance(value, int):
        raise TypeError(f"Non-Int/Long value in arguments: {id(value) & 0xFFFFFFFF:x}.")
    if not _C_LONG_MIN <= value <= _C_LONG_MAX:
        raise OverflowError("Python int too large to convert to C long")
    return value & 0xFF


class FakeSpiDev:
    """The ``spidev.SpiDev`` API over a sink, with the driver's limits and failure modes.

    Args:
        sink: receives every transfer that is not dropped, as ``sink.write(data, dc)``. If it
            also has ``read(n) -> bytes`` (the panel model does), full-duplex transfers and
            reads return its answer as MISO instead of writing; otherwise reads return zeros.
        dc: the D/C line (anything with a ``value``); without one D/C reads as high (data).
        bufsiz: the kernel driver's ``bufsiz`` parameter.
        module_block_size: py-spidev's cached view of bufsiz (default ``min(bufsiz, 65535)``);
            set it differently to model bufsiz changing after the module read it.
        clock: timestamps the transcript; a ``FakeClock`` is also advanced by the wire time.
        overhead_s: modelled fixed cost per transfer.
        record_payloads: keep a copy of every payload in the transcript (costs memory).
        transcript_limit: keep only the newest this-many transcript entries (None: all).
        present: False models a missing ``/dev/spidevX.Y`` (``open`` raises FileNotFoundError).
        permitted: False models a node this user may not open (``PermissionError``).
        pace: with a real clock, each transfer really takes its modelled wire time (the caller
            sleeps through it, releasing the GIL, as a thread blocked in the spidev ioctl does).
        spidev_node: False models a node that is not a spidev device: ``open`` fails with
            ``ENOTTY`` at its first ioctl and, like the module, keeps the descriptor open.
        controller: the SPI controller whose divider sets the real clock (default: a Pi 4's);
            None passes the requested clock through.
        kernel_mode: the spi_device's mode byte as a previous program left it.
        miso: False models a module whose SDO is not wired to the Pi's MISO: reads give zeros.
    """

    def __init__(
        self,
        sink: SpiSink | None = None,
        dc: _LevelSource | None = None,
        *,
        bufsiz: int = 4096,
        module_block_size: int | None = None,
        clock: Clock | None = None,
        overhead_s: float = DEFAULT_OVERHEAD_S,
        record_payloads: bool = False,
        transcript_limit: int | None = 100_000,
        present: bool = True,
        permitted: bool = True,
        pace: bool = False,
        spidev_node: bool = True,
        controller: SpiController | None = DEFAULT_CONTROLLER,
        kernel_mode: int = 0,
        miso: bool = True,
    ) -> None:
        if bufsiz < 1:
            raise ValueError(f"bufsiz must be at least 1, got {bufsiz}")
        self.sink = sink
        self.dc = dc
        self.bufsiz = bufsiz
        self.module_block_size = module_block_size or min(bufsiz, MODULE_MAX_BLOCK)
        self.clock: Clock = clock if clock is not None else FakeClock(0.0)
        self.overhead_s = overhead_s
        self.record_payloads = record_payloads
        self.transcript: deque[TranscriptEntry] = deque(maxlen=transcript_limit)
        self.present = present
        self.permitted = permitted
        self.pace = pace
        self.spidev_node = spidev_node
        self.controller = controller
        #: The spi_device's mode: it outlives every open, as in the kernel.
        self.kernel_mode = kernel_mode & 0xFF
        self.miso = miso
        self.path: str | None = None
        # Counters over completed kernel transfers (dropped ones included: the host saw success).
        self.transfers = 0
        self.bytes = 0
        self.dropped = 0
        self.errors = 0
        self.wire_seconds = 0.0
        self.opens = 0
        #: Set while a transfer is blocked by ``hang_transfer``.
        self.hung = threading.Event()
        self._release = threading.Event()
        self._attempts = 0
        self._faults: dict[int, _Fault] = {}
        self._error_probability = 0.0
        self._drop_probability = 0.0
        self._random_errno = errno.EIO
        self._rng = random.Random(0)
        self._dma_limit: int | None = None
        self._fd = -1
        self._read0 = False
        self._mode = 0
        self._bits_per_word = 0
        self._max_speed_hz = 0

    def __repr__(self) -> str:
        return f"<FakeSpiDev {self.path or 'closed'} bufsiz={self.bufsiz} transfers={self.transfers}>"

    # --- fault injection ------------------------------------------------------------------

    def fail_transfer(self, nth: int = 1, *, errno_: int = errno.EIO) -> None:
        """The ``nth`` kernel transfer from now raises ``OSError(errno_)``."""
        self._schedule(nth, _Fault("error", errno_))

    def hang_transfer(self, nth: int = 1) -> None:
        """The ``nth`` kernel transfer from now blocks until ``release()``; ``hung`` is set meanwhile."""
        self._release.clear()
        self._schedule(nth, _Fault("hang"))

    def drop_transfer(self, nth: int = 1) -> None:
        """The ``nth`` kernel transfer from now succeeds but never reaches the sink."""
        self._schedule(nth, _Fault("drop"))

    def fail_randomly(self, probability: float, *, seed: int = 0, errno_: int = errno.EIO) -> None:
        """Each transfer fails with ``OSError(errno_)`` with this probability (seeded, repeatable)."""
        self._error_probability = self._check_probability(probability)
        self._random_errno = errno_
        self._rng = random.Random(seed)

    def drop_randomly(self, probability: float, *, seed: int = 0) -> None:
        """Each transfer is silently dropped with this probability (seeded, repeatable)."""
        self._drop_probability = self._check_probability(probability)
        self._rng = random.Random(seed)

    def time_out_long_transfers(self, limit: int = PI5_DMA_LIMIT) -> None:
        """The Pi 5's DMA failure: every transfer over ``limit`` bytes sends ``limit`` and then fails with ETIMEDOUT."""
        if limit < 1:
            raise ValueError("the limit is at least one byte")
        self._dma_limit = limit

    def release(self) -> None:
        """Let a hung transfer finish."""
        self._release.set()

    def clear_faults(self) -> None:
        """Forget every scheduled fault, end the DMA failure and release a hung transfer."""
        self._faults.clear()
        self._error_probability = self._drop_probability = 0.0
        self._dma_limit = None
        self._release.set()

    def _schedule(self, nth: int, fault: _Fault) -> None:
        if nth < 1:
            raise ValueError("nth counts transfers from 1")
        self._faults[self._attempts + nth] = fault

    @staticmethod
    def _check_probability(p: float) -> float:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"a probability is between 0 and 1, got {p}")
        return p

    # --- open/close and settings, as the C module does them ---------------------------------

    def open(self, bus: int, device: int) -> None:
        path = f"/dev/spidev{bus}.{device}"
        if not self.present:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
        if not self.permitted:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        self.path = path
        self._fd = 3
        self.opens += 1
        if not self.spidev_node:
            raise _os_error(errno.ENOTTY)  # SPI_IOC_RD_MODE on a non-spidev node; fd stays open
        self._mode = self.kernel_mode
        self._bits_per_word = 8
        self._max_speed_hz = DEFAULT_MAX_SPEED_HZ

    def close(self) -> None:
        self._fd = -1
        self._mode = self._bits_per_word = self._max_speed_hz = 0
        self.path = None

    def fileno(self) -> int:
        return self._fd

    def __enter__(self) -> FakeSpiDev:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._fd < 0

    @property
    def mode(self) -> int:
        return self._mode & 0x3

    @mode.setter
    def mode(self, value: int) -> None:
        if not isinstance(value, int):
            raise TypeError("The mode attribute must be an integer")
        mode = value & 0xFF
        if mode > 3:
            raise TypeError("The mode attribute must be an integerbetween 0 and 3.")
        self._set_mode((self._mode & ~0x3) | mode)

    def _set_mode(self, mode: int) -> None:
        """SPI_IOC_WR_MODE: the kernel keeps it in the spi_device and checks the controller's bits."""
        self._ioctl()
        supported = MODE_BITS.get(self.controller.driver, 0xFF) if self.controller else 0xFF
        if mode & ~supported & 0xFF:
            raise _os_error(errno.EINVAL)
        self._mode = self.kernel_mode = mode & 0xFF

    def _flag(self, bit: int, name: str, value: object) -> None:
        on = _bool_flag(name, value)
        self._set_mode(self._mode | bit if on else self._mode & ~bit)

    @property
    def cshigh(self) -> bool:
        return bool(self._mode & SPI_CS_HIGH)

    @cshigh.setter
    def cshigh(self, value: bool) -> None:
        self._flag(SPI_CS_HIGH, "cshigh", value)

    @property
    def lsbfirst(self) -> bool:
        return bool(self._mode & SPI_LSB_FIRST)

    @lsbfirst.setter
    def lsbfirst(self, value: bool) -> None:
        self._flag(SPI_LSB_FIRST, "lsbfirst", value)

    @property
    def threewire(self) -> bool:
        return bool(self._mode & SPI_3WIRE)

    @threewire.setter
    def threewire(self, value: bool) -> None:
        self._flag(SPI_3WIRE, "threewire", value)

    @property
    def loop(self) -> bool:
        return bool(self._mode & SPI_LOOP)

    @loop.setter
    def loop(self, value: bool) -> None:
        self._flag(SPI_LOOP, "loop", value)

    @property
    def no_cs(self) -> bool:
        return bool(self._mode & SPI_NO_CS)

    @no_cs.setter
    def no_cs(self, value: bool) -> None:
        self._flag(SPI_NO_CS, "no_cs", value)

    @property
    def read0(self) -> bool:
        return self._read0

    @read0.setter
    def read0(self, value: bool) -> None:
        self._read0 = _bool_flag("read0", value)

    def effective_hz(self, speed_hz: int = 0) -> int:
        """The clock a transfer at ``speed_hz`` (0: the device's) runs at on the wire."""
        requested = speed_hz or self._max_speed_hz or DEFAULT_MAX_SPEED_HZ
        return self.controller.effective_hz(requested) if self.controller else requested

    @property
    def bits_per_word(self) -> int:
        return self._bits_per_word

    @bits_per_word.setter
    def bits_per_word(self, value: int) -> None:
        if not isinstance(value, int):
            raise TypeError("The bits_per_word attribute must be an integer")
        bits = value & 0xFF
        if not 8 <= bits <= 32:
            raise TypeError("invalid bits_per_word (8 to 32)")
        if bits != self._bits_per_word:
            self._ioctl()
            self._bits_per_word = bits

    @property
    def max_speed_hz(self) -> int:
        return self._max_speed_hz

    @max_speed_hz.setter
    def max_speed_hz(self, value: int) -> None:
        if not isinstance(value, int):
            raise TypeError("The max_speed_hz attribute must be an integer")
        speed = value & 0xFFFFFFFF
        if speed != self._max_speed_hz:
            self._ioctl()
            self._max_speed_hz = speed

    def _ioctl(self) -> None:
        if self._fd < 0:
            raise _os_error(errno.EBADF)

    # --- transfers --------------------------------------------------------------------------

    def writebytes2(self, values: object) -> None:
        """Zero-copy write of a buffer (or of an iterable of ints), split into module blocks."""
        try:
            view = memoryview(values)  # type: ignore[arg-type]
        except TypeError:
            view = None
        if view is not None:
            if not view.c_contiguous:
                # PyObject_GetBuffer(PyBUF_SIMPLE) fails and the module falls into its sequence
                # path with that error still set, which CPython reports as a SystemError.
                raise SystemError(
                    "<built-in method __length_hint__ of iterator object> returned a result with an exception set"
                )
            flat = view.cast("B") if (view.format != "B" or view.ndim != 1) else view
            for start in range(0, len(flat), self.module_block_size):
                self._transfer("write", flat[start : start + self.module_block_size])
            return
        seq = _fast_sequence(values)
        if len(seq) <= 0:
            raise TypeError("Empty argument list.")
        block = self.module_block_size
        for start in range(0, len(seq), block):
            chunk = bytes(_u8(v) for v in seq[start : start + block])
            self._transfer("write", chunk)

    def writebytes(self, values: object) -> None:
        """Write at most 4096 ints (copied element by element)."""
        seq = self._checked_list(values)
        self._transfer("write", bytes(_u8(v) for v in seq))

    def xfer(self, values: object, speed_hz: int = 0, delay_usecs: int = 0, bits_per_word: int = 0) -> Any:
        """Full-duplex transfer of at most 4096 bytes; returns what came back on MISO."""
        return self.xfer2(values, speed_hz, delay_usecs, bits_per_word)

    def xfer2(self, values: object, speed_hz: int = 0, delay_usecs: int = 0, bits_per_word: int = 0) -> Any:
        """Full-duplex transfer of at most 4096 bytes (whatever bufsiz is), one chip-select frame.

        Like the C module, a list argument is overwritten in place with the received bytes
        and returned; a tuple gives a tuple; anything else a new list.
        """
        seq = self._checked_list(values)
        tx = bytes(_u8(v) for v in seq)
        rx = self._transfer("xfer", tx, speed_hz=speed_hz, delay_s=delay_usecs / 1e6)
        if isinstance(values, list):
            values[: len(rx)] = list(rx)
            return values
        if isinstance(values, tuple):
            return tuple(rx) + tuple(seq[len(rx) :])
        return list(rx) + list(seq[len(rx) :])

    def xfer3(
        self, values: object, speed_hz: int = 0, delay_usecs: int = 0, bits_per_word: int = 0
    ) -> tuple[int, ...]:
        """Full-duplex transfer of any length, split into module blocks; returns a tuple."""
        seq = _fast_sequence(values)
        if len(seq) <= 0:
            raise TypeError("Empty argument list.")
        out: list[int] = []
        block = min(self.module_block_size, len(seq))
        for start in range(0, len(seq), block):
            tx = bytes(_u8(v) for v in seq[start : start + block])
            out += self._transfer("xfer", tx, speed_hz=speed_hz, delay_s=delay_usecs / 1e6)
        return tuple(out)

    def readbytes(self, length: int) -> list[int]:
        """Half-duplex read of ``length`` bytes, clamped to 1..4096 as the C module does."""
        if not isinstance(length, int):
            raise TypeError(f"'{type(length).__name__}' object cannot be interpreted as an integer")
        n = min(max(length, 1), XFER_MAX)
        return list(self._transfer("read", bytes(n)))

    def _checked_list(self, values: object) -> list[Any] | tuple[Any, ...]:
        seq = _fast_sequence(values)
        n = len(seq) & 0xFFFF  # the C code keeps the length in a uint16_t
        if n == 0:
            raise TypeError("Empty argument list.")
        if n > XFER_MAX:
            raise OverflowError(f"Argument list size exceeds {XFER_MAX} bytes.")
        return seq[:n]

    # --- the kernel side --------------------------------------------------------------------

    def _transfer(
        self, kind: str, tx: bytes | memoryview, *, speed_hz: int = 0, delay_s: float = 0.0
    ) -> bytes:
        """One write(2)/read(2)/SPI_IOC_MESSAGE: limits, faults, timing, the wire, the transcript."""
        if self._fd < 0:
            raise _os_error(errno.EBADF)
        n = len(tx)
        if n > self.bufsiz:
            raise _os_error(errno.EMSGSIZE)
        self._attempts += 1
        fault = self._faults.pop(self._attempts, None)
        if fault is not None and fault.kind == "hang":
            self.hung.set()
            try:
                self._release.wait()
            finally:
                self.hung.clear()
        if fault is not None and fault.kind == "error":
            self.errors += 1
            raise _os_error(fault.errno_)
        if self._error_probability and self._rng.random() < self._error_probability:
            self.errors += 1
            raise _os_error(self._random_errno)
        hz = self.effective_hz(speed_hz)
        limit = self._dma_limit
        if limit is not None and n > limit:
            # The FIFO's worth goes out, then the DMA completion never comes (dw_spi_dma_wait).
            self._wire(kind, tx[:limit], hz, dropped=False)
            wait = n * 8 / hz * 2 + 0.2
            self.wire_seconds += wait
            if isinstance(self.clock, FakeClock):
                self.clock.advance(wait)
            self.errors += 1
            raise _os_error(errno.ETIMEDOUT)
        dropped = (fault is not None and fault.kind == "drop") or (
            self._drop_probability > 0 and self._rng.random() < self._drop_probability
        )
        rx = self._wire(kind, tx, hz, dropped=dropped, delay_s=delay_s)
        self.transfers += 1
        self.bytes += n
        self.dropped += dropped
        return rx

    def _wire(
        self, kind: str, tx: bytes | memoryview, hz: int, *, dropped: bool, delay_s: float = 0.0
    ) -> bytes:
        """Chip select, the bytes each way, the wire time and the transcript entry of one transfer."""
        n = len(tx)
        dc = True if self.dc is None else bool(self.dc.value)
        start = self.clock.monotonic()
        seconds = n * 8 / hz + self.overhead_s + delay_s
        self.wire_seconds += seconds
        if isinstance(self.clock, FakeClock):
            self.clock.advance(seconds)
        elif self.pace:
            time.sleep(seconds)
        rx = bytes(n) if kind != "write" else b""
        payload: bytes | None = None
        sink = self.sink
        if sink is not None and not dropped:
            payload = bytes(tx)
            rx = self._deliver(sink, kind, payload, dc, hz)
        if self.record_payloads and payload is None:
            payload = bytes(tx)
        self.transcript.append(
            TranscriptEntry(start, dc, n, kind, dropped, payload if self.record_payloads else None, hz)
        )
        return rx

    def _deliver(self, sink: SpiSink, kind: str, payload: bytes, dc: bool, hz: int) -> bytes:
        n = len(payload)
        mode = self._mode
        wire = payload.translate(_REVERSED) if mode & SPI_LSB_FIRST else payload
        if isinstance(sink, SpiFrameSink):
            sink.sclk_hz = hz
            drives_cs = not mode & SPI_NO_CS
            active_high = bool(mode & SPI_CS_HIGH)
            if drives_cs:
                sink.csx(active_high)  # asserted: low, or high with cshigh
            try:
                if kind == "write":
                    sink.write(wire, dc)
                    return b""
                rx = sink.exchange(wire, dc)
            finally:
                if drives_cs:
                    sink.csx(not active_high)
        elif kind == "write":
            sink.write(wire, dc)
            return b""
        else:
            read = getattr(sink, "read", None)
            if read is None:
                sink.write(wire, dc)
                rx = bytes(n)
            else:
                # While the chip drives MISO it ignores MOSI: the sink answers, nothing is written.
                rx = bytes(read(n))[:n].ljust(n, b"\0")
        if mode & SPI_3WIRE or not self.miso:
            return bytes(n)  # nobody drives the line the controller listens on
        return rx.translate(_REVERSED) if mode & SPI_LSB_FIRST else rx

    # --- helpers for tests -------------------------------------------------------------------

    def sizes(self) -> list[int]:
        """The byte count of every transfer in the transcript, in order."""
        return [e.nbytes for e in self.transcript]

    def payload(self, entries: Iterable[TranscriptEntry] | None = None) -> bytes:
        """The concatenated recorded payloads (needs ``record_payloads``)."""
        entries = self.transcript if entries is None else entries
        return b"".join(e.data or b"" for e in entries)
