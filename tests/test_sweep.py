"""The SPI clock sweep finds the fastest clock a module takes, on the simulated module."""

from __future__ import annotations

import pytest

from libloop.sweep import SweepResult, candidate_clocks, sweep
from libloop.transport.spiclock import mhz
from sim.wiring import SimWiring


def run(reliable_hz: float | None, **wiring: object) -> tuple[SweepResult, SimWiring]:
    rig = SimWiring(strict=True, reliable_hz=reliable_hz, **wiring)  # type: ignore[arg-type]
    display = rig.display()
    display.open()
    clocks = candidate_clocks(rig.device.controller)
    result = sweep(display, rig.bus, clocks, rounds=1, window=(0, 0, 239, 79))
    return result, rig


@pytest.mark.parametrize(
    ("limit", "fastest", "failed"),
    [(70e6, 62_500_000, 83_333_333), (45e6, 41_666_666, 50_000_000), (200e6, 125_000_000, None)],
)
def test_the_sweep_finds_the_modules_limit_on_the_pi_4_divider(
    limit: float, fastest: int, failed: int | None
) -> None:
    result, rig = run(limit)
    assert result.miso and result.fastest is not None and result.fastest.clock_hz == fastest
    assert [s.clock_hz for s in result.steps if not s.ok] == ([failed] if failed else [])
    assert result.config_line() == f"speed_hz = {result.fastest.request_hz}"
    assert rig.device.controller is not None
    assert rig.device.controller.effective_hz(result.fastest.request_hz) == fastest
    assert mhz(fastest) in result.summary() and "[wiring]" in result.summary()
    assert rig.bus.speed_hz == 64_000_000  # put back as it was
    assert rig.panel.violations == []  # reads stayed at the read clock throughout


def test_without_miso_the_sweep_says_so_instead_of_guessing() -> None:
    result, _ = run(70e6, miso=False)
    assert not result.miso and result.fastest is None and len(result.steps) == 1
    assert "MISO" in result.summary() and result.to_dict()["config"] is None


def test_off_a_pi_the_sweep_tries_round_clocks() -> None:
    clocks = candidate_clocks(None)
    assert clocks[0] == (16_000_000, 16_000_000) and all(a == b for a, b in clocks)
