#!/usr/bin/env python3
"""One-command set-up for LOOP: `python3 dev.py sim` runs the device in simulation,
`python3 dev.py test` runs the test suite.

Needs only Python 3.11+ and git. It creates `.venv/` (standard library `venv`), installs
nox into it, and hands over to the nox session of the same name, which installs
everything else. Any further arguments are passed through to the session.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import venv
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
# `test` is what CI runs: style, types and the test suite.
SESSIONS = {
    "sim": ["sim"],
    "test": ["lint", "types", "tests"],
    "tests": ["tests"],
    "lint": ["lint"],
    "types": ["types"],
    "bench": ["bench"],
    "hil": ["hil"],
    "crash": ["crash"],
}


#: Signals that stop a session: each one reaches every process of the session.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: How long a session's processes get to stop after such a signal before they are killed.
STOP_GRACE_S = 30.0


class _Stopping(Exception):
    """Raised by the signal handler to end the blocking wait for the session."""


def run_session(cmd: Sequence[str], *, cwd: Path | None = None, grace: float = STOP_GRACE_S) -> int:
    """Run ``cmd`` (nox) in a process group of its own; return its exit status (128+N if signal N ended it).

    nox passes Ctrl-C on to the command it runs, but on SIGTERM it exits at once and leaves
    that command running (a `loop sim` kept serving after dev.py and nox were gone). So a
    SIGTERM, SIGINT or SIGHUP sent to dev.py goes to the whole group, and dev.py returns only
    when every process of the group is gone (killing what is left after ``grace`` seconds).
    At a terminal the group becomes the foreground job, so Ctrl-C reaches it directly, and
    reading the terminal (pdb) works as before.
    """
    received: list[int] = []
    group: int | None = None
    blocking = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal blocking
        if not received:
            _become_subreaper()  # from now on, what nox leaves behind when it dies is ours to reap
        received.append(signum)
        if group is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signum)
        if blocking:
            blocking = False
            raise _Stopping

    previous = {s: signal.signal(s, forward) for s in STOP_SIGNALS}
    tty = _foreground_tty()
    try:
        proc = subprocess.Popen(list(cmd), cwd=cwd, process_group=0)
        group = proc.pid
        if tty is not None:
            with contextlib.suppress(OSError):
                os.tcsetpgrp(tty, group)
                os.killpg(group, signal.SIGCONT)  # in case it stopped writing before it was foreground
        for signum in received:  # arrived while the group was being made
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signum)
        code: int | None = None
        try:
            blocking = True
            if received:
                raise _Stopping
            code = proc.wait()
            blocking = False
        except _Stopping:
            pass
        if code is None:  # a stop signal was forwarded: the group gets `grace` seconds
            try:
                code = proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _kill_group(group)
                code = proc.wait()
            _wait_for_group(group, grace)
    finally:
        blocking = False
        if tty is not None:
            _take_back_tty(tty)
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 128 - code if code < 0 else code


def _foreground_tty() -> int | None:
    """Standard input's terminal, if this process is its foreground job (else None)."""
    try:
        fd = sys.stdin.fileno()
        return fd if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp() else None
    except (OSError, ValueError, AttributeError):
        return None


def _take_back_tty(tty: int) -> None:
    """Make this process the terminal's foreground job again (it is in the background now)."""
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(tty, os.getpgrp())
    finally:
        signal.signal(signal.SIGTTOU, old)


def _become_subreaper() -> None:
    """On Linux, adopt the session's orphans (nox gone first), so their exit is seen here at once
    rather than when init gets round to reaping them."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _kill_group(group: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)


def _wait_for_group(group: int, grace: float) -> None:
    """Wait until no process of ``group`` is left, reaping the orphans it left to this process."""
    deadline = time.monotonic() + grace
    killed = False
    while True:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass
        if time.monotonic() > deadline:
            if killed:
                return  # SIGKILLed and still listed: a zombie of someone else's; nothing more to do
            _kill_group(group)
            killed, deadline = True, time.monotonic() + 5.0
        time.sleep(0.05)


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs before anything is installed
        print("LOOP needs Python 3.11 or newer; run this with python3.11 or later.", file=sys.stderr)
        return 2
    if not argv or argv[0] not in SESSIONS:
        print(f"usage: python3 dev.py {{{'|'.join(SESSIONS)}}} [ARGS...]", file=sys.stderr)
        return 2
    python = VENV / "bin" / "python"
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    probe = subprocess.run([python, "-c", "import nox"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "-q", "nox>=2024.4.15"], check=True)
    cmd = [str(python), "-m", "nox", "-s", *SESSIONS[argv[0]]]
    if not os.environ.get("CI"):
        cmd.append("--reuse-existing-virtualenvs")
    if len(argv) > 1:
        cmd += ["--", *argv[1:]]
    return run_session(cmd, cwd=ROOT)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
