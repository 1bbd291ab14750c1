"""Bounds on hardware calls: every SPI and GPIO operation finishes, fails, or is reported hung.

A call runs on a worker thread while the caller waits for it with a timeout. If the call
does not finish in time the caller gets :class:`~libloop.errors.TransportTimeout` and the
worker is *abandoned*: Python cannot kill a thread, and a thread stuck inside a native call
(an ioctl on ``/dev/spidev*`` that never returns) cannot even be interrupted. The abandoned
thread is counted in a :class:`StuckThreads` ledger; when it eventually returns it leaves the
ledger. Too many stuck threads means the driver is wedged and only a new process (or a
reboot) helps, so the supervisor escalates to a process exit when the ledger is over its
limit. If even that cannot happen (a native call holding the GIL), systemd's watchdog kills
the process because the supervisor stops feeding it.

Bounding only works for calls that release the GIL while they block: spidev's
``writebytes2``/``xfer3`` do, the old ``xfer``/``writebytes`` list APIs hold it.

Transient errors (``EIO`` and friends, :class:`~libloop.errors.TransportError`) are retried a
bounded number of times with backoff; a timeout is never retried (a second attempt on a
wedged driver would only strand a second thread).
"""

from __future__ import annotations

import errno
import itertools
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from libloop._types import Buffer
from libloop.clock import Clock, MonotonicClock
from libloop.errors import TransferCut, TransportError, TransportTimeout
from libloop.transport.base import Backlight, BusStats, OutputPin, SpiBus, SpiLink

T = TypeVar("T")

#: errno values a retry can plausibly cure.
TRANSIENT_ERRNOS = frozenset({errno.EIO, errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT, errno.EBUSY})


class Waiter(Protocol):
    """Waits for ``done`` up to ``timeout`` seconds; True if it was set. Tests inject their own."""

    def __call__(self, done: threading.Event, timeout: float) -> bool: ...


def event_waiter(done: threading.Event, timeout: float) -> bool:
    """The real waiter: a plain event wait on wall time."""
    return done.wait(timeout)


