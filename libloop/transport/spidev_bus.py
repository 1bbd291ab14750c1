"""SPI over Linux spidev: zero-copy ``writebytes2`` for pixels, single-frame ``xfer2`` for reads.

Facts this module relies on (py-spidev 3.8 ``spidev_module.c``; ``drivers/spi/spidev.c``):

* ``writebytes2(obj)`` takes any object with the buffer protocol (``PyBUF_SIMPLE``), so a
  memoryview slice of the caller's frame reaches ``write(2)`` without a copy, and it releases
  the GIL around each ``write(2)``. An empty buffer is silently a no-op; an empty *list* is
  ``TypeError("Empty argument list.")``; a strided numpy array fails with a ``SystemError``.
* It splits its input into blocks of the module's own cached view of ``bufsiz`` (capped at
  65535), read once per process. ``writebytes``/``xfer``/``xfer2`` take Python lists only,
  copy every element, and raise ``OverflowError("Argument list size exceeds 4096 bytes.")``
  above 4096 items (``SPIDEV_MAXPATH``) *whatever bufsiz is*; ``readbytes`` clamps to 4096.
* The kernel rejects any single ``write``/``read``/``SPI_IOC_MESSAGE`` larger than its
  ``bufsiz`` module parameter with ``EMSGSIZE`` ("Message too long"). Chip select is asserted
  for one ``write(2)`` or one ``SPI_IOC_MESSAGE`` and released after it; ``xfer3`` sends one
  message per block, so it does *not* hold chip select across blocks.
* The spi_device keeps its mode between opens, so ``cshigh``, ``lsbfirst``, ``threewire``,
  ``loop`` or ``no_cs`` left by another program still apply unless cleared; ``mode`` itself
  only sets CPOL/CPHA. ``open`` keeps its file descriptor when an ioctl after the ``open(2)``
  fails, until ``close``.

Writes: the bus slices the data into transfers of at most ``max_transfer`` bytes (from
``/sys/module/spidev/parameters/bufsiz``, capped at 65535 and rounded down to an even number
so a 16-bit pixel never straddles two chip-select assertions) and hands each slice to
``writebytes2``: one ``write(2)`` per slice, no empty transfers, no copies.

Reads: the ILI9341 ends a read when chip select rises (datasheet 7.1.10), so the command and
the bytes it answers go in one ``xfer2`` — one transfer, one chip-select frame, with D/C low
throughout as the kernel's own MIPI-DBI driver does (``drm_mipi_dbi.c``,
``mipi_dbi_typec3_command_read``) — at most 4096 bytes, at ``read_speed_hz``: 6 MHz, under the
6.67 MHz the datasheet allows for reads (serial read cycle tSCYCR >= 150 ns, 19.4.2).

The Pi 5's SPI fault (raspberrypi/linux issues 5696, 5865, 6020): transfers longer than the
RP1 SSI's 64-byte FIFO go through DMA, and that DMA can stop completing ("DMA transaction
timed out", ``ETIMEDOUT``), at times until a reboot. When a longer transfer fails that way the
bus switches to 64-byte transfers, which the driver still completes without DMA (slower: a
frame takes 2400 transfers instead of 3), raises :class:`~libloop.errors.TransferCut` so the
display resends the whole operation, reports it in :meth:`link`, and tries one full-size write
again after ``retry_after_s``, doubling the wait after each failed try up to ``retry_max_s``.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from libloop._types import Buffer
from libloop.clock import Clock, MonotonicClock
from libloop.errors import DeviceNotFound, DevicePermissionError, MissingExtra, TransferCut, TransportError
from libloop.transport.base import BusStats, SpiLink, byte_view, split_transfers
from libloop.transport.spiclock import MODEL_PATH, SpiController, controller_for_model, read_model

__all__ = [
    "DEFAULT_BUFSIZ",
    "DEGRADED_TRANSFER",
    "MODULE_MAX_BLOCK",
    "READ_SPEED_HZ",
    "XFER_MAX",
    "SpidevBus",
    "read_bufsiz",
]

log = logging.getLogger(__name__)

#: The spidev driver's default ``bufsiz`` (also py-spidev's fallback when it cannot read it).
DEFAULT_BUFSIZ = 4096
#: py-spidev never writes more than this in one block, whatever ``bufsiz`` says.
MODULE_MAX_BLOCK = 65535
#: py-spidev's limit for one ``xfer2`` (and ``writebytes``, ``readbytes``): SPIDEV_MAXPATH.
XFER_MAX = 4096
#: The clock reads are made at (the ILI9341 reads at most 6.67 MHz).
READ_SPEED_HZ = 6_000_000
#: The transfer size the Pi 5's driver completes without DMA (the RP1 SSI FIFO depth).
DEGRADED_TRANSFER = 64
BUFSIZ_PATH = "/sys/module/spidev/parameters/bufsiz"
_MODE_FLAGS = ("cshigh", "lsbfirst", "threewire", "loop", "no_cs")


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
        speed_hz: requested write clock; the controller makes the fastest rate its divider
            can that is not above it (see :attr:`clock_hz`).
        mode: SPI mode 0..3 (the ILI9341 uses mode 0).
        read_speed_hz: the clock of :meth:`read` frames.
        spidev_factory: makes the ``spidev.SpiDev``-like object (tests pass ``sim.FakeSpiDev``);
            by default ``spidev.SpiDev`` is imported when the bus is opened.
        bufsiz_path: where the driver publishes its transfer limit.
        bufsiz: use this limit instead of reading ``bufsiz_path``.
        controller: the SPI controller, for the real clock; by default it is found from the
            board's model when the bus is opened (None off a Raspberry Pi: the requested
            clock is reported as it is).
        model_path: where the board's model is read from (None: do not look).
        clock: the time base of the degraded mode's retries.
        retry_after_s, retry_max_s: the first and the longest wait before full-size transfers
            are tried again after the Pi 5's DMA fault.
    """

    def __init__(
        self,
        bus: int = 0,
        device: int = 0,
        *,
        speed_hz: int = 64_000_000,
        mode: int = 0,
        read_speed_hz: int = READ_SPEED_HZ,
        spidev_factory: Callable[[], Any] | None = None,
        bufsiz_path: str | Path = BUFSIZ_PATH,
        bufsiz: int | None = None,
        controller: SpiController | None = None,
        model_path: Path | None = MODEL_PATH,
        clock: Clock | None = None,
        retry_after_s: float = 30.0,
        retry_max_s: float = 600.0,
    ) -> None:
        if not 0 <= mode <= 3:
            raise ValueError(f"SPI mode must be 0..3, got {mode}")
        if speed_hz <= 0 or read_speed_hz <= 0:
            raise ValueError(f"SPI clocks must be positive, got {speed_hz} and {read_speed_hz}")
        if bufsiz is not None and bufsiz < 1:
            raise ValueError(f"bufsiz must be at least 1, got {bufsiz}")
        if not 0 < retry_after_s <= retry_max_s:
            raise ValueError("retry_after_s must be positive and at most retry_max_s")
        self.bus = bus
        self.device = device
        self.speed_hz = speed_hz
        self.read_speed_hz = read_speed_hz
        self.mode = mode
        self.controller = controller
        self._model_path = model_path if controller is None else None
        self._factory = spidev_factory
        self._bufsiz_path = Path(bufsiz_path)
        self._bufsiz = bufsiz
        self._dev: Any = None
        self._full = _transfer_size(bufsiz if bufsiz is not None else DEFAULT_BUFSIZ)
        self._xfer_max = min(XFER_MAX, bufsiz if bufsiz is not None else DEFAULT_BUFSIZ)
        self._clock: Clock = clock or MonotonicClock()
        self.retry_after_s = retry_after_s
        self.retry_max_s = retry_max_s
        self._degraded_since: float | None = None
        self._retry_at = 0.0
        self._backoff = retry_after_s
        self.stats = BusStats(clock_hz=self.clock_hz)

    # --- what the bus is -----------------------------------------------------------------

    @property
    def path(self) -> str:
        """The device node this bus talks to."""
        return f"/dev/spidev{self.bus}.{self.device}"

    @property
    def is_open(self) -> bool:
        return self._dev is not None

    @property
    def clock_hz(self) -> int:
        """The write clock on the wire: what the controller's divider makes of ``speed_hz``."""
        return self._effective(self.speed_hz)

    @property
    def read_clock_hz(self) -> int:
        return self._effective(self.read_speed_hz)

    def _effective(self, hz: int) -> int:
        return self.controller.effective_hz(hz) if self.controller is not None else hz

    @property
    def degraded(self) -> bool:
        return self._degraded_since is not None

    @property
    def max_transfer(self) -> int:
        """The largest write transfer now: from ``bufsiz``, or 64 bytes while degraded."""
        return DEGRADED_TRANSFER if self.degraded else self._full

    @property
    def max_read(self) -> int:
        """The largest :meth:`read` frame (command included): one ``xfer2``, within ``bufsiz``."""
        return min(self._xfer_max, self.max_transfer)

    def link(self) -> SpiLink:
        """Clocks, transfer size and the degraded mode's state, for health reports."""
        now = self._clock.monotonic()
        since = self._degraded_since
        degraded = since is not None
        return SpiLink(
            requested_hz=self.speed_hz,
            clock_hz=self.clock_hz,
            read_clock_hz=self.read_clock_hz,
            controller=self.controller.describe()
            if self.controller
            else "unknown controller (the requested clock is shown)",
            max_transfer=self.max_transfer,
            full_transfer=self._full,
            degraded=degraded,
            reason=(
                f"transfers over {DEGRADED_TRANSFER} bytes time out in the driver (ETIMEDOUT, the Pi 5's SPI "
                f"DMA fault); sending {DEGRADED_TRANSFER}-byte transfers, which is slower"
            )
            if degraded
            else None,
            degraded_s=None if since is None else now - since,
            retry_in_s=max(0.0, self._retry_at - now) if degraded else None,
        )

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return (
            f"<SpidevBus {self.path} {self.clock_hz} Hz (asked {self.speed_hz}) mode {self.mode} "
            f"max_transfer={self.max_transfer}{' degraded' if self.degraded else ''} {state}>"
        )

    def __enter__(self) -> SpidevBus:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- open and close ------------------------------------------------------------------

    def _new_device(self) -> Any:
        if self._factory is not None:
            return self._factory()
        try:
            import spidev
        except ImportError:
            raise MissingExtra("SPI", "pi", "spidev") from None
        return spidev.SpiDev()

    def open(self) -> None:
        """Open the device node and set clock, mode and every mode flag; re-reads ``bufsiz``.

        Raises:
            MissingExtra: the ``spidev`` package is not installed.
            DeviceNotFound: the device node does not exist (SPI not enabled).
            DevicePermissionError: this user may not open it.
            TransportError: the driver refused the open or the settings.
        """
        if self._dev is not None:
            return
        bufsiz = self._bufsiz if self._bufsiz is not None else read_bufsiz(self._bufsiz_path)
        if self.controller is None and self._model_path is not None:
            self.controller = controller_for_model(read_model(self._model_path))
            self._model_path = None
        dev = self._new_device()
        try:
            dev.open(self.bus, self.device)
        except FileNotFoundError:
            _close_quietly(dev)
            raise DeviceNotFound(
                f"The SPI device {self.path} does not exist; enable SPI with 'sudo raspi-config nonint do_spi 0' "
                "(or dtparam=spi=on in /boot/firmware/config.txt) and reboot."
            ) from None
        except PermissionError:
            _close_quietly(dev)
            raise DevicePermissionError(
                f"Permission denied opening {self.path}; add this user to the spi group "
                "('sudo usermod -aG spi $USER') and log in again."
            ) from None
        except OSError as exc:
            _close_quietly(dev)  # the module keeps the descriptor when an ioctl after open(2) fails
            raise TransportError(
                f"Could not open {self.path} ({exc.strerror or exc}); check the SPI wiring and overlay."
            ) from None
        try:
            self._configure(dev)
        except (OSError, TypeError, ValueError, OverflowError) as exc:
            _close_quietly(dev)
            raise TransportError(
                f"The SPI device {self.path} refused {self.speed_hz} Hz, mode {self.mode} ({exc}); "
                "pick a supported clock and mode."
            ) from None
        except BaseException:
            _close_quietly(dev)
            raise
        self._full = _transfer_size(bufsiz)
        self._xfer_max = min(XFER_MAX, bufsiz)
        self.stats.clock_hz = self.clock_hz
        self._dev = dev

    def _configure(self, dev: Any) -> None:
        """Every setting that could be left over from another program, then ours."""
        for flag in _MODE_FLAGS:
            if getattr(dev, flag, False):
                log.info("clearing %s left set on %s by another program", flag, self.path)
                setattr(dev, flag, False)
        dev.mode = self.mode
        dev.bits_per_word = 8
        dev.max_speed_hz = self.speed_hz

    def close(self) -> None:
        """Close the device node; safe to call twice."""
        dev, self._dev = self._dev, None
        if dev is not None:
            try:
                dev.close()
            except OSError as exc:
                log.warning("closing %s failed: %s", self.path, exc)

    def set_clock(self, speed_hz: int) -> int:
        """Ask for another write clock; returns the clock the controller makes of it.

        Raises:
            TransportError: the driver refused it.
        """
        if speed_hz <= 0:
            raise ValueError(f"speed_hz must be positive, got {speed_hz}")
        dev = self._dev
        if dev is not None:
            try:
                dev.max_speed_hz = speed_hz
            except (OSError, TypeError, OverflowError) as exc:
                raise TransportError(f"The SPI device {self.path} refused {speed_hz} Hz ({exc}).") from None
        self.speed_hz = speed_hz
        self.stats.clock_hz = self.clock_hz
        return self.clock_hz

    def _require_open(self) -> Any:
        dev = self._dev
        if dev is None:
            raise TransportError(f"The SPI device {self.path} is not open; call open() before writing.")
        return dev

    # --- transfers -----------------------------------------------------------------------

    def write(self, data: Buffer) -> None:
        """Send ``data`` in transfers of at most ``max_transfer`` bytes, without copying it.

        Raises:
            TypeError, ValueError: ``data`` is not a C-contiguous bytes-like object.
            TransferCut: a long transfer timed out in the driver; the bus now sends short ones
                and the whole operation must be sent again.
            TransportError: the driver failed a transfer (the rest of ``data`` is not sent).
        """
        view = byte_view(data)
        if not len(view):
            return
        write = self._require_open().writebytes2
        size = self.max_transfer
        probing = self.degraded and len(view) > size and self._clock.monotonic() >= self._retry_at
        if probing:
            size = self._full  # one full-size try; _degrade() backs off again if it fails
        stats = self.stats
        for chunk in split_transfers(view, size):
            try:
                write(chunk)
            except OSError as exc:
                stats.errors += 1
                if exc.errno == errno.ETIMEDOUT and len(chunk) > DEGRADED_TRANSFER:
                    self._degrade(len(chunk))
                    raise TransferCut(
                        f"A {len(chunk)}-byte SPI transfer on {self.path} timed out in the driver; "
                        f"continuing with {DEGRADED_TRANSFER}-byte transfers."
                    ) from exc
                raise self._transfer_error(exc, len(chunk)) from exc
            stats.transfers += 1
            stats.bytes += len(chunk)
        if probing:
            self._recover()

    def read(self, command: Buffer, n: int) -> bytes:
        """Send ``command`` and clock in ``n`` bytes in one chip-select frame, at the read clock.

        Raises:
            ValueError: no command, a negative ``n``, or a frame over :attr:`max_read`.
            TransferCut: the frame timed out in the driver (see :meth:`write`).
            TransportError: the driver failed the transfer.
        """
        cmd = bytes(byte_view(command))
        if not cmd:
            raise ValueError("a read frame starts with the command that asks for the data")
        if n < 0:
            raise ValueError(f"cannot read a negative number of bytes ({n})")
        total = len(cmd) + n
        if total > self.max_read:
            raise ValueError(
                f"a read frame carries at most {self.max_read} bytes (one xfer2, within bufsiz), not {total}; "
                "read in smaller pieces"
            )
        dev = self._require_open()
        try:
            rx = dev.xfer2(list(cmd) + [0] * n, self.read_speed_hz)
        except OSError as exc:
            self.stats.errors += 1
            if exc.errno == errno.ETIMEDOUT and total > DEGRADED_TRANSFER:
                self._degrade(total)
                raise TransferCut(f"A {total}-byte SPI read on {self.path} timed out in the driver.") from exc
            raise self._transfer_error(exc, total) from exc
        self.stats.transfers += 1
        self.stats.bytes += total
        return bytes(rx[len(cmd) :])

    # --- the degraded mode ---------------------------------------------------------------

    def _degrade(self, size: int) -> None:
        now = self._clock.monotonic()
        if self._degraded_since is None:
            self._degraded_since = now
            self._backoff = self.retry_after_s
            log.warning(
                "%s: a %d-byte transfer timed out in the SPI driver (ETIMEDOUT); sending %d-byte transfers "
                "and trying full size again in %g s",
                self.path, size, DEGRADED_TRANSFER, self._backoff,
            )  # fmt: skip
        else:
            self._backoff = min(self._backoff * 2, self.retry_max_s)
            log.info("%s: full-size transfers still time out; next try in %g s", self.path, self._backoff)
        self._retry_at = now + self._backoff
        self.stats.degraded = True

    def _recover(self) -> None:
        log.warning("%s: full-size SPI transfers work again; leaving the degraded mode", self.path)
        self._degraded_since = None
        self._backoff = self.retry_after_s
        self.stats.degraded = False

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


def _close_quietly(dev: Any) -> None:
    try:
        dev.close()
    except OSError as exc:
        log.debug("closing a half-opened spidev device failed: %s", exc)
