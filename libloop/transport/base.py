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
    """

    transfers: int = 0
    bytes: int = 0
    errors: int = 0

    def copy(self) -> BusStats:
        """A snapshot, safe to hand to another thread."""
        return BusStats(self.transfers, self.bytes, self.errors)


@runtime_checkable
class SpiBus(Protocol):
    """A write-mostly SPI bus with a per-transfer size limit."""

    #: The largest single transfer, in bytes (from spidev's ``bufsiz``).
    max_transfer: int
    stats: BusStats

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

    def read(self, n: int) -> bytes:
        """Clock in ``n`` bytes full-duplex (sending zeros), e.g. after RAMRD."""
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
