"""The MQTT bridge: Home Assistant drives the device, and sees what any face changed.

A supervised, non-essential component with three threads of its own, so a broker that is
down or slow never delays a frame or a web request (neither the player nor the web app ever
calls into it):

- the **connector** connects with paho-mqtt (``connect`` bounded by a socket timeout, then
  paho's network loop on its thread, ``loop_start``), waits for the session to end and tries
  again with exponential backoff; the Last Will is ``offline`` on ``<topic>/availability``;
- the **publisher** waits on the player's change counter (``Player.wait_for_change``) and
  the library's generation, and publishes only the retained states, discovery configs and
  select options that differ from what the broker holds (coalesced: many changes between
  two rounds make one publish); after every (re)connect it publishes everything again. The
  panel's picture goes out at most every ``image_interval`` seconds, only when the panel
  changed, and only when the previous picture was acknowledged (a slow broker gets fewer);
- the **commands** worker runs what arrives on the command topics (paho's thread only
  queues it), through the same player calls as ``POST /api/player``.

Publishing never waits on the broker: paho queues the packet and its own thread writes it.
The connection's story (connected since when, the last error, reconnects) is in the health
report's ``mqtt`` section; an outage and the recovery from it are recorded as faults.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from libloop.errors import LoopError
from libloop.health import Heartbeat, Liveness
from libloop.player.ports import PlayItem
from loopapp.integrations import hass
from loopapp.integrations.broker import Broker, describe, new_client, require_paho

if TYPE_CHECKING:
    from paho.mqtt.client import Client, MQTTMessage, MQTTMessageInfo
    from PIL import Image

    from libloop.clock import Clock

log = logging.getLogger(__name__)

#: How long the publisher waits for a change before looking at the library and the panel.
POLL_S = 0.25
#: How often the device block (its dashboard URL) is looked at again.
DEVICE_RECHECK_S = 5.0
#: Commands waiting to run; more are dropped (a flood must not grow memory).
MAX_PENDING_COMMANDS = 64


class BridgePlayer(Protocol):
    """What the bridge uses of ``libloop.player.Player``."""

    def pause(self) -> Any: ...
    def resume(self) -> Any: ...
    def next(self) -> Any: ...
    def previous(self) -> Any: ...
    def show(self, item_id: str) -> Any: ...
    def set_brightness(self, percent: int) -> Any: ...
    def sleep(self) -> Any: ...
    def wake(self) -> Any: ...
    def status(self) -> Any: ...
    def wait_for_change(self, since: int, timeout: float) -> int: ...


class BridgeLibrary(Protocol):
    """What the bridge reads of ``libloop.index.Library``."""

    @property
    def generation(self) -> int: ...
    def playlist(self) -> Sequence[PlayItem]: ...


@dataclass(frozen=True)
class Panel:
    """The panel's picture: ``image()`` what it shows; ``changes()`` moves when that may have changed."""

    image: Callable[[], Image.Image | None]
    changes: Callable[[], int]


