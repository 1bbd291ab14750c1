"""Liveness proofs: heartbeats go stale on the clock, probes are bounded and never pile up; the fault ring."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libloop.clock import FakeClock
from libloop.health import (
    CallbackComponent,
    Component,
    FaultLog,
    Heartbeat,
    Liveness,
    PeriodicTask,
    Probe,
    StuckThreads,
)


def test_heartbeat_goes_stale_after_the_bound() -> None:
    clock = FakeClock()
    beat = Heartbeat(clock, stale_after=5.0)
    assert not beat.liveness().alive
    beat.beat("frame 7")
    clock.advance(5.0)
    assert beat.liveness() == Liveness(True, "frame 7", 5.0)
    clock.advance(0.1)
    stale = beat.liveness()
    assert not stale.alive and "no heartbeat for 5.1 s" in stale.detail
    beat.reset()
    assert beat.age() is None


def test_probe_answers_and_caches() -> None:
    clock = FakeClock()
    calls: list[int] = []

    def answer() -> str:
        calls.append(1)
        return "HTTP 200"

    probe = Probe(answer, clock=clock, min_interval=5.0)
    assert probe.liveness() == Liveness(True, "HTTP 200", 0.0)
    clock.advance(1.0)
    probe.liveness()
    assert len(calls) == 1
    clock.advance(5.0)
    probe.liveness()
    assert len(calls) == 2


def test_probe_failure_is_not_alive() -> None:
    def refuse() -> None:
        raise ConnectionRefusedError("connection refused")

    live = Probe(refuse, clock=FakeClock()).liveness()
    assert not live.alive and "connection refused" in live.detail


def test_hung_probe_is_bounded_and_not_repeated() -> None:
    clock = FakeClock()
    release = threading.Event()
    started: list[int] = []
    ledger = StuckThreads(limit=5)

    def hang() -> None:
        started.append(1)
        release.wait()

    probe = Probe(hang, clock=clock, timeout=2.0, ledger=ledger, waiter=lambda done, timeout: done.is_set())
    first = probe.liveness()
    assert not first.alive and "did not answer within 2.0 s" in first.detail
    clock.advance(3.0)
    second = probe.liveness()
    assert not second.alive and "probe hung for 3.0 s" in second.detail
    assert ledger.count == 1
    release.set()
    assert ledger.wait_clear(timeout=10)
    assert len(started) == 1  # no second thread was started while the first hung


def test_callback_component_satisfies_the_protocol() -> None:
    events: list[str] = []
    comp = CallbackComponent("web", start=lambda: events.append("start"), stop=lambda: events.append("stop"),
                             liveness=lambda: Liveness(True, "ok"), essential=True)  # fmt: skip
    assert isinstance(comp, Component)
    comp.start()
    comp.stop()
    assert events == ["start", "stop"] and comp.liveness().alive and comp.essential


def test_periodic_task_beats_only_on_success() -> None:
    clock = FakeClock()
    results: list[object] = [None, ValueError("sensor gone")]

    def work() -> None:
        item = results.pop(0)
        if isinstance(item, Exception):
            raise item

    task = PeriodicTask("sensor", work, clock=clock, interval=1.0, stale_after=2.0)
    task.run_once()
    assert task.liveness().alive
    clock.advance(3.0)
    task.run_once()
    live = task.liveness()
    assert not live.alive and "sensor gone" in live.detail
    with pytest.raises(ValueError):
        PeriodicTask("x", work, clock=clock, interval=0)


def test_periodic_task_thread_starts_and_stops() -> None:
    clock = FakeClock(auto_advance=False)
    ran = threading.Event()
    task = PeriodicTask("tick", ran.set, clock=clock, interval=1.0)
    task.start()
    assert ran.wait(timeout=10)
    task.stop()
    assert task.liveness().alive


@given(st.integers(1, 20), st.integers(0, 60))
def test_fault_log_keeps_the_newest(capacity: int, count: int) -> None:
    log = FaultLog(capacity, wall_clock=lambda: 0.0)
    for i in range(count):
        log.record("player", str(i))
    kept = [f.message for f in log.recent()]
    assert kept == [str(i) for i in range(max(0, count - capacity), count)]
    assert log.total == count and len(log) == min(count, capacity)
    assert log.recent(2) == log.recent()[-2:] and log.recent(0) == []
