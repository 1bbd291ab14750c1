"""The composition root: one `Device` built from a `Config` over either kind of hardware.

`loop run` and `loop sim` both construct a `Device`; the only difference is the `Hardware`
bundle (real spidev + gpiod, or the fake spidev device in front of the panel model). Every
other part — the bounded transports, the display, the player, the import queue, the web app,
the supervisor and systemd notifications — is the same code, so the simulator exercises
exactly what the Pi runs.

The device is also the web app's `Services` (see `webapp.services`).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from libloop.clock import Clock, MonotonicClock
from libloop.errors import HardwareError, LoopError
from libloop.ili9341 import Rotation
from loopapp.config import Config
from loopapp.devicelock import DeviceLock
from loopapp.hardware import Hardware

if TYPE_CHECKING:
    from PIL import Image

    from libloop.display import Display
    from libloop.health import Liveness, Supervisor
    from libloop.health.notify import Notifier
    from libloop.health.resources import ResourceMonitor
    from libloop.health.wifi import WifiMonitor, WifiPoller
    from libloop.index import Library
    from libloop.index.upgrade import BackgroundUpgrade
    from libloop.media.importer import ImportOptions, ImportResult
    from libloop.media.jobs import Imported, ImportQueue
    from libloop.media.rerender import Rerenderer
    from libloop.player import Player
    from libloop.player.process import PlayerProcess
    from libloop.settings import DeviceSettings
    from libloop.settings.live import LiveSettings
    from loopapp.integrations.hass import DeviceInfo
    from loopapp.integrations.mdns import MdnsAdvertiser
    from loopapp.integrations.mqtt import MqttBridge
    from loopapp.storage import LibraryOpening, Reserve
    from webapp.server import WebServer

log = logging.getLogger(__name__)

#: Written into the data directory while a device runs, so the CLI can reach it.
STATE_FILE = "device.json"


def import_options(
    config: Config,
    *,
    fit: str | None = None,
    dither: bool | None = None,
    settings: DeviceSettings | None = None,
) -> ImportOptions:
    """Import options for the panel as set: ``settings`` (the live ones), else the config's."""
    import dataclasses

    from libloop.ili9341 import logical_size
    from libloop.media.fit import FitMode
    from libloop.media.importer import ImportOptions
    from loopapp.config import device_settings

    live = settings or device_settings(config)
    width, height = logical_size(Rotation(live.rotation))
    options = ImportOptions(
        width=width,
        height=height,
        fit=FitMode(live.fit),
        background=live.background_rgb,
        dither=live.dither,
    )
    if fit is not None or dither is not None:
        options = dataclasses.replace(
            options,
            fit=FitMode(fit) if fit is not None else options.fit,
            dither=options.dither if dither is None else dither,
        )
    return options


def import_file(
    library: Library,
    path: Path,
    options: ImportOptions,
    progress: Callable[[float], None] | None = None,
) -> Imported:
    """Import one file into the library in this process (``loop import``).

    The file is left as it is; a copy of it is kept as the item's original.
    """
    from libloop.media.importer import import_media
    from libloop.media.jobs import import_into

    def convert(src: Path, dest: Path) -> ImportResult:
        return import_media(src, dest, options, progress, name=path.name)

    done = import_into(
        library, path, path.name, convert, limits=options.limits, keep="copy", render=options.render_record()
    )
    if done.existing and progress is not None:
        progress(1.0)
    return done


def _lan_address() -> str | None:
    """The first non-loopback IPv4 address of this machine (what a phone on the LAN can reach)."""
    import socket

    import psutil

    for name, addresses in sorted(psutil.net_if_addrs().items()):
        if name == "lo" or name.startswith(("docker", "veth", "br-")):
            continue
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    return None