class MqttBridge:
    """The ``mqtt`` component; see the module docstring.

    Args:
        broker: where to connect.
        topics: the device's topics (``hass.Topics``).
        device: a callable giving the device block of the discovery configs (its URL may change).
        player, library, panel: what is mirrored and driven.
        clock: for the heartbeat and the outage figures.
        on_event: told, in one sentence, when the connection is lost and when it is back.
        image_interval: seconds between pictures at most; 0 turns the image entity off.
        backoff_initial, backoff_max: delays between connection attempts.
        keepalive: seconds between MQTT pings (a dead broker is noticed within 1.5 times that).
    """

    essential = False

    def __init__(
        self,
        broker: Broker,
        topics: hass.Topics,
        device: Callable[[], hass.DeviceInfo],
        *,
        player: BridgePlayer,
        library: BridgeLibrary,
        panel: Panel,
        clock: Clock,
        on_event: Callable[[str], object] | None = None,
        image_interval: float = 1.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 10.0,
        keepalive: int = 20,
        connect_timeout: float = 5.0,
    ) -> None:
        self.name = "mqtt"
        self.broker = broker
        self.topics = topics
        self._device = device
        self._player = player
        self._library = library
        self._panel = panel
        self._clock = clock
        self._on_event = on_event
        self.image_interval = image_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.keepalive = keepalive
        self.connect_timeout = connect_timeout
        self._heartbeat = Heartbeat(clock, stale_after=10.0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._client: Client | None = None
        self._session_over = threading.Event()
        self._republish = threading.Event()
        self._resend_states = threading.Event()
        self._commands: queue.Queue[tuple[str, bytes]] = queue.Queue(MAX_PENDING_COMMANDS)
        # What the broker holds (publisher thread only).
        self._sent: dict[str, str] = {}
        self._options: dict[str, str] = {}
        self._generation: int | None = None
        self._config_key: tuple[hass.DeviceInfo, tuple[str, ...], bool] | None = None
        self._device_info: hass.DeviceInfo | None = None
        self._device_at = float("-inf")
        self._image_changes: int | None = None
        self._image_digest = b""
        self._image_at = float("-inf")
        self._image_info: MQTTMessageInfo | None = None
        # The connection's story (under _lock).
        self._connected = False
        self._session_ok = False
        self._since = time.time()
        self._down_since: float | None = clock.monotonic()
        self._last_error: str | None = None
        self._told_error = False
        self._connects = 0
        self._last_outage_s: float | None = None
        self._counts = {"published": 0, "images": 0, "commands": 0, "rejected": 0}
        self._last_rejected: str | None = None

    # --- life cycle (the supervisor's Component protocol) --------------------------------

    def start(self) -> None:
        """Start the three threads; returns at once (the connection is made in the background)."""
        if any(t.is_alive() for t in self._threads):
            return
        require_paho()  # installed (MqttError says how if not)
        # Fresh events for every start: threads of an earlier start still ending keep theirs.
        self._stop, self._session_over = stop, over = threading.Event(), threading.Event()
        with self._lock:
            self._connected = self._session_ok = False
            self._down_since = self._clock.monotonic()
        self._heartbeat.reset()
        self._threads = [
            threading.Thread(target=self._connect_loop, args=(stop, over), name="mqtt-connect", daemon=True),
            threading.Thread(target=self._publish_loop, args=(stop,), name="mqtt-publish", daemon=True),
            threading.Thread(target=self._command_loop, args=(stop,), name="mqtt-commands", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _session_client(self) -> Client:
        """A new paho client for one session (paho keeps a socket pair per network thread it ran).

        The client id is the device's, always: a new session then takes over a stale one the
        broker still holds (after a network blip) at once, instead of that one's Last Will
        saying ``offline`` half a minute after the device came back.
        """
        client = new_client(self.broker, self.topics.device_id, connect_timeout=self.connect_timeout)
        client.will_set(self.topics.availability, hass.OFFLINE, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def stop(self) -> None:
        """Say ``offline`` (waiting a second at most), disconnect and end the threads."""
        self._stop.set()
        self._session_over.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=3.0 if thread.name == "mqtt-connect" else 1.0)
        with self._lock:
            self._connected = False

    def liveness(self) -> Liveness:
        """Alive while the threads run; the detail tells the connection's state."""
        dead = [t.name for t in self._threads if not t.is_alive()]
        if dead:
            return Liveness(False, f"thread {dead[0]} ended")
        beat = self._heartbeat.liveness()
        if not beat.alive:
            return beat
        with self._lock:
            if self._connected:
                detail = f"connected to {self.broker.url}"
            else:
                down = 0.0 if self._down_since is None else self._clock.monotonic() - self._down_since
                detail = f"not connected to {self.broker.url} for {down:.0f} s, retrying"
                if self._last_error:
                    detail += f": {self._last_error}"
        return Liveness(True, detail, beat.last_beat_age)

    @property
    def connected(self) -> bool:
        """True while a session with the broker is up (CONNACK received, not yet lost)."""
        with self._lock:
            return self._connected

    def snapshot(self) -> dict[str, Any]:
        """The ``mqtt`` section of ``GET /api/health``."""
        with self._lock:
            down = None if self._down_since is None else round(self._clock.monotonic() - self._down_since, 3)
            return {
                "enabled": True,
                "broker": self.broker.url,
                "connected": self._connected,
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._since)),
                "down_for_s": down,
                "last_error": self._last_error,
                "connects": self._connects,
                "reconnects": max(0, self._connects - 1),
                "last_outage_s": self._last_outage_s,
                "device_id": self.topics.device_id,
                "topic": self.topics.base,
                "discovery_prefix": self.topics.prefix,
                **self._counts,
                "last_rejected": self._last_rejected,
            }

    # --- the connector -------------------------------------------------------------------

    def _connect_loop(self, stop: threading.Event, over: threading.Event) -> None:
        delay = self.backoff_initial
        client = self._session_client()
        while not stop.is_set():
            over.clear()
            try:
                client.connect(self.broker.host, self.broker.port, keepalive=self.keepalive)
            except (OSError, ValueError) as exc:
                self._failed(describe(exc))  # nothing was left open: the same client tries again
            else:
                self._client = client
                client.loop_start()
                while not over.wait(0.5) and not stop.is_set():
                    pass  # the session lasts until on_disconnect (or stop) sets `over`
                if stop.is_set():
                    self._goodbye(client)
                    self._client = None
                    return
                client.loop_stop()
                self._client = None
                client = self._session_client()  # the old one is dropped, and closes what it held
                with self._lock:
                    if self._session_ok:
                        delay = self.backoff_initial  # it worked: the next try comes quickly
            if stop.wait(delay):
                return
            delay = min(delay * 2, self.backoff_max)

    def _goodbye(self, client: Client) -> None:
        """Retained ``offline`` first (a clean disconnect does not fire the Last Will), then go."""
        if self.connected:
            info = client.publish(self.topics.availability, hass.OFFLINE, qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # gone meanwhile: the Will says the same
                info.wait_for_publish(timeout=1.0)
        client.disconnect()
        client.loop_stop()

    def _failed(self, reason: str) -> None:
        with self._lock:
            self._last_error = reason
            tell = not self._told_error
            self._told_error = True
        if tell:
            self._event(f"cannot connect to {self.broker.url}: {reason}; retrying")

    def _on_connect(self, client: Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._failed(f"the broker refused the connection ({reason})")
            return
        now = self._clock.monotonic()
        with self._lock:
            outage = None if self._down_since is None or self._connects == 0 else now - self._down_since
            self._connected = self._session_ok = True
            self._since = time.time()
            self._down_since = None
            self._connects += 1
            self._told_error = False
            if outage is not None:
                self._last_outage_s = round(outage, 3)
        client.subscribe([(topic, 1) for topic in [*self.topics.commands(), self.topics.hass_status]])
        self._republish.set()
        if outage is not None:
            self._event(f"connected to {self.broker.url} again after {outage:.1f} s")
        log.info("connected to %s", self.broker.url)

    def _on_disconnect(self, client: Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with self._lock:
            was = self._connected
            self._connected = self._session_ok = False
            if was:
                self._since = time.time()
                self._down_since = self._clock.monotonic()
                self._last_error = f"connection lost ({reason})"
                self._told_error = True
        self._session_over.set()
        if was and not self._stop.is_set():
            self._event(f"lost the connection to {self.broker.url} ({reason}); reconnecting")

    def _event(self, message: str) -> None:
        log.warning("mqtt: %s", message)
        if self._on_event is not None:
            try:
                self._on_event(message)
            except Exception:
                log.exception("recording an MQTT event failed")

    # --- commands ------------------------------------------------------------------------

    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        """paho's thread: queue, never act here (a player call may take a moment)."""
        if message.topic == self.topics.hass_status:
            if message.payload.strip() == hass.ONLINE.encode():
                self._republish.set()  # Home Assistant restarted: send it everything again
            return
        if message.retain:
            self._reject(f"ignored a retained message on {message.topic} (commands must not be retained)")
            return
        try:
            self._commands.put_nowait((message.topic, bytes(message.payload)))
        except queue.Full:
            self._reject(f"dropped a command on {message.topic}: {MAX_PENDING_COMMANDS} are waiting")

    def _command_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                topic, payload = self._commands.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                command = hass.parse_command(self.topics, topic, payload, self._options)
                self._run(command)
            except (hass.CommandError, LoopError, ValueError) as exc:
                self._reject(str(exc))
                self._resend_states.set()  # put Home Assistant's select or switch back
                continue
            with self._lock:
                self._counts["commands"] += 1

    def _run(self, command: hass.Command) -> None:
        player = self._player
        if command.action == "show":
            player.show(str(command.value))
        elif command.action == "brightness":
            player.set_brightness(int(command.value or 0))
        else:
            getattr(player, command.action)()

    def _reject(self, why: str) -> None:
        log.warning("mqtt command rejected: %s", why)
        with self._lock:
            self._counts["rejected"] += 1
            self._last_rejected = why

    # --- the publisher -------------------------------------------------------------------

    def _publish_loop(self, stop: threading.Event) -> None:
        seen = -1
        while not stop.is_set():
            self._heartbeat.beat()
            changed = self._player.wait_for_change(seen, POLL_S)
            if stop.is_set():
                return
            client = self._client
            if client is None or not self.connected:
                continue
            try:
                self._round(client, force=self._take_republish(), status_changed=changed != seen)
            except Exception as exc:  # a bug or a closed library: keep going, say so
                log.exception("publishing to MQTT failed")
                with self._lock:
                    self._last_error = f"publishing failed: {exc}"
            seen = changed
            del client  # a finished session's client must not outlive it here

    def _take_republish(self) -> bool:
        if self._republish.is_set():
            self._republish.clear()
            return True
        return False

    def _round(self, client: Client, *, force: bool, status_changed: bool) -> None:
        if force:
            self._sent.clear()
            self._config_key = None
            self._image_changes = None
            self._image_digest = b""
            self._publish(client, self.topics.availability, hass.ONLINE)
        generation = self._library.generation
        if force or generation != self._generation:
            self._generation = generation
            self._options = hass.item_options((it.id, it.name) for it in self._library.playlist())
            status_changed = True
        now = self._clock.monotonic()
        if force or self._device_info is None or now - self._device_at >= DEVICE_RECHECK_S:
            self._device_info, self._device_at = self._device(), now  # its URL changes with mDNS
        key = (self._device_info, tuple(self._options), self.image_interval > 0)
        if key != self._config_key:
            self._config_key = key
            for topic, payload in hass.discovery(self.topics, key[0], self._options, image=key[2]).items():
                self._publish(client, topic, payload)
        if self._resend_states.is_set():
            self._resend_states.clear()
            for topic in hass.states(self.topics, {}, {}):
                self._sent.pop(topic, None)
            status_changed = True
        if status_changed:
            for topic, payload in hass.states(
                self.topics, self._player.status().to_dict(), self._options
            ).items():
                self._publish(client, topic, payload)
        if self.image_interval > 0:
            self._maybe_image(client)

    def _publish(self, client: Client, topic: str, payload: str) -> None:
        """Publish a retained message unless the broker already holds exactly this payload."""
        if self._sent.get(topic) == payload:
            return
        info = client.publish(topic, payload, qos=1, retain=True)
        if info.rc == 0:
            self._sent[topic] = payload
            with self._lock:
                self._counts["published"] += 1

    def _maybe_image(self, client: Client) -> None:
        now = self._clock.monotonic()
        if now - self._image_at < self.image_interval:
            return
        if self._image_info is not None and not self._image_info.is_published():
            return  # the last picture is not acknowledged yet: a slow broker gets fewer
        changes = self._panel.changes()
        if changes == self._image_changes:
            return
        image = self._panel.image()
        if image is None:
            return
        self._image_changes = changes
        digest = hashlib.blake2b(image.tobytes(), digest_size=16).digest()
        if digest == self._image_digest:
            return
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=1)
        info = client.publish(self.topics.screen, buf.getvalue(), qos=1, retain=True)
        if info.rc == 0:
            self._image_digest, self._image_at, self._image_info = digest, now, info
            with self._lock:
                self._counts["images"] += 1
