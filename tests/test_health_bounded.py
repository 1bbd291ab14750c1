"""Bounded hardware calls: transient errors retried, hangs detected without waiting, stuck threads counted."""

from __future__ import annotations

import errno
import itertools
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libloop.clock import FakeClock
from libloop.errors import DeviceNotFound, TransportError, TransportTimeout
from libloop.health import (
    BoundedBus,
    BoundedPin,
    RetryPolicy,
    StuckThreads,
    call_with_timeout,
    is_transient,
    transfer_timeout,
)
from libloop.transport.base import BusStats
from sim.pins import FakePin


def timed_out(done: threading.Event, timeout: float) -> bool:
    """A waiter that reports the bound as elapsed at once (unless the call already finished)."""
    return done.is_set()


class FlakyBus:
    """A bus that fails with the queued errors, then works; can hang on demand."""

    max_transfer = 4096

    def __init__(self, errors: list[BaseException] | None = None) -> None:
        self.errors = list(errors or [])
        self.writes: list[bytes] = []
        self.hang = threading.Event()  # set by the test to make the next write block
        self.release = threading.Event()
        self.entered = threading.Event()
        self.opened = False
        self.stats = BusStats()

    def open(self) -> None:
        self.opened = True

    def close(self) -> None:
        self.opened = False

    def write(self, data: object) -> None:
        if self.hang.is_set():
            self.entered.set()
            self.release.wait()
        if self.errors:
            raise self.errors.pop(0)
        self.writes.append(bytes(memoryview(data)))  # type: ignore[arg-type]

    def read(self, n: int) -> bytes:
        return bytes(n)


def test_transient_errors_are_retried_then_succeed() -> None:
    bus = FlakyBus([OSError(errno.EIO, "Remote I/O error"), TransportError("glitch")])
    bounded = BoundedBus(bus, clock=FakeClock(), policy=RetryPolicy(attempts=3))
    bounded.write(b"\x2c\x00\x01")
    assert bus.writes == [b"\x2c\x00\x01"]
    assert bounded.retry_stats.retries == 2


@pytest.mark.parametrize("inline", [False, True])
def test_inline_bounds_retry_the_same_way_on_the_callers_thread(inline: bool) -> None:
    """The player process's transports: same retries, no hand-off to a worker thread."""
    callers: list[int] = []

    class Recording(FlakyBus):
        def write(self, data: object) -> None:
            callers.append(threading.get_ident())
            super().write(data)

    bus = Recording([OSError(errno.EIO, "Remote I/O error")])
    bounded = BoundedBus(bus, clock=FakeClock(), policy=RetryPolicy(attempts=3), inline=inline)
    bounded.write(b"\x2c")
    assert bus.writes == [b"\x2c"] and bounded.retry_stats.retries == 1
    assert (set(callers) == {threading.get_ident()}) is inline
    pin = BoundedPin(FakePin("dc"), name="D/C", clock=FakeClock(), inline=inline)
    pin.open()
    pin.set(True)
    assert pin.value is True


def test_persistent_transient_error_is_raised_as_a_transport_error_after_the_attempts() -> None:
    clock = FakeClock()
    bus = FlakyBus([OSError(errno.EIO, "Remote I/O error")] * 5)
    bounded = BoundedBus(bus, clock=clock, policy=RetryPolicy(attempts=3, initial_delay=0.01, factor=2))
    with pytest.raises(TransportError, match="failed 3 times"):
        bounded.write(b"abc")
    assert len(bus.errors) == 2 and bounded.retry_stats.failures == 1
    assert clock.sleeps == [pytest.approx(1000.01), pytest.approx(1000.03)]  # backoff between attempts


def test_permanent_errors_are_not_retried() -> None:
    bus = FlakyBus([DeviceNotFound("no /dev/spidev0.0"), OSError(errno.EIO, "x")])
    bounded = BoundedBus(bus, clock=FakeClock())
    with pytest.raises(DeviceNotFound):
        bounded.write(b"a")
    assert len(bus.errors) == 1


