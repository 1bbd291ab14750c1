"""The periodic refresh, spread out: one band of rows at a time, in idle bus time, on a budget.

A refresh repaints what the content did not change, so a pixel garbled on the wire does not
stay wrong for ever. Repainting the whole panel at once costs 150 KB — more than a small
animation sends in minutes, and a content frame would wait behind it. So the refresh is cut
into bands of ``band_rows`` rows and sent one band at a time:

* **budget** — every content byte earns ``share`` (a tenth) of a byte of refresh credit; a
  band is sent only when the credit covers its whole cost, pixels *and* commands *and* the
  fixed per-transfer overhead (``TRANSFER_OVERHEAD_BYTES`` a transfer, the repo's cost model).
  Credits count content bytes only, costs count overhead too, so the refresh stays under a
  tenth of the content's bytes and under a tenth of its bus time. Credit is capped at one
  sweep of the panel, so a burst of content never buys a burst of refresh;
* **pace** — a sweep of the whole panel takes at least ``min_sweep_s``: full-motion video
  rewrites every pixel anyway and needs no refresh at the rate its credit would allow;
* **idle time** — the caller asks :meth:`RefreshBudget.band` only when the bus is idle, with
  the time left until the next content deadline; a band is offered only if its expected
  send time (measured from the bands before it, never less than its wire time) fits with a
  margin, so it never delays a content frame.

Pure arithmetic: no clock, no I/O. The player owns the sending.
"""

from __future__ import annotations

import math

from libloop.media.regions import TRANSFER_OVERHEAD_BYTES

__all__ = ["BAND_ROWS", "RefreshBudget"]

#: Rows in one refresh band (a band is 7.5 KB in portrait, 10 KB in landscape).
BAND_ROWS = 16
#: Bytes of CASET, PASET and RAMWR with their parameters, sent before a band's pixels.
_WINDOW_BYTES = 11
#: Transfers a band takes besides its pixel transfers (three commands, two parameter blocks).
_WINDOW_TRANSFERS = 5


class RefreshBudget:
    """Which band to repaint next, and whether the budget and the idle time allow it now.

    Args:
        width, height: the drawing area (logical, at the current rotation).
        share: refresh cost allowed per content byte (0.1: a tenth).
        min_sweep_s: the shortest time one sweep over the whole panel may take.
        wire_hz: the SPI clock, for a band's wire time.
        max_transfer: the bus's largest transfer (a band's pixels take several above it).
        band_rows: rows per band.
    """

    def __init__(
        self,
        width: int,
        height: int,
        *,
        share: float = 0.1,
        min_sweep_s: float = 5.0,
        wire_hz: float = 64_000_000.0,
        max_transfer: int = 4096,
        band_rows: int = BAND_ROWS,
    ) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"the refresh share is between 0 and 1, not {share}")
        if width < 1 or height < 1 or band_rows < 1:
            raise ValueError("the panel and a band have at least one row and column")
        self.width = width
        self.height = height
        self.share = share
        self.min_sweep_s = max(0.0, min_sweep_s)
        self.wire_hz = wire_hz
        self.max_transfer = max(1, max_transfer)
        self._rows_asked = band_rows
        self.band_rows = min(band_rows, height)
        self.bands = math.ceil(height / self.band_rows)
        band_bytes = self.band_rows * width * 2
        transfers = _WINDOW_TRANSFERS + math.ceil(band_bytes / self.max_transfer)
        #: A band's cost in bytes, per-transfer overhead included.
        self.band_cost = band_bytes + _WINDOW_BYTES + transfers * TRANSFER_OVERHEAD_BYTES
        self._wire_s = (band_bytes + _WINDOW_BYTES) * 8 / wire_hz
        self.credit = 0.0
        self.next_band = 0
        self._not_before = float("-inf")
        self._send_s = self._wire_s  # how long the last band took to send (starts at wire time)

    @property
    def ceiling(self) -> float:
        """The most credit that can be saved up: one sweep of the panel."""
        return float(self.bands * self.band_cost)

    def earn(self, content_bytes: int) -> None:
        """The content put ``content_bytes`` on the bus: add its share to the credit."""
        if content_bytes > 0:
            self.credit = min(self.ceiling, self.credit + content_bytes * self.share)

    def band(self, now: float, idle_s: float) -> tuple[int, int] | None:
        """The rows ``(y0, y1)`` (inclusive) to repaint now, or None.

        Args:
            now: the current time (any monotonic scale; only differences count).
            idle_s: how long the bus stays idle before the next content frame is due
                (``math.inf`` when nothing is due).
        """
        if self.credit < self.band_cost or now < self._not_before:
            return None
        needed = max(self._wire_s, self._send_s) * 1.5 + 0.002
        if idle_s < needed:
            return None
        y0 = self.next_band * self.band_rows
        return y0, min(self.height, y0 + self.band_rows) - 1

    def sent(self, now: float, seconds: float) -> None:
        """The band :meth:`band` offered was sent at ``now`` and took ``seconds``."""
        self.credit = max(0.0, self.credit - self.band_cost)
        self.next_band = (self.next_band + 1) % self.bands
        self._send_s = max(self._wire_s, seconds)
        self._not_before = now + self.min_sweep_s / self.bands

    def resize(self, width: int, height: int) -> None:
        """The drawing area changed (a new rotation): bands of the new size, from the top."""
        if (width, height) == (self.width, self.height):
            return
        fresh = RefreshBudget(
            width,
            height,
            share=self.share,
            min_sweep_s=self.min_sweep_s,
            wire_hz=self.wire_hz,
            max_transfer=self.max_transfer,
            band_rows=self._rows_asked,
        )
        fresh.credit = min(fresh.ceiling, self.credit)
        self.__dict__.update(fresh.__dict__)
