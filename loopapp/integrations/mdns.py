"""The dashboard on the LAN by name: an mDNS (Bonjour) advertisement with python-zeroconf.

The device advertises ``_http._tcp`` as "LOOP <hostname>" on the dashboard's port, so a phone
or a laptop finds it without typing an address, and answers for ``<hostname>.local`` (unless
avahi-daemon runs and already does; then the records carry a name of their own, so the two
never disagree about the host's addresses). Once the advertisement is up, the device's
empty screen shows ``http://<hostname>.local:PORT``.

A non-essential component with its own thread: registering takes a couple of seconds of
probing and must not slow start-up, and a network without multicast must not fail the
device. A failure is told once as a fault and retried every ``retry`` seconds; the addresses
are checked every ``recheck`` seconds and the records updated when they change (a new DHCP
lease, Wi-Fi back).
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from libloop.health import Heartbeat, Liveness

if TYPE_CHECKING:
    from zeroconf import ServiceInfo, Zeroconf

    from libloop.clock import Clock

log = logging.getLogger(__name__)

SERVICE_TYPE = "_http._tcp.local."
#: avahi-daemon's socket: when it exists, avahi already answers for ``<hostname>.local``.
AVAHI_SOCKET = Path("/run/avahi-daemon/socket")


class MdnsAdvertiser:
    """The ``mdns`` component.

    Args:
        hostname: this machine's short host name.
        port: the dashboard's port (asked when registering: the server may bind port 0).
        addresses: the IPv4 addresses to advertise, asked again every ``recheck`` seconds.
        clock: for the heartbeat.
        server: the host name the records point at (default ``<hostname>.local.``, or a name
            of the advertisement's own when avahi-daemon runs).
        on_change: told ``True`` once the advertisement is up, ``False`` when it is gone.
        on_event: told, in one sentence, when advertising fails and when it works again.
    """

    essential = False

    def __init__(
        self,
        hostname: str,
        port: Callable[[], int],
        addresses: Callable[[], Sequence[str]],
        *,
        clock: Clock,
        server: str | None = None,
        on_change: Callable[[bool], None] | None = None,
        on_event: Callable[[str], object] | None = None,
        retry: float = 60.0,
        recheck: float = 30.0,
    ) -> None:
        self.name = "mdns"
        self.hostname = hostname
        self.instance = f"LOOP {hostname}"
        if server is None:
            server = f"loop-{hostname}.local." if AVAHI_SOCKET.exists() else f"{hostname}.local."
        self.server = server
        self._port = port
        self._addresses = addresses
        self._clock = clock
        self._on_change = on_change
        self._on_event = on_event
        self.retry = retry
        self.recheck = recheck
        self._heartbeat = Heartbeat(clock, stale_after=max(retry, recheck) + 15.0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._zc: Zeroconf | None = None
        self._info: ServiceInfo | None = None
        self._advertised: tuple[str, ...] = ()
        self._error: str | None = None
        self._told = False
        self.registered_name: str | None = None

    # --- the Component protocol ----------------------------------------------------------

    def start(self) -> None:
        """Start advertising in the background; returns at once."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()
        self._heartbeat.reset()
        self._thread = threading.Thread(target=self._run, args=(self._stop,), name="mdns", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Withdraw the advertisement (goodbye packets) and end the thread."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def liveness(self) -> Liveness:
        """Alive while the thread runs; the detail says whether the dashboard is advertised."""
        if self._thread is None or not self._thread.is_alive():
            return Liveness(False, "not running")
        beat = self._heartbeat.liveness()
        if not beat.alive:
            return beat
        with self._lock:
            if self._advertised:
                detail = f"advertised as {self.registered_name or self.instance!r} on {', '.join(self._advertised)}"
            elif self._error:
                detail = f"not advertised: {self._error}; retrying"
            else:
                detail = "waiting for a network address"
        return Liveness(True, detail, beat.last_beat_age)

    @property
    def up(self) -> bool:
        """True while the advertisement is registered."""
        with self._lock:
            return bool(self._advertised)

    def snapshot(self) -> dict[str, Any]:
        """The ``mdns`` section of ``GET /api/health``."""
        with self._lock:
            return {
                "enabled": True,
                "advertised": bool(self._advertised),
                "name": self.registered_name or self.instance,
                "type": SERVICE_TYPE,
                "server": self.server,
                "addresses": list(self._advertised),
                "last_error": self._error,
            }

    # --- the thread ----------------------------------------------------------------------

    def _run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self._heartbeat.beat()
                wait = self.recheck
                try:
                    self._sync()
                except ImportError:
                    self._failed(f"mDNS needs zeroconf: {sys.executable} -m pip install 'zeroconf>=0.132'")
                    wait = self.retry
                except Exception as exc:  # zeroconf's errors, OSError (no multicast), ...
                    self._failed(str(exc) or type(exc).__name__)
                    wait = self.retry
                if stop.wait(wait):
                    break
        finally:
            self._withdraw()

    def _sync(self) -> None:
        """Register, re-register on new addresses, or withdraw when there are none."""
        addresses = tuple(sorted(dict.fromkeys(self._addresses())))
        with self._lock:
            current = self._advertised
        if addresses == current and self._zc is not None:
            return
        self._withdraw()
        if not addresses:
            return
        mine = _local_ipv4()
        missing = [a for a in addresses if a not in mine]
        if missing:  # checked here: zeroconf leaks its socket when it fails on such an address
            raise OSError(f"{', '.join(missing)} is not an address of this machine")
        from zeroconf import IPVersion, ServiceInfo, Zeroconf

        zc = Zeroconf(interfaces=list(addresses), ip_version=IPVersion.V4Only)
        try:
            info = ServiceInfo(
                SERVICE_TYPE,
                f"{self.instance}.{SERVICE_TYPE}",
                port=self._port(),
                addresses=[socket.inet_aton(a) for a in addresses],
                server=self.server,
                properties={"path": "/"},
            )
            zc.register_service(info, allow_name_change=True)
        except BaseException:
            zc.close()
            raise
        self._zc, self._info = zc, info
        with self._lock:
            self._advertised = addresses
            self._error = None
            self.registered_name = info.name.removesuffix(f".{SERVICE_TYPE}")
            recovered, self._told = self._told, False
        log.info("advertising the dashboard as %r on %s", self.registered_name, ", ".join(addresses))
        if recovered:
            self._event(f"advertising the dashboard as {self.registered_name!r} again")
        self._changed(True)

    def _withdraw(self) -> None:
        zc, info = self._zc, self._info
        self._zc = self._info = None
        with self._lock:
            was = bool(self._advertised)
            self._advertised = ()
        if zc is not None:
            try:
                if info is not None:
                    zc.unregister_service(info)
            except Exception as exc:
                log.warning("withdrawing the mDNS advertisement failed: %s", exc)
            finally:
                zc.close()
        if was:
            self._changed(False)

    def _failed(self, reason: str) -> None:
        with self._lock:
            self._error = reason
            tell, self._told = not self._told, True
        if tell:
            self._event(
                f"cannot advertise the dashboard on mDNS: {reason}; retrying every {self.retry:.0f} s"
            )

    def _changed(self, up: bool) -> None:
        if self._on_change is not None:
            try:
                self._on_change(up)
            except Exception:
                log.exception("telling the device about mDNS failed")

    def _event(self, message: str) -> None:
        log.warning("mdns: %s", message)
        if self._on_event is not None:
            try:
                self._on_event(message)
            except Exception:
                log.exception("recording an mDNS event failed")


def advertised_addresses(host: str, interfaces: Sequence[str]) -> Callable[[], list[str]] | None:
    """What to advertise for a dashboard bound to ``host``; None when nothing outside can reach it.

    Configured ``interfaces`` win. A wildcard bind advertises every IPv4 address but loopback
    (asked again each time: addresses come and go with the Wi-Fi); a bind to one address
    advertises that one. A dashboard on loopback only is not advertised: no other machine
    could open it.
    """
    if interfaces:
        chosen = list(interfaces)
        return lambda: chosen
    if host in ("", "0.0.0.0", "::"):
        return _lan_ipv4
    try:
        address = socket.gethostbyname(host)
    except OSError:
        return None
    if address.startswith("127."):
        return None
    return lambda: [address]


def _lan_ipv4() -> list[str]:
    import psutil

    found = []
    for name, addresses in sorted(psutil.net_if_addrs().items()):
        if name == "lo" or name.startswith(("docker", "veth", "br-")):
            continue
        found += [
            a.address for a in addresses if a.family == socket.AF_INET and not a.address.startswith("127.")
        ]
    return found


def _local_ipv4() -> set[str]:
    import psutil

    return {
        a.address for addrs in psutil.net_if_addrs().values() for a in addrs if a.family == socket.AF_INET
    }
