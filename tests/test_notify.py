"""sd_notify over a real AF_UNIX datagram socket, like systemd's."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from libloop.clock import FakeClock
from libloop.health import Heartbeat, Liveness, SdNotifier, Supervisor


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def receive(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_messages_arrive_on_the_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = SdNotifier.from_environment({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready("Playing")
    assert receive(sock) == "READY=1\nSTATUS=Playing"
    notifier.status("two\nlines")
    assert receive(sock) == "STATUS=two lines"
    notifier.watchdog()
    assert receive(sock) == "WATCHDOG=1"
    notifier.stopping()
    assert receive(sock) == "STOPPING=1"
    notifier.reloading()
    assert receive(sock).startswith("RELOADING=1\nMONOTONIC_USEC=")
    notifier.close()


def test_abstract_namespace_socket() -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"loop-test-{os.getpid()}-{id(sock)}"
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        notifier = SdNotifier.from_environment({"NOTIFY_SOCKET": "@" + name})
        notifier.watchdog()
        assert receive(sock) == "WATCHDOG=1"
        notifier.close()
    finally:
        sock.close()


def test_no_socket_means_no_op() -> None:
    notifier = SdNotifier.from_environment({})
    assert not notifier.enabled and notifier.ready() and notifier.watchdog_interval() is None


def test_send_failure_is_reported_not_raised(tmp_path: Path) -> None:
    notifier = SdNotifier(str(tmp_path / "gone"))
    assert notifier.watchdog() is False
    assert notifier.failures == 1 and notifier.last_error and "cannot notify systemd" in notifier.last_error


def test_watchdog_interval_and_pid_check() -> None:
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}
    assert SdNotifier.from_environment(env, pid=42).watchdog_interval() == 30.0
    assert SdNotifier.from_environment(env, pid=43).watchdog_interval() is None
    assert SdNotifier.from_environment({**env, "WATCHDOG_PID": ""}, pid=1).watchdog_interval() == 30.0
    assert SdNotifier.from_environment({"WATCHDOG_USEC": "junk"}).watchdog_interval() is None


def test_supervisor_speaks_the_protocol(listener: tuple[socket.socket, str]) -> None:
    """The same code path `loop run` uses: READY once alive, WATCHDOG only while alive, STOPPING."""
    sock, path = listener
    clock = FakeClock()
    heartbeat = Heartbeat(clock, stale_after=5)

    class Player:
        name, essential = "player", True

        def start(self) -> None: ...
        def stop(self) -> None: ...

        def liveness(self) -> Liveness:
            return heartbeat.liveness()

    notifier = SdNotifier.from_environment({"NOTIFY_SOCKET": path})
    sup = Supervisor(clock, notifier, start_grace=10)
    sup.register(Player())
    sup.start(background=False)
    heartbeat.beat()
    sup.check_once()
    sock.setblocking(False)  # a datagram to a local socket is delivered before sendto returns
    got: list[str] = []
    while True:
        try:
            got.append(receive(sock))
        except BlockingIOError:
            break
    assert got[0].startswith("STATUS=starting")
    assert got[1].startswith("READY=1\nSTATUS=ok") and got[2] == "WATCHDOG=1"
    clock.advance(6)  # the player stops beating
    sup.check_once()
    sup.stop()
    notifier.close()
    later = [receive(sock), receive(sock)]
    assert later[0].startswith("STATUS=degraded") and "down: player" in later[0]
    assert later[1].startswith("STOPPING=1")
