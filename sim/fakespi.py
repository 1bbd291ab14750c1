"""A fake ``spidev.SpiDev`` that fails exactly like py-spidev over the Linux spidev driver.

Two layers are modelled, because the real failures come from both:

* **The Python module** (py-spidev 3.8, checked against the installed C extension):
  ``writebytes2`` takes a buffer without copying (an empty buffer is a silent no-op) or any
  iterable of ints, and splits it into blocks of the module's cached ``bufsiz`` (capped at
  65535); ``writebytes``/``xfer``/``xfer2`` take a sequence of at most that many ints, with the
  length held in 16 bits (65536 items look empty, 65537 send one byte); wrong types and empty
  lists raise ``TypeError`` with the module's own messages.
* **The kernel driver**: each ``write``/``read``/``SPI_IOC_MESSAGE`` longer than ``bufsiz``
  fails with ``OSError(EMSGSIZE, "Message too long")``; a closed device is ``EBADF``; a missing
  node is ``FileNotFoundError``, a forbidden one ``PermissionError``.

Each kernel-level transfer is forwarded, with the level of the D/C pin at that moment, to a
sink (the panel model), counted, timed and written to a transcript. Wire time is
``nbytes * 8 / speed_hz + overhead_s`` per transfer; the default overhead, 15 µs, is an
estimate of a Pi 4's cost per spidev ``write(2)`` (syscall, message setup, DMA start and
chip-select gaps). With a ``FakeClock`` the clock is advanced by that time, so a test sees the
timing a real bus would impose without sleeping.

Faults on demand: ``OSError(EIO)`` on the n-th transfer or at random (seeded), a transfer that
hangs until ``release()`` (it blocks on an ``Event``, for watchdog tests), and transfers that
are silently dropped (the host believes they were sent; the panel never sees them).
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
from typing import Any, NamedTuple, Protocol

from libloop.clock import Clock, FakeClock

__all__ = [
    "DEFAULT_OVERHEAD_S",
    "FakeSpiDev",
    "SpiSink",
    "TranscriptEntry",
]

#: Modelled host cost per kernel transfer (see the module docstring).
DEFAULT_OVERHEAD_S = 15e-6
#: py-spidev caps its block size at this, whatever bufsiz says.
MODULE_MAX_BLOCK = 65535
#: The clock a freshly opened spidev node reports (the Pi device tree's spi-max-frequency).
DEFAULT_MAX_SPEED_HZ = 125_000_000

_C_LONG_MIN = -(2**63)
_C_LONG_MAX = 2**63 - 1


class SpiSink(Protocol):
    """What sits at the other end of the wire: ``write(data, dc)`` per transfer."""

    def write(self, data: bytes, dc: bool) -> None: ...


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
        self._fd = -1
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

    def release(self) -> None:
        """Let a hung transfer finish."""
        self._release.set()

    def clear_faults(self) -> None:
        """Forget every scheduled fault and release a hung transfer."""
        self._faults.clear()
        self._error_probability = self._drop_probability = 0.0
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
        self._mode = 0
        self._bits_per_word = 8
        self._max_speed_hz = DEFAULT_MAX_SPEED_HZ
        self.opens += 1

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
        self._ioctl()
        self._mode = (self._mode & ~0x3) | mode

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
        """Write at most one block from a sequence of ints (copied element by element)."""
        seq = self._checked_list(values)
        self._transfer("write", bytes(_u8(v) for v in seq))

    def xfer(self, values: object, speed_hz: int = 0, delay_usecs: int = 0, bits_per_word: int = 0) -> Any:
        """Full-duplex transfer of at most one block; returns what came back on MISO."""
        return self.xfer2(values, speed_hz, delay_usecs, bits_per_word)

    def xfer2(self, values: object, speed_hz: int = 0, delay_usecs: int = 0, bits_per_word: int = 0) -> Any:
        """Full-duplex transfer of at most one block, chip select held throughout.

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
        """Half-duplex read of ``length`` bytes, clamped to 1..block as the C module does."""
        if not isinstance(length, int):
            raise TypeError(f"'{type(length).__name__}' object cannot be interpreted as an integer")
        n = min(max(length, 1), self.module_block_size)
        return list(self._transfer("read", bytes(n)))

    def _checked_list(self, values: object) -> list[Any] | tuple[Any, ...]:
        seq = _fast_sequence(values)
        n = len(seq) & 0xFFFF  # the C code keeps the length in a uint16_t
        if n == 0:
            raise TypeError("Empty argument list.")
        if n > self.module_block_size:
            raise OverflowError(f"Argument list size exceeds {self.module_block_size} bytes.")
        return seq[:n]

    # --- the kernel side --------------------------------------------------------------------

    def _transfer(
        self, kind: str, tx: bytes | memoryview, *, speed_hz: int = 0, delay_s: float = 0.0
    ) -> bytes:
        """One write(2)/read(2)/SPI_IOC_MESSAGE: limits, faults, timing, the sink, the transcript."""
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
        dropped = (fault is not None and fault.kind == "drop") or (
            self._drop_probability > 0 and self._rng.random() < self._drop_probability
        )
        dc = True if self.dc is None else bool(self.dc.value)
        start = self.clock.monotonic()
        seconds = n * 8 / (speed_hz or self._max_speed_hz or DEFAULT_MAX_SPEED_HZ) + self.overhead_s + delay_s
        self.wire_seconds += seconds
        if isinstance(self.clock, FakeClock):
            self.clock.advance(seconds)
        elif self.pace:
            time.sleep(seconds)
        rx = bytes(n) if kind != "write" else b""
        payload: bytes | None = None
        if self.sink is not None and not dropped:
            payload = bytes(tx)
            read = getattr(self.sink, "read", None) if kind != "write" else None
            if read is not None:
                # While the chip drives MISO it ignores MOSI: the sink answers, nothing is written.
                rx = bytes(read(n))[:n].ljust(n, b"\0")
            else:
                self.sink.write(payload, dc)
        if self.record_payloads and payload is None:
            payload = bytes(tx)
        self.transcript.append(
            TranscriptEntry(start, dc, n, kind, dropped, payload if self.record_payloads else None)
        )
        self.transfers += 1
        self.bytes += n
        self.dropped += dropped
        return rx

    # --- helpers for tests -------------------------------------------------------------------

    def sizes(self) -> list[int]:
        """The byte count of every transfer in the transcript, in order."""
        return [e.nbytes for e in self.transcript]

    def payload(self, entries: Iterable[TranscriptEntry] | None = None) -> bytes:
        """The concatenated recorded payloads (needs ``record_payloads``)."""
        entries = self.transcript if entries is None else entries
        return b"".join(e.data or b"" for e in entries)
