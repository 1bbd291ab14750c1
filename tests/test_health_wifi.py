"""Wi-Fi through nmcli (parsed from its terse, escaped output) and the simulator's fake."""

from __future__ import annotations

import subprocess

from hypothesis import given
from hypothesis import strategies as st

from libloop.health import FakeWifi, NetworkManagerWifi, WifiPoller, WifiStatus
from libloop.health.wifi import split_terse

DEVICES = "lo:loopback:connected (externally):lo\nwlan0:wifi:connected:My\\:Home\\\\Net\np2p-dev-wlan0:wifi-p2p:disconnected:\n"
WIFI = "no:Neighbour:40:wlan0\nyes:My\\:Home\\\\Net:72:wlan0\n"


def fake_nmcli(devices: str = DEVICES, wifi: str = WIFI, code: int = 0):  # type: ignore[no-untyped-def]
    calls: list[list[str]] = []

    def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        assert isinstance(args, list) and kwargs.get("timeout")
        out = devices if args[-1] == "device" else wifi
        return subprocess.CompletedProcess(
            args, code, out, "Error: NetworkManager is not running." if code else ""
        )

    return run, calls


def nm(run: object) -> NetworkManagerWifi:
    return NetworkManagerWifi(run=run, which=lambda name: "/usr/bin/nmcli", ip_of=lambda dev: "192.168.1.20")  # type: ignore[arg-type]


def test_connected_with_escaped_ssid() -> None:
    run, calls = fake_nmcli()
    status = nm(run).status()
    assert status == WifiStatus(True, "My:Home\\Net", 72, "192.168.1.20", "connected on wlan0")
    assert calls[0] == ["nmcli", "-t", "-f", "DEVICE,TYPE,STATE,CONNECTION", "device"]
    assert calls[1] == ["nmcli", "-t", "-f", "ACTIVE,SSID,SIGNAL,DEVICE", "dev", "wifi"]


def test_disconnected_and_missing_and_failing() -> None:
    run, _ = fake_nmcli(devices="wlan0:wifi:disconnected:\n")
    status = nm(run).status()
    assert not status.connected and "disconnected" in status.detail
    assert "no Wi-Fi device" in nm(fake_nmcli(devices="eth0:ethernet:connected:Wired\n")[0]).status().detail
    absent = NetworkManagerWifi(which=lambda name: None).status()
    assert not absent.connected and "NetworkManager is not available" in absent.detail
    failing = nm(fake_nmcli(code=8)[0]).status()
    assert not failing.connected and "NetworkManager is not running" in failing.detail


def test_nmcli_timeout_is_reported() -> None:
    def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(args, 5)

    assert "did not answer" in nm(run).status().detail


def escape(field: str) -> str:
    return field.replace("\\", "\\\\").replace(":", "\\:")


@given(st.lists(st.text(), min_size=1, max_size=5))
def test_split_terse_inverts_nmcli_escaping(fields: list[str]) -> None:
    assert split_terse(":".join(escape(f) for f in fields)) == fields


def test_fake_and_poller() -> None:
    fake = FakeWifi()
    poller = WifiPoller(fake)
    assert poller.snapshot()["connected"] is False
    poller.run_once()
    assert poller.snapshot()["connected"] is True and poller.liveness().alive
    fake.set(WifiStatus(False, detail="out of range"))
    poller.run_once()
    assert poller.snapshot() == {"connected": False, "ssid": None, "signal_percent": None, "ip": None,
                                 "detail": "out of range"}  # fmt: skip
