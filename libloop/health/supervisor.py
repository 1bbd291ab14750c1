"""The supervisor: watches components, restarts what is stale, climbs the recovery ladder.

The recovery ladder, one rung at a time:

1. **Restart the component** that is stale or failed, with exponential backoff.
2. **Emergency mode** when an essential component failed ``emergency_after`` times within
   ``window`` seconds: the ``on_emergency`` callback shows the error screen and every
   non-essential component is stopped, freeing CPU, memory and the bus for the essentials.
   When the essentials then run for a whole ``window`` without failing, the supervisor
   leaves emergency mode and restarts the others.
3. **Process exit** when an essential component failed ``exit_after`` times within the
   window, or when more hardware calls are stuck than the :class:`StuckThreads` ledger
   allows (a thread stuck in a native call cannot be killed; only a new process frees it).
   The supervisor never calls ``sys.exit`` from its own thread, which would only end that
   thread. It sets :attr:`Supervisor.exit_code`, calls ``on_exit`` and wakes
   :meth:`Supervisor.wait_for_exit`; the main thread of ``loop run`` waits there, stops the
   device and raises ``SystemExit(code)``, and systemd (``Restart=on-failure``) starts a
   fresh process.
4. **systemd's watchdog** when even that cannot happen: ``WATCHDOG=1`` is sent from the
   check loop only while every essential component is alive, so a stuck check loop, a stuck
   main thread or a dead essential component all stop the feeding, and systemd kills and
   restarts the process after ``WatchdogSec``.

Tests drive everything with :meth:`Supervisor.check_once` on a ``FakeClock``; in the device
:meth:`Supervisor.start` runs the same method on a thread every ``check_interval`` seconds.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from libloop.clock import Clock
from libloop.errors import TransportTimeout
from libloop.health.bounded import STUCK_THREADS, StuckThreads, Waiter, call_with_timeout, event_waiter
from libloop.health.component import Component, Liveness
from libloop.health.faults import FaultLog
from libloop.health.notify import Notifier, SdNotifier
from libloop.wording import plural

#: Exit status asking systemd for a restart (any non-zero status does; 3 is ours, documented).
EXIT_RESTART = 3

#: Component states as the snapshot shows them.
STARTING, RUNNING, FAILED, STOPPED, SUSPENDED = "starting", "running", "failed", "stopped", "suspended"


@dataclass
class _Record:
    component: Component
    restart: Callable[[], None]
    state: str = STOPPED
    started_at: float = 0.0
    next_restart: float = 0.0
    backoff: float = 0.0
    restarts: int = 0
    failures: deque[float] = field(default_factory=deque)
    last: Liveness = field(default_factory=lambda: Liveness(False, "not started"))

    @property
    def name(self) -> str:
        return self.component.name

    @property
    def essential(self) -> bool:
        return self.component.essential


class Supervisor:
    """Starts, watches and restarts components; talks to systemd; reports health.

    Args:
        clock: the clock every interval is measured on (a FakeClock in tests).
        notifier: where READY/STATUS/WATCHDOG/STOPPING go; default: from the environment.
        check_interval: seconds between checks (shortened to a third of the watchdog interval).
        start_grace: seconds a (re)started component may take to prove it is alive.
        backoff_initial, backoff_max: the restart delay doubles from one to the other.
        window: seconds over which failures are counted for the ladder.
        emergency_after, exit_after: failures of one essential component within ``window``
            that enter emergency mode / request the process exit.
        call_timeout: bound on each start/stop/restart call made by the supervisor.
        on_emergency: called with a reason when entering emergency mode (show the error screen).
        on_recovered: called when leaving emergency mode.
        on_exit: called with (code, reason) when an exit is requested.
        stuck: the ledger of abandoned hardware-call threads to escalate on.
    """

    def __init__(
        self,
        clock: Clock,
        notifier: Notifier | None = None,
        *,
        check_interval: float = 1.0,
        start_grace: float = 15.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        window: float = 600.0,
        emergency_after: int = 3,
        exit_after: int = 5,
        call_timeout: float = 10.0,
        on_emergency: Callable[[str], None] | None = None,
        on_recovered: Callable[[], None] | None = None,
        on_exit: Callable[[int, str], None] | None = None,
        faults: FaultLog | None = None,
        stuck: StuckThreads | None = None,
        waiter: Waiter = event_waiter,
    ) -> None:
        if not 0 < emergency_after <= exit_after:
            raise ValueError("need 0 < emergency_after <= exit_after")
        if check_interval <= 0 or backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ValueError("intervals must be positive and backoff_max >= backoff_initial")
        self._clock = clock
        self.notifier: Notifier = notifier if notifier is not None else SdNotifier.from_environment()
        interval = self.notifier.watchdog_interval()
        self.check_interval = min(check_interval, interval / 3) if interval else check_interval
        self.start_grace = start_grace
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.window = window
        self.emergency_after = emergency_after
        self.exit_after = exit_after
        self.call_timeout = call_timeout
        self.on_emergency = on_emergency
        self.on_recovered = on_recovered
        self.on_exit = on_exit
        self.faults = faults if faults is not None else FaultLog()
        self.stuck = stuck if stuck is not None else STUCK_THREADS
        self._waiter = waiter
        self._records: list[_Record] = []
        self._sections: dict[str, Callable[[], Any]] = {}
        self._lock = threading.RLock()
        self._started_at = clock.monotonic()
        self._ready_sent = False
        self._emergency_reason: str | None = None
        self._emergency_since = 0.0
        self._last_status = ""
        self._exit_code: int | None = None
        self._exit_reason = ""
        self._exit_event = threading.Event()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        #: How many times the watchdog was fed (for tests and the snapshot).
        self.watchdog_feeds = 0

    # --- registration ----------------------------------------------------------------

    def register(self, component: Component, restart: Callable[[], None] | None = None) -> None:
        """Watch ``component``; ``restart`` defaults to ``stop()`` then ``start()``.

        For the display, pass a restart that calls ``Display.reinit()`` and restarts the player.
        """
        with self._lock:
            if any(r.name == component.name for r in self._records):
                raise ValueError(f"a component named {component.name!r} is already registered")

            def default_restart() -> None:
                component.stop()
                component.start()

            self._records.append(_Record(component, restart or default_restart, backoff=self.backoff_initial))

    def add_section(self, name: str, info: Callable[[], Any]) -> None:
        """Add ``info()`` to :meth:`snapshot` under ``name`` (e.g. resources, wifi)."""
        if name in {"state", "components", "faults", "ready", "emergency", "exit", "uptime_s", "watchdog"}:
            raise ValueError(f"{name!r} is a built-in section of the health snapshot")
        self._sections[name] = info

    # --- life cycle ------------------------------------------------------------------

    def start(self, *, background: bool = True) -> None:
        """Start every component in registration order, then (``background``) the check thread.

        A component that fails to start is treated like one that failed later: it is retried
        with backoff and climbs the ladder, so a transient boot-time problem heals itself.
        """
        now = self._clock.monotonic()
        with self._lock:
            records = list(self._records)
        for rec in records:
            try:
                self._bounded(rec.component.start, f"{rec.name} start")
            except Exception as exc:
                self._fail(rec, now, f"could not start: {exc}")
                continue
            rec.state, rec.started_at = STARTING, now
        self.notifier.status(self._summary())
        if background:
            self._stop_event.clear()
            self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Send STOPPING=1, end the check thread and stop components in reverse order."""
        self.notifier.stopping("Stopping")
        self._stop_event.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.call_timeout + self.check_interval)
        with self._lock:
            records = list(reversed(self._records))
        for rec in records:
            if rec.state != STOPPED:
                try:
                    self._bounded(rec.component.stop, f"{rec.name} stop")
                except Exception as exc:
                    self.faults.record(rec.name, f"did not stop cleanly: {exc}")
                rec.state = STOPPED

    def _run(self) -> None:
        deadline = self._clock.monotonic()
        while not self._stop_event.is_set():
            try:
                self.check_once()
            except Exception as exc:  # a bug here must not silently end supervision
                self.faults.record("supervisor", f"check failed: {exc!r}")
            deadline = max(deadline + self.check_interval, self._clock.monotonic())
            if self._clock.sleep_until(deadline, self._stop_event):
                return

    # --- the check -------------------------------------------------------------------

    def check_once(self) -> None:
        """One round: ask every component, restart what is due, escalate, notify systemd."""
        now = self._clock.monotonic()
        with self._lock:
            records = list(self._records)
        for rec in records:
            if self.exit_requested:
                break
            self._check(rec, now)
        if self.stuck.over_limit and not self.exit_requested:
            stuck = "; ".join(self.stuck.descriptions())
            self.request_exit(EXIT_RESTART, f"{self.stuck.count} hardware calls are stuck ({stuck})")
        self._maybe_leave_emergency(now, records)
        essential_alive = all(r.state == RUNNING for r in records if r.essential)
        if essential_alive and not self.exit_requested:
            if not self._ready_sent:
                self.notifier.ready(self._summary())
                self._ready_sent = True
                self._last_status = self._summary()
            self.notifier.watchdog()
            self.watchdog_feeds += 1
        summary = self._summary()
        if summary != self._last_status:
            self._last_status = summary
            self.notifier.status(summary)

    def _check(self, rec: _Record, now: float) -> None:
        if rec.state in (STOPPED, SUSPENDED):
            return
        if rec.state == FAILED:
            if now >= rec.next_restart:
                self._restart(rec, now)
            return
        rec.last = self._ask(rec)
        if rec.last.alive:
            if rec.state == STARTING:
                rec.state = RUNNING
            if rec.failures and now - rec.failures[-1] >= self.window:
                rec.backoff = self.backoff_initial  # a long good run earns a fresh start
            return
        if rec.state == STARTING and now - rec.started_at < self.start_grace:
            return
        self._fail(rec, now, rec.last.detail or "not alive")

    def _ask(self, rec: _Record) -> Liveness:
        try:
            return rec.component.liveness()
        except Exception as exc:
            return Liveness(False, f"liveness check raised: {exc}")

    def _restart(self, rec: _Record, now: float) -> None:
        try:
            self._bounded(rec.restart, f"{rec.name} restart")
        except Exception as exc:
            rec.restarts += 1
            self._fail(rec, now, f"restart failed: {exc}")
            return
        # Counted once the component is starting again, so whoever sees the count can also
        # see (and report against) the restarted component.
        rec.restarts += 1
        rec.state, rec.started_at = STARTING, now
        rec.last = Liveness(False, "restarted")

    def _fail(self, rec: _Record, now: float, reason: str) -> None:
        """Record a failure, schedule a restart after the backoff, and climb the ladder."""
        self.faults.record(rec.name, reason)
        rec.failures.append(now)
        while rec.failures and now - rec.failures[0] > self.window:
            rec.failures.popleft()
        rec.state = FAILED
        rec.next_restart = now + rec.backoff
        rec.backoff = min(rec.backoff * 2, self.backoff_max)
        rec.last = Liveness(False, reason, rec.last.last_beat_age)
        if not rec.essential:
            return  # non-essential parts keep being retried at most every backoff_max seconds
        count = len(rec.failures)
        if count >= self.exit_after:
            self.request_exit(
                EXIT_RESTART, f"{rec.name} failed {plural(count, 'time')} in {self.window:.0f} s: {reason}"
            )
        elif count >= self.emergency_after:
            self._enter_emergency(now, f"{rec.name} keeps failing: {reason}")

    def _enter_emergency(self, now: float, reason: str) -> None:
        self._emergency_since = now
        if self._emergency_reason is not None:
            return
        self._emergency_reason = reason
        self.faults.record("supervisor", f"emergency mode: {reason}")
        with self._lock:
            records = list(self._records)
        for rec in records:
            if not rec.essential and rec.state != STOPPED:
                try:
                    self._bounded(rec.component.stop, f"{rec.name} stop")
                except Exception as exc:
                    self.faults.record(rec.name, f"did not stop cleanly: {exc}")
                rec.state = SUSPENDED
                rec.last = Liveness(False, "suspended in emergency mode")
        self._callback(self.on_emergency, reason)

    def _maybe_leave_emergency(self, now: float, records: list[_Record]) -> None:
        if self._emergency_reason is None or self.exit_requested:
            return
        if now - self._emergency_since < self.window:
            return
        if not all(r.state == RUNNING for r in records if r.essential):
            return
        self.faults.record("supervisor", "left emergency mode: the essential components ran cleanly")
        self._emergency_reason = None
        for rec in records:
            if rec.state == SUSPENDED:
                try:
                    self._bounded(rec.component.start, f"{rec.name} start")
                except Exception as exc:
                    self._fail(rec, now, f"could not start: {exc}")
                    continue
                rec.state, rec.started_at = STARTING, now
        self._callback(self.on_recovered)

    def _bounded(self, fn: Callable[[], None], what: str) -> None:
        call_with_timeout(fn, timeout=self.call_timeout, what=what, ledger=self.stuck, waiter=self._waiter)

    def _callback(self, fn: Callable[..., None] | None, *args: Any) -> None:
        if fn is None:
            return
        try:
            self._bounded(lambda: fn(*args), getattr(fn, "__name__", "callback"))
        except TransportTimeout as exc:
            self.faults.record("supervisor", f"callback hung: {exc}")
        except Exception as exc:
            self.faults.record("supervisor", f"callback failed: {exc!r}")

    # --- exit ------------------------------------------------------------------------

    def request_exit(self, code: int, reason: str) -> None:
        """Ask the main thread to end the process with ``code`` (the first request wins).

        Also used by the SIGTERM handler with code 0. The watchdog is no longer fed after this,
        so a main thread that fails to exit is killed by systemd.
        """
        with self._lock:
            if self._exit_code is not None:
                return
            self._exit_code, self._exit_reason = code, reason
        if code != 0:
            self.faults.record("supervisor", f"exiting with status {code} for a restart: {reason}")
        self.notifier.status(f"Exiting: {reason}")
        self._callback(self.on_exit, code, reason)
        self._exit_event.set()

    @property
    def exit_requested(self) -> bool:
        """True once an exit was requested."""
        return self._exit_code is not None

    @property
    def exit_code(self) -> int | None:
        """The requested exit status, or None while the process should keep running."""
        return self._exit_code

    @property
    def exit_reason(self) -> str:
        """Why the exit was requested."""
        return self._exit_reason

    def wait_for_exit(self, timeout: float | None = None) -> int | None:
        """Block (in the main thread) until an exit is requested; returns the code or None on timeout."""
        self._exit_event.wait(timeout)
        return self._exit_code

    # --- reports ---------------------------------------------------------------------

    def report_failure(self, name: str, reason: str) -> None:
        """A component reports its own failure (e.g. the player caught a TransportTimeout)."""
        now = self._clock.monotonic()
        with self._lock:
            rec = next((r for r in self._records if r.name == name), None)
        if rec is None:
            raise KeyError(f"no component named {name!r} is registered")
        if rec.state in (STARTING, RUNNING):
            self._fail(rec, now, reason)

    @property
    def emergency(self) -> bool:
        """True while in emergency mode."""
        return self._emergency_reason is not None

    def overall_state(self) -> str:
        """ok, starting, degraded, emergency or exiting."""
        with self._lock:
            records = list(self._records)
        if self.exit_requested:
            return "exiting"
        if self._emergency_reason is not None:
            return "emergency"
        if any(r.state == FAILED for r in records):
            return "degraded"
        if any(r.state == STARTING for r in records):
            return "starting"
        return "ok"

    def _summary(self) -> str:
        state = self.overall_state()
        with self._lock:
            records = list(self._records)
        running = sum(r.state == RUNNING for r in records)
        text = f"{state}: {running}/{len(records)} components running"
        bad = [r.name for r in records if r.state in (FAILED, SUSPENDED)]
        if bad:
            text += f"; down: {', '.join(bad)}"
        if self._emergency_reason:
            text += f"; {self._emergency_reason}"
        return text

    def snapshot(self) -> dict[str, Any]:
        """Health for ``GET /api/health``: state, components, recent faults and extra sections."""
        now = self._clock.monotonic()
        with self._lock:
            records = list(self._records)
        interval = self.notifier.watchdog_interval()
        snap: dict[str, Any] = {
            "state": self.overall_state(),
            "ready": self._ready_sent,
            "uptime_s": round(now - self._started_at, 3),
            "emergency": self._emergency_reason,
            "exit": None
            if self._exit_code is None
            else {"code": self._exit_code, "reason": self._exit_reason},
            "watchdog": {"interval_s": interval, "feeds": self.watchdog_feeds},
            "stuck_threads": {
                "count": self.stuck.count,
                "limit": self.stuck.limit,
                "total": self.stuck.total,
            },
            "components": [
                {
                    "name": r.name,
                    "essential": r.essential,
                    "state": r.state,
                    "alive": r.state == RUNNING and r.last.alive,
                    "restarts": r.restarts,
                    "recent_failures": sum(1 for t in r.failures if now - t <= self.window),
                    "detail": r.last.detail,
                    "last_beat_age_s": None
                    if r.last.last_beat_age is None
                    else round(r.last.last_beat_age, 3),
                }
                for r in records
            ],
            "faults": [f.to_dict() for f in self.faults.recent(20)],
            "faults_total": self.faults.total,
        }
        for name, info in self._sections.items():
            try:
                snap[name] = info()
            except Exception as exc:
                snap[name] = {"error": str(exc)}
        return snap