class StuckThreads:
    """Ledger of abandoned worker threads that are still stuck in a call.

    Shared by every bounded object of a process so the supervisor can see the total.
    """

    def __init__(self, limit: int = 3) -> None:
        if limit < 1:
            raise ValueError("the stuck-thread limit must be at least 1")
        self.limit = limit
        self._lock = threading.Condition()
        self._stuck: dict[int, str] = {}
        self._ids = itertools.count(1)
        self._total = 0

    def add(self, description: str) -> int:
        """Record a newly abandoned call; returns a token for :meth:`release`."""
        with self._lock:
            token = next(self._ids)
            self._stuck[token] = description
            self._total += 1
            return token

    def release(self, token: int) -> None:
        """The abandoned call finally returned; its thread is gone."""
        with self._lock:
            self._stuck.pop(token, None)
            self._lock.notify_all()

    def wait_clear(self, timeout: float) -> bool:
        """Wait until no thread is stuck (e.g. before a clean exit); True if none is."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._stuck, timeout)

    @property
    def count(self) -> int:
        """Threads stuck right now."""
        with self._lock:
            return len(self._stuck)

    @property
    def total(self) -> int:
        """Calls abandoned since start-up."""
        with self._lock:
            return self._total

    @property
    def over_limit(self) -> bool:
        """True when so many threads are stuck that only a process restart helps."""
        return self.count >= self.limit

    def descriptions(self) -> list[str]:
        """What each stuck thread was doing."""
        with self._lock:
            return list(self._stuck.values())


#: The process-wide ledger used when none is passed.
STUCK_THREADS = StuckThreads()


@dataclass
class _Job:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    what: str
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    abandoned_token: int | None = None
    finished: bool = False

    def run(self, ledger: StuckThreads) -> None:
        try:
            self.result = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:  # handed to the caller, who re-raises it
            self.error = exc
        with self.lock:
            self.finished = True
            token = self.abandoned_token
        self.done.set()
        if token is not None:
            ledger.release(token)

    def abandon(self, ledger: StuckThreads) -> bool:
        """Mark the job abandoned unless it finished meanwhile; True if abandoned."""
        with self.lock:
            if self.finished:
                return False
            self.abandoned_token = ledger.add(self.what)
            return True


def _describe(fn: Callable[..., Any], what: str | None) -> str:
    return what or getattr(fn, "__qualname__", None) or repr(fn)


def _timeout_error(what: str, timeout: float) -> TransportTimeout:
    return TransportTimeout(
        f"{what} did not finish within {timeout:.2f} s (a hung driver or bus); "
        "the display will be re-initialised, and the service restarted if this keeps happening."
    )


def call_with_timeout(
    fn: Callable[..., T],
    *args: Any,
    timeout: float,
    what: str | None = None,
    ledger: StuckThreads | None = None,
    waiter: Waiter = event_waiter,
    **kwargs: Any,
) -> T:
    """Run ``fn(*args, **kwargs)`` on a fresh daemon thread and wait at most ``timeout`` seconds.

    Meant for occasional calls (probes, restarts); a hot path uses :class:`BoundedWorker`,
    which keeps one thread instead of starting one per call.

    Raises:
        TransportTimeout: the call did not finish in time; its thread is abandoned and
            counted in ``ledger`` until it returns.
        Exception: whatever ``fn`` raised.
    """
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    ledger = ledger if ledger is not None else STUCK_THREADS
    job = _Job(fn, args, kwargs, _describe(fn, what))
    thread = threading.Thread(target=job.run, args=(ledger,), name=f"bounded:{job.what}", daemon=True)
    thread.start()
    if not waiter(job.done, timeout) and job.abandon(ledger):
        raise _timeout_error(job.what, timeout)
    job.done.wait()  # set already, or set imminently by a job that just finished
    if job.error is not None:
        raise job.error
    return job.result  # type: ignore[no-any-return]


class BoundedWorker:
    """One long-lived worker thread that runs calls with a bound, replaced when it hangs.

    Handing a call to a waiting thread costs two context switches, cheap next to an SPI frame.
    """

    def __init__(
        self, name: str, *, ledger: StuckThreads | None = None, waiter: Waiter = event_waiter
    ) -> None:
        self.name = name
        self._ledger = ledger if ledger is not None else STUCK_THREADS
        self._waiter = waiter
        self._queue: queue.SimpleQueue[_Job | None] | None = None
        self._lock = threading.Lock()

    def _ensure_thread(self) -> queue.SimpleQueue[_Job | None]:
        with self._lock:
            if self._queue is None:
                q: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
                threading.Thread(
                    target=self._serve, args=(q,), name=f"bounded:{self.name}", daemon=True
                ).start()
                self._queue = q
            return self._queue

    def _serve(self, q: queue.SimpleQueue[_Job | None]) -> None:
        while (job := q.get()) is not None:
            job.run(self._ledger)
            if job.abandoned_token is not None:
                return  # this thread was given up on; a new one serves the queue's successor

    def call(self, fn: Callable[..., T], *args: Any, timeout: float, what: str | None = None) -> T:
        """Run ``fn`` on the worker; like :func:`call_with_timeout`."""
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        job = _Job(fn, args, {}, f"{self.name}: {_describe(fn, what)}")
        q = self._ensure_thread()
        q.put(job)
        if not self._waiter(job.done, timeout) and job.abandon(self._ledger):
            with self._lock:
                if self._queue is q:
                    self._queue = None  # the next call starts a fresh thread
            raise _timeout_error(job.what, timeout)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[no-any-return]

    def shutdown(self) -> None:
        """Let the worker thread end (it finishes the call it is in, if any)."""
        with self._lock:
            q, self._queue = self._queue, None
        if q is not None:
            q.put(None)


class InlineWorker:
    """Runs each call on the caller's thread: retries still apply, the time bound does not.

    For a process whose liveness is watched from outside (the player process: its heartbeat
    stops when a call hangs, and the device kills and replaces the whole process, which is the
    only thing that frees a thread stuck in a native call anyway). It saves the two context
    switches a bounded call costs, on every transfer and every D/C toggle.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def call(self, fn: Callable[..., T], *args: Any, timeout: float, what: str | None = None) -> T:
        """Run ``fn`` here (``timeout`` is checked, not enforced)."""
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        return fn(*args)

    def shutdown(self) -> None:
        """Nothing to stop."""


def _worker(
    name: str, inline: bool, ledger: StuckThreads | None, waiter: Waiter
) -> BoundedWorker | InlineWorker:
    if inline:
        return InlineWorker(name)
    return BoundedWorker(name, ledger=ledger, waiter=waiter)


