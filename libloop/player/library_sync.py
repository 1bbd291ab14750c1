"""Library sync: the playlist the player follows, told of changes rather than polling for them.

``LibrarySync`` keeps the playlist (the library's, minus banned ids) and the open frame
files: the current turn's, the next item's (opened and paged in ahead of its turn) and the
previous turn's (until the next one starts, reused if the same item plays again), so memory
does not grow with the library.

Changes reach it without a query per frame: a watcher thread blocks in
``library.wait_for_change`` (which wakes at once for changes made in this process and polls
SQLite's ``data_version`` for other processes), and another process can call
:meth:`LibrarySync.notify` (the player process's control channel does, on every change the
device makes). The loop then re-reads the playlist once. Only in the single-threaded mode
(``Player.step`` driven by a test, no watcher) is the generation compared on every turn.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from libloop.errors import LoopError
from libloop.player.ports import Frames, PlayItem, PlayLibrary
from libloop.player.schedule import Timeline

__all__ = ["PREFETCH_FRAMES", "RETRY_FAILED_S", "LibrarySync", "Turn"]

log = logging.getLogger(__name__)

#: An item that failed to open is retried after this long (or when the library changes).
RETRY_FAILED_S = 60.0
#: Frames of the next item paged in ahead of its turn.
PREFETCH_FRAMES = 8


@dataclass
class Turn:
    """The item being played: its file, its schedule and the last global frame shown."""

    item: PlayItem
    frames: Frames
    timeline: Timeline
    shown: int = -1


class LibrarySync:
    """The playlist, its changes and the open frame files (the loop thread's, but ``notify``).

    Args:
        library: the opened library.
        open_frames: opens a frame file.
        size: the display's drawing size now (files made for another size are skipped).
        fault: records one fault sentence.
    """

    def __init__(
        self,
        library: PlayLibrary,
        open_frames: Callable[[Path], Frames],
        size: Callable[[], tuple[int, int]],
        fault: Callable[[str], None],
    ) -> None:
        self.library = library
        self._open = open_frames
        self._size = size
        self._fault = fault
        self.items: list[PlayItem] = []
        self.failed: dict[str, float] = {}  # item id -> when it failed to open
        self.watching = False  # a watcher thread (or a control channel) reports changes
        self._changed = True  # read the playlist at the first turn
        self._gen_seen: int | None = None
        self._next: tuple[str, Frames] | None = None
        self._last: tuple[str, Frames] | None = None
        self.error_message = ""

    # --- changes ---------------------------------------------------------------------------

    def notify(self) -> None:
        """The library changed (any thread): the playlist is read again at the next turn."""
        self._changed = True

    def watch(self, stop: threading.Event, wake: threading.Event, timeout: float = 0.5) -> None:
        """The watcher thread's body: block on the library, notify and wake the loop on change."""
        since = self.library.generation
        while not stop.is_set():
            try:
                now = self.library.wait_for_change(since, timeout)
            except Exception:  # a closed library, say: poll the stop flag gently
                stop.wait(timeout)
                continue
            if now != since:
                since = now
                self._changed = True
                wake.set()

    def pull(self, banned: Callable[[set[str]], set[str]], *, force: bool = False) -> bool:
        """Read the playlist again if it changed (or ``force``); True when it was read.

        ``banned(present_ids)`` returns the ids to leave out.
        """
        changed = self._changed
        if not changed and not self.watching:
            gen = self.library.generation  # single-threaded mode: nobody tells us
            changed = gen != self._gen_seen
            self._gen_seen = gen
        if not changed and not force:
            return False
        if changed:
            self.failed.clear()  # a changed library may have repaired what failed
        self._changed = False  # before reading: a change from now on is seen next time
        playlist = list(self.library.playlist())
        leave_out = banned({it.id for it in playlist})
        self.items = [it for it in playlist if it.id not in leave_out]
        if self._next is not None and self._next[0] not in {it.id for it in self.items}:
            self.drop_next()
        return True

    def index_of(self, item_id: str) -> int | None:
        for i, it in enumerate(self.items):
            if it.id == item_id:
                return i
        return None

    # --- files -----------------------------------------------------------------------------

    def take(self, item: PlayItem, now: float) -> Frames | None:
        """The item's opened frame file (prefetched or kept, else opened now), or None (a fault)."""
        frames: Frames | None = None
        if self._next is not None and self._next[0] == item.id:
            frames, self._next = self._next[1], None
        elif self._last is not None and self._last[0] == item.id:
            frames, self._last = self._last[1], None
        else:
            try:
                frames = self._open(self.library.frame_path(item))
            except (LoopError, OSError) as exc:
                self.fail(item, f"cannot open it: {exc}", now)
                return None
        size = self._size()
        if (frames.width, frames.height) != tuple(size):
            w, h = size
            self.fail(
                item,
                f"its frames are {frames.width}x{frames.height} but the panel is {w}x{h} "
                "(made for another rotation); re-import it",
                now,
            )
            frames.close()
            return None
        return frames

    def fail(self, item: PlayItem, what: str, now: float) -> None:
        """Record that ``item`` cannot play (retried after ``RETRY_FAILED_S`` or a change)."""
        self.failed[item.id] = now
        message = f"skipped {item.name!r} ({item.id}): {what}"
        log.warning("%s", message)
        self._fault(message)

    def may_try(self, item: PlayItem, now: float) -> bool:
        failed_at = self.failed.get(item.id)
        return failed_at is None or now - failed_at >= RETRY_FAILED_S

    def prefetch_after(self, index: int, current_id: str) -> None:
        """Open and page in the item after ``index``, so its turn starts without waiting on disk."""
        n = len(self.items)
        if n < 2:
            return
        item = self.items[(index + 1) % n]
        if item.id == current_id or (self._next is not None and self._next[0] == item.id):
            return
        if item.id in self.failed:
            return
        self.drop_next()
        try:
            frames = self._open(self.library.frame_path(item))
        except (LoopError, OSError):
            return  # reported when its turn comes
        for i in range(min(frames.frame_count, PREFETCH_FRAMES)):
            frames.prefetch(i)
        self._next = (item.id, frames)

    def keep_last(self, item_id: str, frames: Frames) -> None:
        """Keep the ended turn's file until the next turn starts (reused if it plays again)."""
        self.close_last()
        self._last = (item_id, frames)

    def drop_next(self) -> None:
        if self._next is not None:
            self._next[1].close()
            self._next = None

    def close_last(self) -> None:
        if self._last is not None:
            self._last[1].close()
            self._last = None

    def close(self) -> None:
        self.close_last()
        self.drop_next()
