"""Playback statistics since start-up, as ``GET /api/player`` reports them.

The player thread records; any thread may take a snapshot. Counters are totals since the
player was made; rates and percentiles cover a recent window so they describe what the
panel does now, not an average over months.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = ["PlayerStats", "StatsSnapshot", "snapshot_from_dict"]

#: How many recent frames the percentiles, fps and host-time figures cover.
WINDOW = 600


@dataclass(frozen=True)
class StatsSnapshot:
    """A consistent copy of the statistics."""

    frames_shown: int
    frames_dropped: int
    bytes_sent: int
    transfers: int
    refresh_bytes: int
    full_frames: int
    transport_errors: int
    fps: float
    late_p50_ms: float
    late_p99_ms: float
    host_ms_per_frame: float
    wire_utilisation: float
    spi_clock_hz: int = 0
    spi_degraded: bool = False

    def to_dict(self) -> dict[str, int | float]:
        """The SPEC.md stats object (plus extras), JSON-ready."""
        return {
            "frames_shown": self.frames_shown,
            "frames_dropped": self.frames_dropped,
            "bytes_sent": self.bytes_sent,
            "transfers": self.transfers,
            "refresh_bytes": self.refresh_bytes,
            "fps": round(self.fps, 2),
            "late_p99_ms": round(self.late_p99_ms, 3),
            "late_p50_ms": round(self.late_p50_ms, 3),
            "full_frames": self.full_frames,
            "transport_errors": self.transport_errors,
            "host_ms_per_frame": round(self.host_ms_per_frame, 4),
            "wire_utilisation": round(self.wire_utilisation, 4),
            "spi_clock_hz": self.spi_clock_hz,
            "spi_degraded": self.spi_degraded,
        }


def snapshot_from_dict(d: dict[str, Any]) -> StatsSnapshot:
    """The inverse of :meth:`StatsSnapshot.to_dict` (statistics sent from another process)."""
    values: dict[str, Any] = {}
    for name in (f.name for f in fields(StatsSnapshot)):
        value = d.get(name, 0)
        values[name] = value if isinstance(value, int | float | bool) else 0
    return StatsSnapshot(**values)


class PlayerStats:
    """Accumulates what the player did. Thread-safe.

    ``wire_hz`` is the SPI clock used to turn bytes into wire time for the utilisation
    figure (bytes * 8 / wire_hz over the elapsed time of the window), until the bus reports
    the clock it really runs at (:meth:`bus`).
    """

    def __init__(self, wire_hz: float = 64_000_000.0) -> None:
        self.wire_hz = wire_hz
        self._lock = threading.Lock()
        self.frames_shown = 0
        self.frames_dropped = 0
        self.refresh_bytes = 0
        self.full_frames = 0
        self.transport_errors = 0
        self._bus_base: tuple[int, int] | None = None
        self._bus_now = (0, 0)
        self._clock_hz = 0
        self._degraded = False
        self._late: deque[float] = deque(maxlen=WINDOW)
        self._host: deque[float] = deque(maxlen=WINDOW)
        # (time shown, bus bytes after it) for fps and utilisation over the window.
        self._marks: deque[tuple[float, int]] = deque(maxlen=WINDOW)

    def bus(self, transfers: int, nbytes: int, *, clock_hz: int = 0, degraded: bool = False) -> None:
        """Record the display's running bus totals (since the display was opened: start-up).

        Everything on the bus counts, the init sequence and the first screens included; call
        :meth:`set_bus_base` to count from a later point instead. ``clock_hz`` is the clock the
        bus really runs at (0: unknown) and ``degraded`` whether it works around a driver fault.
        """
        with self._lock:
            self._bus_now = (transfers, nbytes)
            self._clock_hz = clock_hz
            self._degraded = degraded

    def set_bus_base(self, transfers: int, nbytes: int) -> None:
        """Count bus traffic from these totals on (e.g. a display shared with earlier users)."""
        with self._lock:
            self._bus_base = (transfers, nbytes)

    def frame(self, *, at: float, late_s: float, host_s: float, dropped: int, full: bool) -> None:
        """Record one frame shown at monotonic time ``at``, ``late_s`` after its deadline."""
        with self._lock:
            self.frames_shown += 1
            self.frames_dropped += dropped
            self.full_frames += int(full)
            self._late.append(max(0.0, late_s) * 1000.0)
            self._host.append(host_s * 1000.0)
            base = self._bus_base[1] if self._bus_base else 0
            self._marks.append((at, self._bus_now[1] - base))

    def drop(self, n: int) -> None:
        """Count frames skipped without showing another frame of the item (e.g. turn end)."""
        with self._lock:
            self.frames_dropped += n

    def refresh(self, nbytes: int) -> None:
        """Count bytes of a periodic whole-panel refresh the content did not need."""
        with self._lock:
            self.refresh_bytes += max(0, nbytes)

    def transport_error(self) -> None:
        """Count one transport error."""
        with self._lock:
            self.transport_errors += 1

    def reset_window(self) -> None:
        """Start the recent window afresh (lateness, host time, fps): measure from now on."""
        with self._lock:
            self._late.clear()
            self._host.clear()
            self._marks.clear()

    def snapshot(self) -> StatsSnapshot:
        """A consistent copy of everything."""
        with self._lock:
            base = self._bus_base or (0, 0)
            transfers = self._bus_now[0] - base[0]
            nbytes = self._bus_now[1] - base[1]
            late = np.fromiter(self._late, dtype=np.float64)
            host = np.fromiter(self._host, dtype=np.float64)
            marks = list(self._marks)
            shown, dropped = self.frames_shown, self.frames_dropped
            refresh, full, errors = self.refresh_bytes, self.full_frames, self.transport_errors
            clock_hz, degraded = self._clock_hz, self._degraded
        fps = util = 0.0
        if len(marks) >= 2 and marks[-1][0] > marks[0][0]:
            span = marks[-1][0] - marks[0][0]
            fps = (len(marks) - 1) / span
            util = (marks[-1][1] - marks[0][1]) * 8 / (clock_hz or self.wire_hz) / span
        return StatsSnapshot(
            frames_shown=shown,
            frames_dropped=dropped,
            bytes_sent=nbytes,
            transfers=transfers,
            refresh_bytes=refresh,
            full_frames=full,
            transport_errors=errors,
            fps=fps,
            late_p50_ms=float(np.percentile(late, 50)) if late.size else 0.0,
            late_p99_ms=float(np.percentile(late, 99)) if late.size else 0.0,
            host_ms_per_frame=float(np.mean(host)) if host.size else 0.0,
            wire_utilisation=min(1.0, util),
            spi_clock_hz=clock_hz,
            spi_degraded=degraded,
        )
