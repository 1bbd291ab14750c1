"""The player: plays the library's playlist on the display, forever, on absolute deadlines.

One loop (``step``) does everything, on the player thread (``start``) or, in tests, on the
caller's thread with a fake clock (``step`` / ``run_until``). Each turn of the loop it:

1. feeds the ``heartbeat`` hook and clears its wake event;
2. applies the controls queued by other threads (``controls``);
3. re-reads the playlist if the library changed (``library_sync``: a watcher thread or the
   player process's control channel says so; the loop itself does no query for it);
4. sends the frame that is due (``sending``) — or, while the bus is idle before the next
   deadline, one band of the periodic refresh if its budget allows (``refresh``) — or sleeps
   until the next deadline, interruptibly. Deadlines and drops are ``schedule.Timeline``'s.

The modules, each small enough to read in one sitting: ``schedule`` (the timeline: deadlines,
drops, turn length, catch-up rectangles), ``sending`` (the display, what the panel holds, the
bans, the send lock), ``refresh`` (the band budget), ``library_sync`` (playlist, changes,
open files), ``controls`` (the control queue and power), ``changes`` (the status counter other
faces wait on), ``stats`` and ``screens``.

Live settings (``settings``, a callable giving ``PlaySettings``) are read again whenever the
library changes (and on ``apply_settings``): a new rotation turns the panel at once (MADCTL)
and frame files of the old shape play fitted on the fly until their re-render swaps a new file
in; shuffle plays rounds; stills stay on for ``still_seconds`` or the item's ``seconds``
(``schedule.turn_plan``); the night schedule sleeps or dims the panel.

Deleting an item: call ``player.evict(id)`` first, then ``library.delete(id)``; if the delete
fails, ``player.unban(id)`` (``evict_and_delete`` does all three). Once ``evict`` has banned
the id under the send lock no frame of the item can reach the panel, and it returns only
after the panel shows something else.
"""

from __future__ import annotations

import collections
import functools
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from libloop.clock import Clock, MonotonicClock
from libloop.color import rgb888_to_rgb565
from libloop.errors import FrameFileError, ItemNotFound, LoopError, PlayerError
from libloop.player.changes import Changes
from libloop.player.controls import Command, Controls
from libloop.player.library_sync import LibrarySync, Turn
from libloop.player.night import NightSchedule
from libloop.player.ports import (
    DeletingLibrary,
    Evicting,
    Frames,
    PlayDisplay,
    PlayerStatus,
    PlayItem,
    PlayLibrary,
    PlaySettings,
    open_frame_file,
)
from libloop.player.refresh import RefreshBudget
from libloop.player.schedule import Timeline, turn_plan
from libloop.player.screens import empty_screen, error_screen
from libloop.player.sending import EMPTY, ERROR, FramePublisher, Sender
from libloop.player.stats import PlayerStats, StatsSnapshot

__all__ = ["Player", "PlayerStatus", "evict_and_delete"]

log = logging.getLogger(__name__)

#: Longest the loop waits when idle (paused, asleep, empty): how often the heartbeat beats.
IDLE_TICK = 1.0
#: How long an evicted id stays banned after it has left the playlist (ids are never reused).
BAN_MEMORY_S = 60.0


