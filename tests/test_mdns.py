"""The dashboard found on the network by name: python-zeroconf advertising, a real browser finding it.

Everything stays on the loopback interface (multicast works there on Linux), so no packet
leaves the machine: the advertiser is told to use 127.0.0.1, and the browser listens there.
Names are random per test, because other test runs on this machine share the same loopback.
"""

from __future__ import annotations

import json
import secrets
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from libloop.clock import MonotonicClock
from libloop.color import rgb565_to_rgb888, rgb888_to_rgb565
from libloop.player.screens import empty_screen
from loopapp.config import MdnsConfig, load_config
from loopapp.device import Device
from loopapp.hardware import sim_hardware
from loopapp.integrations.mdns import SERVICE_TYPE, MdnsAdvertiser, advertised_addresses
from tests.mosquitto import wait_for

zeroconf = pytest.importorskip("zeroconf")


class Browser:
    """A zeroconf browser on loopback that remembers which services come and go."""

    def __init__(self) -> None:
        self.zc = zeroconf.Zeroconf(interfaces=["127.0.0.1"], ip_version=zeroconf.IPVersion.V4Only)
        self.names: set[str] = set()
        self._cond = threading.Condition()
        self.browser = zeroconf.ServiceBrowser(self.zc, SERVICE_TYPE, handlers=[self._on_change])

    def _on_change(self, zeroconf: object, service_type: str, name: str, state_change: object) -> None:
        with self._cond:
            if state_change is zeroconf_state().Added:
                self.names.add(name)
            elif state_change is zeroconf_state().Removed:
                self.names.discard(name)
            self._cond.notify_all()

    def wait(self, name: str, present: bool = True, timeout: float = 15.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: (name in self.names) == present, timeout):
                raise AssertionError(
                    f"{name!r} {'never appeared' if present else 'did not go'}; seen {self.names}"
                )

    def info(self, name: str) -> object:
        found = self.zc.get_service_info(SERVICE_TYPE, name, timeout=5000)
        assert found is not None, f"no service info for {name!r}"
        return found

    def close(self) -> None:
        self.browser.cancel()
        self.zc.close()


def zeroconf_state() -> object:
    return zeroconf.ServiceStateChange


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def test_the_advertisement_is_found_and_withdrawn(browser: Browser) -> None:
    host = f"looptest-{secrets.token_hex(3)}"
    advertiser = MdnsAdvertiser(host, lambda: 12345, lambda: ["127.0.0.1"], clock=MonotonicClock())
    advertiser.start()
    try:
        wait_for(lambda: advertiser.up, 20, "the advertisement to be registered")
        name = f"LOOP {host}.{SERVICE_TYPE}"
        browser.wait(name)
        info = browser.info(name)
        assert info.port == 12345  # type: ignore[attr-defined]
        assert info.parsed_addresses() == ["127.0.0.1"]  # type: ignore[attr-defined]
        assert info.server == f"{host}.local."  # type: ignore[attr-defined]
        assert info.properties == {b"path": b"/"}  # type: ignore[attr-defined]
        assert advertiser.liveness().alive and "advertised" in advertiser.liveness().detail
    finally:
        advertiser.stop()
    browser.wait(name, present=False)  # goodbye packets: phones drop it at once
    assert not advertiser.up


def device_config(tmp_path: Path, **mdns: object) -> object:
    config = load_config(None, data_dir=tmp_path / "data")
    return replace(config, mdns=MdnsConfig(**mdns))  # type: ignore[arg-type]


@pytest.fixture
def make_device(tmp_path: Path) -> Iterator[object]:
    devices: list[Device] = []

    def make(**mdns: object) -> Device:
        config = device_config(tmp_path, **mdns)
        device = Device(config, sim_hardware(config), host="127.0.0.1", port=0, import_worker="inline")  # type: ignore[arg-type]
        device.start()
        devices.append(device)
        return device

    yield make
    for device in devices:
        device.stop()


def test_the_device_advertises_its_dashboard_and_shows_its_local_name(
    browser: Browser, make_device: object
) -> None:
    device: Device = make_device(interfaces=("127.0.0.1",))  # type: ignore[operator]
    wait_for(lambda: device.health()["mdns"]["advertised"], 20, "the dashboard advertised")
    assert device.mdns is not None and device.mdns.registered_name is not None
    name = f"{device.mdns.registered_name}.{SERVICE_TYPE}"
    assert device.mdns.registered_name.startswith(f"LOOP {device.hostname}")
    browser.wait(name)
    info = browser.info(name)
    assert info.port == device.port  # type: ignore[attr-defined]
    # What a phone does next: open the advertised address and port.
    address = info.parsed_addresses()[0]  # type: ignore[attr-defined]
    with urllib.request.urlopen(f"http://{address}:{info.port}/api/player", timeout=10) as response:  # type: ignore[attr-defined]
        assert json.loads(response.read())["state"] == "empty"
    # The empty screen now gives the name, not the address.
    url = f"http://{device.hostname}.local:{device.port}"
    assert device.dashboard_url == url
    w, h = 240, 320
    expected = rgb565_to_rgb888(rgb888_to_rgb565(np.asarray(empty_screen((w, h), url))).tobytes(), w, h)
    wait_for(
        lambda: np.array_equal(np.asarray(device.display_image().convert("RGB")), expected),
        15,
        "the empty screen with the .local address",
    )


def test_no_multicast_is_a_fault_not_a_crash(make_device: object) -> None:
    device: Device = make_device(interfaces=("10.255.255.1",))  # type: ignore[operator]  # not on this machine
    wait_for(
        lambda: any(f["component"] == "mdns" for f in device.health()["faults"]),
        20,
        "the mDNS fault reported",
    )

    def detail() -> str:
        return str(next(c for c in device.health()["components"] if c["name"] == "mdns")["detail"])

    wait_for(lambda: "not advertised" in detail(), 20, "the component to say why")
    assert "not an address of this machine" in detail()
    health = device.health()
    assert health["mdns"]["advertised"] is False and health["mdns"]["last_error"]
    assert device.dashboard_url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(f"{device.server.url}/api/player", timeout=10) as response:
        assert json.loads(response.read())["state"] == "empty"
    assert not device.exit_requested.is_set()


def test_a_dashboard_on_loopback_only_is_not_advertised(make_device: object) -> None:
    device: Device = make_device()  # type: ignore[operator]
    assert device.mdns is None
    assert device.health()["mdns"] == {
        "enabled": True,
        "advertised": False,
        "reason": "the dashboard listens on 127.0.0.1 only",
    }


def test_what_is_advertised_for_each_kind_of_bind() -> None:
    assert advertised_addresses("127.0.0.1", ()) is None
    assert advertised_addresses("localhost", ()) is None
    chosen = advertised_addresses("127.0.0.1", ("192.168.1.7",))
    assert chosen is not None and chosen() == ["192.168.1.7"]
    wildcard = advertised_addresses("0.0.0.0", ())
    assert wildcard is not None and all(not a.startswith("127.") for a in wildcard())
    one = advertised_addresses("192.0.2.2", ())
    assert one is not None and one() == ["192.0.2.2"]
