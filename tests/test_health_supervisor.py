"""The supervisor on a FakeClock: restarts with backoff, the recovery ladder, watchdog feeding."""

from __future__ import annotations

import functools
import itertools
import threading

import pytest

from libloop.clock import FakeClock
from libloop.health import EXIT_RESTART, FaultLog, Heartbeat, Liveness, StuckThreads, Supervisor


class RecordingNotifier:
    """Records what would go to systemd."""

    def __init__(self, watchdog_usec: int | None = None) -> None:
        self.messages: list[str] = []
        self._usec = watchdog_usec

    def ready(self, status: str | None = None) -> bool:
        self.messages.append("READY=1")
        return True

    def status(self, text: str) -> bool:
        self.messages.append(f"STATUS={text}")
        return True

    def watchdog(self) -> bool:
        self.messages.append("WATCHDOG=1")
        return True

    def stopping(self, status: str | None = None) -> bool:
        self.messages.append("STOPPING=1")
        return True

    def watchdog_interval(self) -> float | None:
        return None if self._usec is None else self._usec / 1e6

    def count(self, message: str) -> int:
        return self.messages.count(message)


class LoopComponent:
    """A component that beats a heartbeat while the test says it is healthy."""

    def __init__(self, name: str, clock: FakeClock, *, essential: bool = True) -> None:
        self.name = name
        self.essential = essential
        self.heartbeat = Heartbeat(clock, stale_after=5.0)
        self.running = False
        self.starts = 0
        self.stops = 0
        self.fail_start = False

    def start(self) -> None:
        if self.fail_start:
            raise OSError("cannot open /dev/spidev0.0")
        self.starts += 1
        self.running = True
        self.heartbeat.reset()

    def stop(self) -> None:
        self.stops += 1
        self.running = False

    def liveness(self) -> Liveness:
        return self.heartbeat.liveness()


def make(clock: FakeClock, **kwargs: object) -> tuple[Supervisor, RecordingNotifier]:
    notifier = RecordingNotifier()
    options: dict[object, object] = {
        "start_grace": 10.0,
        "backoff_initial": 1.0,
        "backoff_max": 8.0,
        "window": 100.0,
    }
    options.update(kwargs)
    sup = Supervisor(clock, notifier, stuck=StuckThreads(limit=2), **options)  # type: ignore[arg-type]
    return sup, notifier


def test_ready_and_watchdog_only_once_every_essential_component_is_alive() -> None:
    clock = FakeClock()
    sup, notifier = make(clock)
    player, web = LoopComponent("player", clock), LoopComponent("web", clock)
    sup.register(player)
    sup.register(web)
    sup.start(background=False)
    player.heartbeat.beat()
    sup.check_once()
    assert notifier.count("READY=1") == 0 and notifier.count("WATCHDOG=1") == 0
    web.heartbeat.beat()
    sup.check_once()
    assert notifier.count("READY=1") == 1 and notifier.count("WATCHDOG=1") == 1
    assert sup.snapshot()["state"] == "ok"


def test_watchdog_not_fed_while_an_essential_component_is_stale() -> None:
    clock = FakeClock()
    sup, notifier = make(clock)
    player = LoopComponent("player", clock)
    sup.register(player)
    sup.start(background=False)
    player.heartbeat.beat()
    sup.check_once()
    fed = notifier.count("WATCHDOG=1")
    clock.advance(6.0)  # no beat: stale
    sup.check_once()
    clock.advance(0.5)
    sup.check_once()
    assert notifier.count("WATCHDOG=1") == fed
    component = sup.snapshot()["components"][0]
    assert component["alive"] is False and component["state"] == "failed"
    assert "no heartbeat" in component["detail"]


def test_non_essential_failure_does_not_stop_the_watchdog() -> None:
    clock = FakeClock()
    sup, notifier = make(clock)
    player, wifi = LoopComponent("player", clock), LoopComponent("wifi", clock, essential=False)
    sup.register(player)
    sup.register(wifi)
    sup.start(background=False)
    for _ in range(5):
        player.heartbeat.beat()
        clock.advance(6.0)
        player.heartbeat.beat()
        sup.check_once()
    assert notifier.count("WATCHDOG=1") == 5
    assert sup.snapshot()["state"] in ("degraded", "starting")
    assert not sup.emergency and not sup.exit_requested