class Device:
    """The whole LOOP device. Construct, `start()`, and `stop()` when done.

    Args:
        config: the device configuration.
        hardware: the transports (``sim_hardware`` or ``pi_hardware``).
        host, port: where the dashboard listens (port 0 picks a free one).
        clock: the clock of the player and the supervisor.
        notifier: systemd notifications (default: from ``NOTIFY_SOCKET``, a no-op without it).
        wifi: the Wi-Fi monitor (default: NetworkManager on a Pi, a fake in the simulator).
        import_worker: ``"process"`` (the default) or ``"inline"`` for tests.
        simulated: whether this is the simulator (default: the hardware has a panel model).
        supervisor_options: overrides of the supervisor's intervals (tests shorten them), and
            ``player_stale_after``: seconds without a heartbeat from the player process.
        player_mode: ``"process"`` (the player and the display in a process of their own, see
            ``loopapp.player_host``) or ``"thread"`` (in this process, the previous design);
            default: the config's ``[player] isolation``, and always ``"thread"`` for hardware
            a child process cannot build again (``Hardware.kind == "custom"``).
        player_host_options: extra ``PlayerHostArgs`` fields (benchmarks: ``pace``, ``panel``).
        mqtt_options: overrides of the MQTT bridge's backoff and keepalive (tests shorten them).
    """

    def __init__(
        self,
        config: Config,
        hardware: Hardware,
        *,
        host: str | None = None,
        port: int | None = None,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        wifi: WifiMonitor | None = None,
        import_worker: Literal["process", "inline"] = "process",
        simulated: bool | None = None,
        supervisor_options: Mapping[str, Any] | None = None,
        player_mode: Literal["process", "thread"] | None = None,
        player_host_options: Mapping[str, Any] | None = None,
        mqtt_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.hardware = hardware
        self.simulated = hardware.panel is not None if simulated is None else simulated
        self.host = host if host is not None else config.web.host
        self.port = port if port is not None else config.web.port
        self.clock: Clock = clock or MonotonicClock()
        self._notifier = notifier
        self._wifi = wifi
        self._import_worker = import_worker
        self._supervisor_options = dict(supervisor_options or {})
        #: Seconds without a heartbeat from the player process before it counts as stuck (its
        #: loop beats at least once a second; a hung hardware call inside it is noticed here).
        self.player_stale_after = float(self._supervisor_options.pop("player_stale_after", 5.0))
        mode = player_mode or config.player.isolation
        self.player_mode: Literal["process", "thread"] = "process" if mode == "process" else "thread"
        if hardware.kind not in ("sim", "pi"):
            self.player_mode = "thread"
        self._player_host_options = dict(player_host_options or {})
        self._relay_stop = threading.Event()
        self._relay: threading.Thread | None = None
        self._mqtt_options = dict(mqtt_options or {})
        self.data_dir = config.data_dir
        self.upload_dir = self.data_dir / "incoming"
        self.preview_dir = self.data_dir / "previews"
        self.max_upload_bytes = config.web.max_upload_mb * 1024 * 1024
        self.exit_requested = threading.Event()
        self.exit_code = 0
        self._started = False
        self._web_running = False
        self._lock = DeviceLock(self.data_dir)  # taken first thing in start()
        self._mdns_up = False
        self.mqtt: MqttBridge | None = None
        self.mdns: MdnsAdvertiser | None = None
        self._storage_problems: list[str] = []  # sentences for /api/health ("storage")
        self._state_file_error: str | None = None
        # Built by start():
        self.library: Library
        self.settings: LiveSettings
        self.rerender: Rerenderer
        self.display: Display | None = None  # in this process only in "thread" mode
        self.player: Player | PlayerProcess
        #: The player process (``player_mode == "process"``), else None.
        self.player_process: PlayerProcess | None = None
        #: What the panel shows, for the window and the web app (``version``, ``snapshot``).
        self.panel_view: Any = None
        self.imports: ImportQueue
        self.upgrade: BackgroundUpgrade
        self.resources: ResourceMonitor
        self.supervisor: Supervisor
        self.server: WebServer
        self.wifi_monitor: WifiMonitor
        self.wifi_poller: WifiPoller
        self.opening: LibraryOpening
        self.reserve: Reserve

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Lock the data directory, then open everything, start the dashboard, the player and
        the supervisor.

        Raises:
            DeviceAlreadyRunning: another device runs on this data directory (nothing touched).
        """
        self._lock.acquire()
        try:
            self._start_locked()
        except BaseException:
            self._lock.release()
            raise

    def _start_locked(self) -> None:
        from libloop.display import Display
        from libloop.health import (
            BoundedBacklight,
            BoundedBus,
            BoundedPin,
            CallbackComponent,
            FakeWifi,
            Heartbeat,
            NetworkManagerWifi,
            Probe,
            ResourceMonitor,
            Supervisor,
            WifiPoller,
        )
        from libloop.health.resources import Thresholds
        from libloop.index.upgrade import BackgroundUpgrade
        from libloop.media.importer import ImportOptions
        from libloop.media.jobs import ImportQueue
        from libloop.media.rerender import Rerenderer
        from libloop.player import Player
        from libloop.settings.live import LiveSettings
        from loopapp.config import device_settings
        from loopapp.storage import Reserve, open_device_library
        from webapp import create_app
        from webapp.server import WebServer

        config, hw = self.config, self.hardware
        # Nothing here may depend on free space or on any one file being intact: what the disk
        # refuses is reported in /api/health (section "storage") and the device starts anyway.
        for d in (self.data_dir, self.upload_dir, self.preview_dir):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self._storage_problem(f"The folder {d} cannot be created ({exc.strerror}).")
        with contextlib.suppress(OSError):
            for leftover in self.upload_dir.iterdir():  # uploads cut off by a crash or power cut
                with contextlib.suppress(OSError):
                    leftover.unlink()

        self.reserve = Reserve(self.data_dir)
        self.opening = open_device_library(self.data_dir, self.reserve)
        # When the library cannot be opened, an UnavailableLibrary stands in: the same calls,
        # each refusing with the reason (see loopapp.storage).
        self.library = cast("Library", self.opening.library)
        self._storage_problems[:0] = self.opening.problems
        # The live settings: stored in the library over the config file's defaults.
        self.settings = LiveSettings(self.library, device_settings(config), options=ImportOptions())

        if self.player_mode == "thread":
            bus = BoundedBus(hw.bus, speed_hz=config.wiring.speed_hz, clock=self.clock)
            dc = BoundedPin(hw.dc, name="D/C", clock=self.clock)
            reset = BoundedPin(hw.reset, name="RESET", clock=self.clock) if hw.reset is not None else None
            backlight = BoundedBacklight(hw.backlight, clock=self.clock) if hw.backlight is not None else None
            self.display = Display(
                bus,
                dc,
                reset,
                backlight,
                rotation=Rotation(self.settings.current().rotation),
                bgr=config.display.bgr,
                invert=config.display.invert,
                shadow=hw.panel is None,
            )
            self.display.open()

        self.imports = ImportQueue(
            self.library,
            self.settings.import_options(),
            staging_dir=self.upload_dir,
            worker=self._import_worker,
            dedupe=True,  # the same picture uploaded twice is one item, as with `loop import`
        )
        # Frame files an earlier LOOP wrote (v1, raw) are converted to v2 in a niced child process
        # (not on a read-only, full or unreadable disk: the library then plays as it is).
        self.upgrade = BackgroundUpgrade(self.data_dir)
        if self.opening.state in ("ok", "rebuilt"):
            try:
                self.upgrade.start(self.library)
            except (LoopError, OSError) as exc:
                log.warning("the frame file upgrade did not start: %s", exc)
        # A new rotation or fit re-renders the library from the kept originals, whenever no
        # upload waits, in a child process at lower priority.
        self.rerender = Rerenderer(
            self.library,
            self.settings.wanted,
            ImportOptions(),
            worker=self._import_worker,
            on_change=self.imports.poke,
        )
        self.resources = ResourceMonitor(
            self.data_dir,
            clock=self.clock,
            thresholds=Thresholds(disk_reserve_mb=config.storage.reserve_mb),
        )
        self.resources.run_once()
        self.wifi_monitor = self._wifi or (FakeWifi() if self.simulated else NetworkManagerWifi())

        self._api_token = secrets.token_urlsafe(24)  # lets the local CLI in when a password is set
        self._app = create_app(
            self, {"LOOP_API_TOKEN": self._api_token, "LOOP_ALLOWED_HOSTS": list(config.web.hosts)}
        )
        self.server = WebServer(self._app, self.host, self.port)
        self.server.start()
        self._web_running = True
        self.port = self.server.port  # a restart binds the same port again

        beat = Heartbeat(self.clock, stale_after=10.0)
        player_liveness = beat.liveness
        if self.player_mode == "thread":
            assert self.display is not None
            self.player = Player(
                self.display,
                self.library,
                clock=self.clock,
                dashboard_url=self.dashboard_url,
                refresh_interval=config.player.refresh_seconds,
                settings=self.settings.play_settings,  # rotation, shuffle, still time, night
                heartbeat=beat.beat,
                on_fatal=lambda exc: self.supervisor.report_failure("player", str(exc)),
                on_fault=lambda message: self.supervisor.faults.record("player", message),
                wire_hz=float(config.wiring.speed_hz),
            )
            self.panel_view = hw.panel
        else:
            self.player = self.player_process = self._start_player_process()
            player_liveness = self._player_process_liveness
        if self.opening.screen is not None:
            self.player.show_error(self.opening.screen)

        # Three failures (about 18 s with these settings) reach emergency mode and its error
        # screen inside systemd's 30 s watchdog; a slower ladder would be cut short by it.
        options: dict[str, Any] = {"start_grace": 5.0, "backoff_max": 8.0, **self._supervisor_options}
        self.supervisor = Supervisor(
            self.clock,
            self._notifier,
            on_emergency=self._on_emergency,
            on_recovered=self._on_recovered,
            on_exit=self._on_exit,
            **options,
        )
        self.supervisor.register(
            CallbackComponent(
                "player",
                start=self.player.start,
                stop=self._stop_player,
                liveness=player_liveness,
                essential=True,
            ),
            restart=self._restart_player,
        )
        display_probe = Probe(self._probe_display, clock=self.clock, timeout=5.0, min_interval=5.0)
        self.supervisor.register(
            CallbackComponent(
                "display",
                start=lambda: None,
                stop=lambda: None,
                liveness=display_probe.liveness,
                essential=True,
            ),
            restart=self._restart_player,  # re-initialises the panel, then plays on
        )
        web_probe = Probe(self._probe_web, clock=self.clock, timeout=5.0, min_interval=5.0)
        self.supervisor.register(
            CallbackComponent(
                "web",
                start=self._start_web,
                stop=self._stop_web,
                liveness=web_probe.liveness,
                essential=True,
            )
        )
        import_probe = Probe(self._probe_imports, clock=self.clock, timeout=5.0, min_interval=5.0)
        self.supervisor.register(
            CallbackComponent(
                "importer", start=lambda: None, stop=lambda: None, liveness=import_probe.liveness
            )
        )
        self.supervisor.register(self.resources)
        self.wifi_poller = WifiPoller(self.wifi_monitor, clock=self.clock, interval=30.0)
        self.wifi_poller.run_once()
        self.supervisor.register(self.wifi_poller)
        self.supervisor.add_section("resources", self.resources.snapshot)
        self.supervisor.add_section("wifi", self.wifi_poller.snapshot)
        self.supervisor.add_section("player", lambda: self.player.status().to_dict())
        self.supervisor.add_section("display", self._display_info)
        self.supervisor.add_section("isolation", self._isolation_info)
        self._register_integrations()
        self.supervisor.add_section("storage", self._storage_info)
        self.supervisor.start()
        for problem in self._storage_problems:
            self.supervisor.faults.record("storage", problem)
        self.settings.attach(player=self.player, imports=self.imports, rerender=self.rerender)
        self.imports.set_background(self.rerender)
        self.rerender.refresh()  # what a change made while the device was off still needs
        self._started = True
        self._write_state()
        if self.opening.state != "read_only":
            self.reserve.ensure()  # room to give up the day the card is full (loopapp.storage)

    def stop(self) -> None:
        """Stop everything in reverse order; safe to call twice."""
        if not self._started:
            return
        self._started = False
        steps: list[tuple[str, Callable[[], None]]] = [
            ("supervisor", self.supervisor.stop),
            ("player", self._close_player),
            ("web server", self._stop_web),
            ("re-render", self.rerender.close),
            ("imports", self.imports.close),
            ("frame file upgrade", self.upgrade.stop),
            ("display", self.display.close if self.display is not None else lambda: None),
            ("library", self.library.close),
        ]
        for what, step in steps:
            try:
                step()
            except Exception:
                log.exception("stopping the %s failed", what)
        with contextlib.suppress(OSError):
            (self.data_dir / STATE_FILE).unlink()
        self._lock.release()

    # --- Home Assistant (MQTT) and mDNS ------------------------------------------------------

    def _register_integrations(self) -> None:
        """The network faces: both non-essential, both started by the supervisor in the background."""
        from loopapp.integrations.identity import device_id, hostname

        self.device_id = device_id(self.data_dir)
        self.hostname = hostname()
        self._register_mdns()
        self._register_mqtt()

    def _register_mdns(self) -> None:
        from loopapp.integrations.mdns import MdnsAdvertiser, advertised_addresses

        mdns = self.config.mdns
        addresses = advertised_addresses(self.host, mdns.interfaces) if mdns.enabled else None
        if addresses is None:
            why = "off in the config" if not mdns.enabled else f"the dashboard listens on {self.host} only"
            section = {"enabled": mdns.enabled, "advertised": False, "reason": why}
            self.supervisor.add_section("mdns", lambda: section)
            return
        self.mdns = MdnsAdvertiser(
            self.hostname,
            lambda: self.port,
            addresses,
            clock=self.clock,
            on_change=self._on_mdns,
            on_event=lambda message: self.supervisor.faults.record("mdns", message),
        )
        self.supervisor.register(self.mdns)
        self.supervisor.add_section("mdns", self.mdns.snapshot)

    def _on_mdns(self, up: bool) -> None:
        self._mdns_up = up
        self.player.set_dashboard_url(self.dashboard_url)

    def _register_mqtt(self) -> None:
        from loopapp.integrations.broker import Broker, MqttError
        from loopapp.integrations.hass import Topics
        from loopapp.integrations.mqtt import MqttBridge, Panel

        mqtt = self.config.mqtt
        if not mqtt.url:
            self.supervisor.add_section("mqtt", lambda: {"enabled": False})
            return
        try:
            import paho.mqtt.client  # noqa: F401  (a broken install may lack it)

            broker = Broker.parse(mqtt.url, mqtt.username, mqtt.password)
        except (ImportError, MqttError) as exc:
            message = (
                str(exc)
                if isinstance(exc, MqttError)
                else "MQTT needs paho-mqtt: pip install 'paho-mqtt>=2.0'."
            )
            self.supervisor.faults.record("mqtt", message)
            self.supervisor.add_section(
                "mqtt", lambda: {"enabled": True, "connected": False, "last_error": message}
            )
            return
        topics = Topics(
            base=mqtt.topic or f"loop/{self.device_id}",
            prefix=mqtt.discovery_prefix,
            device_id=self.device_id,
        )
        self.mqtt = MqttBridge(
            broker,
            topics,
            self._hass_device,
            player=self.player,
            library=self.library,
            panel=Panel(image=self._panel_image, changes=self._panel_changes),
            clock=self.clock,
            on_event=lambda message: self.supervisor.faults.record("mqtt", message),
            image_interval=mqtt.image_interval,
            **self._mqtt_options,
        )
        self.supervisor.register(self.mqtt)
        self.supervisor.add_section("mqtt", self.mqtt.snapshot)

    def _hass_device(self) -> DeviceInfo:
        from libloop import __version__
        from loopapp.integrations.hass import DeviceInfo

        model = "ILI9341 240x320 (simulated)" if self.simulated else "ILI9341 240x320"
        return DeviceInfo(self.device_id, f"LOOP {self.hostname}", model, __version__, self.dashboard_url)

    def _panel_image(self) -> Any:
        return self.display_image()

    def _panel_changes(self) -> int:
        """Moves whenever the glass may have changed (see ``display_version``)."""
        return self.display_version()

    # --- supervisor hooks --------------------------------------------------------------------

    def _start_web(self) -> None:
        """(Re)start the dashboard on the port it first bound; a no-op while it runs."""
        from webapp.server import WebServer

        if self._web_running:
            return
        self.server = WebServer(self._app, self.host, self.port)
        self.server.start()
        self._web_running = True

    def _stop_web(self) -> None:
        self._web_running = False
        self.server.stop()

    def _stop_player(self) -> None:
        self.player.stop()

    def _restart_player(self) -> None:
        """The player is stuck or died: re-initialise the panel, then start a fresh loop.

        In its own process: the same, there; a new process if that one does not answer.
        """
        if self.player_process is not None:
            self.player_process.restart()
            return
        assert self.display is not None
        self.player.stop()
        self.display.reinit()
        self.player.start()

    # --- the player process --------------------------------------------------------------------

    def _start_player_process(self) -> PlayerProcess:
        """Start the player process (it builds the hardware, display and player) and wait for it."""
        from libloop.player.process import PlayerProcess
        from loopapp.player_host import PlayerHostArgs, framebuffer_view, host_spec

        opening = self.opening
        args = PlayerHostArgs(
            self.config,
            self.hardware.kind,
            self.dashboard_url,
            library_state=opening.state,
            library_problem="; ".join(opening.problems) if opening.state == "unavailable" else "",
            **self._player_host_options,
        )
        process = PlayerProcess(
            host_spec(args),
            clock=self.clock,
            on_fatal=lambda sentence: self.supervisor.report_failure("player", sentence),
            on_fault=lambda message: self.supervisor.faults.record("player", message),
        )
        try:
            process.start()
        except BaseException:
            process.close()
            raise
        assert process.framebuffer is not None
        self.panel_view = framebuffer_view(process.framebuffer, self.hardware.kind)
        if process.scheduling.get("policy") != "fifo" and self.config.player.web_nice > 0:
            self._app.wsgi_app = _NicedThreads(self._app.wsgi_app, self.config.player.web_nice)  # type: ignore[method-assign]
        self._relay_stop.clear()
        self._relay = threading.Thread(target=self._relay_changes, name="loop-player-relay", daemon=True)
        self._relay.start()
        return process

    def _relay_changes(self) -> None:
        """Tell the player process about every library change at once (it does not poll for ours)."""
        since = self.library.generation
        while not self._relay_stop.is_set():
            try:
                now = self.library.wait_for_change(since, 1.0)
            except Exception:  # a closed library: the device is stopping
                self._relay_stop.wait(1.0)
                continue
            if now != since:
                since = now
                if self.player_process is not None:
                    self.player_process.notify_change()

    def _player_process_liveness(self) -> Liveness:
        from libloop.health import Liveness

        process = self.player_process
        assert process is not None
        age = process.heartbeat_age()
        if age is None:
            return Liveness(False, "the player process is not running")
        if age > self.player_stale_after:
            return Liveness(False, f"no heartbeat from the player process for {age:.1f} s", age)
        return Liveness(True, f"player process {process.pid}", age)

    def _close_player(self) -> None:
        self._relay_stop.set()
        if self.player_process is not None:
            self.player_process.close()
        else:
            self.player.stop()

    def _on_emergency(self, reason: str) -> None:
        log.error("emergency mode: %s", reason)
        try:
            self.player.show_error(f"LOOP is in trouble: {reason}. It keeps trying to recover.")
        except LoopError as exc:  # the player itself may be what is stuck
            log.error("could not show the error screen: %s", exc)

    def _on_recovered(self) -> None:
        log.warning("left emergency mode")
        try:
            if self.opening.screen is not None:  # still without a library: keep saying so
                self.player.show_error(self.opening.screen)
                return
            self.player.clear_error()
        except LoopError as exc:
            log.error("could not clear the error screen: %s", exc)

    def _on_exit(self, code: int, reason: str) -> None:
        log.critical("exiting for a restart (status %d): %s", code, reason)
        self.exit_code = code
        self.exit_requested.set()

    def _probe_display(self) -> str:
        """The bus takes a NOP command (bounded like every transfer): SPI and D/C work."""
        from loopapp.player_host import probe_display

        if self.player_process is not None:
            return str(self.player_process.call("probe", timeout=4.0))
        assert self.display is not None
        return probe_display(self.display)

    def _probe_web(self) -> str:
        """The dashboard answers HTTP (any status: a password may guard the API)."""
        try:
            with urllib.request.urlopen(f"{self.server.url}/api/player", timeout=4) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            return f"answers HTTP ({exc.code})"
        return "answers HTTP"

    def _probe_imports(self) -> str:
        jobs = self.imports.jobs()
        running = [job for job in jobs if job.status == "running"]
        detail = f"{len(running)} running, {len(jobs)} known"
        progress = self.rerender.progress()
        if progress["running"]:
            detail += f"; re-rendering for new settings, {progress['done']} of {progress['total']} done"
        return detail

    @property
    def rotation(self) -> Rotation:
        """The panel's orientation now (it follows the live setting at once)."""
        display = getattr(self, "display", None)
        if display is not None:
            return Rotation(display.rotation)
        published = getattr(self.panel_view, "rotation", None)  # the player process's
        if isinstance(published, Rotation):
            return published
        settings = getattr(self, "settings", None)
        if settings is not None:
            return Rotation(settings.current().rotation)
        return Rotation(self.config.display.rotation)

    def _display_info(self) -> dict[str, Any]:
        from loopapp.player_host import display_info

        if self.player_process is not None:
            try:
                info: dict[str, Any] = dict(self.player_process.call("display_info", timeout=2.0))
            except LoopError as exc:
                info = {"open": False, "error": str(exc)}
        else:
            assert self.display is not None
            info = display_info(self.display, self.hardware.backlight)
        return {**info, "simulated": self.simulated}

    def _isolation_info(self) -> dict[str, Any]:
        """How the player is kept apart from the rest, and what scheduling it got."""
        if self.player_process is not None:
            info = self.player_process.info()
            fifo = info["scheduling"].get("policy") == "fifo"
            info["web_nice"] = 0 if fifo else self.config.player.web_nice
            return info
        return {"mode": "thread", "pid": os.getpid(), "scheduling": {"policy": "other", "nice": os.nice(0)}}

    # --- what the web app needs (webapp.services.Services) ---------------------------------

    @property
    def dashboard_url(self) -> str:
        if self._mdns_up:
            return f"http://{self.hostname}.local:{self.port}"
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = _lan_address() or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def delete_item(self, item_id: str) -> None:
        """Take the item off the panel, then out of the library (the delete guarantee)."""
        from libloop.errors import DiskFull
        from libloop.player import evict_and_delete

        try:
            evict_and_delete(self.player, self.library, item_id)
        except DiskFull:
            # Deleting is how a full card is freed: give up the reserve for the room it needs.
            if not self.reserve.release():
                raise
            evict_and_delete(self.player, self.library, item_id)

    def display_png(self) -> bytes:
        image = self.display_image()
        buf = io.BytesIO()
        image.save(buf, format="PNG", compress_level=1)
        return buf.getvalue()

    def display_image(self) -> Image.Image:
        """What the panel shows now, as a person sees it (read from the player process's
        shared framebuffer, or from the panel model or display shadow in this process)."""
        rotation = self.rotation
        image = self.panel_view.snapshot(rotation) if self.panel_view is not None else None
        if image is None and self.display is not None:
            image = self.display.shadow_image(rotation)
        if image is None:
            raise HardwareError("The panel's content is not available because the display is not open.")
        result: Image.Image = image
        return result

    def display_version(self) -> int:
        """A number that changes whenever the panel shows something new (for the live view)."""
        if self.panel_view is not None:
            return int(self.panel_view.version)
        return self.display.stats.bytes + self.display.brightness if self.display is not None else 0

    def health(self) -> Mapping[str, Any]:
        snapshot = dict(self.supervisor.snapshot())
        if snapshot.get("state") in ("ok", "starting"):
            display = snapshot.get("display")
            spi = display.get("spi") if isinstance(display, Mapping) else None
            slow_bus = isinstance(spi, Mapping) and bool(spi.get("degraded"))
            if self.opening.state in ("unavailable", "read_only") or slow_bus:
                snapshot["state"] = "degraded"
        return snapshot

    def _storage_problem(self, sentence: str) -> None:
        log.error("%s", sentence)
        self._storage_problems.append(sentence)
        if self._started:
            self.supervisor.faults.record("storage", sentence)

    def _storage_info(self) -> dict[str, Any]:
        return {
            "library": self.opening.to_dict(),
            "state_file": self._state_file_error or "written",
            "problems": list(self._storage_problems),
        }

    def wifi(self) -> Mapping[str, Any]:
        return self.wifi_poller.snapshot()

    def check_upload(self, size: int | None) -> None:
        self.resources.check_upload(size or 0)

    # --- the state file the CLI reads --------------------------------------------------------

    def _write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "url": self.server.url,
            "token": self._api_token,
            "simulated": self.simulated,
        }
        path = self.data_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the token is a credential
            with os.fdopen(fd, "w") as out:
                json.dump(state, out)
            tmp.replace(path)
        except OSError as exc:  # best effort: a full or read-only disk must not stop the device
            with contextlib.suppress(OSError):
                tmp.unlink()
            self._state_file_error = (
                f"{STATE_FILE} could not be written ({exc.strerror}), so `loop rm` and `loop health` "
                "cannot reach this running device."
            )
            self._storage_problem(self._state_file_error)


