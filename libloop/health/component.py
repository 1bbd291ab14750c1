"""Components and the two ways they prove they are alive.

A *component* is a part of the device the supervisor watches: the player, the display, the
web server, the importer, the Wi-Fi and resource monitors. Each proves liveness in the way
that fits it:

- a loop (the player) calls :meth:`Heartbeat.beat` every time round; it is stale when no
  beat came for ``stale_after`` seconds on the injected clock;
- an idle component (the web server) answers a :class:`Probe`: a callable run with a time
  bound (the composition root makes it an HTTP GET to the server itself).

Liveness is about progress, not about a thread existing: a thread blocked forever on a hung
transfer is "running" but makes no progress, and its heartbeat goes stale.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from libloop.clock import Clock
from libloop.errors import TransportTimeout
from libloop.health.bounded import StuckThreads, Waiter, call_with_timeout, event_waiter


@dataclass(frozen=True)
class Liveness:
    """A component's answer to "are you alive?".

    Attributes:
        alive: whether it is making progress.
        detail: one short phrase for people ("frame 1234 of cat.gif", "no beat for 12.0 s").
        last_beat_age: seconds since it last proved progress, or None if it never did.
    """

    alive: bool
    detail: str = ""
    last_beat_age: float | None = None


@runtime_checkable
class Component(Protocol):
    """Something the supervisor starts, stops and watches."""

    name: str
    essential: bool

    def start(self) -> None:
        """Start working (a thread, a server); returns quickly."""
        ...

    def stop(self) -> None:
        """Stop working and release what it holds; safe to call when not started."""
        ...

    def liveness(self) -> Liveness:
        """Whether it is alive right now; must return quickly and never raise."""
        ...


class Heartbeat:
    """Liveness for a loop: ``beat()`` each time round; stale after ``stale_after`` seconds."""

    def __init__(self, clock: Clock, *, stale_after: float) -> None:
        if stale_after <= 0:
            raise ValueError("stale_after must be positive")
        self._clock = clock
        self.stale_after = stale_after
        self._lock = threading.Lock()
        self._last: float | None = None
        self._detail = ""
        self.beats = 0

    def beat(self, detail: str = "") -> None:
        """Record progress now (cheap: call it every frame)."""
        now = self._clock.monotonic()
        with self._lock:
            self._last = now
            self._detail = detail
            self.beats += 1

    def reset(self) -> None:
        """Forget past beats (call when the component restarts)."""
        with self._lock:
            self._last = None
            self._detail = ""

    def age(self) -> float | None:
        """Seconds since the last beat, or None if there was none."""
        with self._lock:
            last = self._last
        return None if last is None else max(0.0, self._clock.monotonic() - last)

    def liveness(self) -> Liveness:
        """Alive while the last beat is younger than ``stale_after``."""
        age = self.age()
        with self._lock:
            detail = self._detail
        if age is None:
            return Liveness(False, "no heartbeat yet", None)
        if age > self.stale_after:
            return Liveness(False, f"no heartbeat for {age:.1f} s", age)
        return Liveness(True, detail, age)


class Probe:
    """Liveness for an idle component: a callable that must answer within ``timeout``.

    The check returns normally (alive; a returned string becomes the detail) or raises
    (not alive). It runs on a bounded thread; if a previous check is still hanging no new
    one is started, so a wedged component cannot pile up threads. Results are reused for
    ``min_interval`` seconds so a cheap supervisor tick does not mean a costly probe.
    """

    def __init__(
        self,
        check: Callable[[], object],
        *,
        clock: Clock,
        timeout: float = 2.0,
        min_interval: float = 0.0,
        ledger: StuckThreads | None = None,
        waiter: Waiter = event_waiter,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._check = check
        self._clock = clock
        self.timeout = timeout
        self.min_interval = min_interval
        self._ledger = ledger
        self._waiter = waiter
        self._lock = threading.Lock()
        self._last_ok: float | None = None
        self._last_result: Liveness | None = None
        self._last_run: float | None = None
        self._hung_since: float | None = None
        self._running = threading.Event()

    def liveness(self) -> Liveness:
        """Run the check (or reuse a fresh result) and report."""
        now = self._clock.monotonic()
        with self._lock:
            if (
                self._last_result is not None
                and self._last_run is not None
                and now - self._last_run < self.min_interval
            ):
                return self._last_result
            if self._running.is_set():
                since = self._hung_since if self._hung_since is not None else now
                result = Liveness(False, f"probe hung for {now - since:.1f} s", self._age(now))
                self._last_result = result
                return result
            self._running.set()
            self._last_run = now
        try:
            answer = call_with_timeout(
                self._run_check, timeout=self.timeout, what="health probe", ledger=self._ledger,
                waiter=self._waiter,
            )  # fmt: skip
        except TransportTimeout:
            with self._lock:
                if self._running.is_set():  # still stuck: no new probe until it returns
                    self._hung_since = now
                result = Liveness(False, f"probe did not answer within {self.timeout:.1f} s", self._age(now))
                self._last_result = result
            return result
        except Exception as exc:
            with self._lock:
                result = Liveness(False, f"probe failed: {exc}", self._age(self._clock.monotonic()))
                self._last_result = result
            return result
        done = self._clock.monotonic()
        with self._lock:
            self._last_ok = done
            result = Liveness(True, answer if isinstance(answer, str) else "answered probe", 0.0)
            self._last_result = result
        return result

    def _run_check(self) -> object:
        try:
            return self._check()
        finally:
            with self._lock:
                self._running.clear()
                self._hung_since = None

    def _age(self, now: float) -> float | None:
        return None if self._last_ok is None else max(0.0, now - self._last_ok)


class CallbackComponent:
    """A :class:`Component` assembled from callables, for the composition root.

    Example: ``CallbackComponent("player", start=player.start, stop=player.stop,
    liveness=player.heartbeat.liveness, essential=True)``.
    """

    def __init__(
        self,
        name: str,
        *,
        start: Callable[[], None],
        stop: Callable[[], None],
        liveness: Callable[[], Liveness],
        essential: bool = False,
    ) -> None:
        self.name = name
        self.essential = essential
        self._start = start
        self._stop = stop
        self._liveness = liveness

    def start(self) -> None:
        """Start the wrapped part."""
        self._start()

    def stop(self) -> None:
        """Stop the wrapped part."""
        self._stop()

    def liveness(self) -> Liveness:
        """Ask the wrapped liveness callable."""
        return self._liveness()


class PeriodicTask:
    """A component that runs ``work()`` every ``interval`` seconds on its own thread.

    Each successful round beats the heartbeat, so a round that hangs or keeps raising makes
    the component stale and the supervisor restarts it. The resource and Wi-Fi monitors use it.
    """

    def __init__(
        self,
        name: str,
        work: Callable[[], object],
        *,
        clock: Clock,
        interval: float,
        stale_after: float | None = None,
        essential: bool = False,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.name = name
        self.essential = essential
        self.interval = interval
        self._work = work
        self._clock = clock
        self.heartbeat = Heartbeat(clock, stale_after=stale_after or 3 * interval + 5.0)
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        """One round: do the work and beat (or remember the error)."""
        try:
            self._work()
        except Exception as exc:
            self.last_error = str(exc)
            return
        self.last_error = None
        self.heartbeat.beat()

    def _loop(self, stop: threading.Event) -> None:
        deadline = self._clock.monotonic()
        while not stop.is_set():
            self.run_once()
            deadline = max(deadline + self.interval, self._clock.monotonic())
            if self._clock.sleep_until(deadline, stop):
                return

    def start(self) -> None:
        """Start the background thread (a no-op if it is running)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.heartbeat.reset()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(self._stop,), name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end; a round in progress finishes on its own."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.interval + 1.0)

    def liveness(self) -> Liveness:
        """The heartbeat's verdict, with the last error as the detail when stale."""
        live = self.heartbeat.liveness()
        if not live.alive and self.last_error:
            return Liveness(False, f"{live.detail}; last error: {self.last_error}", live.last_beat_age)
        return live
