"""The systemd notification protocol (``sd_notify``), spoken directly over the socket module.

systemd passes a ``Type=notify`` service the address of an AF_UNIX datagram socket in
``NOTIFY_SOCKET`` (a path, or an abstract-namespace name when it starts with ``@``). The
service sends newline-separated ``KEY=VALUE`` assignments: ``READY=1`` when it is up,
``STATUS=...`` for ``systemctl status``, ``WATCHDOG=1`` to feed the watchdog, ``STOPPING=1``
on shutdown. ``WATCHDOG_USEC`` (with ``WATCHDOG_PID``, when set, naming this process) says
how often the watchdog must be fed. Without ``NOTIFY_SOCKET`` every call is a no-op, so
``loop sim`` and ``loop run`` share one code path.

A failed send never raises: losing a status line must not take the device down (if the
watchdog message is lost, systemd restarts us, which is the right outcome anyway).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Protocol


class Notifier(Protocol):
    """What the supervisor needs from a notifier (``SdNotifier`` or a test double)."""

    def ready(self, status: str | None = None) -> bool: ...
    def status(self, text: str) -> bool: ...
    def watchdog(self) -> bool: ...
    def stopping(self, status: str | None = None) -> bool: ...
    def watchdog_interval(self) -> float | None: ...


def _clean(text: str) -> str:
    """A value must stay on one line, or it would start a new assignment."""
    return " ".join(text.split())


class SdNotifier:
    """Sends sd_notify messages to ``address``; a no-op when ``address`` is None.

    Args:
        address: the ``NOTIFY_SOCKET`` value (``/run/systemd/notify`` or ``@name``).
        watchdog_usec: ``WATCHDOG_USEC`` for this process, or None when the watchdog is off.
    """

    def __init__(self, address: str | None, *, watchdog_usec: int | None = None) -> None:
        if address is not None and not address.startswith(("/", "@")):
            raise ValueError(f"NOTIFY_SOCKET must be an absolute path or start with '@', not {address!r}")
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        #: Messages that could not be delivered (for the health snapshot).
        self.failures = 0
        self.last_error: str | None = None

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, *, pid: int | None = None
    ) -> SdNotifier:
        """Build from ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        if address is not None and not address.startswith(("/", "@")):
            address = None  # not a socket systemd would hand out; ignore rather than crash
        usec: int | None = None
        raw = env.get("WATCHDOG_USEC", "")
        if raw.isdigit() and int(raw) > 0:
            usec = int(raw)
        owner = env.get("WATCHDOG_PID", "")
        if owner and owner != str(pid if pid is not None else os.getpid()):
            usec = None  # the watchdog belongs to another process (e.g. our parent)
        return cls(address, watchdog_usec=usec)

    @property
    def enabled(self) -> bool:
        """True when there is a socket to talk to."""
        return self.address is not None

    def watchdog_interval(self) -> float | None:
        """Seconds within which systemd expects ``WATCHDOG=1``, or None when not watched."""
        return None if self.watchdog_usec is None else self.watchdog_usec / 1_000_000

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` assignments in one datagram; True if delivered (or nothing to do)."""
        if self.address is None or not assignments:
            return True
        payload = "\n".join(assignments).encode("utf-8", "replace")
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(payload, target)
            except OSError as exc:
                self.failures += 1
                self.last_error = f"cannot notify systemd at {self.address}: {exc}"
                self._close_locked()
                return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Tell systemd start-up is complete (``READY=1``)."""
        return self.notify("READY=1", *([f"STATUS={_clean(status)}"] if status else []))

    def status(self, text: str) -> bool:
        """Set the one-line status ``systemctl status`` shows."""
        return self.notify(f"STATUS={_clean(text)}")

    def watchdog(self) -> bool:
        """Feed the watchdog (``WATCHDOG=1``)."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """Tell systemd we are shutting down (``STOPPING=1``)."""
        return self.notify("STOPPING=1", *([f"STATUS={_clean(status)}"] if status else []))

    def reloading(self) -> bool:
        """Tell systemd a reload started (``RELOADING=1`` with the monotonic time, as systemd ≥ 253 wants)."""
        return self.notify(
            "RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
        )

    def close(self) -> None:
        """Close the socket (it is reopened on the next message)."""
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
