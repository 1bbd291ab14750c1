"""Wi-Fi state for the health page: NetworkManager on the Pi, a settable fake in the simulator.

``nmcli`` is run with an argument list (never a shell string), a timeout, and terse output
(``-t``), whose fields are separated by ``:`` with literal colons and backslashes escaped as
``\\:`` and ``\\\\`` (an SSID may contain both). No user input ever reaches a command line.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import psutil

from libloop.clock import Clock, MonotonicClock
from libloop.health.component import PeriodicTask

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class WifiStatus:
    """Connection state as people want to see it."""

    connected: bool
    ssid: str | None = None
    signal_percent: int | None = None
    ip: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used in the health snapshot."""
        return asdict(self)


class WifiMonitor(Protocol):
    """Anything that can say how the Wi-Fi is doing."""

    def status(self) -> WifiStatus: ...


def split_terse(line: str) -> list[str]:
    """Split one line of ``nmcli -t`` output into fields, undoing ``\\:`` and ``\\\\``."""
    fields: list[str] = []
    current: list[str] = []
    chars = iter(line)
    for ch in chars:
        if ch == "\\":
            current.append(next(chars, "\\"))
        elif ch == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(ch)
    fields.append("".join(current))
    return fields


def _ipv4(device: str) -> str | None:
    for addr in psutil.net_if_addrs().get(device, []):
        if addr.family == socket.AF_INET:
            return addr.address
    return None


class NetworkManagerWifi:
    """Reads the Wi-Fi state through ``nmcli``."""

    def __init__(
        self,
        *,
        nmcli: str = "nmcli",
        run: Runner = subprocess.run,
        which: Callable[[str], str | None] = shutil.which,
        ip_of: Callable[[str], str | None] = _ipv4,
        timeout: float = 5.0,
    ) -> None:
        self.nmcli = nmcli
        self._run = run
        self._which = which
        self._ip_of = ip_of
        self.timeout = timeout

    def _nmcli(self, *args: str) -> list[list[str]]:
        done = self._run(
            [self.nmcli, "-t", *args], capture_output=True, text=True, timeout=self.timeout, check=False
        )
        if done.returncode != 0:
            message = (done.stderr or done.stdout or "").strip().splitlines()
            raise RuntimeError(message[0] if message else f"nmcli exited with status {done.returncode}")
        return [split_terse(line) for line in done.stdout.splitlines() if line.strip()]

    def status(self) -> WifiStatus:
        """Ask NetworkManager; never raises (problems become the ``detail``)."""
        if self._which(self.nmcli) is None:
            return WifiStatus(False, detail="NetworkManager is not available (nmcli not found)")
        try:
            devices = self._nmcli("-f", "DEVICE,TYPE,STATE,CONNECTION", "device")
            wifi = [d for d in devices if len(d) >= 4 and d[1] == "wifi"]
            if not wifi:
                return WifiStatus(False, detail="no Wi-Fi device")
            connected = next((d for d in wifi if d[2] == "connected"), None)
            if connected is None:
                return WifiStatus(False, detail=f"Wi-Fi {wifi[0][0]} is {wifi[0][2]}")
            device = connected[0]
            ssid: str | None = connected[3] or None
            signal: int | None = None
            for row in self._nmcli("-f", "ACTIVE,SSID,SIGNAL,DEVICE", "dev", "wifi"):
                if len(row) >= 4 and row[0] == "yes" and row[3] == device:
                    ssid = row[1] or ssid
                    signal = int(row[2]) if row[2].isdigit() else None
                    break
            return WifiStatus(True, ssid, signal, self._ip_of(device), f"connected on {device}")
        except subprocess.TimeoutExpired:
            return WifiStatus(False, detail=f"nmcli did not answer within {self.timeout:.0f} s")
        except (OSError, RuntimeError, ValueError) as exc:
            return WifiStatus(False, detail=f"cannot read the Wi-Fi state: {exc}")


class FakeWifi:
    """A settable Wi-Fi for the simulator and tests."""

    def __init__(self, status: WifiStatus | None = None) -> None:
        self._lock = threading.Lock()
        self._status = status or WifiStatus(True, "loop-sim", 80, "127.0.0.1", "simulated")

    def set(self, status: WifiStatus) -> None:
        """Change what :meth:`status` reports."""
        with self._lock:
            self._status = status

    def status(self) -> WifiStatus:
        """The status last set."""
        with self._lock:
            return self._status


class WifiPoller(PeriodicTask):
    """Polls a :class:`WifiMonitor` every ``interval`` seconds (a non-essential component)."""

    def __init__(self, monitor: WifiMonitor, *, clock: Clock | None = None, interval: float = 15.0) -> None:
        super().__init__("wifi", self.poll, clock=clock or MonotonicClock(), interval=interval)
        self.monitor = monitor
        self.latest: WifiStatus | None = None

    def poll(self) -> WifiStatus:
        """Ask the monitor once and keep the answer."""
        self.latest = self.monitor.status()
        return self.latest

    def snapshot(self) -> dict[str, Any]:
        """The latest status as a dict."""
        latest = self.latest
        return WifiStatus(False, detail="not checked yet").to_dict() if latest is None else latest.to_dict()
