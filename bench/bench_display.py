"""Host cost of pushing one prepared full frame (153,600 bytes) through Display -> SpidevBus.

The wire time of a full frame at 64 MHz is 153,600 * 8 / 64e6 = 19.2 ms; the quality bar is a
host cost under 1 % of that. Three ways of measuring, from most to least faithful to a Pi:

* the real py-spidev C module on a device that is not open: ``writebytes2`` takes the buffer
  and calls ``write(2)``, which fails at once with EBADF (swallowed by a thin wrapper). That
  is the real code path minus the SPI transfer itself (only possible where spidev installs);
* ``sim.FakeSpiDev`` with no sink, which adds its own Python bookkeeping per transfer
  (transcript, wire-time model, fault checks), so it overstates our cost;
* a null device whose ``writebytes2`` does nothing: our own Python alone;
* the baseline: what hobby drivers do, ``list(frame)`` and ``writebytes`` of 4096-item slices
  (the C module converts every item from a Python int), on the same closed-device path.
"""

from __future__ import annotations

import errno
from typing import Any

import numpy as np

from bench.report import Report, per_call
from libloop.display import Display
from libloop.ili9341 import Rotation
from libloop.transport import SpidevBus
from sim.fakespi import FakeSpiDev
from sim.pins import FakePin

FRAME_BYTES = 240 * 320 * 2
WIRE_S = FRAME_BYTES * 8 / 64e6


class ClosedSpiDev:
    """The real ``spidev.SpiDev`` with no device open: every write(2) fails fast with EBADF."""

    def __init__(self) -> None:
        import spidev

        self._dev = spidev.SpiDev()
        self.max_speed_hz = 0
        self.mode = 0
        self.bits_per_word = 8

    def open(self, bus: int, device: int) -> None:
        pass

    def close(self) -> None:
        pass

    def writebytes2(self, data: Any) -> None:
        try:
            self._dev.writebytes2(data)
        except OSError as exc:
            if exc.errno != errno.EBADF:
                raise

    def writebytes(self, data: Any) -> None:
        try:
            self._dev.writebytes(data)
        except OSError as exc:
            if exc.errno != errno.EBADF:
                raise


class NullSpiDev:
    """A device whose writebytes2 does nothing: what is left is our own Python per frame."""

    max_speed_hz = 0
    mode = 0
    bits_per_word = 8

    def open(self, bus: int, device: int) -> None:
        pass

    def close(self) -> None:
        pass

    def writebytes2(self, data: Any) -> None:
        pass


def display_over(device: Any, bufsiz: int, **kwargs: Any) -> Display:
    bus = SpidevBus(spidev_factory=lambda: device, bufsiz=bufsiz)
    display = Display(bus, FakePin("dc"), sleep=lambda s: None, **kwargs)
    display.open()
    return display


def hobby_push(device: Any, frame: bytes) -> None:
    data = list(frame)
    for start in range(0, len(data), 4096):
        device.writebytes(data[start : start + 4096])


def run(report: Report, quick: bool) -> None:
    reps = 20 if quick else 300
    frame = np.random.default_rng(0).integers(0, 256, FRAME_BYTES, dtype=np.uint8).tobytes()
    section = report.section(
        "Host cost of pushing a full frame (153,600 bytes, Display -> SpidevBus)",
        f"As a share of the frame's wire time at 64 MHz ({WIRE_S * 1e3:.1f} ms). Best of 7 batches, "
        "mean per frame. The real-module rows run py-spidev's C code on a closed device (every "
        "write(2) fails at once with EBADF), i.e. everything but the transfer itself.",
    )
    rows: list[tuple[str, float, str]] = []
    for bufsiz in (4096, 65536):
        fake = FakeSpiDev(None, bufsiz=bufsiz, transcript_limit=1000)
        display = display_over(fake, bufsiz)
        before = fake.transfers
        display.show_frame(frame)
        per_frame = fake.transfers - before
        t = per_call(lambda d=display: d.show_frame(frame), reps)  # type: ignore[misc]
        rows.append((f"FakeSpiDev, bufsiz {bufsiz}", t, f"{per_frame} transfers per frame"))
    for bufsiz in (4096, 65536):
        display = display_over(NullSpiDev(), bufsiz)
        t = per_call(lambda d=display: d.show_frame(frame), reps)  # type: ignore[misc]
        rows.append((f"null device, bufsiz {bufsiz}", t, "our Python alone (Display, encoder, SpidevBus)"))
    for rotation in (Rotation.R0, Rotation.R90):
        display = display_over(NullSpiDev(), 65536, shadow=True, rotation=rotation)
        t = per_call(lambda d=display: d.show_frame(frame), reps)  # type: ignore[misc]
        rows.append(
            (f"null device + shadow copy, {rotation.name}", t, "Display(shadow=True) for the live view")
        )
    real_ok = True
    try:
        import spidev  # noqa: F401
    except ImportError:
        real_ok = False
    if real_ok:
        for bufsiz in (4096, 65536):
            display = display_over(ClosedSpiDev(), bufsiz)
            t = per_call(lambda d=display: d.show_frame(frame), reps)  # type: ignore[misc]
            rows.append(
                (
                    f"py-spidev C module, bufsiz {bufsiz}",
                    t,
                    "zero-copy writebytes2 slices; includes raising and catching EBADF per transfer",
                )
            )
        closed = ClosedSpiDev()
        t_hobby = per_call(lambda: hobby_push(closed, frame), max(3, reps // 20))
    for name, t, note in rows:
        section.add(
            name,
            f"{t * 1e6:.0f} µs = {t / WIRE_S * 100:.2f} % of wire time",
            f"{t_hobby * 1e6:.0f} µs = {t_hobby / WIRE_S * 100:.1f} %" if real_ok else "",
            note,
        )
    if real_ok:
        section.add(
            "baseline: list(frame) + writebytes of 4096-item slices",
            f"{t_hobby * 1e6:.0f} µs = {t_hobby / WIRE_S * 100:.1f} % of wire time",
            "",
            "38 transfers per frame, every byte converted from a Python int",
        )


if __name__ == "__main__":
    r = Report()
    run(r, quick=False)
    print(r.render())