class Player(Controls):
    """Plays ``library.playlist()`` on ``display``; see the module docstring.

    Args:
        display: an opened display.
        library: an opened library.
        clock: the monotonic clock deadlines are taken from (a FakeClock in tests).
        dashboard_url: shown as text and QR code on the empty screen.
        refresh_interval: the shortest time one refresh sweep over the whole panel takes.
        refresh_share: the refresh's budget per content byte (at most a tenth by default).
        night: when the panel sleeps on its own.
        on_fatal: called (on the player thread) with the exception that stopped the loop.
        on_error: called with each transport error; without it a transport error ends the loop
            (and reaches ``on_fatal``) so a supervisor can restart the hardware.
        heartbeat: called every turn of the loop (at least every second), to prove liveness.
        on_fault: called with each fault's sentence (an item skipped, a transport error).
        open_frames: opens a frame file (tests may substitute one); by default v1 or v2, with
            decode-ahead on the real clock.
        wire_hz: SPI clock, for the wire-utilisation figure and the refresh's wire time.
        publisher: told before and after every change of the panel (a shared framebuffer).
        on_version: called with each new :attr:`version` (on the loop thread; keep it cheap).
        settings: the live settings (rotation, shuffle, still time, night), read at start and
            whenever the library changes; without it, ``night`` and the defaults hold.
        shuffle_rng: the randomness of shuffled rounds (seeded in tests).
    """

    def __init__(
        self,
        display: PlayDisplay,
        library: PlayLibrary,
        *,
        clock: Clock | None = None,
        dashboard_url: str = "",
        refresh_interval: float = 5.0,
        refresh_share: float = 0.1,
        night: NightSchedule | None = None,
        on_fatal: Callable[[BaseException], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        heartbeat: Callable[[], None] | None = None,
        on_fault: Callable[[str], object] | None = None,
        open_frames: Callable[[Path], Frames] | None = None,
        wire_hz: float = 64_000_000.0,
        publisher: FramePublisher | None = None,
        on_version: Callable[[int], None] | None = None,
        settings: Callable[[], PlaySettings] | None = None,
        shuffle_rng: random.Random | None = None,
    ) -> None:
        self.display = display
        self.library = library
        self.clock = clock or MonotonicClock()
        self.dashboard_url = dashboard_url
        self.refresh_interval = refresh_interval
        self.on_fatal = on_fatal
        self.heartbeat = heartbeat
        self.on_fault = on_fault
        self._stats = PlayerStats(wire_hz)
        self._faults: collections.deque[str] = collections.deque(maxlen=20)
        w, h = display.size
        bus = getattr(display, "bus", None)
        refresh = RefreshBudget(
            w,
            h,
            share=refresh_share,
            min_sweep_s=refresh_interval,
            wire_hz=wire_hz,
            max_transfer=int(getattr(bus, "max_transfer", 4096) or 4096),
        )
        self._sender = Sender(
            display,
            self._stats,
            refresh=refresh if refresh_share > 0 else None,
            publisher=publisher,
            on_error=on_error,
            on_fault=self._record_fault,
        )
        self._sender.level = self._level
        # On the real clock v2 files decode ahead on a worker thread; on a simulated clock time
        # stands still while the loop works, so they decode on the loop's thread, deterministically.
        decode_ahead = isinstance(self.clock, MonotonicClock)
        self._sync = LibrarySync(
            library,
            open_frames or functools.partial(open_frame_file, decode_ahead=decode_ahead),
            lambda: display.size,
            self._record_fault,
            background=lambda: self._play.background,
            reopened=self._reopened,
        )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._commands: collections.deque[Command] = collections.deque()
        self._thread: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        self._fatal: BaseException | None = None
        # Loop-thread state.
        self._index = -1  # position of the current turn's item in the playlist
        self._turn: Turn | None = None
        self._paused = False
        self._manual_sleep = False
        self._night = night
        self._night_override_until = float("-inf")
        self._asleep = False  # the panel is asleep now
        self._screen: str | None = None  # EMPTY / ERROR when a screen is up
        self._screen_cache: dict[str, memoryview] = {}
        self._forced_error: str | None = None  # the supervisor's emergency message, until cleared
        self._settings_source = settings
        self._play = PlaySettings(night=night)
        self._shuffle_rng = shuffle_rng or random.Random()
        self._dimmed = False  # the night dims the backlight now
        self._change_counter = Changes(on_version)
        self._changes = self._change_counter.cond  # what a waiter holds while it checks the counter

    @property
    def on_error(self) -> Callable[[BaseException], None] | None:
        return self._sender.on_error

    @on_error.setter
    def on_error(self, callback: Callable[[BaseException], None] | None) -> None:
        self._sender.on_error = callback

    # --- running ------------------------------------------------------------------------

    def start(self) -> None:
        """Run the loop on its own thread (and a watcher for library changes)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._sync.watching = True
        self._sync.notify()
        self._thread = threading.Thread(target=self._run, name="loop-player", daemon=True)
        self._watcher = threading.Thread(
            target=self._sync.watch, args=(self._stop, self._wake), name="loop-player-watch", daemon=True
        )
        self._thread.start()
        self._watcher.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the loop thread and close the open files.

        Returns False when the loop thread did not end within ``timeout`` (it is stuck in a
        call; its files are left to it).
        """
        self._stop.set()
        self._wake.set()
        loop = self._thread
        for t in (self._thread, self._watcher):
            if t is not None and t is not threading.current_thread():
                t.join(timeout)
        self._thread = self._watcher = None
        self._sync.watching = False
        if loop is not None and loop.is_alive() and loop is not threading.current_thread():
            return False
        self._end_turn()
        self._sync.close()
        return True

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.step()
        except BaseException as exc:
            self._fatal = exc
            log.exception("the player loop stopped")
            self._faults.append(f"player stopped: {exc}")
            self._note_changes()
            if self.on_fatal is not None:
                self.on_fatal(exc)

    def notify_change(self) -> None:
        """The library changed (told by another process): the loop re-reads it at once."""
        self._sync.notify()
        self._wake.set()

    def run_until(self, t: float) -> None:
        """Run the loop on this thread until the clock reaches ``t`` (tests, with a FakeClock)."""
        while self.clock.monotonic() < t:
            self.step()

    def run_frames(self, n: int) -> None:
        """Run the loop on this thread until ``n`` more frames have been shown."""
        target = self._stats.frames_shown + n
        while self._stats.frames_shown < target:
            self.step()

    # --- delete guarantee ------------------------------------------------------------------

    def ban(self, item_ids: Iterable[str]) -> None:
        """Never play these items again (evicted in an earlier run; see ``evict``), without waiting."""
        now = self.clock.monotonic()
        for item_id in item_ids:
            self._sender.ban(item_id, now)
        self.notify_change()

    def unban(self, item_id: str) -> None:
        """Let an evicted item play again (the delete that followed ``evict`` failed)."""
        self._sender.unban(item_id)
        self.notify_change()

    def evict(self, item_id: str, timeout: float = 2.0) -> None:
        """Take an item off the panel for good; call before deleting it from the library.

        When this returns, no frame of the item can reach the panel any more, and the panel
        shows something else (the next item's first whole frame, or the empty screen) — or is
        asleep with its backlight off, in which case it is redrawn before the backlight returns.

        Raises:
            PlayerError: the panel did not move off the item within ``timeout`` seconds.
        """
        give_up = time.monotonic() + timeout
        sender = self._sender
        # Ban first, then take the send lock: a send that starts after this sees the ban, and
        # once the lock is ours no send of the item is in flight. A hung send holds the lock,
        # so it is taken with the timeout, never blocking the caller for ever.
        sender.ban(item_id, self.clock.monotonic())
        self.notify_change()
        if not sender.lock.acquire(timeout=timeout):
            raise self._evict_timeout(item_id, timeout)
        try:
            turn = self._turn
            current = (sender.panel is not None and sender.panel[0] == item_id) or (
                turn is not None and turn.item.id == item_id
            )
        finally:
            sender.lock.release()
        if not current:
            return
        if self.running and threading.current_thread() is not self._thread:
            ok = sender.moved.acquire(timeout=max(0.0, give_up - time.monotonic()))
            if ok:
                try:
                    ok = sender.moved.wait_for(
                        lambda: self._off_panel(item_id), max(0.0, give_up - time.monotonic())
                    )
                finally:
                    sender.moved.release()
        else:
            for _ in range(16):
                if self._off_panel(item_id):
                    break
                self.step()
            ok = self._off_panel(item_id)
        if not ok:
            raise self._evict_timeout(item_id, timeout)

    @staticmethod
    def _evict_timeout(item_id: str, timeout: float) -> PlayerError:
        return PlayerError(
            f"The player did not move off item {item_id!r} within {timeout:g} s; "
            "check the display's health and try again."
        )

    def _off_panel(self, item_id: str) -> bool:
        if self._asleep:
            return True
        panel = self._sender.panel
        return panel is not None and panel[0] != item_id

    # --- status ----------------------------------------------------------------------------

    def status(self) -> PlayerStatus:
        """The state, the current item and the statistics (any thread)."""
        turn = self._turn
        error = self._fatal is not None or self._screen == ERROR
        if self._asleep:
            state = "sleeping"
        elif turn is None or error:
            # SPEC's four states: the error screen is a screen with nothing playing, and the
            # `error` field says why.
            state = "empty"
        elif self._paused:
            state = "paused"
        else:
            state = "playing"
        frame = turn.timeline.frame_of(max(turn.shown, 0)) if turn is not None else None
        message = self._forced_error or self._sync.error_message or str(self._fatal or "") or None
        return PlayerStatus(
            state=state,
            current=turn.item.id if turn is not None else None,
            current_name=turn.item.name if turn is not None else None,
            frame=frame,
            brightness=self._sender.brightness,
            night={
                **self._night.to_dict(),
                "active": (self._asleep and not self._manual_sleep) or self._dimmed,
            }
            if self._night is not None
            else None,
            faults=list(self._faults),
            stats=self._stats.snapshot(),
            on_panel=self._sender.on_item(),
            extra={"error": message} if error else {},
        )

    @property
    def stats(self) -> StatsSnapshot:
        """The statistics alone."""
        return self._stats.snapshot()

    def reset_stats_window(self) -> None:
        """Lateness, fps and host time from now on (the totals go on counting)."""
        self._stats.reset_window()

    @property
    def version(self) -> int:
        """A number that grows whenever the state, the current item or the brightness changes."""
        return self._change_counter.current()

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Wait until :attr:`version` differs from ``since`` (or ``timeout`` passes); return it.

        For faces that mirror the player's state (MQTT): they wait here on their own thread,
        and the loop only bumps a counter, so a slow face never slows playback.
        """
        return self._change_counter.wait(since, timeout)

    def _note_changes(self) -> None:
        turn = self._turn
        self._change_counter.note(
            (
                self._asleep,
                self._paused,
                self._screen,
                self._fatal is not None,
                turn.item.id if turn is not None else None,
                turn.item.name if turn is not None else None,
                self._sender.brightness,
                self._dimmed,
                self._forced_error or self._sync.error_message,
            )
        )

    def _record_fault(self, message: str) -> None:
        self._faults.append(message)
        if self.on_fault is not None:
            try:
                self.on_fault(message)
            except Exception:  # reporting must never stop the loop
                log.exception("the fault callback failed")

    # --- the loop ---------------------------------------------------------------------------

    def step(self) -> None:
        """One turn of the loop: controls, changes, then one frame sent, one band or one wait."""
        try:
            self._step()
        finally:
            self._note_changes()

    def _step(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat()
        self._wake.clear()
        self._run_commands()
        self._sync_library()
        now = self.clock.monotonic()
        self._apply_power(now)
        if self._asleep:
            self._idle(now)
            return
        if self._forced_error is not None or (
            self._turn is None and not self._begin_turn(self._sync.following(self._index), now)
        ):
            self._show_screen_or_idle(now)
            return
        turn = self._turn
        assert turn is not None
        if self._paused:
            self._hold(turn, now)
            return
        due = turn.timeline.due(turn.shown, now)
        if due is None:
            nxt = turn.timeline.deadline(turn.shown + 1)
            if self._refresh_band(turn, now, nxt - now):
                return
            # Long frames (stills) are slept in slices so the heartbeat keeps beating.
            self._note_changes()  # before waiting, so a change is told at once, not after the wait
            self.clock.sleep_until(min(nxt, now + IDLE_TICK), self._wake)
            return
        end = turn.timeline.end_index
        if due.index >= end:
            self._stats.drop(max(0, end - turn.shown - 1))
            self._end_turn()
            boundary = turn.timeline.deadline(end)
            if not self._begin_turn(self._sync.following(self._index), boundary):
                self._show_screen_or_idle(now)
            return
        try:
            decoded = self._decoded(turn.frames, turn.timeline.frame_of(due.index))
        except FrameFileError as exc:
            self._file_failed(turn, exc, now)
            return
        if not decoded:
            # The decoder is behind: wait for it until the next frame is due (then this one is
            # dropped) rather than stall the schedule.
            self.clock.sleep_until(min(turn.timeline.deadline(due.index + 1), now + IDLE_TICK), self._wake)
            return
        self._send_frame(turn, due.index, due.dropped, now)

    def _decoded(self, frames: Frames, k: int) -> bool:
        """Whether frame ``k`` can be sent now (a v2 file's decode-ahead may still be on it)."""
        ready = getattr(frames, "ready", None)
        return True if ready is None else bool(ready(k, self._wake))

    def _send_frame(self, turn: Turn, g: int, dropped: int, now: float) -> None:
        k = turn.timeline.frame_of(g)
        late = now - turn.timeline.deadline(g)
        try:
            sent = self._sender.frame(turn.item.id, turn.frames, k, now=now, late=late, dropped=dropped)
        except FrameFileError as exc:
            self._file_failed(turn, exc, now)
            return
        if not sent:
            self._sync.notify()  # banned: the next step moves on
            return
        turn.shown = g
        n = turn.frames.frame_count
        # Page in the next frame while this one is on the glass — in the first pass only: after
        # it the file's pages are in the page cache, and asking again is a syscall for nothing.
        if n > 1 and g + 1 < n:
            turn.frames.prefetch(k + 1)

    def _refresh_band(self, turn: Turn, now: float, idle_s: float) -> bool:
        k = turn.timeline.frame_of(max(turn.shown, 0))
        return self._sender.band((turn.item.id, k), lambda: turn.frames.frame(k), now, idle_s)

    def _idle(self, now: float) -> None:
        self._note_changes()  # before waiting, so a change is told at once, not after the wait
        deadline = now + IDLE_TICK
        if self._night is not None:
            deadline = min(deadline, now + self._night.seconds_until_change() + 0.01)
        self.clock.sleep_until(deadline, self._wake)

    def _hold(self, turn: Turn, now: float) -> None:
        """Paused: keep the current frame on the panel (redrawn whole if unknown)."""
        turn.shown = max(turn.shown, 0)
        k = turn.timeline.frame_of(turn.shown)
        key = (turn.item.id, k)
        if self._sender.panel != key:
            try:
                if not self._sender.whole(key, lambda: turn.frames.frame(k), item=True):
                    self._sync.notify()
                    return
            except FrameFileError as exc:
                self._file_failed(turn, exc, now)
                return
        elif self._refresh_band(turn, now, math.inf):
            return
        self._idle(now)

    def _sync_library(self, force: bool = False) -> None:
        now = self.clock.monotonic()
        sync = self._sync
        read, changed = sync.pull(
            lambda present: self._sender.banned_ids(present, now, BAN_MEMORY_S), force=force
        )
        if changed:
            self._load_settings()
        if not read:
            return
        turn = self._turn
        if turn is None:
            return
        index = sync.index_of(turn.item.id)
        if index is not None:
            self._index = index
            item = sync.items[index]
            turn.item = item
            turn.timeline.replan(*self._plan(item, turn.frames), turn.shown)
            sync.prefetch(sync.following(index), item.id)
            return
        # The current item was deleted, disabled or evicted: move on at once. The item that took
        # its place in the order (same index) is the one that came after it.
        self._end_turn()
        self._begin_turn(self._index if sync.shuffle is None else sync.following(self._index), now)

    # --- live settings -----------------------------------------------------------------------

    def _load_settings(self) -> None:
        """Read the live settings; apply what changed (loop thread)."""
        if self._settings_source is None:
            return
        try:
            new = self._settings_source()
        except LoopError as exc:
            log.warning("could not read the live settings: %s", exc)
            return
        old, self._play = self._play, new
        if new.rotation != int(self.display.rotation):
            self._rotate(new.rotation)
        if new.night != old.night:
            self._night = new.night
            self._night_override_until = float("-inf")
        turn = self._turn
        self._sync.set_shuffle(new.shuffle, self._shuffle_rng, turn.item.id if turn is not None else None)
        if new.still_seconds != old.still_seconds and turn is not None:
            turn.timeline.replan(*self._plan(turn.item, turn.frames), turn.shown)

    def _rotate(self, rotation: int) -> None:
        """Turn the panel now; what plays next is drawn whole in the new orientation."""
        from libloop.ili9341 import Rotation

        self._sender.guard(lambda: self.display.set_rotation(Rotation(rotation)), unknown_after=True)
        self._sync.drop_next()
        self._sync.close_last()
        turn = self._turn
        if turn is not None and (turn.frames.width, turn.frames.height) != tuple(self.display.size):
            # Play on from the same item, its frames fitted to the new shape.
            self._end_turn()
            self._sync.close_last()
            self._begin_turn(self._index, self.clock.monotonic(), tries=1)

    def _plan(self, item: PlayItem, frames: Frames) -> tuple[list[int], int, int | None]:
        return turn_plan(
            frames.durations_ms,
            frames.loop_count,
            loops=item.loops,
            min_seconds=item.min_seconds,
            seconds=getattr(item, "seconds", None),
            still_seconds=self._play.still_seconds,
        )

    def _reopened(self, item_id: str) -> None:
        """An item's file was opened afresh and may differ from what the panel got: redraw whole."""
        if self._sender.on_item() == item_id:
            self._sender.set_unknown()

    # --- turns -----------------------------------------------------------------------------

    def _begin_turn(self, index: int, t0: float, tries: int | None = None) -> bool:
        """Start the item at ``index`` (wrapping; skipping items that fail) with frame 0 due at ``t0``."""
        self._end_turn()
        sync = self._sync
        items = sync.items
        n = len(items)
        now = self.clock.monotonic()
        for attempt in range(n if tries is None else min(tries, n)):
            i = (index + attempt) % n
            item = items[i]
            if not sync.may_try(item, now):
                continue
            taken = sync.take(item, now)
            if taken is None:
                continue
            frames, path = taken
            durations, passes, limit = self._plan(item, frames)
            self._turn = Turn(item, frames, Timeline(durations, t0, passes, limit), path=path)
            self._index = i
            sync.started(item.id)
            self._screen = None
            sync.error_message = ""
            sync.close_last()
            sync.prefetch(sync.following(i), item.id)
            return True
        sync.close_last()
        if n and all(it.id in sync.failed for it in items):
            sync.error_message = (
                "None of the library's items can be played; delete and re-import them, "
                "or run `loop fsck --repair`."
            )
        return False

    def _end_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            self._sync.keep_last(turn.item.id, turn.frames, turn.path)  # reused if the item plays again next

    def _file_failed(self, turn: Turn, exc: FrameFileError, now: float) -> None:
        """The turn's file went bad while it played: a fault for the item, and on to the next one."""
        self._sync.fail(turn.item, f"its frame file cannot be read: {exc}", now)
        if self._turn is turn:
            self._turn = None
        turn.frames.close()  # not kept for a replay: the next turn of the item opens the file afresh
        if not self._begin_turn(self._index + 1, now):
            self._show_screen_or_idle(now)

    # --- screens ---------------------------------------------------------------------------

    def _show_screen_or_idle(self, now: float) -> None:
        """No item can play: show the empty screen (or the error screen), then wait."""
        sync = self._sync
        kind = ERROR if self._forced_error is not None or (sync.items and sync.error_message) else EMPTY
        key = (kind, 0)
        if self._sender.panel != key:
            data = self._screen_bytes(kind)
            self._sender.whole(key, data, item=False)
            if self._sender.panel == key:
                self._screen = kind
        elif self._sender.band(key, lambda: self._screen_bytes(kind), now, math.inf):
            return
        self._idle(now)

    def _screen_bytes(self, kind: str) -> memoryview:
        size = tuple(self.display.size)
        message = self._forced_error if self._forced_error is not None else self._sync.error_message
        cache_key = f"{kind}|{size}|{self.dashboard_url}|{message}"
        data = self._screen_cache.get(cache_key)
        if data is None:
            w, h = size
            if kind == EMPTY:
                image = empty_screen((w, h), self.dashboard_url)
            else:
                image = error_screen((w, h), message, self.dashboard_url)
            data = rgb888_to_rgb565(np.asarray(image)).reshape(-1).data
            self._screen_cache = {cache_key: data}
        return data


def evict_and_delete(player: Evicting, library: DeletingLibrary, item_id: str, timeout: float = 2.0) -> None:
    """Delete an item with the delete guarantee: off the panel first, then out of the library.

    Returns when the panel shows something else and no frame of the item can reach it again.
    If the library refuses the delete the item may play again (``unban``); if another caller
    deleted it meanwhile, it stays banned.

    Raises:
        ItemNotFound: no such item (nothing changed).
        PlayerError: the panel did not move off the item in time.
    """
    library.get(item_id)  # ItemNotFound before anything changes
    player.evict(item_id, timeout)
    try:
        library.delete(item_id)
    except ItemNotFound:
        raise
    except BaseException:
        player.unban(item_id)
        raise
