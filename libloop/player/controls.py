"""Controls: what other threads ask of the player, queued and applied on the loop thread.

Every control (pause, next, show, brightness, sleep, night …) becomes a ``Command`` on a
queue; the loop applies the queue at the start of each turn, so the loop's state is only ever
changed by the loop itself. A caller on another thread waits (bounded) until its command has
been applied; in the single-threaded mode the next ``step`` applies it.

Power is decided here too: the panel sleeps when asked to (``sleep``) or during the night
schedule (or only dims, when the night says so), unless woken during the night (``wake``),
which holds until the night next begins or ends.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from libloop.errors import ItemNotFound
from libloop.player.night import NightSchedule
from libloop.player.ports import check_brightness

if TYPE_CHECKING:
    from libloop.clock import Clock
    from libloop.player.library_sync import LibrarySync, Turn
    from libloop.player.ports import PlayDisplay, PlayLibrary, PlaySettings
    from libloop.player.sending import Sender

__all__ = ["Command", "Controls"]


@dataclass
class Command:
    """One queued control and the event set once the loop has applied it."""

    name: str
    arg: Any = None
    done: threading.Event = field(default_factory=threading.Event)


class Controls:
    """The player's control surface (a mixin of ``Player``; see the module docstring)."""

    # What the mixin uses of the player.
    clock: Clock
    display: PlayDisplay
    library: PlayLibrary
    dashboard_url: str
    _sender: Sender
    _sync: LibrarySync
    _turn: Turn | None
    _index: int
    _wake: threading.Event
    _thread: threading.Thread | None
    _commands: collections.deque[Command]
    _paused: bool
    _manual_sleep: bool
    _night: NightSchedule | None
    _night_override_until: float
    _asleep: bool
    _dimmed: bool
    _forced_error: str | None
    _play: PlaySettings

    @property
    def running(self) -> bool:
        """True while the loop thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _begin_turn(self, index: int, t0: float, tries: int | None = None) -> bool:
        raise NotImplementedError  # the player's

    def _end_turn(self) -> None:
        raise NotImplementedError  # the player's

    def _sync_library(self, force: bool = False) -> None:
        raise NotImplementedError  # the player's

    def _load_settings(self) -> None:
        raise NotImplementedError  # the player's

    def _level(self) -> int:
        """The backlight level now: the person's, or the night's dim level when lower."""
        if self._dimmed and self._night is not None:
            return min(self._sender.brightness, self._night.brightness)
        return self._sender.brightness

    # --- asking (any thread) -------------------------------------------------------------------

    def _control(self, name: str, arg: Any = None, timeout: float = 1.0) -> None:
        cmd = Command(name, arg)
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
        if item_id in self._sender.banned or all(it.id != item_id for it in self.library.playlist()):
            raise ItemNotFound(item_id)
        self._control("show", item_id)

    def set_brightness(self, percent: int) -> None:
        """Backlight level, 0..100 (kept while asleep, applied on wake)."""
        check_brightness(percent)
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

    # --- applying (the loop thread) ------------------------------------------------------------

    def _run_commands(self) -> None:
        while self._commands:
            cmd = self._commands.popleft()
            try:
                self._apply(cmd)
            finally:
                cmd.done.set()

    def _apply(self, cmd: Command) -> None:
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
            items = self._sync.items
            if not items:
                return
            if cmd.name == "next":
                index = self._sync.following(self._index)
            elif cmd.name == "previous":
                index = self._sync.preceding(self._index)
            else:
                found = self._sync.index_of(cmd.arg)
                if found is None:
                    return
                index = found
            self._end_turn()
            self._begin_turn(index, now, tries=1 if cmd.name == "show" else None)
        elif cmd.name == "brightness":
            self._sender.brightness = int(cmd.arg)
            if not self._asleep:
                self._sender.guard(lambda: self.display.set_brightness(self._level()))
        elif cmd.name == "sleep":
            self._manual_sleep = True
        elif cmd.name == "wake":
            self._manual_sleep = False
            if self._night is not None and self._night.is_night():
                self._night_override_until = now + self._night.seconds_until_change()
        elif cmd.name == "error":
            self._forced_error = str(cmd.arg)
            self._sync.error_message = self._forced_error
            self._end_turn()
        elif cmd.name == "clear_error":
            self._forced_error = None
            self._sync.error_message = ""
            self._sender.set_unknown()  # redraw whole
        elif cmd.name == "night":
            self._night = cmd.arg
            self._play = replace(self._play, night=cmd.arg)
            self._night_override_until = float("-inf")
        elif cmd.name == "settings":
            self._load_settings()
        elif cmd.name == "dashboard_url":
            self.dashboard_url = cmd.arg
            if self._sender.on_item() is None:
                self._sender.set_unknown()  # a screen is up: redraw it with the new address
        if cmd.name in ("sleep", "wake", "night", "settings"):
            self._apply_power(now)

    def _apply_power(self, now: float) -> None:
        night = self._night is not None and self._night.is_night() and now >= self._night_override_until
        dim = night and self._night is not None and self._night.dims
        want = self._manual_sleep or (night and not dim)
        if dim != self._dimmed:
            self._dimmed = dim
            if not self._asleep and not want:
                self._sender.guard(lambda: self.display.set_brightness(self._level()))
        if want == self._asleep:
            return
        sender = self._sender
        if want:
            # Backlight off, then SLPIN; the panel is redrawn whole, backlight off, before it is
            # seen again.
            sender.guard(self.display.sleep, unknown_after=True)
            self._asleep = True
            return
        self._asleep = False
        sender.backlight_pending = True
        # Wake with the backlight off; it comes back after the first whole frame is drawn, so
        # nothing stale (an evicted item, say) is ever lit.
        sender.guard(lambda: self.display.set_brightness(0))
        sender.guard(self.display.wake)
        if self._turn is not None:
            self._turn.timeline.reanchor(max(self._turn.shown, 0), now)
            self._turn.shown = max(self._turn.shown - 1, -1)