def test_hung_transfer_is_detected_and_the_bus_recovers_on_a_fresh_thread() -> None:
    ledger = StuckThreads(limit=3)
    bus = FlakyBus()
    waiter_calls: list[float] = []

    def waiter(done: threading.Event, timeout: float) -> bool:
        waiter_calls.append(timeout)
        if bus.hang.is_set():
            assert bus.entered.wait(10)  # the call is really stuck inside the driver
            return False
        return done.wait(10)

    bounded = BoundedBus(bus, clock=FakeClock(), ledger=ledger, waiter=waiter, speed_hz=64_000_000)
    bus.hang.set()
    with pytest.raises(TransportTimeout, match="did not finish"):
        bounded.write(bytes(153600))
    transfers = -(-153600 // bus.max_transfer)
    assert waiter_calls[0] == pytest.approx(153600 * 8 / 64e6 * 4 + 1.0 + transfers * 0.002)
    assert ledger.count == 1 and bounded.retry_stats.timeouts == 1
    bus.hang.clear()
    bounded.write(b"next")  # served by a new worker while the old one is still stuck
    assert bus.writes == [b"next"]
    bus.release.set()  # the driver finally returns: the stuck thread leaves the ledger
    assert ledger.wait_clear(timeout=10)
    assert ledger.count == 0 and ledger.total == 1


def test_call_with_timeout_returns_results_and_raises_errors() -> None:
    assert call_with_timeout(lambda a, b: a + b, 2, 3, timeout=5) == 5
    with pytest.raises(ZeroDivisionError):
        call_with_timeout(lambda: 1 / 0, timeout=5)


def test_call_with_timeout_abandons_a_blocked_call() -> None:
    ledger = StuckThreads(limit=1)
    release = threading.Event()
    with pytest.raises(TransportTimeout) as info:
        call_with_timeout(release.wait, timeout=0.2, what="GPIO set", ledger=ledger, waiter=timed_out)
    assert "GPIO set did not finish within 0.20 s" in str(info.value)
    assert ledger.over_limit and ledger.descriptions() == ["GPIO set"]
    release.set()


def test_bounded_pin_retries_and_bounds() -> None:
    class Pin:
        def __init__(self) -> None:
            self.value = False
            self.fails = [OSError(errno.EIO, "x")]

        def open(self) -> None: ...
        def close(self) -> None: ...

        def set(self, value: bool) -> None:
            if self.fails:
                raise self.fails.pop()
            self.value = value

    pin = BoundedPin(Pin(), name="dc", clock=FakeClock())
    pin.open()
    pin.set(True)
    assert pin.value is True and pin.retry_stats.retries == 1
    pin.close()


def test_timeouts_are_not_transient_but_eio_is() -> None:
    assert is_transient(OSError(errno.EIO, "x"))
    assert not is_transient(OSError(errno.ENOENT, "x"))
    assert not is_transient(TransportTimeout("hung"))
    assert is_transient(TransportError("x"))


@given(st.integers(0, 1 << 24), st.integers(1_000_000, 125_000_000))
def test_transfer_timeout_always_exceeds_the_wire_time_by_the_margin(nbytes: int, speed: int) -> None:
    bound = transfer_timeout(nbytes, speed, margin=1.0)
    assert bound >= nbytes * 8 / speed + 1.0


@given(st.integers(1, 6), st.floats(0, 1), st.floats(1, 8))
def test_retry_policy_delays_never_shrink(attempts: int, initial: float, factor: float) -> None:
    delays = RetryPolicy(attempts, initial, factor).delays()
    assert len(delays) == attempts - 1
    assert all(b >= a for a, b in itertools.pairwise(delays))


def test_display_over_bounded_transports_survives_eio_and_a_hang() -> None:
    """Through the simulated rig: EIO retried, a hung transfer detected, reinit recovers the panel."""
    from libloop.display import Display
    from libloop.transport.base import SpiBus
    from sim import SimWiring

    wiring = SimWiring()
    device = wiring.device
    ledger = StuckThreads(limit=3)

    def waiter(done: threading.Event, timeout: float) -> bool:
        while not done.is_set():
            if device.hung.is_set():
                return False  # the transfer is stuck in the "driver": the bound has run out
            if done.wait(0.01):
                break
        return True

    bus: SpiBus = BoundedBus(wiring.bus, clock=wiring.clock, ledger=ledger, waiter=waiter)
    dc = BoundedPin(wiring.dc, name="dc", clock=wiring.clock, ledger=ledger)
    display = Display(bus, dc, wiring.reset, wiring.backlight, sleep=wiring.sleep)
    display.open()
    device.fail_transfer(2)
    display.fill((255, 0, 0))
    assert wiring.snapshot().getpixel((10, 10)) == (255, 0, 0)
    device.hang_transfer(1)
    with pytest.raises(TransportTimeout):
        display.fill((0, 255, 0))
    assert ledger.count == 1
    device.release()
    assert ledger.wait_clear(timeout=10)
    display.reinit()
    display.fill((0, 0, 255))
    assert wiring.snapshot().getpixel((120, 160)) == (0, 0, 255)
    display.close()


@given(nbytes=st.integers(1, 1 << 20), limit=st.integers(1, 65536))
def test_a_write_cut_into_more_transfers_gets_more_time(nbytes: int, limit: int) -> None:
    # The Pi 5's degraded mode sends a frame in 64-byte transfers: each has its own host cost.
    whole = transfer_timeout(nbytes, 64_000_000)
    cut = transfer_timeout(nbytes, 64_000_000, max_transfer=limit)
    transfers = -(-nbytes // limit)
    assert cut == pytest.approx(whole + (transfers - 1) * 0.002)
