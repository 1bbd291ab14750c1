"""Home Assistant over MQTT, against a real mosquitto: discovery, commands, states, outages.

A real ``Device`` runs on the simulated panel in this process; a paho client plays Home
Assistant (it subscribes to discovery and states, and publishes on the command topics named
in the configs). The broker is Debian's mosquitto on a free loopback port, killed and
restarted under the playing device. Every wait is on a condition with a deadline.
"""

from __future__ import annotations

import gc
import io
import json
import signal
import subprocess
import sys
import threading
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from loopapp.config import Config, ConfigError, MqttConfig, load_config
from loopapp.device import Device
from loopapp.hardware import sim_hardware
from loopapp.health_text import format_health
from tests.mosquitto import MOSQUITTO, MOSQUITTO_PASSWD, HomeAssistant, Mosquitto, make_tls_files, wait_for
from tests.webapp_fixtures import add_solid_item

pytestmark = pytest.mark.skipif(
    not MOSQUITTO.exists(), reason="mosquitto is not installed (apt-get install mosquitto)"
)

RED, GREEN, BLUE, YELLOW = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)
#: Quick reconnects, so a test waits a second or two for the device to come back, not ten.
FAST = {"backoff_initial": 0.2, "backoff_max": 0.5, "keepalive": 5}
PREFIX = "homeassistant"
#: Frames that stay on long enough for play order never to move on during a test.
LONG = 600_000


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path / "broker")
    server.start()
    try:
        yield server
    finally:
        server.kill()


def mqtt_config(tmp_path: Path, url: str, **mqtt: Any) -> Config:
    config = load_config(None, data_dir=tmp_path / "data")
    return replace(config, mqtt=MqttConfig(url=url, **mqtt))


DeviceFactory = Callable[..., Device]


@pytest.fixture
def make_device(tmp_path: Path) -> Iterator[DeviceFactory]:
    devices: list[Device] = []

    def make(config: Config | None = None, **mqtt: Any) -> Device:
        assert config is not None
        dev = Device(
            config,
            sim_hardware(config),
            host="127.0.0.1",
            port=0,
            import_worker="inline",
            mqtt_options={**FAST, **mqtt},
            # The tests look at the panel model and the display in this process; the player in
            # its own process mirrors the same counter (tests/test_player_process.py).
            player_mode="thread",
        )
        dev.start()
        devices.append(dev)
        return dev

    yield make
    for dev in devices:
        dev.stop()


def mqtt_health(device: Device) -> dict[str, Any]:
    """The ``mqtt`` section of the health report (asked of the bridge itself: polling the whole
    report fifty times a second would load the player more than MQTT does)."""
    if device.mqtt is not None:
        return device.mqtt.snapshot()
    section: dict[str, Any] = device.health()["mqtt"]
    return section


def connected(device: Device) -> bool:
    return bool(mqtt_health(device).get("connected"))


def base(device: Device) -> str:
    return f"loop/{device.device_id}"


def panel_colour(device: Device) -> tuple[int, int, int]:
    glass = np.asarray(device.hardware.panel.snapshot().convert("RGB"))
    values, counts = np.unique(glass.reshape(-1, 3), axis=0, return_counts=True)
    return tuple(int(v) for v in values[counts.argmax()])  # type: ignore[return-value]