def test_stale_component_is_restarted_with_exponential_backoff() -> None:
    clock = FakeClock()
    sup, _ = make(clock, emergency_after=10, exit_after=10, window=1000.0)
    player = LoopComponent("player", clock)
    sup.register(player)
    sup.start(background=False)
    restart_times: list[float] = []
    for _ in range(400):
        starts = player.starts
        sup.check_once()
        if player.starts > starts:
            restart_times.append(clock.monotonic())
        clock.advance(0.5)  # the component never beats: it fails after every grace period
    gaps = [b - a for a, b in itertools.pairwise(restart_times)]
    # each gap = grace (10 s) + backoff, backoff doubling 1, 2, 4, 8 and capped at 8
    backoffs = [round(g - 10.0) for g in gaps[:5]]
    assert backoffs == [2, 4, 8, 8, 8]
    assert sup.snapshot()["components"][0]["restarts"] == len(restart_times)


def test_restarted_component_recovers_and_backoff_resets_after_a_clean_window() -> None:
    clock = FakeClock()
    sup, notifier = make(clock)
    player = LoopComponent("player", clock)
    sup.register(player)
    sup.start(background=False)
    player.heartbeat.beat()
    sup.check_once()
    clock.advance(6.0)
    sup.check_once()  # stale -> failed
    clock.advance(1.0)
    sup.check_once()  # restart
    assert player.starts == 2
    for _ in range(120):
        player.heartbeat.beat()
        sup.check_once()
        clock.advance(1.0)
    snap = sup.snapshot()
    assert snap["state"] == "ok" and snap["components"][0]["recent_failures"] == 0
    assert notifier.messages[-1] == "WATCHDOG=1"
    assert any("no heartbeat" in f["message"] for f in snap["faults"])


def test_persistent_fault_climbs_the_ladder_to_an_exit_request() -> None:
    clock = FakeClock()
    emergencies: list[str] = []
    exits: list[tuple[int, str]] = []
    sup, notifier = make(
        clock, emergency_after=3, exit_after=5, on_emergency=emergencies.append,
        on_exit=lambda code, why: exits.append((code, why)),
    )  # fmt: skip
    player, web = LoopComponent("player", clock), LoopComponent("web", clock, essential=False)
    sup.register(player)
    sup.register(web)
    sup.start(background=False)
    for _ in range(200):
        if sup.exit_requested:
            break
        web.heartbeat.beat()
        sup.check_once()
        clock.advance(1.0)
    assert emergencies and "player" in emergencies[0]
    assert web.stops >= 1 and not web.running  # non-essential stopped in emergency mode
    assert sup.exit_code == EXIT_RESTART and exits and exits[0][0] == EXIT_RESTART
    assert sup.wait_for_exit(timeout=0) == EXIT_RESTART
    assert "player failed 5 times" in sup.exit_reason
    fed = notifier.count("WATCHDOG=1")
    sup.check_once()
    assert notifier.count("WATCHDOG=1") == fed  # never fed once exiting
    assert sup.snapshot()["state"] == "exiting"


def test_emergency_mode_is_left_after_a_clean_window() -> None:
    clock = FakeClock()
    recovered: list[bool] = []
    sup, _ = make(
        clock, emergency_after=2, exit_after=9, window=40.0, on_recovered=lambda: recovered.append(True)
    )
    player, web = LoopComponent("player", clock), LoopComponent("web", clock, essential=False)
    sup.register(player)
    sup.register(web)
    sup.start(background=False)
    for _ in range(2):  # two failures of the player
        sup.check_once()
        clock.advance(11.0)
        sup.check_once()
        clock.advance(20.0)
    assert sup.emergency and not web.running
    for _ in range(60):
        player.heartbeat.beat()
        web.heartbeat.beat()
        sup.check_once()
        clock.advance(1.0)
    assert recovered and not sup.emergency and web.running


