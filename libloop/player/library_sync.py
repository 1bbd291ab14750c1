"""Library sync: the playlist the player follows, told of changes rather than polling for them.

``LibrarySync`` keeps the playlist (the library's, minus banned ids), its order (the play
order, or shuffled rounds: ``shuffle.ShuffleRounds``) and the open frame files: the current
turn's, the next item's (opened and paged in ahead of its turn) and the previous turn's (until
the next one starts, reused if the same item plays again), so memory does not grow with the
library. A file is reused only while the item's path is the same (a re-render swaps in another
file) and the file was not replaced under it; one made for another panel shape (the rotation
changed) plays fitted on the fly (``refit.FittedFrames``) until its re-render is done.

Changes reach it without a query per frame: a watcher thread blocks in
``library.wait_for_change`` (which wakes at once for changes made in this process and polls
SQLite's ``data_version`` for other processes), and another process can call
:meth:`LibrarySync.notify` (the player process's control channel does, on every change the
device makes). The loop then re-reads the playlist once. Only in the single-threaded mode
(``Player.step`` driven by a test, no watcher) is the generation compared on every turn.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from libloop.errors import LoopError
from libloop.player.ports import Frames, PlayItem, PlayLibrary
from libloop.player.refit import FittedFrames
from libloop.player.schedule import Timeline
from libloop.player.shuffle import ShuffleRounds

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
    path: Path | None = None  # the frame file it plays (a re-render swaps in another)


class LibrarySync:
    """The playlist, its changes and the open frame files (the loop thread's, but ``notify``).

    Args:
        library: the opened library.
        open_frames: opens a frame file.
        size: the display's drawing size now (files made for another size are fitted).
        fault: records one fault sentence.
        background: the colour of the bars around fitted frames.
        reopened: told the id of an item whose file was opened afresh (it may differ from what
            the panel got).
    """

    def __init__(
        self,
        library: PlayLibrary,
        open_frames: Callable[[Path], Frames],
        size: Callable[[], tuple[int, int]],
        fault: Callable[[str], None],
        *,
        background: Callable[[], tuple[int, int, int]] = lambda: (0, 0, 0),
        reopened: Callable[[str], None] = lambda item_id: None,
    ) -> None:
        self.library = library
        self._open = open_frames
        self._size = size
        self._fault = fault
        self._background = background
        self._reopened = reopened
        self.shuffle: ShuffleRounds | None = None
        self.items: list[PlayItem] = []
        self.failed: dict[str, float] = {}  # item id -> when it failed to open
        self.watching = False  # a watcher thread (or a control channel) reports changes
        self._changed = True  # read the playlist at the first turn
        self._gen_seen: int | None = None
        self._next: tuple[str, Frames, Path] | None = None  # the next item, opened ahead
        self._last: tuple[str, Frames, Path | None] | None = None  # the previous turn's
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

    def pull(self, banned: Callable[[set[str]], set[str]], *, force: bool = False) -> tuple[bool, bool]:
        """Read the playlist again if it changed (or ``force``): ``(read, the library changed)``.

        ``banned(present_ids)`` returns the ids to leave out.
        """
        changed = self._changed
        if not changed and not self.watching:
            gen = self.library.generation  # single-threaded mode: nobody tells us
            changed = gen != self._gen_seen
            self._gen_seen = gen
        if not changed and not force:
            return False, False
        if changed:
            self.failed.clear()  # a changed library may have repaired what failed
        self._changed = False  # before reading: a change from now on is seen next time
        playlist = list(self.library.playlist())
        leave_out = banned({it.id for it in playlist})
        self.items = [it for it in playlist if it.id not in leave_out]
        ids = [it.id for it in self.items]
        if self.shuffle is not None:
            self.shuffle.sync(ids)
        nxt = self._next
        if nxt is not None:
            index = self.index_of(nxt[0])
            if index is None or nxt[2] != self.library.frame_path(self.items[index]):
                self.drop_next()  # deleted, or re-rendered into another file
        return True, changed

    def index_of(self, item_id: str) -> int | None:
        for i, it in enumerate(self.items):
            if it.id == item_id:
                return i
        return None

    # --- order -------------------------------------------------------------------------------

    def set_shuffle(self, on: bool, rng: random.Random, current: str | None) -> None:
        """Play in shuffled rounds drawn from ``rng``, or in the play order again."""
        if on and self.shuffle is None:
            self.shuffle = ShuffleRounds(rng)
            self.shuffle.sync([it.id for it in self.items])
            if current is not None:
                self.shuffle.started(current)
            self.drop_next()
        elif not on and self.shuffle is not None:
            self.shuffle = None
            self.drop_next()

    def following(self, index: int) -> int:
        """The playlist index of the item to play after the one at ``index``."""
        if self.shuffle is None or not self.items:
            return index + 1
        chosen = self.shuffle.peek()
        found = self.index_of(chosen) if chosen is not None else None
        return found if found is not None else index + 1

    def preceding(self, index: int) -> int:
        """The index of the item before the one at ``index`` (in shuffle: the one played before)."""
        if self.shuffle is None:
            return index - 1
        earlier = self.shuffle.previous([it.id for it in self.items])
        found = self.index_of(earlier) if earlier is not None else None
        return found if found is not None else index

    def started(self, item_id: str) -> None:
        """``item_id`` began its turn (shuffled rounds count it)."""
        if self.shuffle is not None:
            self.shuffle.started(item_id)

    # --- files -----------------------------------------------------------------------------

    def take(self, item: PlayItem, now: float) -> tuple[Frames, Path] | None:
        """The item's frame file and its path (prefetched or kept, else opened now), or None (a fault)."""
        frames: Frames | None = None
        path = self.library.frame_path(item)
        if self._next is not None and self._next[0] == item.id and self._next[2] == path:
            frames, self._next = self._next[1], None
        elif self._last is not None and self._last[0] == item.id and self._last[2] == path:
            frames, self._last = self._last[1], None
        changed = getattr(frames, "changed_on_disk", None)
        if frames is not None and changed is not None and changed():
            frames.close()  # replaced or deleted since it was opened: what the path names now counts
            frames = None
        if frames is None:
            try:
                frames = self._open(path)
            except (LoopError, OSError) as exc:
                self.fail(item, f"cannot open it: {exc}", now)
                return None
            self._reopened(item.id)
        w, h = self._size()
        if (frames.width, frames.height) != (w, h):
            # Made for the other orientation (re-rendering, or imported before originals were
            # kept): fitted on the fly until a re-rendered file is swapped in.
            frames = FittedFrames(frames, w, h, self._background())
        return frames, path

    def fail(self, item: PlayItem, what: str, now: float) -> None:
        """Record that ``item`` cannot play (retried after ``RETRY_FAILED_S`` or a change)."""
        self.failed[item.id] = now
        message = f"skipped {item.name!r} ({item.id}): {what}"
        log.warning("%s", message)
        self._fault(message)

    def may_try(self, item: PlayItem, now: float) -> bool:
        failed_at = self.failed.get(item.id)
        return failed_at is None or now - failed_at >= RETRY_FAILED_S

    def prefetch(self, index: int, current_id: str) -> None:
        """Open and page in the item at ``index`` (the next to play), so its turn starts at once."""
        n = len(self.items)
        if n < 2:
            return
        item = self.items[index % n]
        if item.id == current_id or (self._next is not None and self._next[0] == item.id):
            return
        if item.id in self.failed:
            return
        self.drop_next()
        path = self.library.frame_path(item)
        try:
            frames = self._open(path)
        except (LoopError, OSError):
            return  # reported when its turn comes
        for i in range(min(frames.frame_count, PREFETCH_FRAMES)):
            frames.prefetch(i)
        self._next = (item.id, frames, path)

    def keep_last(self, item_id: str, frames: Frames, path: Path | None) -> None:
        """Keep the ended turn's file until the next turn starts (reused if it plays again)."""
        self.close_last()
        self._last = (item_id, frames, path)

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
