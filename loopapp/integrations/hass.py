"""Home Assistant's side of the MQTT bridge, without I/O: topics, discovery configs, states, commands.

This module only turns the device's state into (topic, payload) pairs and command messages
into player actions; :mod:`loopapp.integrations.mqtt` moves them over the wire. The entities
follow Home Assistant's MQTT discovery (``<prefix>/<component>/<device id>/<object>/config``,
retained), all tied to one device and to one availability topic:

========  ==========  ==========================================================
component object      what
========  ==========  ==========================================================
light     panel       on = awake, off = asleep; brightness 0-100 = backlight %
select    item        the playlist by name; choosing one shows it
button    next        the next item
button    previous    the previous item
switch    pause       on = paused
sensor    current     the current item's name (attributes: its id, player state)
image     screen      a PNG of what the panel shows
========  ==========  ==========================================================

Item names can repeat, so the select's options are the names, with the item id added in
brackets to every name that is not unique (and to a name Home Assistant would read as "no
option", ``None``). The options follow the library: they are recomputed, and the select's
config republished, whenever the library changes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ONLINE, OFFLINE = "online", "offline"
ON, OFF = "ON", "OFF"
#: What Home Assistant reads as "no value" on a select's or sensor's state topic.
NONE = "None"


@dataclass(frozen=True)
class Topics:
    """Every topic of one device: ``base`` is ``[mqtt] topic`` (default ``loop/<device id>``)."""

    base: str
    prefix: str
    device_id: str

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def panel_state(self) -> str:
        return f"{self.base}/panel/state"

    @property
    def panel_set(self) -> str:
        return f"{self.base}/panel/set"

    @property
    def brightness_state(self) -> str:
        return f"{self.base}/panel/brightness"

    @property
    def brightness_set(self) -> str:
        return f"{self.base}/panel/brightness/set"

    @property
    def item_state(self) -> str:
        return f"{self.base}/item/state"

    @property
    def item_set(self) -> str:
        return f"{self.base}/item/set"

    @property
    def next_press(self) -> str:
        return f"{self.base}/next/press"

    @property
    def previous_press(self) -> str:
        return f"{self.base}/previous/press"

    @property
    def pause_state(self) -> str:
        return f"{self.base}/pause/state"

    @property
    def pause_set(self) -> str:
        return f"{self.base}/pause/set"

    @property
    def current_state(self) -> str:
        return f"{self.base}/current/state"

    @property
    def current_attributes(self) -> str:
        return f"{self.base}/current/attributes"

    @property
    def screen(self) -> str:
        return f"{self.base}/screen"

    @property
    def hass_status(self) -> str:
        """Home Assistant's birth and will topic: ``online`` there means "send me everything again"."""
        return f"{self.prefix}/status"

    def config(self, component: str, obj: str) -> str:
        """The discovery config topic of one entity."""
        return f"{self.prefix}/{component}/{self.device_id}/{obj}/config"

    def commands(self) -> list[str]:
        """The topics the device subscribes to, to be told what to do."""
        return [
            self.panel_set,
            self.brightness_set,
            self.item_set,
            self.next_press,
            self.previous_press,
            self.pause_set,
        ]


@dataclass(frozen=True)
class DeviceInfo:
    """The device block every discovery config carries."""

    device_id: str
    name: str
    model: str
    sw_version: str
    url: str

    def to_dict(self) -> dict[str, Any]:
        block: dict[str, Any] = {
            "identifiers": [self.device_id],
            "name": self.name,
            "manufacturer": "LOOP",
            "model": self.model,
            "sw_version": self.sw_version,
        }
        if self.url:
            block["configuration_url"] = self.url
        return block