def test_failing_start_is_retried_and_escalates() -> None:
    clock = FakeClock()
    sup, _ = make(clock, emergency_after=2, exit_after=3)
    display = LoopComponent("display", clock)
    display.fail_start = True
    sup.register(display)
    sup.start(background=False)
    for _ in range(100):
        sup.check_once()
        clock.advance(1.0)
    assert sup.exit_requested and "cannot open /dev/spidev0.0" in sup.exit_reason


def test_reported_failure_triggers_the_registered_restart() -> None:
    clock = FakeClock()
    sup, _ = make(clock)
    display = LoopComponent("display", clock)
    reinits: list[int] = []
    sup.register(display, restart=lambda: reinits.append(1))
    sup.start(background=False)
    display.heartbeat.beat()
    sup.check_once()
    sup.report_failure("display", "SPI write of 153600 bytes did not finish")
    clock.advance(1.0)
    sup.check_once()
    assert reinits == [1]
    with pytest.raises(KeyError):
        sup.report_failure("nope", "x")


def test_stuck_hardware_threads_request_an_exit() -> None:
    clock = FakeClock()
    stuck = StuckThreads(limit=2)
    sup = Supervisor(clock, RecordingNotifier(), stuck=stuck)
    stuck.add("spi: SPI write of 10 bytes")
    sup.check_once()
    assert not sup.exit_requested
    stuck.add("spi: SPI write of 20 bytes")
    sup.check_once()
    assert sup.exit_code == EXIT_RESTART and "2 hardware calls are stuck" in sup.exit_reason


def test_liveness_that_raises_counts_as_not_alive() -> None:
    clock = FakeClock()
    sup, _ = make(clock, start_grace=0.0)
    player = LoopComponent("player", clock)

    def broken() -> Liveness:
        raise RuntimeError("boom")

    player.liveness = broken  # type: ignore[method-assign]
    sup.register(player)
    sup.start(background=False)
    sup.check_once()
    assert "liveness check raised: boom" in sup.snapshot()["components"][0]["detail"]


def test_stop_sends_stopping_and_stops_in_reverse_order() -> None:
    clock = FakeClock()
    sup, notifier = make(clock)
    order: list[str] = []
    for name in ("display", "player", "web"):
        comp = LoopComponent(name, clock)
        comp.stop = functools.partial(order.append, name)  # type: ignore[method-assign]
        sup.register(comp)
    sup.start(background=False)
    sup.stop()
    assert notifier.count("STOPPING=1") == 1 and order == ["web", "player", "display"]


def test_background_thread_runs_checks_and_stops() -> None:
    clock = FakeClock(auto_advance=False)
    ready = threading.Event()

    class SignallingNotifier(RecordingNotifier):
        def ready(self, status: str | None = None) -> bool:
            ready.set()
            return super().ready(status)

    notifier = SignallingNotifier()
    sup = Supervisor(clock, notifier, check_interval=1.0)
    player = LoopComponent("player", clock)
    sup.register(player)
    sup.start()  # starts the player (which resets its heartbeat) and the check thread
    player.heartbeat.beat()
    clock.advance(1.0)  # whichever check sees the beat first sends READY
    assert ready.wait(timeout=10)
    sup.stop()
    assert notifier.messages[-1] == "STOPPING=1" and not player.running


def test_snapshot_has_extra_sections_and_bounded_faults() -> None:
    clock = FakeClock()
    faults = FaultLog(capacity=3)
    sup = Supervisor(clock, RecordingNotifier(), faults=faults)
    sup.add_section("wifi", lambda: {"connected": True})
    sup.add_section("broken", lambda: 1 / 0)
    for i in range(10):
        faults.record("player", f"fault {i}")
    snap = sup.snapshot()
    assert snap["wifi"] == {"connected": True} and "error" in snap["broken"]
    assert [f["message"] for f in snap["faults"]] == ["fault 7", "fault 8", "fault 9"]
    assert snap["faults_total"] == 10
    with pytest.raises(ValueError):
        sup.add_section("components", dict)


def test_check_interval_follows_the_watchdog() -> None:
    sup = Supervisor(FakeClock(), RecordingNotifier(watchdog_usec=3_000_000), check_interval=5.0)
    assert sup.check_interval == pytest.approx(1.0)
