"""Sending: everything that reaches the panel goes through ``Sender``, under one lock.

What the panel holds is tracked as ``(item id, frame index)`` (or a screen's name, or None
when unknown). Every send happens under ``lock`` after checking the banned ids, which is what
makes ``Player.evict`` a guarantee: once an id is banned under that lock no frame of the item
can reach the panel. ``moved`` (a condition on the same lock) is notified whenever the panel's
content changes, so an evicting thread can wait for the panel to move off its item.

A frame is brought up with as few bytes as the frame file allows: the dirty regions when the
panel holds the frame before it; after dropped frames, a cover of the skipped frames' regions
that never costs more than their bounding box (no spiral of late whole frames); a whole frame
only when the content is unknown. The periodic refresh goes out a band at a time in idle bus
time, within its budget (``refresh.RefreshBudget``).

An optional ``FramePublisher`` brackets every change of the panel (``begin``/``end``), which is
how a shared framebuffer tells its readers that a frame is complete (see ``framebuffer``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from libloop.errors import FrameFileError, TransportError
from libloop.player.ports import Frames, PlayDisplay
from libloop.player.refresh import RefreshBudget
from libloop.player.schedule import catch_up_rects
from libloop.player.stats import PlayerStats

__all__ = ["EMPTY", "ERROR", "REINIT_AFTER", "FramePublisher", "Sender"]

log = logging.getLogger(__name__)

#: Consecutive transport errors after which the display is re-initialised.
REINIT_AFTER = 3
EMPTY = "<empty screen>"
ERROR = "<error screen>"

Panel = tuple[str, int] | None


def _region_rects(frames: Frames, i: int) -> list[tuple[int, int, int, int, int]]:
    """``(x0, y0, x1, y1, bytes)`` of frame ``i``'s regions: from the file's table when it has one
    (a v1 or v2 frame file), else from its regions."""
    table = getattr(frames, "region_rects", None)
    if table is not None:
        return list(table(i))
    rects = getattr(frames, "rects", None)  # a v2 file: its table, nothing decoded
    if rects is not None:
        return [(r.x0, r.y0, r.x1, r.y1, 2 * (r.x1 - r.x0 + 1) * (r.y1 - r.y0 + 1)) for r in rects(i)]
    return [(r.x0, r.y0, r.x1, r.y1, 2 * (r.x1 - r.x0 + 1) * (r.y1 - r.y0 + 1)) for r in frames.regions(i)]


class FramePublisher(Protocol):
    """Told before and after every change of what the panel shows."""

    def begin(self) -> None: ...

    def end(self) -> None: ...


class _NoPublisher:
    def begin(self) -> None:
        pass

    def end(self) -> None:
        pass


class Sender:
    """The display, what it holds, the bans, the refresh budget and the bus statistics.

    Args:
        display: the opened display.
        stats: where frames, drops, refresh bytes and bus totals are counted.
        refresh: the refresh budget (None: no periodic refresh).
        publisher: told around every change of the panel.
        on_error: called with each transport error; None re-raises it to the loop.
        on_fault: called with each fault sentence (to keep in the status).
    """

    def __init__(
        self,
        display: PlayDisplay,
        stats: PlayerStats,
        *,
        refresh: RefreshBudget | None,
        publisher: FramePublisher | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_fault: Callable[[str], None] | None = None,
    ) -> None:
        self.display = display
        self.stats = stats
        self.refresh = refresh
        self.publisher: FramePublisher = publisher or _NoPublisher()
        self.on_error = on_error
        self.on_fault = on_fault
        self.lock = threading.Lock()
        self.moved = threading.Condition(self.lock)  # notified when the panel changes
        self.panel: Panel = None  # what the panel holds; None = unknown
        self.banned: dict[str, float] = {}  # evicted id -> when
        self.ban_lock = threading.Lock()
        self.errors_in_row = 0
        self.backlight_pending = True
        self.brightness = 100  # the person's level
        #: The level the backlight is set to (the person's, or the night's dim level).
        self.level: Callable[[], int] = lambda: self.brightness

    # --- bans ------------------------------------------------------------------------------

    def ban(self, item_id: str, now: float) -> None:
        """No frame of ``item_id`` is sent from now on (until :meth:`unban`)."""
        with self.ban_lock:
            self.banned[item_id] = now

    def unban(self, item_id: str) -> None:
        with self.ban_lock:
            self.banned.pop(item_id, None)

    def banned_ids(self, present: set[str], now: float, memory_s: float) -> set[str]:
        """The banned ids, forgetting those gone from the library for ``memory_s`` seconds."""
        with self.ban_lock:
            for item_id, since in list(self.banned.items()):
                if item_id not in present and now - since > memory_s:
                    del self.banned[item_id]
            return set(self.banned)

    def on_item(self) -> str | None:
        """The item id of what the panel holds, or None for a screen or unknown content."""
        panel = self.panel
        if panel is None or panel[0] in (EMPTY, ERROR):
            return None
        return panel[0]

    def set_unknown(self) -> None:
        """The panel's content is unknown (redrawn whole next time)."""
        with self.moved:
            self.panel = None
            self.moved.notify_all()

    # --- content ---------------------------------------------------------------------------

    def frame(self, item_id: str, frames: Frames, k: int, *, now: float, late: float, dropped: int) -> bool:
        """Bring the panel to frame ``k`` of ``frames`` with as few bytes as it can.

        Returns False when nothing was sent because the item is banned.

        Raises:
            FrameFileError: the file could not be read (nothing was sent; the panel is as it was).
        """
        cpu0 = time.thread_time()
        n = frames.frame_count
        full = False
        error: TransportError | None = None
        with self.lock:
            if item_id in self.banned:
                return False
            panel = self.panel
            before = self.display.stats
            self.publisher.begin()
            try:
                if panel is None or panel[0] != item_id:
                    full = True
                else:
                    steps = (k - panel[1]) % n
                    if steps == 1:
                        for r in frames.regions(k):
                            self.display.blit(r.x0, r.y0, r.x1, r.y1, r.data)
                    elif steps > 1:
                        self._catch_up(frames, panel[1], k)
                if full:
                    self.display.show_frame(frames.frame(k))
                self.panel = (item_id, k)
            except TransportError as exc:
                self.panel = None
                error = exc
            finally:
                self.publisher.end()
                self.moved.notify_all()
            after = self.display.stats
        self._record_bus(after)
        if error is not None:
            self.stats.drop(dropped + 1)
            self.transport_error(error)
            return True
        self.errors_in_row = 0
        if self.refresh is not None:
            self.refresh.earn(after.bytes - before.bytes)
        self.stats.frame(at=now, late_s=late, host_s=time.thread_time() - cpu0, dropped=dropped, full=full)
        self.backlight_if_pending()
        return True

    def _catch_up(self, frames: Frames, shown: int, k: int) -> None:
        """After dropped frames: redraw a cover of every region that changed since ``shown``."""
        n = frames.frame_count
        # The tables say what changed; pixels are read only for what is sent.
        chain = [_region_rects(frames, (shown + j) % n) for j in range(1, (k - shown) % n + 1)]
        rects = catch_up_rects(([box[:4] for box in boxes] for boxes in chain), frames.width, frames.height)
        if not rects:
            return
        whole = np.frombuffer(frames.frame(k), dtype=np.uint8).reshape(frames.height, frames.width, 2)
        for x0, y0, x1, y1 in rects:
            part = np.ascontiguousarray(whole[y0 : y1 + 1, x0 : x1 + 1])
            self.display.blit(x0, y0, x1, y1, part.reshape(-1).data)

    def whole(self, key: tuple[str, int], data: Any, *, item: bool) -> bool:
        """Draw a whole frame (``data``, or a callable returning it) and record the panel as ``key``.

        ``item`` tells that ``key[0]`` is an item id (checked against the bans). Returns False
        when nothing was sent (banned).

        Raises:
            FrameFileError: ``data`` could not be read.
        """
        error: TransportError | None = None
        with self.lock:
            if item and key[0] in self.banned:
                return False
            before = self.display.stats
            self.publisher.begin()
            try:
                self.display.show_frame(data() if callable(data) else data)
                self.panel = key
            except TransportError as exc:
                self.panel = None
                error = exc
            finally:
                self.publisher.end()
                self.moved.notify_all()
            after = self.display.stats
        self._record_bus(after)
        if error is not None:
            self.transport_error(error)
            return True
        if self.refresh is not None:
            self.refresh.earn(after.bytes - before.bytes)
        self.backlight_if_pending()
        return True

    def _record_bus(self, s: Any) -> None:
        # Real buses also say what clock they run at and whether they work around a fault.
        self.stats.bus(
            s.transfers, s.bytes, clock_hz=getattr(s, "clock_hz", 0), degraded=getattr(s, "degraded", False)
        )

    # --- the periodic refresh -----------------------------------------------------------------

    def band(self, key: tuple[str, int], source: Callable[[], memoryview], now: float, idle_s: float) -> bool:
        """Repaint one band of what the panel holds, if the budget and ``idle_s`` allow.

        ``key`` is what the panel must hold for ``source()`` (its whole frame) to be right.
        Returns True when a band was sent.
        """
        budget = self.refresh
        if budget is None or self.panel != key:
            return False
        w, h = self.display.size
        budget.resize(w, h)
        rows = budget.band(now, idle_s)
        if rows is None:
            return False
        y0, y1 = rows
        t0 = time.monotonic()
        error: TransportError | None = None
        with self.lock:
            if self.panel != key or (key[0] in self.banned):
                return False
            try:
                data = source()[y0 * w * 2 : (y1 + 1) * w * 2]
            except FrameFileError:
                return False  # the frame's own send reports it
            before = self.display.stats
            self.publisher.begin()
            try:
                self.display.blit(0, y0, w - 1, y1, data)
            except TransportError as exc:
                self.panel = None
                error = exc
            finally:
                self.publisher.end()
                self.moved.notify_all()
            after = self.display.stats
        budget.sent(now, time.monotonic() - t0)
        self._record_bus(after)
        if error is not None:
            self.transport_error(error)
        else:
            self.stats.refresh(after.bytes - before.bytes)
        return True

    # --- panel state -------------------------------------------------------------------------

    def backlight_if_pending(self) -> None:
        if self.backlight_pending:
            self.backlight_pending = False
            self.guard(lambda: self.display.set_brightness(self.level()))

    def guard(self, op: Callable[[], None], *, unknown_after: bool = False) -> None:
        """Run a display operation; a transport error is handled like one during a frame.

        ``unknown_after``: the operation leaves the panel's content unknown (sleep).
        """
        error: TransportError | None = None
        with self.lock:
            self.publisher.begin()
            try:
                op()
            except TransportError as exc:
                error = exc
            finally:
                if error is not None or unknown_after:
                    self.panel = None
                self.publisher.end()
                self.moved.notify_all()
        if error is not None:
            self.transport_error(error)

    def transport_error(self, exc: TransportError) -> None:
        """Count it, report it; the panel's content is already marked unknown."""
        self.stats.transport_error()
        self.errors_in_row += 1
        self.fault(f"transport error: {exc}")
        log.warning("transport error: %s", exc)
        if self.errors_in_row >= REINIT_AFTER:
            self.errors_in_row = 0
            self.backlight_pending = True
            try:
                self.display.reinit()
            except TransportError as again:
                log.warning("re-initialising the display failed: %s", again)
        if self.on_error is None:
            raise exc
        self.on_error(exc)

    def fault(self, message: str) -> None:
        if self.on_fault is not None:
            self.on_fault(message)
