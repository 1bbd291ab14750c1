"""The player in a process of its own: timing isolated from everything else on the device.

``PlayerProcess`` starts a child process (``multiprocessing`` *spawn*) that owns the bus, the
display and the ``Player``, and opens the index itself (SQLite is multi-process). Nothing the
web app, MQTT, previews, imports or a misbehaving client do runs in that process: it has its
own interpreter and GIL, and real-time scheduling where the OS allows (``SCHED_FIFO``, see
:func:`apply_realtime`). The device talks to it through:

* a **control channel** — a duplex pipe of small tuples: calls with a reply (controls,
  ``status``, ``evict``, ``probe``, ``restart``) and one-way notes (``changed``: the library
  changed, so the child re-reads it at once instead of polling). Calls run on a few worker
  threads in the child, so a slow one (an evict waiting for the panel, a probe of a hung bus)
  never holds up the others. The child sends events back (``fatal``: the loop stopped);
* a **shared framebuffer** (:mod:`libloop.player.framebuffer`) — the panel's memory, written by
  the child as it draws and read by the device for ``display.png``, the live view and the
  simulator's window; its heartbeat counter is the child's proof of progress.

The delete guarantee crosses the boundary unchanged: ``evict`` returns only after the child's
player has banned the id under its send lock and moved off the item. Bans are also kept here
and handed to every new child, so a restart between an evict and the library delete cannot
bring the item back.

What the child builds is the caller's business (``libloop.player.host``: ``HostSpec.build``, a
module-level function called in the child, returns the player, the display, the state words to
publish and extra calls).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import itertools
import logging
import multiprocessing
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from libloop.clock import Clock, MonotonicClock
from libloop.errors import ItemNotFound, LoopError, PlayerError
from libloop.player.framebuffer import SharedFramebuffer
from libloop.player.host import HostSpec, child_main, decode_error
from libloop.player.night import NightSchedule
from libloop.player.ports import PlayerStatus, check_brightness
from libloop.player.stats import StatsSnapshot, snapshot_from_dict

__all__ = ["PlayerProcess"]

log = logging.getLogger(__name__)

#: How long a status answer is reused: however many pollers ask, the child answers at most five
#: status calls a second (a control or a change of state clears it, so its effect shows at once).
STATUS_TTL_S = 0.2
#: How long the parent remembers a ban for children it starts later.
BAN_MEMORY_S = 60.0


#: Every PlayerProcess with a child, so an interpreter that exits without stopping one ends it
#: first: the child ignores SIGTERM (the device decides when it ends), and multiprocessing's own
#: exit handler would terminate it and then wait for it for ever.
_LIVE: weakref.WeakSet[PlayerProcess] = weakref.WeakSet()


@atexit.register
def _stop_children_at_exit() -> None:
    for process in list(_LIVE):
        with contextlib.suppress(Exception):
            process.close()


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False
        self.value: Any = None


class PlayerProcess:
    """The player, in a child process; the same controls as ``Player`` (see the module doc).

    Args:
        spec: how the child builds its side.
        clock: the clock liveness is measured on.
        on_fatal: called (on a reader thread) with a sentence when the child's loop stops or the
            child exits without being asked to.
        on_fault: called (on a reader thread) with each fault sentence the child's player reports.
        call_timeout: how long a control waits for its answer.
    """

    def __init__(
        self,
        spec: HostSpec,
        *,
        clock: Clock | None = None,
        on_fatal: Callable[[str], None] | None = None,
        on_fault: Callable[[str], object] | None = None,
        call_timeout: float = 5.0,
    ) -> None:
        self.spec = spec
        self.clock: Clock = clock or MonotonicClock()
        self.on_fatal = on_fatal
        self.on_fault = on_fault
        self.call_timeout = call_timeout
        self.framebuffer: SharedFramebuffer | None = None
        self.scheduling: dict[str, Any] = {}
        self.starts = 0
        self._lock = threading.RLock()  # start / stop / restart
        self._send_lock = threading.Lock()
        self._conn: Any = None
        self._process: Any = None
        self._reader: threading.Thread | None = None
        self._pending: dict[int, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._bans: dict[str, float] = {}
        self._stopping = False
        self._beat_seen: tuple[int, float] | None = None
        self._status: tuple[float, PlayerStatus, int] | None = None
        self._status_lock = threading.Lock()
        self._last_stats: StatsSnapshot | None = None
        self._exits: collections.deque[str] = collections.deque(maxlen=10)
        self._ready = threading.Event()
        self._failure: tuple[Any, ...] | None = None
        self._spawned_at = 0.0
        self._dashboard_url: str | None = None

    # --- life ----------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None else None

    @property
    def running(self) -> bool:
        """True once the child has said it plays, while it lives."""
        process = self._process
        return process is not None and self._ready.is_set() and process.is_alive()

    @property
    def starting(self) -> bool:
        """True between a spawn and the child's "ready" (bounded by ``spec.start_timeout``)."""
        process = self._process
        return (
            process is not None
            and not self._ready.is_set()
            and process.is_alive()
            and time.monotonic() - self._spawned_at < self.spec.start_timeout
        )

    def start(self, *, wait: bool = True) -> None:
        """Start the child (a no-op while one runs or starts); with ``wait``, until it plays.

        Raises:
            PlayerError: (``wait``) the child could not build its side or did not start in time.
        """
        with self._lock:
            if not (self.running or self.starting):
                self._spawn()
            if wait:
                self._wait_ready()

    def _spawn(self) -> None:
        self._cleanup()
        if self.framebuffer is None:
            self.framebuffer = SharedFramebuffer.create(self.spec.payload_bytes)
        ctx = multiprocessing.get_context("spawn")
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        process = ctx.Process(
            target=child_main,
            args=(self.spec, child_conn, self.framebuffer.name, self._current_bans()),
            name="loop-player",
            daemon=True,
        )
        self._stopping = False
        self._ready = threading.Event()
        self._failure = None
        self._beat_seen = None
        self._spawned_at = time.monotonic()
        process.start()
        _LIVE.add(self)
        child_conn.close()
        self._conn, self._process = parent_conn, process
        self.starts += 1
        self._reader = threading.Thread(
            target=self._read,
            args=(parent_conn, process, self._ready),
            name="loop-player-reader",
            daemon=True,
        )
        self._reader.start()

    def _wait_ready(self) -> None:
        deadline = self._spawned_at + self.spec.start_timeout
        process = self._process
        while not self._ready.wait(0.1):
            failure = self._failure
            if failure is not None:
                self._kill_current()
                raise decode_error(*failure)
            if process is None or not process.is_alive():
                code = process.exitcode if process is not None else None
                self._kill_current()
                raise PlayerError(
                    f"The player process exited while starting (status {code}); see the log for why."
                )
            if time.monotonic() > deadline:
                self._kill_current()
                raise PlayerError(
                    f"The player process did not start within {self.spec.start_timeout:g} s; "
                    "the device is overloaded or the display does not answer."
                )

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the child to stop (the panel keeps its last frame); kill it if it does not go
        within ``timeout``."""
        with self._lock:
            self._stopping = True
            conn, process = self._conn, self._process
            if conn is not None:
                with self._send_lock, contextlib.suppress(OSError, ValueError):
                    conn.send(("stop",))
            if process is not None:
                process.join(timeout)
                if process.is_alive():
                    log.warning("the player process did not stop in %.0f s; killing it", timeout)
                    self._kill(process)
            self._cleanup()

    def close(self) -> None:
        """Stop the child and remove the shared framebuffer."""
        self.stop()
        if self.framebuffer is not None:
            self.framebuffer.close()
            self.framebuffer = None

    def restart(self) -> None:
        """Restart the child's player (re-initialising the panel); a new child if that fails.

        Returns without waiting for a new child to play (its start is bounded by
        ``spec.start_timeout``; :meth:`heartbeat_age` counts it as alive meanwhile).
        """
        if self.running:
            try:
                self.call("restart", timeout=self.call_timeout)
                self._beat_seen = None
                return
            except LoopError as exc:
                log.warning("restarting the player in its process failed (%s); starting a new process", exc)
        self.respawn(wait=False)

    def respawn(self, *, wait: bool = True) -> None:
        """Kill the child (whatever it is doing: SIGKILL) and start a new one."""
        with self._lock:
            self._kill_current()
            self._spawn()
            if wait:
                self._wait_ready()

    def _kill_current(self) -> None:
        self._stopping = True
        if self._process is not None:
            self._kill(self._process)
        self._cleanup()

    @staticmethod
    def _kill(process: Any) -> None:
        with contextlib.suppress(Exception):
            process.kill()
            process.join(5.0)

    def _cleanup(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(Exception):
                process.join(0.1)
        self._fail_pending("The player process stopped before it answered; try again.")
        with self._status_lock:
            self._status = None

    def _read(self, conn: Any, process: Any, ready: threading.Event) -> None:
        """The reader thread of one child: readiness, replies to their callers, events."""
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError, ValueError, TypeError):  # TypeError: closed under us
                break
            kind = message[0]
            if kind == "reply":
                with self._pending_lock:
                    pending = self._pending.pop(message[1], None)
                if pending is not None:
                    pending.ok, pending.value = message[2], message[3]
                    pending.done.set()
            elif kind == "ready":
                self.scheduling = dict(message[1].get("scheduling", {}))
                if self._dashboard_url is not None:  # set since the spec was made
                    self._note(conn, "set_dashboard_url", self._dashboard_url)
                ready.set()
            elif kind == "failed":
                self._failure = tuple(message[1:])
                self._report(f"the player process could not start: {message[2]}")
            elif kind == "event" and message[1] == "fatal":
                self._report(f"the player stopped: {message[2]}")
            elif kind == "event" and message[1] == "fault" and self.on_fault is not None:
                try:
                    self.on_fault(str(message[2]))
                except Exception:
                    log.exception("the player's fault callback failed")
            elif kind == "stopped":
                break
        if self._conn is conn:
            self._fail_pending("The player process stopped before it answered; try again.")
        if not self._stopping and self._process is process:
            with contextlib.suppress(Exception):
                process.join(2.0)
            code = process.exitcode if not process.is_alive() else None
            self._report(f"the player process exited unexpectedly (status {code})")

    def _report(self, sentence: str) -> None:
        log.error("%s", sentence)
        self._exits.append(sentence)
        if self.on_fatal is not None:
            try:
                self.on_fatal(sentence)
            except Exception:
                log.exception("the player's failure callback failed")

    def _fail_pending(self, message: str) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for p in pending.values():
            p.ok, p.value = False, ("PlayerError", message, None)
            p.done.set()

    # --- calls ---------------------------------------------------------------------------------

    def call(self, name: str, *args: Any, timeout: float | None = None) -> Any:
        """Run ``name(*args)`` in the child and return its answer (its exception re-raised here).

        Raises:
            PlayerError: the child is not running or did not answer within ``timeout``.
        """
        conn = self._conn
        if conn is None or not self.running:
            raise PlayerError("The player process is not running (it may be restarting); try again shortly.")
        call_id = next(self._ids)
        pending = _Pending()
        with self._pending_lock:
            self._pending[call_id] = pending
        try:
            with self._send_lock:
                conn.send(("call", call_id, name, args))
        except (OSError, ValueError) as exc:
            with self._pending_lock:
                self._pending.pop(call_id, None)
            raise PlayerError(
                "The player process is not reachable (it may be restarting); try again shortly."
            ) from exc
        if not pending.done.wait(self.call_timeout if timeout is None else timeout):
            with self._pending_lock:
                self._pending.pop(call_id, None)
            raise PlayerError(f"The player process did not answer {name!r} in time; it may be stuck.")
        if not pending.ok:
            raise decode_error(*pending.value)
        return pending.value

    def notify_change(self) -> None:
        """Tell the child the library changed (no answer awaited)."""
        conn = self._conn
        if conn is None:
            return
        with self._send_lock, contextlib.suppress(OSError, ValueError):
            conn.send(("changed",))

    def _control(self, name: str, *args: Any) -> None:
        try:
            self.call(name, *args)
        finally:
            with self._status_lock:
                self._status = None  # the next status shows the control's effect

    def pause(self) -> None:
        self._control("pause")

    def resume(self) -> None:
        self._control("resume")

    def next(self) -> None:
        self._control("next")

    def previous(self) -> None:
        self._control("previous")

    def show(self, item_id: str) -> None:
        if item_id in self._bans:
            raise ItemNotFound(item_id)
        self._control("show", item_id)

    def set_brightness(self, percent: int) -> None:
        check_brightness(percent)
        self._control("set_brightness", percent)

    def sleep(self) -> None:
        self._control("sleep")

    def wake(self) -> None:
        self._control("wake")

    def set_night(self, night: NightSchedule | None) -> None:
        self._control("set_night", night)

    def apply_settings(self, timeout: float = 2.0) -> None:
        """The child reads the live settings from the library now and applies them (the panel
        turned) before this returns (see ``Player.apply_settings``)."""
        try:
            self.call("apply_settings", timeout, timeout=timeout + self.call_timeout)
        finally:
            with self._status_lock:
                self._status = None

    def set_dashboard_url(self, url: str) -> None:
        self._dashboard_url = str(url)  # a later child gets it too
        self._control("set_dashboard_url", str(url))

    def _note(self, conn: Any, name: str, *args: Any) -> None:
        with self._send_lock, contextlib.suppress(OSError, ValueError):
            conn.send(("note", name, args))

    def show_error(self, message: str) -> None:
        self._control("show_error", message)

    def clear_error(self) -> None:
        self._control("clear_error")

    def evict(self, item_id: str, timeout: float = 2.0) -> None:
        """Take the item off the panel for good (see ``Player.evict``), across the process boundary.

        Raises:
            PlayerError: the panel did not move off the item in time, or the child is not
                running (then nothing can be promised about the panel).
        """
        self._bans[item_id] = time.monotonic()
        try:
            self.call("evict", item_id, timeout, timeout=timeout + self.call_timeout)
        finally:
            with self._status_lock:
                self._status = None

    def unban(self, item_id: str) -> None:
        self._bans.pop(item_id, None)
        with contextlib.suppress(PlayerError):
            self._control("unban", item_id)

    def reset_stats_window(self) -> None:
        """Lateness, fps and host time from now on (see ``Player.reset_stats_window``)."""
        self._control("reset_stats_window")

    def _current_bans(self) -> tuple[str, ...]:
        now = time.monotonic()
        for item_id, since in list(self._bans.items()):
            if now - since > BAN_MEMORY_S:
                del self._bans[item_id]
        return tuple(self._bans)

    # --- status and liveness ---------------------------------------------------------------------

    def status(self) -> PlayerStatus:
        """The child's status (reused for ``STATUS_TTL_S`` unless its state changed meanwhile);
        a stand-in while it is not running."""
        with self._status_lock:
            cached = self._status
            version = self.version
            if cached is not None and cached[2] == version and time.monotonic() - cached[0] < STATUS_TTL_S:
                return cached[1]
            try:
                status = PlayerStatus.from_dict(self.call("status"))
            except PlayerError as exc:
                return self._stand_in(str(exc))
            self._status = (time.monotonic(), status, version)
            self._last_stats = status.stats
            return status

    @property
    def version(self) -> int:
        """The child player's status counter (``Player.version``), read from shared memory."""
        fb = self.framebuffer
        return fb.status if fb is not None else 0

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Wait until :attr:`version` differs from ``since`` (or ``timeout`` passes); return it.

        Polls the shared counter (every 20 ms): the child is never asked.
        """
        deadline = time.monotonic() + timeout
        while True:
            version = self.version
            if version != since or time.monotonic() >= deadline:
                return version
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))

    def _stand_in(self, why: str) -> PlayerStatus:
        stats = self._last_stats or snapshot_from_dict({})
        return PlayerStatus(
            state="empty",
            current=None,
            current_name=None,
            frame=None,
            brightness=0,
            night=None,
            faults=list(self._exits),
            stats=stats,
            extra={"error": why},
        )

    @property
    def stats(self) -> StatsSnapshot:
        return self.status().stats

    def heartbeat_age(self) -> float | None:
        """Seconds since the child's heartbeat counter last moved (None: the child is not running).

        Counted from the first time this was asked after a start, so call it regularly (the
        supervisor's liveness check does).
        """
        if self.starting:
            return 0.0  # a new child is importing and opening the hardware (bounded)
        if not self.running or self.framebuffer is None:
            return None
        beat = self.framebuffer.heartbeat
        now = self.clock.monotonic()
        seen = self._beat_seen
        if seen is None or seen[0] != beat:
            self._beat_seen = (beat, now)
            return 0.0
        return now - seen[1]

    def info(self) -> dict[str, Any]:
        """For the health report: the process, its scheduling and its restarts."""
        return {
            "mode": "process",
            "pid": self.pid,
            "running": self.running,
            "starts": self.starts,
            "scheduling": dict(self.scheduling),
            "exits": list(self._exits),
        }
