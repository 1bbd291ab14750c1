"""The player: plays the library's playlist on the display, forever, on absolute deadlines.

One loop (``step``) does everything, on the player thread (``start``) or, in tests, on the
caller's thread with a fake clock (``step`` / ``run_until``). Each turn of the loop it:

1. feeds the ``heartbeat`` hook and clears its wake event;
2. runs the controls queued by other threads (pause, next, show, brightness, sleep …);
3. picks up library changes by comparing ``library.generation`` (one cheap query), so adds,
   deletes, reorders and settings take effect at the next frame — and a watcher thread blocks
   on ``library.wait_for_change`` to wake the loop at once during long frames and idle time;
4. sends the frame that is due — the dirty regions the frame file holds when the panel holds
   the frame before it, the union of the skipped frames' regions after a drop, a whole frame
   when the panel's content is unknown (start, item switch, transport error, wake) or for a
   periodic refresh — or sleeps until the next deadline, interruptibly.

What the panel holds is tracked as ``(item id, frame index)``; every frame is sent under
``_send_lock`` after checking the banned ids, which is what makes ``evict`` a guarantee
rather than a hope: once ``evict`` has put an id in the banned set under that lock, no frame
of the item can reach the panel, and it returns only after the panel shows something else.

Deleting an item: call ``player.evict(id)`` first, then ``library.delete(id)``; if the delete
fails, ``player.unban(id)``. Evicting first means the acknowledgement waits for the panel to
move off the item while its file is still there, and the player never reads a file that is
being removed (on Linux a mapped file outlives its unlink anyway, so the other order is
also safe for the file, but only evict gives the "no further frame" guarantee).

Frame files are read from the page cache into the file's own buffers (``FrameFile``'s read
mode), never through a memory map: a file truncated, replaced or deleted under the player is
then a fault for that item (skipped, reported in ``status().faults``), not a SIGBUS that kills
the process. Only the current item's file and the next one (opened and paged in ahead of the
switch) are open, so memory does not grow with the library.

Live settings (``settings``, a callable giving ``PlaySettings``) are read again whenever the
library changes: a new rotation turns the panel at once (MADCTL) and frame files of the old
shape play fitted on the fly (``refit.FittedFrames``) until their re-render swaps a new file
in, which the player opens at the item's next turn; shuffle plays rounds
(``shuffle.ShuffleRounds``); stills stay on for ``still_seconds`` or the item's ``seconds``
(``schedule.turn_plan``); the night schedule sleeps or dims the panel.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from libloop.clock import Clock, MonotonicClock
from libloop.color import rgb888_to_rgb565
from libloop.errors import FrameFileError, ItemNotFound, LoopError, PlayerError, TransportError
from libloop.player.night import NightSchedule
from libloop.player.ports import (
    DeletingLibrary,
    Frames,
    PlayDisplay,
    PlayerStatus,
    PlayItem,
    PlayLibrary,
    PlaySettings,
    open_frame_file,
)
from libloop.player.refit import FittedFrames
from libloop.player.schedule import Timeline, catch_up_rects, turn_plan
from libloop.player.screens import empty_screen, error_screen
from libloop.player.shuffle import ShuffleRounds
from libloop.player.stats import PlayerStats, StatsSnapshot

__all__ = ["Player", "PlayerStatus", "evict_and_delete"]

log = logging.getLogger(__name__)

#: Longest the loop waits when idle (paused, asleep, empty): how often the heartbeat beats.
IDLE_TICK = 1.0
#: An item that failed to open is retried after this long (or when the library changes).
RETRY_FAILED_S = 60.0
#: Consecutive transport errors after which the display is re-initialised.
REINIT_AFTER = 3
#: How long an evicted id stays banned after it has left the playlist (ids are never reused).
BAN_MEMORY_S = 60.0
#: Frames of the next item paged in ahead of its turn.
PREFETCH_FRAMES = 8
EMPTY = "<empty screen>"
ERROR = "<error screen>"


def _region_rects(frames: Frames, i: int) -> list[tuple[int, int, int, int, int]]:
    """``(x0, y0, x1, y1, bytes)`` of frame ``i``'s regions: from the file's table when it has one
    (a frame file), else from its regions (a file refitted on the fly)."""
    table = getattr(frames, "region_rects", None)
    if table is not None:
        return list(table(i))
    return [(r.x0, r.y0, r.x1, r.y1, 2 * (r.x1 - r.x0 + 1) * (r.y1 - r.y0 + 1)) for r in frames.regions(i)]


def _item_on(panel: tuple[str, int] | None) -> str | None:
    """The item id of what the panel holds, or None for a screen or unknown content."""
    if panel is None or panel[0] in (EMPTY, ERROR):
        return None
    return panel[0]


@dataclass
class _Turn:
    """The item being played: its file, its schedule and the last global frame shown."""

    item: PlayItem
    frames: Frames
    timeline: Timeline
    shown: int = -1
    path: Path | None = None  # the frame file it plays (a re-render swaps in another)


@dataclass
class _Command:
    name: str
    arg: Any = None
    done: threading.Event = field(default_factory=threading.Event)


class Player:
    """Plays ``library.playlist()`` on ``display``; see the module docstring.

    Args:
        display: an opened display.
        library: an opened library.
        clock: the monotonic clock deadlines are taken from (a FakeClock in tests).
        dashboard_url: shown as text and QR code on the empty screen.
        refresh_interval: a whole-panel refresh happens at a loop start at most this often.
        night: when the panel sleeps on its own.
        on_fatal: called (on the player thread) with the exception that stopped the loop.
        on_error: called with each transport error; without it a transport error ends the loop
            (and reaches ``on_fatal``) so a supervisor can restart the hardware.
        heartbeat: called every turn of the loop (at least every second), to prove liveness.
        on_fault: called with each fault's sentence (an item skipped, a transport error), e.g.
            to put it in the health report.
        open_frames: opens a frame file (tests may substitute one).
        wire_hz: SPI clock, for the wire-utilisation figure.
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
        night: NightSchedule | None = None,
        on_fatal: Callable[[BaseException], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        heartbeat: Callable[[], None] | None = None,
        on_fault: Callable[[str], object] | None = None,
        open_frames: Callable[[Path], Frames] = open_frame_file,
        wire_hz: float = 64_000_000.0,
        settings: Callable[[], PlaySettings] | None = None,
        shuffle_rng: random.Random | None = None,
    ) -> None:
        self.display = display
        self.library = library
        self.clock: Clock = clock or MonotonicClock()
        self.dashboard_url = dashboard_url
        self.refresh_interval = refresh_interval
        self.on_fatal = on_fatal
        self.on_error = on_error
        self.heartbeat = heartbeat
        self.on_fault = on_fault
        self._open = open_frames
        self._stats = PlayerStats(wire_hz)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._send_lock = threading.Lock()
        self._ban_lock = threading.Lock()
        self._moved = threading.Condition(self._send_lock)  # notified when the panel changes
        self._banned: dict[str, float] = {}  # evicted id -> when
        self._panel: tuple[str, int] | None = None  # what the panel holds; None = unknown
        self._commands: collections.deque[_Command] = collections.deque()
        self._thread: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        self._fatal: BaseException | None = None
        self._faults: collections.deque[str] = collections.deque(maxlen=20)
        self._failed: dict[str, float] = {}  # item id -> when it failed to open
        # Loop-thread state.
        self._gen_seen: int | None = None
        self._dirty = False
        self._playlist: list[PlayItem] = []
        self._index = -1  # position of the current turn's item in the playlist
        self._turn: _Turn | None = None
        self._next: tuple[str, Frames, Path] | None = None  # the next item, opened ahead
        self._last: tuple[str, Frames, Path | None] | None = (
            None  # the previous turn's, until the next starts
        )
        self._last_full = float("-inf")
        self._errors_in_row = 0
        self._paused = False
        self._manual_sleep = False
        self._night = night
        self._night_override_until = float("-inf")
        self._asleep = False  # the panel is asleep now
        self._backlight_pending = True
        self._brightness = 100
        self._screen: str | None = None  # EMPTY / ERROR when a screen is up
        self._screen_cache: dict[str, memoryview] = {}
        self._error_message = ""
        self._forced_error: str | None = None  # the supervisor's emergency message, until cleared
        self._settings_source = settings
        self._play = PlaySettings(night=night)
        self._shuffle_rng = shuffle_rng or random.Random()
        self._shuffle: ShuffleRounds | None = None
        self._dimmed = False  # the night dims the backlight now
        # Change notification for other faces (MQTT): a counter bumped, under its own condition,
        # whenever what status() reports (other than the statistics) changes. The loop only
        # ever tries the condition's lock, so it never waits on a waiter.
        self._changes = threading.Condition(threading.Lock())
        self._version = 0
        self._status_key: tuple[object, ...] | None = None

    # --- running ------------------------------------------------------------------------

    def start(self) -> None:
        """Run the loop on its own thread (and a watcher for library changes)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="loop-player", daemon=True)
        self._watcher = threading.Thread(target=self._watch, name="loop-player-watch", daemon=True)
        self._thread.start()
        self._watcher.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop thread and close the mapped files."""
        self._stop.set()
        self._wake.set()
        for t in (self._thread, self._watcher):
            if t is not None and t is not threading.current_thread():
                t.join(timeout)
        self._thread = self._watcher = None
        self._close_files()

    @property
    def running(self) -> bool:
        """True while the loop thread is alive."""
        return self._thread is not None and self._thread.is_alive()

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

    def _watch(self) -> None:
        since = self.library.generation
        while not self._stop.is_set():
            try:
                now = self.library.wait_for_change(since, 0.5)
            except Exception:  # a closed library, say: poll the stop flag gently
                self._stop.wait(0.5)
                continue
            if now != since:
                since = now
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

    # --- controls (any thread) ------------------------------------------------------------

    def _control(self, name: str, arg: Any = None, timeout: float = 1.0) -> None:
        cmd = _Command(name, arg)
        self._commands.append(cmd)
        self._wake.set()
        if self.running and threading.current_thread() is not self._thread:
            cmd.done.wait(timeout)

    def pause(self) -> None:
        """Hold the current frame."""
        self._control("pause")

    def resume(self) -> None:
        """Play on; the held frame gets its full duration again (deadlines re-anchored)."""
        self._control("resume")

    def next(self) -> None:
        """Skip to the next item at once."""
        self._control("next")

    def previous(self) -> None:
        """Go back to the previous item at once."""
        self._control("previous")

    def show(self, item_id: str) -> None:
        """Play this item now, then carry on in play order after it.

        Raises:
            ItemNotFound: the item is not in the playlist (deleted, disabled or being deleted).
        """
        if item_id in self._banned or all(it.id != item_id for it in self.library.playlist()):
            raise ItemNotFound(item_id)
        self._control("show", item_id)

    def set_brightness(self, percent: int) -> None:
        """Backlight level, 0..100 (kept while asleep, applied on wake)."""
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise ValueError(f"brightness must be a whole number from 0 to 100, not {percent!r}")
        self._control("brightness", percent)

    def sleep(self) -> None:
        """Backlight off and panel asleep until ``wake``."""
        self._control("sleep")

    def wake(self) -> None:
        """Wake the panel (also during the night schedule, until the night next begins or ends)."""
        self._control("wake")

    def set_night(self, night: NightSchedule | None) -> None:
        """Replace the night schedule (None: never sleep on a schedule)."""
        self._control("night", night)

    def apply_settings(self, timeout: float = 2.0) -> None:
        """Read the live settings now and apply them; returns once applied (the panel turned).

        The player also reads them by itself whenever the library changes; this is for the
        caller that wants the change on the glass before it answers.
        """
        self._control("settings", timeout=timeout)

    def set_dashboard_url(self, url: str) -> None:
        """Change the address the empty and error screens show (redrawn at once if one is up)."""
        self._control("dashboard_url", str(url))

    def show_error(self, message: str) -> None:
        """Show the error screen with ``message`` instead of playing, until :meth:`clear_error`.

        The supervisor's emergency mode uses it: the person sees what is wrong while the
        panel still works.
        """
        self._control("error", message)

    def clear_error(self) -> None:
        """Leave the error screen and play again."""
        self._control("clear_error")

    def unban(self, item_id: str) -> None:
        """Let an evicted item play again (the delete that followed ``evict`` failed)."""
        with self._ban_lock:
            self._banned.pop(item_id, None)
        self._dirty = True
        self._wake.set()

    def evict(self, item_id: str, timeout: float = 2.0) -> None:
        """Take an item off the panel for good; call before deleting it from the library.

        When this returns, no frame of the item can reach the panel any more, and the panel
        shows something else (the next item's first whole frame, or the empty screen) — or is
        asleep with its backlight off, in which case it is redrawn before the backlight returns.

        Raises:
            PlayerError: the panel did not move off the item within ``timeout`` seconds.
        """
        give_up = time.monotonic() + timeout
        # Ban first, then take the send lock: a send that starts after this sees the ban, and
        # once the lock is ours no send of the item is in flight. A hung send holds the lock,
        # so it is taken with the timeout, never blocking the caller for ever.
        with self._ban_lock:
            self._banned[item_id] = self.clock.monotonic()
        self._dirty = True
        self._wake.set()
        if not self._send_lock.acquire(timeout=timeout):
            raise self._evict_timeout(item_id, timeout)
        try:
            turn = self._turn
            current = (self._panel is not None and self._panel[0] == item_id) or (
                turn is not None and turn.item.id == item_id
            )
        finally:
            self._send_lock.release()
        if not current:
            return
        if self.running and threading.current_thread() is not self._thread:
            ok = self._moved.acquire(timeout=max(0.0, give_up - time.monotonic()))
            if ok:
                try:
                    ok = self._moved.wait_for(
                        lambda: self._off_panel(item_id), max(0.0, give_up - time.monotonic())
                    )
                finally:
                    self._moved.release()
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

    def _asleep_by_night(self) -> bool:
        return self._asleep and not self._manual_sleep

    def _off_panel(self, item_id: str) -> bool:
        if self._asleep:
            return True
        return self._panel is not None and self._panel[0] != item_id

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
        return PlayerStatus(
            state=state,
            current=turn.item.id if turn is not None else None,
            current_name=turn.item.name if turn is not None else None,
            frame=frame,
            brightness=self._brightness,
            night={**self._night.to_dict(), "active": self._asleep_by_night() or self._dimmed}
            if self._night is not None
            else None,
            faults=list(self._faults),
            stats=self._stats.snapshot(),
            on_panel=_item_on(self._panel),
            extra={"error": self._forced_error or self._error_message or str(self._fatal) or None}
            if error
            else {},
        )

    @property
    def stats(self) -> StatsSnapshot:
        """The statistics alone."""
        return self._stats.snapshot()

    @property
    def version(self) -> int:
        """A number that grows whenever the state, the current item or the brightness changes."""
        with self._changes:
            return self._version

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Wait until :attr:`version` differs from ``since`` (or ``timeout`` passes); return it.

        For faces that mirror the player's state (MQTT): they wait here on their own thread,
        and the loop only bumps a counter, so a slow face never slows playback.
        """
        with self._changes:
            self._changes.wait_for(lambda: self._version != since, timeout)
            return self._version

    def _note_changes(self) -> None:
        """Bump :attr:`version` if what status() reports has changed (cheap: called every turn)."""
        turn = self._turn
        key = (
            self._asleep,
            self._paused,
            self._screen,
            self._fatal is not None,
            turn.item.id if turn is not None else None,
            turn.item.name if turn is not None else None,
            self._brightness,
            self._dimmed,
            self._forced_error or self._error_message,
        )
        if key == self._status_key:
            return
        # Never wait for a waiter: one that holds the condition right now (checking the counter,
        # or descheduled on a busy machine just then) is told on the next turn instead.
        if not self._changes.acquire(blocking=False):
            return
        try:
            self._status_key = key
            self._version += 1
            self._changes.notify_all()
        finally:
            self._changes.release()

    # --- the loop ---------------------------------------------------------------------------

    def step(self) -> None:
        """One turn of the loop: controls, changes, then one frame sent or one wait."""
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
            self._turn is None and not self._begin_turn(self._following(), now)
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
            # Long frames (stills) are slept in slices so the heartbeat keeps beating.
            self._note_changes()
            self.clock.sleep_until(min(turn.timeline.deadline(turn.shown + 1), now + IDLE_TICK), self._wake)
            return
        end = turn.timeline.end_index
        if due.index >= end:
            self._stats.drop(max(0, end - turn.shown - 1))
            self._end_turn()
            boundary = turn.timeline.deadline(end)
            if not self._begin_turn(self._following(), boundary):
                self._show_screen_or_idle(now)
            return
        self._send_frame(turn, due.index, due.dropped, now)

    def _idle(self, now: float) -> None:
        self._note_changes()  # before waiting, so a change is told at once, not after the wait
        deadline = now + IDLE_TICK
        if self._night is not None:
            deadline = min(deadline, now + self._night.seconds_until_change() + 0.01)
        self.clock.sleep_until(deadline, self._wake)

    def _hold(self, turn: _Turn, now: float) -> None:
        """Paused: keep the current frame on the panel (redraw it whole if unknown or due a refresh)."""
        turn.shown = max(turn.shown, 0)
        k = turn.timeline.frame_of(turn.shown)
        expected = (turn.item.id, k)
        if self._panel != expected:
            self._send_whole(turn, k, refresh=False)
        elif now - self._last_full >= self.refresh_interval:
            self._send_whole(turn, k, refresh=True)
        self._idle(now)

    # --- controls, changes, power ---------------------------------------------------------

    def _run_commands(self) -> None:
        while self._commands:
            cmd = self._commands.popleft()
            try:
                self._apply(cmd)
            finally:
                cmd.done.set()

    def _apply(self, cmd: _Command) -> None:
        now = self.clock.monotonic()
        turn = self._turn
        if cmd.name == "pause":
            self._paused = True
        elif cmd.name == "resume":
            if self._paused and turn is not None:
                turn.timeline.reanchor(max(turn.shown, 0), now)
            self._paused = False
        elif cmd.name in ("next", "previous", "show"):
            self._sync_library(force=True)
            if not self._playlist:
                return
            if cmd.name == "next":
                index = self._following()
            elif cmd.name == "previous":
                index = self._preceding()
            else:
                ids = [it.id for it in self._playlist]
                if cmd.arg not in ids:
                    return
                index = ids.index(cmd.arg)
            self._end_turn()
            self._begin_turn(index, now, tries=1 if cmd.name == "show" else None)
        elif cmd.name == "brightness":
            self._brightness = int(cmd.arg)
            if not self._asleep:
                self._guard(lambda: self.display.set_brightness(self._level()))
        elif cmd.name == "sleep":
            self._manual_sleep = True
        elif cmd.name == "wake":
            self._manual_sleep = False
            if self._night is not None and self._night.is_night():
                self._night_override_until = now + self._night.seconds_until_change()
        elif cmd.name == "error":
            self._forced_error = str(cmd.arg)
            self._error_message = self._forced_error
            self._end_turn()
        elif cmd.name == "clear_error":
            self._forced_error = None
            self._error_message = ""
            self._panel = None  # redraw whole
        elif cmd.name == "night":
            self._night = cmd.arg
            self._play = PlaySettings(**{**self._play.__dict__, "night": cmd.arg})
            self._night_override_until = float("-inf")
        elif cmd.name == "settings":
            self._load_settings()
        elif cmd.name == "dashboard_url":
            self.dashboard_url = cmd.arg
            if self._screen is not None:
                self._panel = None  # redraw the screen with the new address
        if cmd.name in ("sleep", "wake", "night", "settings"):
            self._apply_power(now)

    def _apply_power(self, now: float) -> None:
        night = self._night is not None and self._night.is_night() and now >= self._night_override_until
        dim = night and self._night is not None and self._night.dims
        want = self._manual_sleep or (night and not dim)
        if dim != self._dimmed:
            self._dimmed = dim
            if not self._asleep and not want:
                self._guard(lambda: self.display.set_brightness(self._level()))
        if want == self._asleep:
            return
        if want:
            self._guard(self.display.sleep)  # backlight off, then SLPIN
            self._asleep = True
            with self._moved:
                self._panel = None  # redrawn whole, backlight off, before it is seen again
                self._moved.notify_all()
        else:
            self._asleep = False
            self._backlight_pending = True
            # Wake with the backlight off; it comes back after the first whole frame is drawn, so
            # nothing stale (an evicted item, say) is ever lit.
            self._guard(lambda: self.display.set_brightness(0))
            self._guard(self.display.wake)
            if self._turn is not None:
                self._turn.timeline.reanchor(max(self._turn.shown, 0), now)
                self._turn.shown = max(self._turn.shown - 1, -1)

    def _sync_library(self, force: bool = False) -> None:
        gen = self.library.generation
        if not force and not self._dirty and gen == self._gen_seen:
            return
        if gen != self._gen_seen:
            self._failed.clear()  # a changed library may have repaired what failed
            self._load_settings()
        self._gen_seen, self._dirty = gen, False
        playlist = list(self.library.playlist())
        present = {it.id for it in playlist}
        now = self.clock.monotonic()
        with self._ban_lock:
            # Ids are never reused, so a ban can be forgotten once the item has left the playlist
            # for a while (the delete that follows an evict has happened).
            for item_id, since in list(self._banned.items()):
                if item_id not in present and now - since > BAN_MEMORY_S:
                    del self._banned[item_id]
            banned = set(self._banned)
        self._playlist = [it for it in playlist if it.id not in banned]
        ids = [it.id for it in self._playlist]
        if self._shuffle is not None:
            self._shuffle.sync(ids)
        if self._next is not None and (
            self._next[0] not in ids
            or self._next[2] != self.library.frame_path(self._playlist[ids.index(self._next[0])])
        ):
            self._drop_next()  # deleted, or re-rendered into another file
        turn = self._turn
        if turn is None:
            return
        if turn.item.id in ids:
            self._index = ids.index(turn.item.id)
            item = self._playlist[self._index]
            turn.item = item
            turn.timeline.replan(*self._plan(item, turn.frames), turn.shown)
            self._prefetch_next()
            return
        # The current item was deleted, disabled or evicted: move on at once. The item that took
        # its place in the order (same index) is the one that came after it.
        self._end_turn()
        self._begin_turn(self._index if self._shuffle is None else self._following(), now)

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
        if new.shuffle and self._shuffle is None:
            self._shuffle = ShuffleRounds(self._shuffle_rng)
            self._shuffle.sync([it.id for it in self._playlist])
            if self._turn is not None:
                self._shuffle.started(self._turn.item.id)
            self._drop_next()
        elif not new.shuffle and self._shuffle is not None:
            self._shuffle = None
            self._drop_next()
        if new.still_seconds != old.still_seconds and self._turn is not None:
            turn = self._turn
            turn.timeline.replan(*self._plan(turn.item, turn.frames), turn.shown)

    def _rotate(self, rotation: int) -> None:
        """Turn the panel now; what plays next is drawn whole in the new orientation."""
        from libloop.ili9341 import Rotation

        with self._send_lock:
            try:
                self.display.set_rotation(Rotation(rotation))
            except TransportError as exc:
                self._panel = None
                self._moved.notify_all()
                error: TransportError | None = exc
            else:
                error = None
                self._panel = None  # unknown in the new orientation: redrawn whole
                self._moved.notify_all()
        self._drop_next()
        self._close_last()
        turn = self._turn
        if turn is not None and (turn.frames.width, turn.frames.height) != tuple(self.display.size):
            # Play on from the same item, its frames fitted to the new shape.
            self._end_turn()
            self._close_last()
            self._begin_turn(self._index, self.clock.monotonic(), tries=1)
        if error is not None:
            self._transport_error(error)

    def _plan(self, item: PlayItem, frames: Frames) -> tuple[list[int], int, int | None]:
        return turn_plan(
            frames.durations_ms,
            frames.loop_count,
            loops=item.loops,
            min_seconds=item.min_seconds,
            seconds=getattr(item, "seconds", None),
            still_seconds=self._play.still_seconds,
        )

    def _following(self) -> int:
        """The playlist index of the item to play after the current one."""
        if self._shuffle is None or not self._playlist:
            return self._index + 1
        chosen = self._shuffle.peek()
        ids = [it.id for it in self._playlist]
        return ids.index(chosen) if chosen in ids else self._index + 1

    def _preceding(self) -> int:
        """The playlist index of the item before the current one (in shuffle: the one played before)."""
        if self._shuffle is None:
            return self._index - 1
        ids = [it.id for it in self._playlist]
        earlier = self._shuffle.previous(ids)
        return ids.index(earlier) if earlier is not None else self._index

    # --- turns and files -------------------------------------------------------------------

    def _begin_turn(self, index: int, t0: float, tries: int | None = None) -> bool:
        """Start the item at ``index`` (wrapping; skipping items that fail) with frame 0 due at ``t0``."""
        self._end_turn()
        n = len(self._playlist)
        now = self.clock.monotonic()
        for attempt in range(n if tries is None else min(tries, n)):
            i = (index + attempt) % n
            item = self._playlist[i]
            failed_at = self._failed.get(item.id)
            if failed_at is not None and now - failed_at < RETRY_FAILED_S:
                continue
            frames = self._take_frames(item, now)
            if frames is None:
                continue
            durations, passes, limit = self._plan(item, frames)
            timeline = Timeline(durations, t0, passes, limit)
            self._turn = _Turn(item, frames, timeline, path=self.library.frame_path(item))
            self._index = i
            if self._shuffle is not None:
                self._shuffle.started(item.id)
            self._screen = None
            self._error_message = ""
            self._close_last()
            self._prefetch_next()
            return True
        self._close_last()
        if n and all(it.id in self._failed for it in self._playlist):
            self._error_message = "None of the library's items can be played; delete and re-import them, or run `loop fsck --repair`."
        return False

    def _end_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            self._close_last()
            self._last = (turn.item.id, turn.frames, turn.path)  # reused if the same item plays again next

    def _take_frames(self, item: PlayItem, now: float) -> Frames | None:
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
                self._fault(item, f"cannot open it: {exc}", now)
                return None
            if self._panel is not None and self._panel[0] == item.id:
                with self._moved:  # the file may differ from what the panel got: redraw it whole
                    self._panel = None
        if (frames.width, frames.height) != tuple(self.display.size):
            # Made for the other orientation (re-rendering, or imported before originals were
            # kept): fitted on the fly until a re-rendered file is swapped in.
            w, h = self.display.size
            frames = FittedFrames(frames, w, h, self._play.background)
        return frames

    def _fault(self, item: PlayItem, what: str, now: float) -> None:
        self._failed[item.id] = now
        message = f"skipped {item.name!r} ({item.id}): {what}"
        log.warning("%s", message)
        self._record_fault(message)

    def _record_fault(self, message: str) -> None:
        self._faults.append(message)
        if self.on_fault is not None:
            try:
                self.on_fault(message)
            except Exception:  # reporting must never stop the loop
                log.exception("the fault callback failed")

    def _prefetch_next(self) -> None:
        turn, n = self._turn, len(self._playlist)
        if turn is None or n < 2:
            return
        item = self._playlist[self._following() % n]
        if item.id == turn.item.id or (self._next is not None and self._next[0] == item.id):
            return
        if item.id in self._failed:
            return
        self._drop_next()
        path = self.library.frame_path(item)
        try:
            frames = self._open(path)
        except (LoopError, OSError):
            return  # reported when its turn comes
        for i in range(min(frames.frame_count, PREFETCH_FRAMES)):
            frames.prefetch(i)
        self._next = (item.id, frames, path)

    def _drop_next(self) -> None:
        if self._next is not None:
            self._next[1].close()
            self._next = None

    def _close_last(self) -> None:
        if self._last is not None:
            self._last[1].close()
            self._last = None

    def _close_files(self) -> None:
        self._end_turn()
        self._close_last()
        self._drop_next()

    # --- sending ---------------------------------------------------------------------------

    def _send_frame(self, turn: _Turn, g: int, dropped: int, now: float) -> None:
        """Bring the panel to frame ``g`` of the turn with as few bytes as it can."""
        frames, item_id = turn.frames, turn.item.id
        k, n = turn.timeline.frame_of(g), turn.frames.frame_count
        cpu0 = time.thread_time()
        late = now - turn.timeline.deadline(g)
        refresh = full = False
        error: TransportError | None = None
        file_error: FrameFileError | None = None
        with self._send_lock:
            if item_id in self._banned:
                self._dirty = True  # the next step moves on
                return
            panel = self._panel
            before = self.display.stats.bytes
            needed = 0
            try:
                if panel is None or panel[0] != item_id:
                    full = True
                else:
                    steps = (k - panel[1]) % n
                    # The tables say what changed; pixels are read only for what is sent.
                    chain = [_region_rects(frames, (panel[1] + j) % n) for j in range(1, steps + 1)]
                    needed = sum(box[4] for boxes in chain for box in boxes)
                    if k == 0 and now - self._last_full >= self.refresh_interval:
                        full = refresh = True
                    elif steps == 1:
                        for r in frames.regions(k):
                            self.display.blit(r.x0, r.y0, r.x1, r.y1, r.data)
                    elif steps > 1:
                        rects = catch_up_rects(
                            ([box[:4] for box in boxes] for boxes in chain),
                            frames.width,
                            frames.height,
                        )
                        if rects is None:
                            full = True
                        else:
                            whole = np.frombuffer(frames.frame(k), dtype=np.uint8)
                            pixels = whole.reshape(frames.height, frames.width, 2)
                            for x0, y0, x1, y1 in rects:
                                part = np.ascontiguousarray(pixels[y0 : y1 + 1, x0 : x1 + 1])
                                self.display.blit(x0, y0, x1, y1, part.reshape(-1).data)
                if full:
                    self.display.show_frame(frames.frame(k))
                    self._last_full = now
                self._panel = (item_id, k)
            except TransportError as exc:
                self._panel = None
                error = exc
            except FrameFileError as exc:  # read before anything is sent: the panel is unchanged
                file_error = exc
            self._moved.notify_all()
            sent = self.display.stats.bytes - before
        if file_error is not None:
            self._file_failed(turn, file_error, now)
            return
        turn.shown = g
        self._record_bus()
        if error is not None:
            self._stats.drop(dropped + 1)
            self._transport_error(error)
            return
        self._errors_in_row = 0
        if refresh:
            self._stats.refresh(sent - needed)
        self._stats.frame(at=now, late_s=late, host_s=time.thread_time() - cpu0, dropped=dropped, full=full)
        if n > 1:
            frames.prefetch((k + 1) % n)
        self._backlight_if_pending()

    def _send_whole(self, turn: _Turn, k: int, *, refresh: bool) -> None:
        """Redraw frame ``k`` of the turn whole (while paused)."""
        error: TransportError | None = None
        file_error: FrameFileError | None = None
        with self._send_lock:
            if turn.item.id in self._banned:
                self._dirty = True
                return
            before = self.display.stats.bytes
            try:
                self.display.show_frame(turn.frames.frame(k))
            except TransportError as exc:
                self._panel = None
                self._moved.notify_all()
                error = exc
            except FrameFileError as exc:
                file_error = exc
            else:
                self._panel = (turn.item.id, k)
                self._last_full = self.clock.monotonic()
                self._moved.notify_all()
            sent = self.display.stats.bytes - before
        if file_error is not None:
            self._file_failed(turn, file_error, self.clock.monotonic())
            return
        self._record_bus()
        if error is not None:
            self._transport_error(error)
            return
        if refresh:
            self._stats.refresh(sent)
        self._backlight_if_pending()

    def _file_failed(self, turn: _Turn, exc: FrameFileError, now: float) -> None:
        """The turn's file went bad while it played: a fault for the item, and on to the next one."""
        self._fault(turn.item, f"its frame file cannot be read: {exc}", now)
        if self._turn is turn:
            self._turn = None
        turn.frames.close()  # not kept for a replay: the next turn of the item opens the file afresh
        if not self._begin_turn(self._index + 1, now):
            self._show_screen_or_idle(now)

    def _show_screen_or_idle(self, now: float) -> None:
        """No item can play: show the empty screen (or the error screen), then wait."""
        kind = ERROR if self._forced_error is not None or (self._playlist and self._error_message) else EMPTY
        refresh = self._panel == (kind, 0)
        if not refresh or now - self._last_full >= self.refresh_interval:
            data = self._screen_bytes(kind)
            with self._send_lock:
                before = self.display.stats.bytes
                try:
                    self.display.show_frame(data)
                except TransportError as exc:
                    self._panel = None
                    error: TransportError | None = exc
                else:
                    error = None
                    self._panel = (kind, 0)
                    self._screen = kind
                    self._last_full = now
                self._moved.notify_all()
                sent = self.display.stats.bytes - before
            self._record_bus()
            if error is not None:
                self._transport_error(error)
            else:
                if refresh:
                    self._stats.refresh(sent)
                self._backlight_if_pending()
        self._idle(now)

    def _screen_bytes(self, kind: str) -> memoryview:
        size = tuple(self.display.size)
        message = self._forced_error if self._forced_error is not None else self._error_message
        key = f"{kind}|{size}|{self.dashboard_url}|{message}"
        data = self._screen_cache.get(key)
        if data is None:
            w, h = size
            if kind == EMPTY:
                image = empty_screen((w, h), self.dashboard_url)
            else:
                image = error_screen((w, h), message, self.dashboard_url)
            data = rgb888_to_rgb565(np.asarray(image)).reshape(-1).data
            self._screen_cache = {key: data}
        return data

    def _record_bus(self) -> None:
        s = self.display.stats
        # Real buses also say what clock they run at and whether they work around a fault.
        self._stats.bus(
            s.transfers, s.bytes, clock_hz=getattr(s, "clock_hz", 0), degraded=getattr(s, "degraded", False)
        )

    def _level(self) -> int:
        """The backlight level now: the person's, or the night's dim level when lower."""
        if self._dimmed and self._night is not None:
            return min(self._brightness, self._night.brightness)
        return self._brightness

    def _backlight_if_pending(self) -> None:
        if self._backlight_pending:
            self._backlight_pending = False
            self._guard(lambda: self.display.set_brightness(self._level()))

    def _guard(self, op: Callable[[], None]) -> None:
        """Run a display operation; a transport error is handled like one during a frame."""
        try:
            op()
        except TransportError as exc:
            with self._moved:
                self._panel = None
                self._moved.notify_all()
            self._transport_error(exc)

    def _transport_error(self, exc: TransportError) -> None:
        """Count it, report it; the panel's content is already marked unknown."""
        self._stats.transport_error()
        self._errors_in_row += 1
        self._record_fault(f"transport error: {exc}")
        log.warning("transport error: %s", exc)
        if self._errors_in_row >= REINIT_AFTER:
            self._errors_in_row = 0
            self._backlight_pending = True
            try:
                self.display.reinit()
            except TransportError as again:
                log.warning("re-initialising the display failed: %s", again)
        if self.on_error is None:
            raise exc
        self.on_error(exc)


def evict_and_delete(player: Player, library: DeletingLibrary, item_id: str, timeout: float = 2.0) -> None:
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
