"""The Home Assistant model without a broker: options, discovery configs, states, commands, identity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopapp.integrations.hass import (
    NONE,
    Command,
    CommandError,
    DeviceInfo,
    Topics,
    discovery,
    item_options,
    parse_command,
    states,
)
from loopapp.integrations.identity import ID_FILE, ID_PATTERN, derived_id, device_id

TOPICS = Topics(base="loop/dev1", prefix="homeassistant", device_id="dev1")
DEVICE = DeviceInfo("dev1", "LOOP desk", "ILI9341 240x320", "0.1.0", "http://desk.local:8080")

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789_-", min_size=12, max_size=12)
names = st.sampled_from(["cat.gif", "Cat.gif", "None", "none", "dog [x]", "a", " "]) | st.text(
    min_size=1, max_size=30
)


@given(st.lists(st.tuples(ids, names), unique_by=lambda pair: pair[0], max_size=30))
def test_options_are_distinct_and_map_back_to_every_item(items: list[tuple[str, str]]) -> None:
    options = item_options(items)
    assert sorted(options.values()) == sorted(item_id for item_id, _ in items)  # one option per item
    assert list(options.values()) == [item_id for item_id, _ in items]  # in play order
    counts = {name: sum(n == name for _, n in items) for _, name in items}
    for label, item_id in options.items():
        name = dict(items)[item_id]
        assert label.startswith(name)
        if counts[name] == 1 and name.strip().lower() != "none":
            assert label == name  # a unique name is shown as it is
        else:
            assert item_id in label  # a repeated one carries its id
        assert label.strip().lower() != "none"


def test_discovery_configs_name_their_topics_and_share_the_device() -> None:
    configs = discovery(TOPICS, DEVICE, ["a", "b"])
    assert len(configs) == 7
    parsed = {topic: json.loads(body) for topic, body in configs.items()}
    for topic, config in parsed.items():
        component, node, obj = topic.split("/")[1:4]
        assert topic == f"homeassistant/{component}/dev1/{obj}/config" and node == "dev1"
        assert config["unique_id"] == f"dev1_{obj}"
        assert config["device"]["identifiers"] == ["dev1"]
        assert config["device"]["configuration_url"] == "http://desk.local:8080"
        assert config["availability_topic"] == "loop/dev1/availability"
        for key in ("command_topic", "state_topic", "brightness_command_topic", "image_topic"):
            if key in config:
                assert config[key].startswith("loop/dev1/")
    assert parsed["homeassistant/select/dev1/item/config"]["options"] == ["a", "b"]
    assert set(TOPICS.commands()) == {
        c[k] for c in parsed.values() for k in ("command_topic", "brightness_command_topic") if k in c
    }
    without_image = discovery(TOPICS, DEVICE, [], image=False)
    assert (
        without_image["homeassistant/image/dev1/screen/config"] == ""
    )  # an empty retained config deletes it


def test_states_of_each_player_state() -> None:
    options = {"a": "id-a"}
    playing = states(
        TOPICS, {"state": "playing", "current": "id-a", "current_name": "a", "brightness": 70}, options
    )
    assert playing[TOPICS.panel_state] == "ON" and playing[TOPICS.brightness_state] == "70"
    assert playing[TOPICS.item_state] == "a" and playing[TOPICS.current_state] == "a"
    assert playing[TOPICS.pause_state] == "OFF"
    assert json.loads(playing[TOPICS.current_attributes]) == {"id": "id-a", "state": "playing"}
    paused = states(
        TOPICS, {"state": "paused", "current": "id-a", "current_name": "a", "brightness": 70}, options
    )
    assert paused[TOPICS.pause_state] == "ON"
    asleep = states(
        TOPICS, {"state": "sleeping", "current": "id-a", "current_name": "a", "brightness": 70}, options
    )
    assert asleep[TOPICS.panel_state] == "OFF"
    empty = states(
        TOPICS, {"state": "empty", "current": None, "current_name": None, "brightness": 100}, options
    )
    assert empty[TOPICS.item_state] == NONE and empty[TOPICS.current_state] == NONE


@pytest.mark.parametrize(
    ("topic", "payload", "expected"),
    [
        (TOPICS.panel_set, b"ON", Command("wake")),
        (TOPICS.panel_set, b"off", Command("sleep")),
        (TOPICS.pause_set, b"ON", Command("pause")),
        (TOPICS.pause_set, b"OFF", Command("resume")),
        (TOPICS.brightness_set, b"42", Command("brightness", 42)),
        (TOPICS.brightness_set, b"42.6", Command("brightness", 43)),
        (TOPICS.brightness_set, b"0", Command("brightness", 0)),
        (TOPICS.item_set, b"cat.gif", Command("show", "id-cat")),
        (TOPICS.item_set, b"id-cat", Command("show", "id-cat")),
        (TOPICS.next_press, b"PRESS", Command("next")),
        (TOPICS.previous_press, b"", Command("previous")),
    ],
)
def test_commands(topic: str, payload: bytes, expected: Command) -> None:
    assert parse_command(TOPICS, topic, payload, {"cat.gif": "id-cat"}) == expected


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        (TOPICS.panel_set, b"maybe"),
        (TOPICS.brightness_set, b"101"),
        (TOPICS.brightness_set, b"-1"),
        (TOPICS.brightness_set, b"nan"),
        (TOPICS.brightness_set, b"bright"),
        (TOPICS.item_set, b"dog.gif"),
        (TOPICS.panel_set, b"\xff\xfe"),
        ("loop/dev1/elsewhere", b"ON"),
    ],
)
def test_nonsense_is_a_command_error(topic: str, payload: bytes) -> None:
    with pytest.raises(CommandError):
        parse_command(TOPICS, topic, payload, {"cat.gif": "id-cat"})


@given(st.binary(max_size=64), st.sampled_from(TOPICS.commands()))
def test_any_payload_is_a_command_or_one_clear_error(payload: bytes, topic: str) -> None:
    try:
        command = parse_command(TOPICS, topic, payload, {"cat.gif": "id-cat"})
    except CommandError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert command.action in (
            "wake",
            "sleep",
            "pause",
            "resume",
            "brightness",
            "show",
            "next",
            "previous",
        )
        if command.action == "brightness":
            assert isinstance(command.value, int) and 0 <= command.value <= 100


# --- the device's identity ------------------------------------------------------------------


def test_the_id_is_created_once_and_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = device_id(data)
    assert ID_PATTERN.fullmatch(first) and first.startswith("loop-")
    assert device_id(data) == first
    assert (data / ID_FILE).read_text().strip() == first
    assert [p.name for p in data.iterdir()] == [ID_FILE]  # no temporary file left behind
    assert device_id(tmp_path / "other") != first  # another data directory is another device


def test_a_damaged_id_file_is_replaced_and_an_unwritable_directory_still_gets_its_id(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / ID_FILE).write_bytes(b"\xff not an id")
    replaced = device_id(data)
    assert ID_PATTERN.fullmatch(replaced) and device_id(data) == replaced
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    unwritable = blocker / "data"  # cannot be created, even by root: as a full or read-only card
    expected = derived_id(unwritable)
    assert device_id(unwritable) == expected  # the device starts, under the id it will store later
    assert device_id(unwritable) == expected
