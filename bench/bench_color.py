"""RGB888 -> RGB565 for one 320x240 frame: libloop.color against the common drivers' per-frame numpy.

The baseline is the conversion the usual Python display drivers (Pimoroni's and Adafruit's
ST7789/ILI9341 ports and their copies) run on every frame: widen to uint16, shift and OR the
channels, split the 16-bit values back into two byte planes with ``np.dstack``, flatten, and
(in most of them) ``.tolist()`` for spidev. It is measured here both with and without the
``tolist()``, from the same uint8 array our conversion starts from.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bench.report import Report, per_call
from libloop.color import rgb888_to_rgb565

U8 = npt.NDArray[np.uint8]


def common_driver_bytes(pixels: U8) -> npt.NDArray[np.uint16]:
    """The usual per-frame conversion, up to the flattened byte array."""
    wide = pixels.astype(np.uint16)
    color = ((wide[:, :, 0] & 0xF8) << 8) | ((wide[:, :, 1] & 0xFC) << 3) | (wide[:, :, 2] >> 3)
    return np.dstack(((color >> 8) & 0xFF, color & 0xFF)).flatten()


def common_driver_list(pixels: U8) -> list[int]:
    """The same, finished the way most of those drivers hand data to spidev."""
    values: list[int] = common_driver_bytes(pixels).tolist()
    return values


def run(report: Report, quick: bool) -> None:
    reps = 5 if quick else 60
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    out = np.empty((240, 320, 2), np.uint8)

    # Same bytes from both, or the comparison would mean nothing.
    assert bytes(common_driver_bytes(frame).astype(np.uint8)) == rgb888_to_rgb565(frame).tobytes()

    t_plain = per_call(lambda: rgb888_to_rgb565(frame, out=out), reps)
    t_alloc = per_call(lambda: rgb888_to_rgb565(frame), reps)
    t_dither = per_call(lambda: rgb888_to_rgb565(frame, dither=True, out=out), reps)
    t_base = per_call(lambda: common_driver_bytes(frame), reps)
    t_list = per_call(lambda: common_driver_list(frame), max(2, reps // 4))

    ms = 1e3
    section = report.section(
        "Colour conversion (RGB888 -> RGB565 BE, 320x240)",
        "Baselines: the per-frame numpy conversion of the common Python display drivers "
        "(astype uint16, shift, np.dstack, flatten), with and without their final .tolist(). "
        "Best of 7 batches, mean per call.",
    )
    section.add(
        "libloop.color, into a reused buffer",
        f"{t_plain * ms:.3f} ms",
        f"{t_base * ms:.3f} ms (no tolist)",
        f"speed-up {t_base / t_plain:.2f}x (baseline time / ours)",
    )
    section.add(
        "libloop.color, allocating",
        f"{t_alloc * ms:.3f} ms",
        f"{t_list * ms:.3f} ms (with tolist)",
        f"speed-up {t_list / t_alloc:.1f}x over the tolist() drivers, {t_base / t_alloc:.2f}x over the same without tolist()",
    )
    section.add(
        "libloop.color, ordered dither",
        f"{t_dither * ms:.3f} ms",
        f"{t_base * ms:.3f} ms (no tolist, no dither)",
        f"speed-up {t_base / t_dither:.2f}x; dithering runs once at import, never per frame",
    )


if __name__ == "__main__":
    r = Report()
    run(r, quick=False)
    print(r.render())