def is_transient(exc: BaseException) -> bool:
    """True for errors a retry can cure: EIO-like OSErrors and transport errors that are not hangs.

    A :class:`~libloop.errors.TransferCut` is not retried here: resending just the failed write
    would continue a pixel stream from the wrong place; the display resends the operation.
    """
    if isinstance(exc, TransportTimeout | TransferCut):
        return False
    if isinstance(exc, TransportError):
        return True
    return isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient errors are retried."""

    attempts: int = 3
    initial_delay: float = 0.005
    factor: float = 4.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.initial_delay < 0 or self.factor < 1:
            raise ValueError("retry delays must be non-negative and must not shrink")

    def delays(self) -> list[float]:
        """The waits between attempts."""
        return [self.initial_delay * self.factor**i for i in range(self.attempts - 1)]


@dataclass
class RetryStats:
    """What the bounded wrappers saw, for the health snapshot."""

    retries: int = 0
    timeouts: int = 0
    failures: int = 0


def call_bounded(
    worker: BoundedWorker | InlineWorker,
    fn: Callable[..., T],
    *args: Any,
    timeout: float,
    policy: RetryPolicy,
    clock: Clock,
    stats: RetryStats,
    what: str,
) -> T:
    """Run ``fn`` on ``worker`` with a bound, retrying transient errors per ``policy``."""
    delays = policy.delays()
    for attempt in range(policy.attempts):
        try:
            return worker.call(fn, *args, timeout=timeout, what=what)
        except TransportTimeout:
            stats.timeouts += 1
            raise
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt == policy.attempts - 1:
                stats.failures += 1
                if isinstance(exc, TransportError):
                    raise
                raise TransportError(
                    f"{what} failed {policy.attempts} times ({exc}); check the wiring and the SPI settings."
                ) from exc
            stats.retries += 1
            clock.sleep_until(clock.monotonic() + delays[attempt])
    raise AssertionError("unreachable")  # pragma: no cover


#: Host time allowed for each transfer a write is cut into (a syscall, a GIL hand-over on a
#: busy machine), on top of its wire time.
PER_TRANSFER_S = 0.002


def transfer_timeout(
    nbytes: int, speed_hz: int, *, factor: float = 4.0, margin: float = 1.0, max_transfer: int = 0
) -> float:
    """A bound for moving ``nbytes`` over SPI at ``speed_hz``: ``factor`` × wire time + ``margin``,
    plus ``PER_TRANSFER_S`` for each transfer of at most ``max_transfer`` bytes it takes.

    A full 240×320 frame at 64 MHz is 19.2 ms on the wire, so a hang is noticed after ~1.1 s;
    in 64-byte transfers (the Pi 5's degraded mode) the same frame is 2,400 transfers and gets
    about 5 s more.
    """
    if speed_hz <= 0:
        raise ValueError("speed_hz must be positive")
    n = max(nbytes, 0)
    transfers = -(-n // max_transfer) if max_transfer > 0 else 1
    return n * 8 / speed_hz * factor + margin + transfers * PER_TRANSFER_S


class BoundedBus:
    """An ``SpiBus`` whose every call is bounded in time and retried on transient errors.

    The Display is built over it exactly as over the raw bus. A retried ``write`` resends the
    whole buffer; after a partial pixel write the window wraps around, which the player's next
    full refresh repairs. ``open`` gets a fixed bound, ``write``/``read`` one computed from the
    byte count and clock rate (:func:`transfer_timeout`). With ``inline=True`` calls run on the
    caller's thread (:class:`InlineWorker`): retried, but bounded only by whoever watches the
    process (the player process's heartbeat).
    """

    def __init__(
        self,
        bus: SpiBus,
        *,
        speed_hz: int = 64_000_000,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        margin: float = 1.0,
        open_timeout: float = 2.0,
        ledger: StuckThreads | None = None,
        waiter: Waiter = event_waiter,
        inline: bool = False,
    ) -> None:
        self.inner = bus
        self.speed_hz = speed_hz
        self.margin = margin
        self.open_timeout = open_timeout
        self.policy = policy or RetryPolicy()
        self.retry_stats = RetryStats()
        self._clock: Clock = clock or MonotonicClock()
        self._worker = _worker("spi", inline, ledger, waiter)

    @property
    def max_transfer(self) -> int:
        """The wrapped bus's largest single transfer."""
        return self.inner.max_transfer

    @property
    def max_read(self) -> int:
        """The wrapped bus's largest read frame."""
        return self.inner.max_read

    def link(self) -> SpiLink:
        """The wrapped bus's clock and fault state (no I/O, so not bounded)."""
        return self.inner.link()

    @property
    def stats(self) -> BusStats:
        """The wrapped bus's transfer and byte counts."""
        return self.inner.stats

    @stats.setter
    def stats(self, value: BusStats) -> None:
        self.inner.stats = value

    def _call(self, fn: Callable[..., T], *args: Any, timeout: float, what: str) -> T:
        return call_bounded(
            self._worker, fn, *args, timeout=timeout, policy=self.policy, clock=self._clock,
            stats=self.retry_stats, what=what,
        )  # fmt: skip

    def open(self) -> None:
        """Open the bus (bounded, retried)."""
        self._call(self.inner.open, timeout=self.open_timeout, what="SPI open")

    def close(self) -> None:
        """Close the bus; a hang here is reported like any other."""
        try:
            self._worker.call(self.inner.close, timeout=self.open_timeout, what="SPI close")
        finally:
            self._worker.shutdown()

    def write(self, data: Buffer) -> None:
        """Write ``data`` within a bound computed from its length."""
        n = memoryview(data).nbytes
        limit = getattr(self.inner, "max_transfer", 0)
        timeout = transfer_timeout(
            n, self.speed_hz, margin=self.margin, max_transfer=limit if isinstance(limit, int) else 0
        )
        self._call(self.inner.write, data, timeout=timeout, what=f"SPI write of {n} bytes")

    def read(self, command: Buffer, n: int) -> bytes:
        """A read frame within a bound computed from its length at the read clock."""
        link = self.inner.link()
        timeout = transfer_timeout(n + 1, link.read_clock_hz or self.speed_hz, margin=self.margin)
        return self._call(self.inner.read, command, n, timeout=timeout, what=f"SPI read of {n} bytes")


class _BoundedLine:
    """What a bounded pin and a bounded backlight share: one worker, bounded retried calls."""

    def __init__(
        self,
        label: str,
        *,
        timeout: float,
        clock: Clock | None,
        policy: RetryPolicy | None,
        ledger: StuckThreads | None,
        waiter: Waiter,
        inline: bool = False,
    ) -> None:
        self.label = label
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.retry_stats = RetryStats()
        self._clock: Clock = clock or MonotonicClock()
        self._worker = _worker(label, inline, ledger, waiter)

    def _call(self, fn: Callable[..., T], *args: Any, what: str) -> T:
        return call_bounded(
            self._worker, fn, *args, timeout=self.timeout, policy=self.policy, clock=self._clock,
            stats=self.retry_stats, what=f"{self.label} {what}",
        )  # fmt: skip

    def _close(self, close: Callable[[], None]) -> None:
        try:
            self._worker.call(close, timeout=self.timeout, what=f"{self.label} close")
        finally:
            self._worker.shutdown()


class BoundedPin(_BoundedLine):
    """An ``OutputPin`` whose calls are bounded and retried like :class:`BoundedBus`'s."""

    def __init__(
        self,
        pin: OutputPin,
        *,
        name: str = "pin",
        timeout: float = 0.5,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        ledger: StuckThreads | None = None,
        waiter: Waiter = event_waiter,
        inline: bool = False,
    ) -> None:
        super().__init__(
            f"GPIO {name}", timeout=timeout, clock=clock, policy=policy, ledger=ledger, waiter=waiter,
            inline=inline,
        )  # fmt: skip
        self.inner = pin
        self.name = name

    @property
    def value(self) -> bool:
        """The level last set."""
        return self.inner.value

    @value.setter
    def value(self, level: bool) -> None:
        self.set(level)

    def open(self) -> None:
        """Request the line (bounded, retried)."""
        self._call(self.inner.open, what="open")

    def close(self) -> None:
        """Release the line."""
        self._close(self.inner.close)

    def set(self, value: bool) -> None:
        """Drive the line (bounded, retried)."""
        self._call(self.inner.set, value, what="set")


class BoundedBacklight(_BoundedLine):
    """A ``Backlight`` whose ``set_level`` is bounded and retried."""

    def __init__(
        self,
        backlight: Backlight,
        *,
        timeout: float = 0.5,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        ledger: StuckThreads | None = None,
        waiter: Waiter = event_waiter,
        inline: bool = False,
    ) -> None:
        super().__init__(
            "backlight", timeout=timeout, clock=clock, policy=policy, ledger=ledger, waiter=waiter,
            inline=inline,
        )  # fmt: skip
        self.inner = backlight

    def open(self) -> None:
        """Claim the backlight line or PWM channel (bounded, retried)."""
        self._call(self.inner.open, what="open")

    def close(self) -> None:
        """Release it."""
        self._close(self.inner.close)

    def set_level(self, percent: int) -> None:
        """Set the brightness (bounded, retried)."""
        self._call(self.inner.set_level, percent, what="set_level")
