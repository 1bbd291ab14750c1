"""The transport interfaces the display is written against, and the byte-view helpers they share.

A transport moves bytes and toggles lines; it knows nothing about the ILI9341. The real
implementations (spidev, libgpiod, sysfs PWM) and the fakes in ``sim`` both satisfy these
protocols, so the display code that runs on a Pi is the code the tests run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from libloop._types import Buffer

__all__ = [
    "Backlight",
    "BusStats",
    "OutputPin",
    "SpiBus",
    "SpiLink",
    "byte_view",
    "split_transfers",
]


@dataclass(slots=True)
class BusStats:
    """What a bus has put on the wire since it was created (commands included).

    Attributes:
        transfers: SPI transfers (chip-select assertions) made.
        bytes: payload bytes sent.
        errors: transfers that failed.
        clock_hz: the clock writes run at on the wire now (0: not known yet).
        degraded: the bus is working around a driver fault with smaller transfers.
    """

    transfers: int = 0
    bytes: int = 0
    errors: int = 0
    clock_hz: int = 0
    degraded: bool = False

    def copy(self) -> BusStats:
        """A snapshot, safe to hand to another thread."""
        return BusStats(self.transfers, self.bytes, self.errors, self.clock_hz, self.degraded)


@dataclass(frozen=True, slots=True)
class SpiLink:
    """How a bus talks to the panel right now, for health reports and ``loop doctor``.

    Attributes:
        requested_hz: the write clock asked for (config ``speed_hz``).
        clock_hz: the write clock the controller makes of it.
        read_clock_hz: the clock reads run at.
        controller: which controller and source clock the figures come from.
        max_transfer: the largest transfer sent now.
        full_transfer: the largest transfer when nothing is wrong (from ``bufsiz``).
        degraded: transfers are cut to ``max_transfer`` to get around a driver fault.
        reason: why, for people (None when not degraded).
        degraded_s: how long it has been degraded.
        retry_in_s: when full-size transfers are tried again.
    """

    requested_hz: int
    clock_hz: int
    read_clock_hz: int
    controller: str
    max_transfer: int
    full_transfer: int
    degraded: bool = False
    reason: str | None = None
    degraded_s: float | None = None
    retry_in_s: float | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "requested_hz": self.requested_hz,
            "clock_hz": self.clock_hz,
            "read_clock_hz": self.read_clock_hz,
            "controller": self.controller,
            "max_transfer": self.max_transfer,
            "full_transfer": self.full_transfer,
            "degraded": self.degraded,
            "reason": self.reason,
            "degraded_s": None if self.degraded_s is None else round(self.degraded_s, 1),
            "retry_in_s": None if self.retry_in_s is None else round(self.retry_in_s, 1),
        }


@runtime_checkable
class SpiBus(Protocol):
    """A write-mostly SPI bus with a per-transfer size limit."""

    stats: BusStats

    @property
    def max_transfer(self) -> int:
        """The largest single transfer, in bytes (from spidev's ``bufsiz``; less while degraded)."""
        ...

    @property
    def max_read(self) -> int:
        """The most bytes one :meth:`read` frame can carry, command included."""
        ...

    def open(self) -> None:
        """Open the device; constructors do no I/O."""
        ...

    def close(self) -> None:
        """Close the device; safe to call twice."""
        ...

    def write(self, data: Buffer) -> None:
        """Send ``data`` (any length, any C-contiguous bytes-like) in transfers of at most ``max_transfer``.

        Never sends an empty transfer and never copies the caller's buffer.
        """
        ...

    def read(self, command: Buffer, n: int) -> bytes:
        """One chip-select frame at the read clock: send ``command``, then clock in ``n`` bytes.

        The ILI9341 ends a read when chip select rises, so the command and its answer must share
        a frame; ``len(command) + n`` is at most :attr:`max_read`.
        """
        ...

    def link(self) -> SpiLink:
        """The clock, transfer size and fault state of the bus now."""
        ...


@runtime_checkable
class OutputPin(Protocol):
    """A digital output line (D/C, RESET, an on/off backlight)."""

    value: bool

    def open(self) -> None:
        """Claim the line and drive its initial level."""
        ...

    def close(self) -> None:
        """Release the line; safe to call twice."""
        ...

    def set(self, value: bool) -> None:
        """Drive the line high (True) or low (False)."""
        ...


@runtime_checkable
class Backlight(Protocol):
    """A backlight with a brightness in percent; on/off backlights treat any level > 0 as on."""

    def open(self) -> None:
        """Claim the line or PWM channel."""
        ...

    def close(self) -> None:
        """Release it; safe to call twice."""
        ...

    def set_level(self, percent: int) -> None:
        """Set the brightness, 0..100."""
        ...


def byte_view(data: Buffer) -> memoryview:
    """A flat unsigned-byte view of ``data`` that shares its memory (no copy).

    Accepts bytes, bytearray, memoryview, array.array, mmap and C-contiguous numpy arrays of
    any dtype and shape.

    Raises:
        TypeError: ``data`` does not support the buffer protocol.
        ValueError: ``data`` is not C-contiguous (a strided numpy slice, say); pass
            ``numpy.ascontiguousarray(data)`` instead.
    """
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(
            f"SPI data must be a bytes-like object (bytes, bytearray, memoryview, numpy array), "
            f"not {type(data).__name__}."
        ) from None
    if view.format == "B" and view.ndim == 1:
        return view
    if not view.c_contiguous:
        raise ValueError(
            "SPI data must be C-contiguous; pass numpy.ascontiguousarray(data) for a strided array."
        )
    return view.cast("B")  # 1-D, itemsize 1, same memory


def split_transfers(view: memoryview, max_transfer: int) -> Iterator[memoryview]:
    """Consecutive non-empty slices of ``view``, each at most ``max_transfer`` bytes (no copies)."""
    if max_transfer < 1:
        raise ValueError(f"max_transfer must be at least 1 byte, got {max_transfer}")
    n = len(view)
    for start in range(0, n, max_transfer):
        yield view[start : start + max_transfer]