def item_options(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Select options for ``(id, name)`` pairs in play order: option -> item id, all distinct."""
    pairs = list(items)
    counts = Counter(name for _, name in pairs)
    options: dict[str, str] = {}
    for item_id, name in pairs:
        label = name if counts[name] == 1 and name.strip().lower() != NONE.lower() else f"{name} [{item_id}]"
        while label in options:  # an item literally named like another's disambiguated label
            label = f"{label} [{item_id}]"
        options[label] = item_id
    return options


def discovery(
    topics: Topics, device: DeviceInfo, options: Iterable[str], *, image: bool = True
) -> dict[str, str]:
    """Every discovery config as ``topic -> JSON``; the image's is empty (deleted) when ``image`` is off."""
    common = {
        "availability_topic": topics.availability,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device": device.to_dict(),
        "origin": {"name": "LOOP", "sw_version": device.sw_version},
        "qos": 1,
    }
    uid = device.device_id

    def entity(obj: str, name: str, icon: str, **fields: Any) -> dict[str, Any]:
        return {"name": name, "unique_id": f"{uid}_{obj}", "icon": icon, **fields, **common}

    configs: dict[str, dict[str, Any] | None] = {
        topics.config("light", "panel"): entity(
            "panel",
            "Panel",
            "mdi:monitor",
            command_topic=topics.panel_set,
            state_topic=topics.panel_state,
            payload_on=ON,
            payload_off=OFF,
            brightness_command_topic=topics.brightness_set,
            brightness_state_topic=topics.brightness_state,
            brightness_scale=100,
        ),
        topics.config("select", "item"): entity(
            "item",
            "Item",
            "mdi:play-box-multiple",
            command_topic=topics.item_set,
            state_topic=topics.item_state,
            options=list(options),
        ),
        topics.config("button", "next"): entity(
            "next", "Next", "mdi:skip-next", command_topic=topics.next_press, payload_press="PRESS"
        ),
        topics.config("button", "previous"): entity(
            "previous",
            "Previous",
            "mdi:skip-previous",
            command_topic=topics.previous_press,
            payload_press="PRESS",
        ),
        topics.config("switch", "pause"): entity(
            "pause",
            "Pause",
            "mdi:pause",
            command_topic=topics.pause_set,
            state_topic=topics.pause_state,
            payload_on=ON,
            payload_off=OFF,
        ),
        topics.config("sensor", "current"): entity(
            "current",
            "Current item",
            "mdi:filmstrip",
            state_topic=topics.current_state,
            json_attributes_topic=topics.current_attributes,
        ),
        topics.config("image", "screen"): entity(
            "screen", "Screen", "mdi:monitor-screenshot", image_topic=topics.screen, content_type="image/png"
        )
        if image
        else None,
    }
    return {
        topic: "" if body is None else json.dumps(body, sort_keys=True) for topic, body in configs.items()
    }


def states(topics: Topics, status: Mapping[str, Any], options: Mapping[str, str]) -> dict[str, str]:
    """The state topics' payloads for a player status (``PlayerStatus.to_dict()``)."""
    state = str(status.get("state", ""))
    current = status.get("current")
    name = status.get("current_name")
    option = next((label for label, item_id in options.items() if item_id == current), None)
    return {
        topics.panel_state: OFF if state == "sleeping" else ON,
        topics.brightness_state: str(int(status.get("brightness", 100))),
        topics.pause_state: ON if state == "paused" else OFF,
        topics.item_state: option if option is not None else NONE,
        topics.current_state: str(name) if current is not None and name is not None else NONE,
        topics.current_attributes: json.dumps({"id": current, "state": state}, sort_keys=True),
    }


@dataclass(frozen=True)
class Command:
    """A player action asked for over MQTT: the action name of ``POST /api/player`` and its value."""

    action: str
    value: int | str | None = None


class CommandError(ValueError):
    """A message on a command topic that means nothing; ``str()`` says why, for the health page."""


def parse_command(topics: Topics, topic: str, payload: bytes, options: Mapping[str, str]) -> Command:
    """What a message on one of :meth:`Topics.commands` asks for.

    Raises:
        CommandError: an unknown topic, a payload that is not what the entity sends, or an
            option that is not (or no longer) in the playlist.
    """
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CommandError(f"the payload on {topic} is not UTF-8 text") from None
    if topic in (topics.panel_set, topics.pause_set):
        word = text.upper()
        if word not in (ON, OFF):
            raise CommandError(f"{topic} takes {ON} or {OFF}, not {text[:40]!r}")
        if topic == topics.panel_set:
            return Command("wake" if word == ON else "sleep")
        return Command("pause" if word == ON else "resume")
    if topic == topics.brightness_set:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not 0 <= value <= 100:
            raise CommandError(f"{topic} takes a brightness from 0 to 100, not {text[:40]!r}")
        return Command("brightness", round(value))
    if topic == topics.item_set:
        item_id = options.get(text)
        if item_id is None and text in options.values():
            item_id = text  # an item id works too (handy in automations)
        if item_id is None:
            raise CommandError(f"{text[:80]!r} is not an item of the playlist")
        return Command("show", item_id)
    if topic == topics.next_press:
        return Command("next")
    if topic == topics.previous_press:
        return Command("previous")
    raise CommandError(f"{topic} is not a command topic of this device")
