"""Device configuration: one TOML file, every key optional, defaults for the common module.

```toml
data_dir = "/var/lib/loop"

[display]             # a fresh device's settings: once changed from the dashboard, the API or
                      # `loop settings`, the stored values win (see libloop/settings)
rotation = 0          # 0, 90, 180 or 270
bgr = true            # the module's colour filter order (most ILI9341 modules are BGR)
invert = false
fit = "contain"       # contain, cover or stretch
dither = true
background = "#000000"

[wiring]              # BCM GPIO numbers; SPI0 CE0 by default
spi_bus = 0
spi_device = 0
speed_hz = 64000000
spi_mode = 0
dc = 24
reset = 25
backlight = 18
backlight_pwm = "auto"  # auto: dim through hardware PWM when dtoverlay=pwm is set, else on/off;
                        # "pwm": PWM or fail; "pin": on/off only
gpio_chip = ""        # label of the header's gpiochip; empty: detect

[web]
host = "0.0.0.0"
port = 8080
max_upload_mb = 200
hosts = []            # more names the dashboard answers to, e.g. ["loop.example.net"]; besides
                      # these it answers to IP addresses, localhost, this machine's hostname
                      # and <hostname>.local; any other Host header gets 421 (DNS rebinding
                      # guard). "*" answers to every name (only behind a proxy you trust).

[player]
refresh_seconds = 5.0 # the quickest one refresh sweep over the panel may be (it goes out a band
                      # at a time in idle bus time, within a tenth of the content's bytes)
night = ""            # e.g. "23:00-07:00": panel asleep in between, every day (a fresh device's
                      # night setting; weekdays and dimming are set live, `loop settings night`)
still_seconds = 10.0  # how long a still picture stays on (a fresh device's setting)
isolation = "process" # "process": the player and the display run in a process of their own,
                      # so nothing else on the device can delay a frame; "thread": in the web
                      # app's process (the previous design; for comparison and debugging)
realtime_priority = 10  # SCHED_FIFO priority of the player process, 1-99 (0: none); needs
                        # LimitRTPRIO= or CAP_SYS_NICE, which `loop install-service` grants
web_nice = 5          # without real-time scheduling: how much lower the web app's request
                      # threads run (a nice increment, 0-19)

[mqtt]                # Home Assistant over MQTT; off while url is empty
url = ""              # "mqtt://broker.lan:1883", or "mqtts://broker.lan:8883" (TLS, system CA store)
username = ""
password = ""
discovery_prefix = "homeassistant"
topic = ""            # empty: "loop/<device id>" (the id is kept in DATA/device-id)
image_interval = 1.0  # seconds between pictures of the panel at most (1 or more); 0: no image entity

[mdns]                # the dashboard advertised as "LOOP <hostname>" (_http._tcp) on the LAN
enabled = true
interfaces = []       # addresses to advertise on; empty: those the dashboard listens on

[storage]
reserve_mb = 200      # uploads are refused when they would leave less than this free

[sim]                 # `loop sim` only
faults = []           # fault drills on the simulated bus from start-up (also `loop sim --fault`):
                      # "pi5-dma-timeout", the Pi 5's failure of transfers over 64 bytes (ETIMEDOUT)
```
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from libloop.errors import LoopError

if TYPE_CHECKING:
    from libloop.settings import DeviceSettings


class ConfigError(LoopError):
    """The configuration file is unreadable or has a bad value."""

    code = "config_error"


def default_data_dir() -> Path:
    """The per-user data directory.

    ``$LOOP_DATA`` if set, else ``$XDG_DATA_HOME/loop``, else ``~/.local/share/loop``.
    """
    if env := os.environ.get("LOOP_DATA"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "loop"


def default_sim_data_dir() -> Path:
    """The simulator's data directory, apart from a real device's (``loop sim`` without --data).

    ``$LOOP_DATA`` if set, else ``$XDG_DATA_HOME/loop-sim``, else ``~/.local/share/loop-sim``.
    """
    if env := os.environ.get("LOOP_DATA"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "loop-sim"


@dataclass(frozen=True)
class DisplayConfig:
    rotation: int = 0
    bgr: bool = True
    invert: bool = False
    fit: str = "contain"
    dither: bool = True
    background: tuple[int, int, int] = (0, 0, 0)


@dataclass(frozen=True)
class WiringConfig:
    spi_bus: int = 0
    spi_device: int = 0
    speed_hz: int = 64_000_000
    spi_mode: int = 0
    dc: int = 24
    reset: int = 25
    backlight: int = 18
    backlight_pwm: str = "auto"
    gpio_chip: str = ""


@dataclass(frozen=True)
class WebConfig:
    host: str = "0.0.0.0"
    port: int = 8080
    max_upload_mb: int = 200
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlayerConfig:
    refresh_seconds: float = 5.0
    night: str = ""
    still_seconds: float = 10.0
    isolation: str = "process"
    realtime_priority: int = 10
    web_nice: int = 5


@dataclass(frozen=True)
class MqttConfig:
    url: str = ""
    username: str = ""
    password: str = ""
    discovery_prefix: str = "homeassistant"
    topic: str = ""
    image_interval: float = 1.0


@dataclass(frozen=True)
class MdnsConfig:
    enabled: bool = True
    interfaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class StorageConfig:
    reserve_mb: int = 200


#: The simulated bus's fault drills (``[sim] faults``, ``loop sim --fault``).
SIM_FAULTS = ("pi5-dma-timeout",)


@dataclass(frozen=True)
class SimConfig:
    faults: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    data_dir: Path = field(default_factory=default_data_dir)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    wiring: WiringConfig = field(default_factory=WiringConfig)
    web: WebConfig = field(default_factory=WebConfig)
    player: PlayerConfig = field(default_factory=PlayerConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    mdns: MdnsConfig = field(default_factory=MdnsConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    sim: SimConfig = field(default_factory=SimConfig)

    def with_data_dir(self, data_dir: Path | None) -> Config:
        return self if data_dir is None else replace(self, data_dir=data_dir)


_SECTIONS: dict[str, type[Any]] = {
    "display": DisplayConfig,
    "wiring": WiringConfig,
    "web": WebConfig,
    "player": PlayerConfig,
    "mqtt": MqttConfig,
    "mdns": MdnsConfig,
    "storage": StorageConfig,
    "sim": SimConfig,
}


def _parse_colour(value: object, where: str) -> tuple[int, int, int]:
    if isinstance(value, str) and re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16))
    raise ConfigError(f'{where} must be a colour like "#000000", not {value!r}.')


_HOST_NAME = re.compile(r"\*|[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62}))*\.?")


def _parse_names(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f'{where} must be a list of host names like ["loop.example.net"], not {value!r}.')
    for name in value:
        if not _HOST_NAME.fullmatch(name):
            raise ConfigError(f"{where}: {name!r} is not a host name (letters, digits, dashes and dots).")
    return tuple(value)


def _section(cls: type[Any], raw: object, name: str, path: Path) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] in {path} must be a table of settings.")
    defaults = cls()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if not hasattr(defaults, key):
            known = ", ".join(sorted(defaults.__dataclass_fields__))
            raise ConfigError(f"Unknown setting {name}.{key} in {path}; known settings are: {known}.")
        expected = type(getattr(defaults, key))
        if key == "background":
            value = _parse_colour(value, f"{name}.{key} in {path}")
        elif key == "hosts":
            value = _parse_names(value, f"{name}.{key} in {path}")
        elif expected is tuple:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{name}.{key} in {path} must be a list of strings.")
            value = tuple(value)
        elif expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(
                f"{name}.{key} in {path} must be a {expected.__name__}, not {type(value).__name__}."
            )
        values[key] = value
    return replace(defaults, **values)


def validate(config: Config) -> Config:
    """Check values that have a fixed range; raise ConfigError with the fix."""
    if config.display.rotation not in (0, 90, 180, 270):
        raise ConfigError(f"display.rotation must be 0, 90, 180 or 270, not {config.display.rotation}.")
    if config.display.fit not in ("contain", "cover", "stretch"):
        raise ConfigError(f"display.fit must be contain, cover or stretch, not {config.display.fit!r}.")
    if not 0 <= config.web.port <= 65535:
        raise ConfigError(f"web.port must be between 0 and 65535, not {config.web.port}.")
    if not 1_000_000 <= config.wiring.speed_hz <= 125_000_000:
        raise ConfigError(f"wiring.speed_hz must be between 1 MHz and 125 MHz, not {config.wiring.speed_hz}.")
    if config.player.isolation not in ("process", "thread"):
        raise ConfigError(f'player.isolation must be "process" or "thread", not {config.player.isolation!r}.')
    if not 0 <= config.player.realtime_priority <= 99:
        raise ConfigError(
            f"player.realtime_priority must be from 0 (none) to 99, not {config.player.realtime_priority}."
        )
    if not 0 <= config.player.web_nice <= 19:
        raise ConfigError(f"player.web_nice must be from 0 to 19, not {config.player.web_nice}.")
    if config.wiring.backlight_pwm not in ("auto", "pwm", "pin"):
        raise ConfigError(
            f'wiring.backlight_pwm must be "auto", "pwm" or "pin", not {config.wiring.backlight_pwm!r}.'
        )
    if config.storage.reserve_mb < 0:
        raise ConfigError(f"storage.reserve_mb must be 0 or more, not {config.storage.reserve_mb}.")
    if config.player.night and not re.fullmatch(
        r"([01]?\d|2[0-3]):[0-5]\d-([01]?\d|2[0-3]):[0-5]\d", config.player.night
    ):
        raise ConfigError(f'player.night must look like "23:00-07:00", not {config.player.night!r}.')
    if not 0.5 <= config.player.still_seconds <= 86400:
        raise ConfigError(
            f"player.still_seconds must be from 0.5 to 86400, not {config.player.still_seconds:g}."
        )
    for fault in config.sim.faults:
        if fault not in SIM_FAULTS:
            raise ConfigError(f"sim.faults: {fault!r} is not a fault drill; known: {', '.join(SIM_FAULTS)}.")
    _validate_mqtt(config.mqtt)
    return config


def _validate_mqtt(mqtt: MqttConfig) -> None:
    if mqtt.url:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(mqtt.url)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is None or parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(
                f'mqtt.url must look like "mqtt://broker.lan:1883" or "mqtts://broker.lan:8883", not {mqtt.url!r}.'
            )
        if port == 0:
            raise ConfigError("mqtt.url has port 0; give the broker's port (usually 1883, or 8883 for TLS).")
    for key in ("discovery_prefix", "topic"):
        value = getattr(mqtt, key)
        if any(c in value for c in "+#\0") or value.startswith("/") or value.endswith("/"):
            raise ConfigError(
                f"mqtt.{key} must be an MQTT topic without wildcards or a leading or trailing '/', not {value!r}."
            )
    if not mqtt.discovery_prefix:
        raise ConfigError('mqtt.discovery_prefix must not be empty (Home Assistant uses "homeassistant").')
    if mqtt.image_interval != 0 and not mqtt.image_interval >= 1.0:
        raise ConfigError(
            f"mqtt.image_interval must be 0 (no picture) or at least 1 second, not {mqtt.image_interval}."
        )


def device_settings(config: Config) -> DeviceSettings:
    """A fresh device's live settings, from the config file (the stored ones win once set)."""
    from libloop.settings import DeviceSettings, Night

    night = None
    if config.player.night:
        start, end = (f"{int(h):02d}:{m}" for h, m in (t.split(":") for t in config.player.night.split("-")))
        if start != end:
            night = Night(start=start, end=end)
    r, g, b = config.display.background
    return DeviceSettings(
        rotation=config.display.rotation,
        fit=config.display.fit,
        dither=config.display.dither,
        background=f"#{r:02x}{g:02x}{b:02x}",
        still_seconds=config.player.still_seconds,
        night=night,
        # A rotation chosen in the config file is an answer to the first-run question.
        orientation_asked=config.display.rotation != 0,
    )


def load_config(
    path: Path | None = None, *, data_dir: Path | None = None, fallback_data_dir: Path | None = None
) -> Config:
    """Read a config file (or the defaults when ``path`` is None); ``data_dir`` overrides the file's.

    ``fallback_data_dir`` replaces ``default_data_dir()`` when neither gives one (``loop sim``).
    """
    if path is None:
        base = Config() if fallback_data_dir is None else Config(data_dir=fallback_data_dir)
        return validate(base.with_data_dir(data_dir))
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"The config file {path} does not exist; check the path given to --config."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read the config file {path}: {exc}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"The config file {path} is not valid TOML: {exc}.") from None
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "data_dir":
            if not isinstance(value, str):
                raise ConfigError(f"data_dir in {path} must be a path string.")
            kwargs["data_dir"] = Path(value).expanduser()
        elif key in _SECTIONS:
            kwargs[key] = _section(_SECTIONS[key], value, key, path)
        else:
            raise ConfigError(f"Unknown setting {key!r} in {path}; known: data_dir, {', '.join(_SECTIONS)}.")
    if fallback_data_dir is not None:
        kwargs.setdefault("data_dir", fallback_data_dir)
    return validate(Config(**kwargs).with_data_dir(data_dir))
