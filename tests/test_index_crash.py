"""Crash injection: SIGKILL a writer process mid-change and check that recovery loses nothing.

The writer (tests/index_writer.py) prints ``BEGIN`` before and ``ACK`` after each change. After
a kill we reopen the library (start-up recovery runs) and check: every acknowledged change is
there, the one change in flight is wholly there or wholly absent, every item has its frame file
(and its kept original, when it has one), every frame file and every original has its item, ``frames/.tmp`` is empty and a full fsck (checksums) is clean.

Two ways to kill: at random moments (seeded; ``LOOP_CRASH_KILLS`` sets how many in the slow
run), and a deterministic sweep that kills the writer at the n-th call of each of its write,
fsync, fdatasync, rename and unlink system calls, for n = 1, 2, ... (strace fault injection).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from libloop.index import Library
from tests.index_writer import make_frame_file

ROOT = Path(__file__).resolve().parent.parent
WRITER = ROOT / "tests" / "index_writer.py"
STRACE = shutil.which("strace") or "/usr/bin/strace"
SWEEP_SYSCALLS = ("fsync", "fdatasync", "rename", "unlink", "write", "pwrite64")
ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


@dataclass
class Figures:
    kills: int = 0
    acked: int = 0
    inflight_applied: int = 0
    inflight_absent: int = 0
    runs_completed: int = 0
    steps: dict[str, int] = field(default_factory=dict)


def apply(order: list[str], op: str, payload: object) -> list[str]:
    """The model: what a change does to the play order."""
    if op == "add":
        return [*order, str(payload)]
    if op == "delete":
        return [x for x in order if x != payload]
    if op == "reorder":
        assert isinstance(payload, list)
        return [str(x) for x in payload]
    if op in ("rerender", "adopt"):  # the frame file or the original changes, not the order
        return order
    if op == "move":
        assert isinstance(payload, list)
        target, position = str(payload[0]), int(payload[1])
        moved = [x for x in order if x != target]
        moved.insert(position, target)
        return moved
    raise AssertionError(op)


def replay(order: list[str], output: str) -> tuple[list[str], tuple[str, object] | None, int]:
    """Apply the acknowledged changes in the writer's output; return the in-flight change too."""
    inflight: tuple[str, object] | None = None
    acked = 0
    for line in output.splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # cut off by the kill: not acknowledged
        kind, op, payload = line.rstrip("\n").split(" ", 2)
        if kind == "BEGIN":
            inflight = (op, json.loads(payload))
        elif kind == "ACK":
            assert inflight == (op, json.loads(payload)), line
            order = apply(order, op, json.loads(payload))
            inflight = None
            acked += 1
    return order, inflight, acked


def check_recovered(
    data: Path, order: list[str], inflight: tuple[str, object] | None, figures: Figures
) -> list[str]:
    """Open the library (recovery runs) and check the crash-safety promises; return the order."""
    with Library(data) as lib:
        items = lib.items()
        actual = [i.id for i in items]
        if inflight is not None and actual != order:
            assert actual == apply(order, *inflight), f"in-flight {inflight} half done: {actual} vs {order}"
            figures.inflight_applied += 1
        else:
            assert actual == order, "an acknowledged change was lost"
            figures.inflight_absent += inflight is not None
        files = {p.name for p in lib.frames_dir.iterdir() if p.is_file()}
        assert files == {i.file_name for i in items}, "an entry without its file or a file without its entry"
        kept = {p.name for p in lib.originals_dir.iterdir()}
        assert kept == {i.original for i in items if i.original}, "an original without its item or lost"
        assert all(
            i.original_bytes == (lib.originals_dir / i.original).stat().st_size for i in items if i.original
        )
        assert list(lib.tmp_dir.iterdir()) == []
        assert [i.position for i in items] == list(range(len(items)))
        report = lib.fsck()
        assert report.ok, report.problems
        return actual


def make_template(path: Path, n: int = 3) -> None:
    with Library(path) as lib:
        for k in range(n):
            staged = lib.staging_path()
            lib.add(staged, make_frame_file(staged, 90_000 + k), item_id=f"t{k}")


# --- random kills ----------------------------------------------------------------------------


