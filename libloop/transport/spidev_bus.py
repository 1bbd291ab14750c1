"""SPI over Linux spidev, through the ``spidev`` module's zero-copy ``writebytes2``.

Facts this module relies on (py-spidev 3.6+ ``spidev_module.c`` and ``drivers/spi/spidev.c``):

* ``writebytes2(obj)`` takes any object with the buffer protocol (``PyBUF_SIMPLE``), so a
  memoryview slice of the caller's frame reaches ``write(2)`` without a copy, and it releases
  the GIL around each ``write(2)``. An empty buffer is silently a no-op; an empty *list* is
  ``TypeError("Empty argument list.")``; a strided numpy array fails with a ``SystemError``.
* It splits its input into blocks of the module's own cached view of ``bufsiz`` (capped at
  65535), read once per process. ``writebytes``/``xfer``/``xfer2`` take Python lists only,
  copy every element, and raise ``OverflowError("Argument list size exceeds N bytes.")``
  above that size (their length is a 16-bit integer: 65536 items read as "empty").
* The kernel rejects any single ``write``/``read``/``SPI_IOC_MESSAGE`` larger than its
  ``bufsiz`` module parameter with ``EMSGSIZE`` ("Message too long").

So this bus slices the data itself into transfers of at most ``max_transfer`` bytes (from
``/sys/module/spidev/parameters/bufsiz``, capped at 65535 and rounded down to an even number
so a 16-bit pixel never straddles two chip-select assertions) and hands each slice to
``writebytes2``: one ``write(2)`` per slice, no empty transfers, no copies.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from libloop._types import Buffer
from libloop.errors import DeviceNotFound, DevicePermissionError, MissingExtra, TransportError
from libloop.transport.base import BusStats, byte_view, split_transfers

__all__ = ["DEFAULT_BUFSIZ", "MODULE_MAX_BLOCK", "SpidevBus", "read_bufsiz"]

log = logging.getLogger(__name__)

#: The spidev driver's default ``bufsiz`` (also py-spidev's fallback when it cannot read it).
DEFAULT_BUFSIZ = 4096
#: py-spidev never writes more than this in one block, whatever ``bufsiz`` says.
MODULE_MAX_BLOCK = 65535
BUFSIZ_PATH = "/sys/module/spidev/parameters/bufsiz"


def read_bufsiz(path: str | Path = BUFSIZ_PATH) -> int:
    """The spidev driver's per-transfer limit, or 4096 (with a warning) when it cannot be read."""
    try:
        value = int(Path(path).read_text().strip())
    except (OSError, ValueError) as exc:
        log.warning("cannot read spidev bufsiz from %s (%s); assuming %d bytes", path, exc, DEFAULT_BUFSIZ)
        return DEFAULT_BUFSIZ
    if value < 1:
        log.warning("spidev bufsiz in %s is %d; assuming %d bytes", path, value, DEFAULT_BUFSIZ)
        return DEFAULT_BUFSIZ
    return value


def _transfer_size(bufsiz: int) -> int:
    size = min(bufsiz, MODULE_MAX_BLOCK)
    return size - (size % 2) if size > 1 else size