class _NicedThreads:
    """WSGI middleware: each request thread lowers its own priority once (Linux nice is per thread).

    Used when the player process has no real-time scheduling: the web app then yields the CPU
    to it whenever both want it.
    """

    def __init__(self, app: Callable[..., Any], increment: int) -> None:
        self.app = app
        self.increment = increment
        self._seen = threading.local()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        if not getattr(self._seen, "done", False):
            self._seen.done = True
            with contextlib.suppress(OSError):
                tid = threading.get_native_id()
                os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + self.increment)
        return self.app(environ, start_response)


def running_device(config: Config) -> tuple[str, str] | None:
    """(URL, API token) of a device running on this data directory, if one is running."""
    try:
        state = json.loads((config.data_dir / STATE_FILE).read_text())
        pid, url, token = int(state["pid"]), str(state["url"]), str(state.get("token", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by another user (the service)
    return url, token


def _request(device: tuple[str, str], method: str, path: str) -> urllib.request.Request:
    url, token = device
    headers = {"X-Loop-Request": "1"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return urllib.request.Request(f"{url}{path}", method=method, headers=headers)


def delete_via_running_device(config: Config, item_id: str) -> bool:
    """Delete through the running device's API so the delete guarantee holds; False if none runs."""
    device = running_device(config)
    if device is None:
        return False
    try:
        with urllib.request.urlopen(_request(device, "DELETE", f"/api/media/{item_id}"), timeout=10):
            return True
    except urllib.error.HTTPError as exc:
        raise LoopError(_api_message(exc)) from None
    except OSError:
        return False  # stale state file: the device is not answering


def settings_via_running_device(
    config: Config, changes: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The running device's settings (after ``changes``, when given); None if no device runs."""
    device = running_device(config)
    if device is None:
        return None
    request = _request(device, "GET" if changes is None else "PATCH", "/api/settings")
    if changes is not None:
        request.data = json.dumps(dict(changes)).encode()
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body
    except urllib.error.HTTPError as exc:
        raise LoopError(_api_message(exc)) from None
    except (OSError, ValueError):
        return None  # stale state file: the device is not answering


def _api_message(exc: urllib.error.HTTPError) -> str:
    try:
        message = json.loads(exc.read())["error"]["message"]
        return str(message)
    except (ValueError, KeyError, TypeError):
        return f"The running device answered HTTP {exc.code}."


def _device_health(device: tuple[str, str]) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(_request(device, "GET", "/api/health"), timeout=10) as response:
            report: dict[str, Any] = json.loads(response.read())
            return report
    except (OSError, ValueError):
        return None


def running_health(config: Config) -> dict[str, Any] | None:
    """The running device's ``/api/health`` answer, or None when no device answers."""
    device = running_device(config)
    return None if device is None else _device_health(device)


def health_report(config: Config) -> dict[str, Any]:
    """The running device's health; else ``state`` "not running" (or "not answering", with its
    ``url``, when its process lives but its API does not answer) and this machine's resources."""
    device = running_device(config)
    state: dict[str, Any] = {"state": "not running"}
    if device is not None:
        report = _device_health(device)
        if report is not None:
            return report
        state = {"state": "not answering", "url": device[0]}
    from libloop.health import ResourceMonitor

    monitor = ResourceMonitor(config.data_dir)  # the disk of its nearest existing parent
    return {**state, "components": [], "resources": monitor.sample().to_dict(), "faults": []}