def random_kills(tmp: Path, kills: int, seed: int) -> Figures:
    rng = random.Random(seed)
    figures = Figures()
    data, order = tmp / "lib0", list[str]()
    for k in range(kills):
        if k % 20 == 0:  # start afresh now and then so the library stays small and fast
            data, order = tmp / f"lib{k}", []
        with subprocess.Popen(
            [sys.executable, str(WRITER), str(data), str(seed * 10_000 + k), "400"],
            stdout=subprocess.PIPE,
            env=ENV,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            head = proc.stdout.readline()
            assert head.startswith("READY"), head
            time.sleep(rng.uniform(0.0, 0.3))  # the random kill moment (not synchronisation)
            proc.send_signal(signal.SIGKILL)
            rest = proc.stdout.read()  # EOF once the writer is dead
            proc.wait(timeout=60)
        if proc.returncode == 0:
            figures.runs_completed += 1
        else:
            assert proc.returncode == -signal.SIGKILL
            figures.kills += 1
        order, inflight, acked = replay(order, rest)
        figures.acked += acked
        order = check_recovered(data, order, inflight, figures)
    return figures


def test_random_kills_short(tmp_path: Path) -> None:
    figures = random_kills(tmp_path, 10, seed=1)
    print(f"random kills: {figures}")
    assert figures.kills + figures.runs_completed == 10
    assert figures.acked > 0


def long_runs_wanted(request: pytest.FixtureRequest) -> None:
    """The slow tests run under ``-m slow`` or with LOOP_CRASH_KILLS set (``nox -s crash``)."""
    if "slow" not in str(request.config.getoption("markexpr")) and "LOOP_CRASH_KILLS" not in os.environ:
        pytest.skip("long crash run: use `nox -s crash` or `pytest -m slow tests/test_index_crash.py`")


@pytest.mark.slow
def test_random_kills_long(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    long_runs_wanted(request)
    kills = int(os.environ.get("LOOP_CRASH_KILLS", "200"))
    figures = random_kills(tmp_path, kills, seed=2)
    print(f"random kills: {figures}")
    assert figures.kills >= kills * 0.9


# --- deterministic sweep at system calls -----------------------------------------------------


def _strace_usable() -> str | None:
    if not Path(STRACE).exists():
        return f"strace is not installed ({STRACE}); apt-get install strace"
    probe = subprocess.run([STRACE, "-f", "-o", "/dev/null", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"strace cannot trace here (ptrace not permitted?): {probe.stderr.strip()[:200]}"
    return None


SKIP_REASON = _strace_usable()
needs_strace = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "data"
    make_template(path)
    return path


def sweep_step(template: Path, work: Path, syscall: str, n: int, figures: Figures) -> bool:
    """Kill the writer at its n-th ``syscall`` and check recovery; False when it finished first."""
    data = work / f"{syscall}-{n}"
    shutil.copytree(template, data)
    inject = f"inject={syscall}:signal=SIGKILL:when={n}"
    proc = subprocess.run(
        [STRACE, "-f", "-qq", "-o", "/dev/null", "-e", f"trace={syscall}", "-e", inject,
         sys.executable, str(WRITER), str(data), "7", "6"],
        capture_output=True, text=True, env=ENV, timeout=120,
    )  # fmt: skip
    # Killed even after DONE counts: closing the library checkpoints the WAL (more calls).
    finished = proc.returncode == 0
    if not finished:
        assert proc.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), (proc.returncode, proc.stderr)
        figures.kills += 1
    order, inflight, acked = replay(["t0", "t1", "t2"], proc.stdout)
    figures.acked += acked
    check_recovered(data, order, inflight, figures)
    shutil.rmtree(data)
    return not finished


@needs_strace
@pytest.mark.parametrize(
    ("syscall", "steps"),
    [("fsync", (1, 4, 9)), ("fdatasync", (2, 7)), ("rename", (1, 3)), ("pwrite64", (5, 40))],
)
def test_sweep_sample(template: Path, tmp_path: Path, syscall: str, steps: tuple[int, ...]) -> None:
    figures = Figures()
    for n in steps:
        assert sweep_step(template, tmp_path, syscall, n, figures), (
            f"the writer makes fewer than {n} {syscall} calls"
        )
    assert figures.kills == len(steps)


@needs_strace
@pytest.mark.slow
@pytest.mark.parametrize("syscall", SWEEP_SYSCALLS)
def test_sweep_every_call(
    template: Path, tmp_path: Path, syscall: str, request: pytest.FixtureRequest
) -> None:
    long_runs_wanted(request)
    figures = Figures()
    n = 1
    while sweep_step(template, tmp_path, syscall, n, figures):
        n += 1
    print(f"sweep {syscall}: killed at each of {n - 1} calls; {figures}")
    assert n > 1, f"the writer never called {syscall}"