def close_to(a: tuple[int, int, int], b: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def api(device: Device, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """The dashboard's API, as the browser calls it."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{device.server.url}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json", "X-Loop-Request": "1"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


# --- discovery ----------------------------------------------------------------------------


def test_discovery_configs_are_retained_and_describe_one_device(
    tmp_path: Path, broker: Mosquitto, make_device: DeviceFactory
) -> None:
    device = make_device(mqtt_config(tmp_path, broker.url))
    add_solid_item(device.library, "sunset.gif", [RED, YELLOW], duration_ms=LONG)
    add_solid_item(device.library, "sea.gif", [BLUE, GREEN], duration_ms=LONG)
    wait_for(lambda: connected(device), 15, "the device to connect")
    with HomeAssistant(broker.port) as early:  # until the device has published the first item
        early.wait_for(f"{base(device)}/item/state", "sunset.gif")
    # Home Assistant starts after the device: everything it needs is retained on the broker.
    with HomeAssistant(broker.port) as ha:
        ha.wait(lambda: len(ha.configs()) == 7, 15, "seven discovery configs")
        configs = ha.configs()
        assert all(ha.retained[t] for t in configs)
        components = sorted(t.split("/")[1] + "/" + t.split("/")[3] for t in configs)
        assert components == [
            "button/next", "button/previous", "image/screen", "light/panel",
            "select/item", "sensor/current", "switch/pause",
        ]  # fmt: skip
        assert all(t.split("/")[2] == device.device_id for t in configs)
        assert len({c["unique_id"] for c in configs.values()}) == 7
        assert {json.dumps(c["device"], sort_keys=True) for c in configs.values()} == {
            json.dumps(configs[next(iter(configs))]["device"], sort_keys=True)
        }
        assert configs[next(iter(configs))]["device"]["identifiers"] == [device.device_id]
        availability = {c["availability_topic"] for c in configs.values()}
        assert availability == {f"{base(device)}/availability"}
        assert ha.wait_for(f"{base(device)}/availability", "online") == b"online"
        assert ha.retained[f"{base(device)}/availability"]
        select = ha.config("select", "item")
        ha.wait(lambda: ha.options() == ["sunset.gif", "sea.gif"], 15, "the options")
        light = ha.config("light", "panel")
        assert light["brightness_scale"] == 100
        # Every state topic a config names holds a retained state already.
        for config in configs.values():
            for key in ("state_topic", "brightness_state_topic"):
                if key in config:
                    ha.wait_for(config[key])
                    assert ha.retained[config[key]]
        assert select["command_topic"].startswith(base(device))


def test_the_device_id_is_stable_for_a_data_directory(tmp_path: Path, broker: Mosquitto) -> None:
    ids = []
    for _ in range(2):
        config = mqtt_config(tmp_path, broker.url)
        device = Device(config, sim_hardware(config), host="127.0.0.1", port=0, import_worker="inline",
                        mqtt_options=FAST)  # fmt: skip
        device.start()
        try:
            wait_for(lambda d=device: connected(d), 15, "the device to connect")
            ids.append(device.device_id)
            assert f"MQTT: connected to {broker.url}" in format_health(device.health(), device.data_dir)
        finally:
            device.stop()
    assert ids[0] == ids[1]
    assert (tmp_path / "data" / "device-id").read_text().strip() == ids[0]


# --- commands -----------------------------------------------------------------------------


def test_each_command_topic_acts_on_the_panel(
    tmp_path: Path, broker: Mosquitto, make_device: DeviceFactory
) -> None:
    device = make_device(mqtt_config(tmp_path, broker.url))
    red = add_solid_item(device.library, "red", [RED, RED], duration_ms=LONG)
    blue = add_solid_item(device.library, "blue", [BLUE, BLUE], duration_ms=LONG)
    green = add_solid_item(device.library, "green", [GREEN, GREEN], duration_ms=LONG)
    wait_for(lambda: connected(device), 15, "the device to connect")
    with HomeAssistant(broker.port) as ha:
        ha.wait(lambda: len(ha.options() or []) == 3, 15, "three options")
        light, select = ha.config("light", "panel"), ha.config("select", "item")
        pause = ha.config("switch", "pause")
        next_button, previous_button = ha.config("button", "next"), ha.config("button", "previous")

        # light off -> the panel sleeps (backlight off); on -> it wakes.
        ha.send(light["command_topic"], "OFF")
        wait_for(lambda: device.player.status().state == "sleeping", 10, "the panel to sleep")
        ha.wait_for(light["state_topic"], "OFF")
        assert device.display.asleep and device.hardware.panel.backlight == 0
        ha.send(light["command_topic"], "ON")
        ha.wait_for(light["state_topic"], "ON")
        wait_for(lambda: device.hardware.panel.backlight == 100, 10, "the backlight back on")

        # brightness -> the backlight level, and the state says so.
        ha.send(light["brightness_command_topic"], "30")
        ha.wait_for(light["brightness_state_topic"], "30")
        wait_for(lambda: device.hardware.panel.backlight == 30, 10, "the backlight at 30 %")
        ha.send(light["brightness_command_topic"], "100")
        ha.wait_for(light["brightness_state_topic"], "100")

        # select -> that item on the panel.
        ha.send(select["command_topic"], "green")
        ha.wait_for(select["state_topic"], "green")
        assert device.player.status().current == green.id
        wait_for(lambda: close_to(panel_colour(device), GREEN), 10, "green on the panel")
        ha.wait_for(f"{base(device)}/current/state", "green")

        # next and previous, in play order (red, blue, green).
        ha.send(next_button["command_topic"], next_button["payload_press"])
        ha.wait_for(select["state_topic"], "red")
        wait_for(lambda: close_to(panel_colour(device), RED), 10, "red on the panel")
        ha.send(next_button["command_topic"], "PRESS")
        ha.wait_for(select["state_topic"], "blue")
        ha.send(previous_button["command_topic"], previous_button["payload_press"])
        ha.wait_for(select["state_topic"], "red")
        assert device.player.status().current == red.id

        # pause holds the frame; off plays on.
        ha.send(pause["command_topic"], "ON")
        ha.wait_for(pause["state_topic"], "ON")
        assert device.player.status().state == "paused"
        ha.send(pause["command_topic"], "OFF")
        ha.wait_for(pause["state_topic"], "OFF")
        assert device.player.status().state == "playing"

        # Nonsense is refused, counted, and the select is put back to the truth.
        before = ha.counts.get(select["state_topic"], 0)
        ha.send(select["command_topic"], "no such item")
        ha.wait(lambda: ha.counts.get(select["state_topic"], 0) > before, 10, "the select put back")
        assert ha.latest[select["state_topic"]] == b"red"
        ha.send(light["brightness_command_topic"], "bright")
        wait_for(lambda: mqtt_health(device)["rejected"] >= 2, 10, "the rejections counted")
        assert "brightness" in mqtt_health(device)["last_rejected"]
        assert device.player.status().brightness == 100
        assert blue.id not in "".join(select["options"])  # unique names need no id


def test_a_retained_command_is_not_replayed(
    tmp_path: Path, broker: Mosquitto, make_device: DeviceFactory
) -> None:
    """A command left retained on the broker (by a hand-made publish) must not act on every reconnect."""
    config = mqtt_config(tmp_path, broker.url)
    with HomeAssistant(broker.port) as ha:
        from loopapp.integrations.identity import device_id

        topic = f"loop/{device_id(config.data_dir)}/panel/set"
        ha.send(topic, "OFF", retain=True)
        device = make_device(config)
        add_solid_item(device.library, "red", [RED, RED])
        ha.wait_for(f"{base(device)}/availability", "online")
        wait_for(lambda: mqtt_health(device)["rejected"] >= 1, 10, "the retained command ignored")
        assert device.player.status().state != "sleeping"
        ha.send(topic, "", retain=True)  # clear it


def test_duplicate_names_get_distinct_options(
    tmp_path: Path, broker: Mosquitto, make_device: DeviceFactory
) -> None:
    device = make_device(mqtt_config(tmp_path, broker.url))
    first = add_solid_item(device.library, "cat.gif", [RED, RED], duration_ms=LONG)
    second = add_solid_item(device.library, "cat.gif", [BLUE, BLUE], duration_ms=LONG)
    add_solid_item(device.library, "None", [GREEN, GREEN], duration_ms=LONG)
    wait_for(lambda: connected(device), 15, "the device to connect")
    with HomeAssistant(broker.port) as ha:
        ha.wait(lambda: len(ha.options() or []) == 3, 15, "three options")
        options = ha.config("select", "item")["options"]
        assert options[:2] == [f"cat.gif [{first.id}]", f"cat.gif [{second.id}]"]
        assert options[2].startswith("None [")  # "None" alone would read as "no option" in Home Assistant
        select = ha.config("select", "item")
        ha.send(select["command_topic"], options[1])
        ha.wait_for(select["state_topic"], options[1])
        wait_for(lambda: close_to(panel_colour(device), BLUE), 10, "the second cat on the panel")


# --- states follow every face -------------------------------------------------------------


def test_states_follow_changes_made_in_the_dashboard(
    tmp_path: Path, broker: Mosquitto, make_device: DeviceFactory
) -> None:
    device = make_device(mqtt_config(tmp_path, broker.url))
    red = add_solid_item(device.library, "red", [RED, RED], duration_ms=LONG)
    blue = add_solid_item(device.library, "blue", [BLUE, BLUE], duration_ms=LONG)
    wait_for(lambda: connected(device), 15, "the device to connect")
    t = base(device)
    with HomeAssistant(broker.port) as ha:
        ha.wait_for(f"{t}/item/state", "red")
        api(device, "POST", "/api/player", {"action": "show", "id": blue.id})
        ha.wait_for(f"{t}/item/state", "blue")
        ha.wait_for(f"{t}/current/state", "blue")
        attributes = f"{t}/current/attributes"
        ha.wait(
            lambda: json.loads(ha.latest.get(attributes, b"{}")).get("id") == blue.id, 15, "the id attribute"
        )
        assert json.loads(ha.latest[attributes])["state"] == "playing"
        api(device, "POST", "/api/player", {"action": "pause"})
        ha.wait_for(f"{t}/pause/state", "ON")
        api(device, "POST", "/api/player", {"action": "brightness", "value": 55})
        ha.wait_for(f"{t}/panel/brightness", "55")
        api(device, "POST", "/api/player", {"action": "sleep"})
        ha.wait_for(f"{t}/panel/state", "OFF")
        api(device, "POST", "/api/player", {"action": "wake"})
        ha.wait_for(f"{t}/panel/state", "ON")
        api(device, "POST", "/api/player", {"action": "resume"})
        ha.wait_for(f"{t}/pause/state", "OFF")
        # A rename and a new upload change the select's options; a delete empties it.
        api(device, "PATCH", f"/api/media/{blue.id}", {"name": "ocean"})
        ha.wait(lambda: ha.options() == ["red", "ocean"], 15, "the renamed option")
        ha.wait_for(f"{t}/item/state", "ocean")
        api(device, "DELETE", f"/api/media/{blue.id}")
        ha.wait(lambda: ha.options() == ["red"], 15, "the deleted option gone")
        ha.wait_for(f"{t}/item/state", "red")
        api(device, "DELETE", f"/api/media/{red.id}")
        ha.wait_for(f"{t}/item/state", "None")
        ha.wait_for(f"{t}/current/state", "None")


def test_the_image_entity_shows_the_panel(
    tmp_path: Path, broker: Mosquitto, make_device: DeviceFactory
) -> None:
    device = make_device(mqtt_config(tmp_path, broker.url))
    add_solid_item(device.library, "red", [RED])
    wait_for(lambda: connected(device), 15, "the device to connect")
    with HomeAssistant(broker.port) as ha:
        image = ha.config("image", "screen")
        assert image["content_type"] == "image/png"

        def shows(colour: tuple[int, int, int]) -> bool:
            data = ha.latest.get(image["image_topic"])
            if not data:
                return False
            picture = Image.open(io.BytesIO(data)).convert("RGB")
            if picture.size != (240, 320):
                return False
            values, counts = np.unique(np.asarray(picture).reshape(-1, 3), axis=0, return_counts=True)
            return close_to(tuple(int(v) for v in values[counts.argmax()]), colour)  # type: ignore[arg-type]

        ha.wait(lambda: shows(RED), 15, "a red picture")
        add_solid_item(device.library, "blue", [BLUE])
        api(device, "POST", "/api/player", {"action": "next"})
        ha.wait(lambda: shows(BLUE), 15, "a blue picture")


def test_image_interval_zero_removes_the_image_entity(
    tmp_path: Path, broker: Mosquitto, make_device: DeviceFactory
) -> None:
    config = mqtt_config(tmp_path, broker.url)
    device = make_device(config)
    wait_for(lambda: connected(device), 15, "the device to connect")
    with HomeAssistant(broker.port) as ha:
        ha.wait(lambda: len(ha.configs()) == 7, 15, "seven configs")
    device.stop()
    device = make_device(replace(config, mqtt=replace(config.mqtt, image_interval=0.0)))
    with HomeAssistant(broker.port) as ha:
        ha.wait_for(f"{base(device)}/availability", "online")
        ha.wait(lambda: len(ha.configs()) == 6, 15, "the image config deleted")
        assert not any("/image/" in t for t in ha.configs())


def test_home_assistant_coming_online_gets_everything_again(
    tmp_path: Path, broker: Mosquitto, make_device: DeviceFactory
) -> None:
    device = make_device(mqtt_config(tmp_path, broker.url))
    wait_for(lambda: connected(device), 15, "the device to connect")
    with HomeAssistant(broker.port) as ha:
        config_topic = f"{PREFIX}/light/{device.device_id}/panel/config"
        ha.wait_for(config_topic)
        before = ha.counts[config_topic]
        ha.send(f"{PREFIX}/status", "online")  # Home Assistant's birth message after a restart
        ha.wait(lambda: ha.counts[config_topic] > before, 15, "the configs sent again")


# --- credentials and TLS ------------------------------------------------------------------


@pytest.mark.skipif(MOSQUITTO_PASSWD is None, reason="mosquitto_passwd is not installed (mosquitto package)")
def test_username_and_password(tmp_path: Path, make_device: DeviceFactory) -> None:
    from loopapp.doctor import check_mqtt

    server = Mosquitto(tmp_path / "broker", users={"loop": "s3cret pass", "hass": "hass"})
    server.start()
    try:
        wrong = make_device(mqtt_config(tmp_path / "a", server.url, username="loop", password="wrong"))
        wait_for(lambda: "refused" in str(mqtt_health(wrong)["last_error"]), 15, "the refusal reported")
        assert not connected(wrong)
        assert any(f["component"] == "mqtt" and "refused" in f["message"] for f in wrong.health()["faults"])
        check = check_mqtt(wrong.config.mqtt)
        assert not check.ok and check.fix is not None and "password" in check.fix

        right = make_device(mqtt_config(tmp_path / "b", server.url, username="loop", password="s3cret pass"))
        wait_for(lambda: connected(right), 15, "the device to log in")
        assert check_mqtt(right.config.mqtt).ok
    finally:
        server.kill()


@pytest.mark.skipif(not Path("/usr/bin/openssl").exists(), reason="openssl is not installed")
def test_mqtts_verifies_the_broker_against_the_system_ca_store(
    tmp_path: Path, make_device: DeviceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, chain, key = make_tls_files(tmp_path / "tls")
    server = Mosquitto(tmp_path / "broker", tls=(chain, key))
    server.start()
    try:
        untrusted = make_device(mqtt_config(tmp_path / "a", server.url))
        wait_for(
            lambda: "not trusted" in str(mqtt_health(untrusted)["last_error"]),
            15,
            "the bad certificate reported",
        )
        untrusted.stop()
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # OpenSSL's system store, pointed at the test CA
        trusted = make_device(mqtt_config(tmp_path / "b", server.url))
        wait_for(lambda: connected(trusted), 15, "the device to connect over TLS")
        assert mqtt_health(trusted)["broker"] == server.url
    finally:
        server.kill()


# --- outages --------------------------------------------------------------------------------


def add_moving_square(device: Device, frames: int = 8, duration_ms: int = 250) -> None:
    """An animation that changes a small part of the panel each frame (as most GIFs do)."""
    from libloop.color import rgb888_to_rgb565
    from libloop.index import NewItem
    from libloop.media.framefile import FrameFileWriter

    path = device.library.staging_path()
    with FrameFileWriter(path, 240, 320) as writer:
        for i in range(frames):
            rgb = np.zeros((320, 240, 3), dtype=np.uint8)
            rgb[20 + 30 * i : 60 + 30 * i, 100:140] = YELLOW
            writer.add_frame(rgb888_to_rgb565(rgb), duration_ms)
        writer.commit()
    meta = NewItem(name="square", kind="gif", frames=frames, duration_ms=frames * duration_ms, width=240,
                   height=320, source_name="square.gif", content_hash="test-square")  # fmt: skip
    device.library.add(path, meta)


@pytest.fixture
def frozen_startup() -> Iterator[None]:
    """What ``loop run`` and ``loop sim`` do after start-up (``runner.freeze_startup_objects``):
    the objects made so far, here those of every earlier test, out of the collector's sight, so
    a collection during the measurement costs what it costs on the device. An earlier test's
    socket that only this collection finalises is not this test's failure: its warning is
    ignored here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def broker_outage(
    tmp_path: Path,
    broker: Mosquitto,
    make_device: DeviceFactory,
    seconds: float,
    frame_ms: int,
    **options: Any,
) -> dict[str, Any]:
    """Kill the broker under a playing device for ``seconds``; return the figures.

    A frame is dropped when the player is held up past the next frame's deadline. A stall
    caused by the bridge (a publish or a connect waiting on the dead broker) lasts seconds
    and shows with any frame length; ``frame_ms`` keeps the jitter of a machine shared with
    other test runs (which drops frames with MQTT off too) out of the verdict.
    """
    device = make_device(mqtt_config(tmp_path, broker.url), **options)
    add_moving_square(device, duration_ms=frame_ms)
    wait_for(lambda: connected(device), 15, "the device to connect")
    t = base(device)
    with HomeAssistant(broker.port) as ha:
        ha.wait_for(f"{t}/availability", "online")
    wait_for(lambda: device.player.stats.frames_shown > 8, 15, "the animation playing")
    before = device.player.stats

    broker.kill()
    wait_for(lambda: not connected(device), 15, "the device to notice the outage")
    health = mqtt_health(device)
    assert health["last_error"] and "lost" in health["last_error"]
    api(device, "POST", "/api/player", {"action": "brightness", "value": 40})  # a change during the outage
    wait_for(
        lambda: (mqtt_health(device)["down_for_s"] or 0) >= seconds,
        seconds + 30,
        f"{seconds} s of outage",
        interval=0.2,
    )
    assert api(device, "GET", "/api/health")["mqtt"]["connected"] is False  # the outage, as the API shows it
    during = device.player.stats
    expected = seconds * 1000 / frame_ms
    assert during.frames_shown >= before.frames_shown + expected / 2  # playback went on
    assert api(device, "GET", "/api/player")["state"] == "playing"  # and the API answered

    broker.start()
    wait_for(lambda: connected(device), 30, "the device to reconnect", interval=0.1)
    with HomeAssistant(broker.port) as ha:  # the restarted broker had lost everything: all sent again
        ha.wait_for(f"{t}/availability", "online")
        ha.wait(lambda: len(ha.configs()) == 7, 15, "the discovery configs republished")
        ha.wait_for(f"{t}/panel/brightness", "40")
    after = device.player.stats
    report = api(device, "GET", "/api/health")  # the recovery, as the API shows it
    health = report["mqtt"]
    assert health["connected"] is True
    faults = [f["message"] for f in report["faults"] if f["component"] == "mqtt"]
    assert any("lost the connection" in m for m in faults)
    assert any("again after" in m for m in faults)
    assert health["reconnects"] >= 1 and health["last_outage_s"] >= seconds
    assert after.frames_dropped == before.frames_dropped
    assert after.frames_shown > during.frames_shown
    return {
        "outage_s": health["last_outage_s"],
        "frames_shown_during": during.frames_shown - before.frames_shown,
        "frames_dropped": after.frames_dropped - before.frames_dropped,
        "reconnects": health["reconnects"],
    }


def test_a_broker_outage_drops_no_frame_and_the_device_comes_back(
    tmp_path: Path, broker: Mosquitto, make_device: DeviceFactory, frozen_startup: None
) -> None:
    broker_outage(tmp_path, broker, make_device, seconds=3.0, frame_ms=500)


@pytest.mark.slow
def test_a_thirty_second_broker_outage(
    tmp_path: Path,
    broker: Mosquitto,
    make_device: DeviceFactory,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    frozen_startup: None,
) -> None:
    """The issue's figure: 30 s without a broker, default backoff (reconnect within 10 s of its return)."""
    if "slow" not in str(request.config.getoption("markexpr")):
        pytest.skip("a 30 s outage: run with `pytest -m slow tests/test_mqtt.py`")
    defaults = {"backoff_initial": 1.0, "backoff_max": 10.0, "keepalive": 20}
    figures = broker_outage(tmp_path, broker, make_device, seconds=30.0, frame_ms=250, **defaults)
    with capsys.disabled():
        print(f"\n30 s broker outage: {figures}")


def test_a_device_that_dies_is_offline_by_its_last_will(tmp_path: Path, broker: Mosquitto) -> None:
    """`loop sim` with a config file: SIGKILL leaves the Last Will; SIGTERM says offline itself."""
    config_file = tmp_path / "loop.toml"
    config_file.write_text(f'[mqtt]\nurl = "{broker.url}"\n')
    data = tmp_path / "data"
    from loopapp.integrations.identity import device_id

    availability = f"loop/{device_id(data)}/availability"
    command = [sys.executable, "-m", "loopapp", "sim", "--headless", "--port", "0", "--data", str(data),
               "--config", str(config_file)]  # fmt: skip
    with HomeAssistant(broker.port) as ha:
        for how in (signal.SIGKILL, signal.SIGTERM):
            ha.forget()
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                ha.wait_for(availability, "online", timeout=60)
                proc.send_signal(how)
                ha.wait_for(availability, "offline", timeout=30)
                _, err = proc.communicate(timeout=30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate(timeout=30)
            if how == signal.SIGTERM:
                assert proc.returncode == 0, err.decode(errors="replace")
    with HomeAssistant(broker.port) as late:  # what a Home Assistant starting now sees
        assert late.wait_for(availability) == b"offline"


# --- config and doctor ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        '[mqtt]\nurl = "http://broker:1883"\n',
        '[mqtt]\nurl = "mqtt://"\n',
        '[mqtt]\nurl = "mqtt://broker:99999"\n',
        '[mqtt]\nurl = "mqtt://broker"\ntopic = "loop/#"\n',
        '[mqtt]\nurl = "mqtt://broker"\ndiscovery_prefix = ""\n',
        "[mqtt]\nimage_interval = -1\n",
        "[mqtt]\nimage_interval = 0.2\n",
        "[mqtt]\nport = 1883\n",
        '[mdns]\ninterfaces = "eth0"\n',
    ],
)
def test_bad_mqtt_settings_are_one_sentence(tmp_path: Path, body: str) -> None:
    path = tmp_path / "loop.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).endswith(".") and "\n" not in str(err.value)


def test_mqtt_settings_are_read(tmp_path: Path) -> None:
    path = tmp_path / "loop.toml"
    path.write_text('[mqtt]\nurl = "mqtts://broker.lan"\nusername = "u"\npassword = "p"\ntopic = "desk/loop"\n'
                    '[mdns]\nenabled = false\ninterfaces = ["192.168.1.5"]\n')  # fmt: skip
    config = load_config(path)
    assert config.mqtt == MqttConfig(url="mqtts://broker.lan", username="u", password="p", topic="desk/loop")
    assert config.mdns.enabled is False and config.mdns.interfaces == ("192.168.1.5",)


def test_doctor_checks_the_broker(tmp_path: Path, broker: Mosquitto) -> None:
    from loopapp.doctor import check_mqtt

    assert check_mqtt(MqttConfig()).ok  # not configured is fine
    good = check_mqtt(MqttConfig(url=broker.url))
    assert good.ok and broker.url in good.detail
    broker.kill()
    down = check_mqtt(MqttConfig(url=broker.url))
    assert not down.ok and "refused" in down.detail and down.fix is not None and "[mqtt] url" in down.fix


def test_a_configured_but_unreachable_broker_never_blocks_start_or_stop(
    tmp_path: Path, make_device: DeviceFactory
) -> None:
    from tests.mosquitto import free_port

    device = make_device(mqtt_config(tmp_path, f"mqtt://127.0.0.1:{free_port()}"))
    add_solid_item(device.library, "red", [RED, RED])
    wait_for(lambda: "refused" in str(mqtt_health(device)["last_error"]), 15, "the refusal reported")
    wait_for(lambda: close_to(panel_colour(device), RED), 10, "red on the panel")

    def detail() -> str:
        return str(next(c for c in device.health()["components"] if c["name"] == "mqtt")["detail"])

    wait_for(lambda: "not connected" in detail(), 10, "the component to say it is not connected")
    assert "refused" in detail()
    faults = [f for f in device.health()["faults"] if f["component"] == "mqtt"]
    assert len(faults) == 1  # told once, not at every retry
    assert "MQTT: NOT CONNECTED" in format_health(device.health(), device.data_dir)


# --- the picture's pace, on the bridge's own clock -----------------------------------------


class ModelPlayer:
    """A player reduced to what the bridge reads: a status and a change counter (a model, not a mock)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.version = 0
        self.state: dict[str, Any] = {
            "state": "playing",
            "current": None,
            "current_name": None,
            "brightness": 100,
        }

    def change(self, **fields: Any) -> None:
        with self._cond:
            self.state.update(fields)
            self.version += 1
            self._cond.notify_all()

    def wait_for_change(self, since: int, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self.version != since, timeout)
            return self.version

    def status(self) -> Any:
        state = dict(self.state)
        return SimpleNamespace(to_dict=lambda: state)

    def __getattr__(self, name: str) -> Any:  # the controls: not used by these tests
        raise AssertionError(f"the bridge called {name}")


class ModelLibrary:
    generation = 1

    def playlist(self) -> list[Any]:
        return []


def test_the_picture_goes_out_at_most_once_an_interval_and_only_when_the_panel_changed(
    tmp_path: Path, broker: Mosquitto
) -> None:
    from libloop.clock import FakeClock
    from loopapp.integrations.broker import Broker
    from loopapp.integrations.hass import DeviceInfo, Topics
    from loopapp.integrations.mqtt import MqttBridge, Panel

    clock = FakeClock(100.0, auto_advance=False)
    player = ModelPlayer()
    glass = {"changes": 0, "colour": RED}
    panel = Panel(
        image=lambda: Image.new("RGB", (240, 320), glass["colour"]), changes=lambda: glass["changes"]
    )
    topics = Topics(base="loop/pace", prefix=PREFIX, device_id="pace")
    bridge = MqttBridge(
        Broker.parse(broker.url),
        topics,
        lambda: DeviceInfo("pace", "LOOP pace", "model", "0", ""),
        player=player,
        library=ModelLibrary(),
        panel=panel,
        clock=clock,
        image_interval=1.0,
        **FAST,
    )
    brightness = 50

    def round_trip() -> None:
        """Make the bridge publish a state and see it arrive: any picture of that round came first."""
        nonlocal brightness
        brightness += 1
        player.change(brightness=brightness)
        ha.wait_for(topics.brightness_state, str(brightness))

    with HomeAssistant(broker.port) as ha:
        bridge.start()
        try:
            ha.wait(lambda: ha.counts.get(topics.screen, 0) == 1, 15, "the first picture")
            glass.update(changes=1, colour=BLUE)  # the panel changed, but the second has not passed
            round_trip()
            round_trip()
            assert ha.counts[topics.screen] == 1
            clock.advance(1.0)
            round_trip()
            ha.wait(lambda: ha.counts.get(topics.screen, 0) == 2, 15, "the second picture")
            picture = Image.open(io.BytesIO(ha.latest[topics.screen])).convert("RGB")
            assert picture.getpixel((0, 0)) == BLUE
            clock.advance(5.0)  # time passes, the panel does not change: nothing to send
            round_trip()
            round_trip()
            glass.update(changes=2)  # bytes went out (a periodic refresh) but the glass is the same
            clock.advance(5.0)
            round_trip()
            round_trip()
            assert ha.counts[topics.screen] == 2
            assert bridge.snapshot()["images"] == 2
        finally:
            bridge.stop()