class SpidevBus:
    """An ``SpiBus`` over ``/dev/spidev<bus>.<device>``.

    Args:
        bus: SPI controller number (0 for SPI0 on the header).
        device: chip-select number (0 for CE0).
        speed_hz: requested clock; the controller rounds it down to what it can divide to.
        mode: SPI mode 0..3 (the ILI9341 uses mode 0).
        spidev_factory: makes the ``spidev.SpiDev``-like object (tests pass ``sim.FakeSpiDev``);
            by default ``spidev.SpiDev`` is imported when the bus is opened.
        bufsiz_path: where the driver publishes its transfer limit.
        bufsiz: use this limit instead of reading ``bufsiz_path``.
    """

    def __init__(
        self,
        bus: int = 0,
        device: int = 0,
        *,
        speed_hz: int = 64_000_000,
        mode: int = 0,
        spidev_factory: Callable[[], Any] | None = None,
        bufsiz_path: str | Path = BUFSIZ_PATH,
        bufsiz: int | None = None,
    ) -> None:
        if not 0 <= mode <= 3:
            raise ValueError(f"SPI mode must be 0..3, got {mode}")
        if speed_hz <= 0:
            raise ValueError(f"speed_hz must be positive, got {speed_hz}")
        if bufsiz is not None and bufsiz < 1:
            raise ValueError(f"bufsiz must be at least 1, got {bufsiz}")
        self.bus = bus
        self.device = device
        self.speed_hz = speed_hz
        self.mode = mode
        self._factory = spidev_factory
        self._bufsiz_path = Path(bufsiz_path)
        self._bufsiz = bufsiz
        self._dev: Any = None
        self.max_transfer = _transfer_size(bufsiz if bufsiz is not None else DEFAULT_BUFSIZ)
        self.stats = BusStats()

    @property
    def path(self) -> str:
        """The device node this bus talks to."""
        return f"/dev/spidev{self.bus}.{self.device}"

    @property
    def is_open(self) -> bool:
        return self._dev is not None

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<SpidevBus {self.path} {self.speed_hz} Hz mode {self.mode} max_transfer={self.max_transfer} {state}>"

    def __enter__(self) -> SpidevBus:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _new_device(self) -> Any:
        if self._factory is not None:
            return self._factory()
        try:
            import spidev
        except ImportError:
            raise MissingExtra("SPI", "pi", "spidev") from None
        return spidev.SpiDev()

    def open(self) -> None:
        """Open the device node and set clock and mode; re-reads ``bufsiz``.

        Raises:
            MissingExtra: the ``spidev`` package is not installed.
            DeviceNotFound: the device node does not exist (SPI not enabled).
            DevicePermissionError: this user may not open it.
            TransportError: the driver refused the open or the settings.
        """
        if self._dev is not None:
            return
        bufsiz = self._bufsiz if self._bufsiz is not None else read_bufsiz(self._bufsiz_path)
        dev = self._new_device()
        try:
            dev.open(self.bus, self.device)
        except FileNotFoundError:
            raise DeviceNotFound(
                f"The SPI device {self.path} does not exist; enable SPI with 'sudo raspi-config nonint do_spi 0' "
                "(or dtparam=spi=on in /boot/firmware/config.txt) and reboot."
            ) from None
        except PermissionError:
            raise DevicePermissionError(
                f"Permission denied opening {self.path}; add this user to the spi group "
                "('sudo usermod -aG spi $USER') and log in again."
            ) from None
        except OSError as exc:
            raise TransportError(
                f"Could not open {self.path} ({exc.strerror or exc}); check the SPI wiring and overlay."
            ) from exc
        try:
            dev.max_speed_hz = self.speed_hz
            dev.mode = self.mode
            dev.bits_per_word = 8
        except (OSError, TypeError) as exc:
            dev.close()
            raise TransportError(
                f"The SPI device {self.path} refused {self.speed_hz} Hz, mode {self.mode} ({exc}); pick a supported clock and mode."
            ) from exc
        self.max_transfer = _transfer_size(bufsiz)
        self._dev = dev

    def close(self) -> None:
        """Close the device node; safe to call twice."""
        dev, self._dev = self._dev, None
        if dev is not None:
            try:
                dev.close()
            except OSError as exc:
                log.warning("closing %s failed: %s", self.path, exc)

    def _require_open(self) -> Any:
        dev = self._dev
        if dev is None:
            raise TransportError(f"The SPI device {self.path} is not open; call open() before writing.")
        return dev

    def write(self, data: Buffer) -> None:
        """Send ``data`` in transfers of at most ``max_transfer`` bytes, without copying it.

        Raises:
            TypeError, ValueError: ``data`` is not a C-contiguous bytes-like object.
            TransportError: the driver failed a transfer (the rest of ``data`` is not sent).
        """
        view = byte_view(data)
        if not len(view):
            return
        write = self._require_open().writebytes2
        stats = self.stats
        for chunk in split_transfers(view, self.max_transfer):
            try:
                write(chunk)
            except OSError as exc:
                stats.errors += 1
                raise self._transfer_error(exc, len(chunk)) from exc
            stats.transfers += 1
            stats.bytes += len(chunk)

    def read(self, n: int) -> bytes:
        """Clock in ``n`` bytes full-duplex (``xfer2`` of zeros), in transfers of at most ``max_transfer``."""
        if n < 0:
            raise ValueError(f"cannot read a negative number of bytes ({n})")
        dev = self._require_open()
        out = bytearray()
        while len(out) < n:
            size = min(n - len(out), self.max_transfer)
            try:
                rx = dev.xfer2([0] * size)
            except OSError as exc:
                self.stats.errors += 1
                raise self._transfer_error(exc, size) from exc
            self.stats.transfers += 1
            self.stats.bytes += size
            out += bytes(rx)
        return bytes(out)

    def _transfer_error(self, exc: OSError, size: int) -> TransportError:
        if exc.errno == errno.EMSGSIZE:
            return TransportError(
                f"The spidev driver refused a {size}-byte transfer as too long; "
                "bufsiz changed after the bus was opened, so reopen the bus."
            )
        return TransportError(
            f"SPI transfer of {size} bytes on {self.path} failed ({exc.strerror or exc}); "
            "check the wiring and reinitialise the display."
        )
