"""dev.py's session runner: a stop signal reaches every process of the session, exit codes pass.

Each test runs dev.py's ``run_session`` in a fresh interpreter, as ``python3 dev.py sim`` does,
over a stand-in for nox: a Python child that starts a grandchild (the stand-in for `loop sim`)
and, like nox on SIGTERM, dies at once without passing the signal on.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import selectors
import signal
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfds")

# The grandchild prints its PID, then waits for a signal: SIGTERM ends it cleanly (as `loop sim`),
# SIGINT by KeyboardInterrupt; with "stubborn" it ignores SIGTERM; a "reader" reads a line first.
GRANDCHILD = """
import os, signal, sys
if sys.argv[1] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print(os.getpid(), flush=True)
if sys.argv[1] == "reader":  # as pdb would: read a line from the terminal
    print("read", sys.stdin.readline().strip(), flush=True)
while True:
    signal.pause()
"""
# nox's stand-in: runs the grandchild and waits; SIGTERM kills it at once (Python's default).
CHILD = """
import subprocess, sys
sys.exit(subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]]).wait())
"""
DEV = """
import os, sys
import dev
code = dev.run_session(sys.argv[1:], grace=float({grace}))
if os.isatty(0):  # it must have the terminal back
    print("foreground" if os.tcgetpgrp(0) == os.getpgrp() else "background", flush=True)
sys.exit(code)
"""


def start_dev(*cmd: str, grace: float = 30.0, tty: int | None = None) -> subprocess.Popen[bytes]:
    """dev.py's runner over ``cmd``; with ``tty`` (a pty's slave) it runs at that terminal,
    as its foreground job, the way a shell starts it."""

    def take_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    return subprocess.Popen(
        [sys.executable, "-c", DEV.format(grace=grace), *cmd],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL if tty is None else tty,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=None if tty is None else take_terminal,
    )


class Session:
    """dev.py running the stand-ins, with a pidfd on the grandchild (immune to PID reuse)."""

    def __init__(self, behaviour: str, grace: float = 30.0, tty: int | None = None) -> None:
        self.dev = start_dev(sys.executable, "-c", CHILD, GRANDCHILD, behaviour, grace=grace, tty=tty)
        pid = int(self.read_line())
        self.pid_fd = os.pidfd_open(pid)
        self.group = os.getpgid(pid)

    def read_line(self, timeout: float = 30) -> str:
        assert self.dev.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.dev.stdout, selectors.EVENT_READ)
            assert sel.select(timeout), "no output from the session"
        return self.dev.stdout.readline().decode()

    def grandchild_gone(self, timeout: float = 30) -> bool:
        """True once the grandchild has ended (a pidfd polls readable when its process exits)."""
        readable, _, _ = select.select([self.pid_fd], [], [], timeout)
        return bool(readable)

    def close(self) -> None:
        """Clean up even after a failed test: a live grandchild means its group is still ours."""
        if not self.grandchild_gone(timeout=0):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.group, signal.SIGKILL)
        os.close(self.pid_fd)
        if self.dev.poll() is None:
            self.dev.kill()
        self.dev.wait()
        assert self.dev.stdout is not None
        self.dev.stdout.close()


@pytest.fixture
def polite() -> Iterator[Session]:
    session = Session("polite")
    yield session
    session.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_to_dev_py_stops_the_grandchild_too(polite: Session, signum: signal.Signals) -> None:
    polite.dev.send_signal(signum)
    assert polite.grandchild_gone(), "the session's process outlived dev.py's stop signal"
    assert polite.dev.wait(timeout=30) != 0


def test_dev_py_returns_only_when_the_whole_session_is_gone(polite: Session) -> None:
    polite.dev.terminate()
    polite.dev.wait(timeout=30)
    # dev.py has exited: by then the grandchild must already be gone (no waiting here).
    assert polite.grandchild_gone(timeout=0)


def test_what_ignores_the_signal_is_killed_after_the_grace_period() -> None:
    session = Session("stubborn", grace=0.5)
    try:
        session.dev.terminate()
        assert session.grandchild_gone(), "a process that ignores SIGTERM was left running"
        assert session.dev.wait(timeout=30) == 128 + signal.SIGTERM  # nox's stand-in died of it
    finally:
        session.close()


def test_at_a_terminal_the_session_owns_it_and_ctrl_c_reaches_it() -> None:
    master, slave = os.openpty()
    session = Session("reader", tty=slave)
    os.close(slave)
    try:
        os.write(master, b"hello\n")  # a background job reading the terminal would be stopped
        assert session.read_line() == "read hello\n"
        os.write(master, b"\x03")  # Ctrl-C: the terminal signals its foreground job
        assert session.grandchild_gone(), "Ctrl-C did not reach the session"
        assert session.read_line() == "foreground\n"  # dev.py took the terminal back
        assert session.dev.wait(timeout=30) != 0
    finally:
        session.close()
        os.close(master)


@pytest.mark.parametrize("code", [0, 1, 5])
def test_exit_codes_pass_through(code: int) -> None:
    # `.ci/run` relies on this: pytest's 5 (no tests collected) is mapped to success there.
    dev = start_dev(sys.executable, "-c", f"raise SystemExit({code})")
    try:
        assert dev.wait(timeout=60) == code
    finally:
        assert dev.stdout is not None
        dev.stdout.close()


def test_dev_py_without_a_session_prints_its_usage() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "dev.py")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "usage: python3 dev.py {sim|test" in result.stderr
