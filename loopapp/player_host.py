"""The device's player process: what the child builds (``build_player``) and how it is described.

``libloop.player.process.PlayerProcess`` runs the child; this module is its composition: in the
child it builds the hardware again from the config (``sim_hardware`` or ``pi_hardware``: the
same code path as ``loop run``), the bounded transports, the ``Display``, its own ``Library``
on the data directory and the ``Player``. In the simulator the fake bus and the panel model
live in the child too, with the panel's frame memory in the shared framebuffer; on a Pi the
display's shadow copy is kept there. Either way the device renders what it reads from there
(:func:`framebuffer_view`), and never touches the bus itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from libloop.ili9341 import PANEL_HEIGHT, PANEL_WIDTH, Rotation
from libloop.player.host import HostContext, Hosted, HostSpec
from loopapp.config import Config

if TYPE_CHECKING:
    from PIL import Image

    from libloop.display import Display
    from libloop.player.framebuffer import SharedFramebuffer

__all__ = ["FramebufferView", "PlayerHostArgs", "build_player", "framebuffer_view", "host_spec"]

#: The simulated panel's frame memory: 320 x 240 cells of four bytes.
PANEL_BYTES = PANEL_HEIGHT * PANEL_WIDTH * 4
#: A display's shadow copy: 240 x 320 RGB565 pixels.
SHADOW_BYTES = PANEL_HEIGHT * PANEL_WIDTH * 2


@dataclass(frozen=True)
class PlayerHostArgs:
    """What the child needs to build its side (pickled to it).

    Attributes:
        config: the device config (wiring, display, player settings, data directory).
        kind: "sim" or "pi".
        dashboard_url: shown on the empty screen.
        pace: (sim) the fake bus sleeps through each transfer's modelled wire time, as a
            thread blocked in the spidev ioctl does on a Pi (benchmarks).
        panel: (sim) a panel model behind the fake bus (False: measure the player alone).
        record_payloads: (sim) the fake bus keeps every payload, for the ``transcript`` call.
        library_state: how the device could open the library ("ok", "rebuilt", "read_only" or
            "unavailable", see ``loopapp.storage``): the child opens it the same way.
        library_problem: why it is unavailable (the child's stand-in library says so).
    """

    config: Config
    kind: str
    dashboard_url: str = ""
    pace: bool = False
    panel: bool = True
    record_payloads: bool = False
    library_state: str = "ok"
    library_problem: str = ""


def host_spec(args: PlayerHostArgs) -> HostSpec:
    """The ``HostSpec`` of the device's player process."""
    priority = args.config.player.realtime_priority
    return HostSpec(
        build=build_player,
        args=args,
        payload_bytes=PANEL_BYTES if args.kind == "sim" else SHADOW_BYTES,
        realtime_priority=priority or None,
    )


def build_player(ctx: HostContext) -> Hosted:
    """In the player process: hardware, bounded transports, display, library and player."""
    from libloop.clock import MonotonicClock
    from libloop.display import Display
    from libloop.health import BoundedBacklight, BoundedBus, BoundedPin
    from libloop.media.importer import ImportOptions
    from libloop.player import Player
    from libloop.settings.live import LiveSettings
    from loopapp.config import device_settings
    from loopapp.hardware import pi_hardware, sim_hardware

    args: PlayerHostArgs = ctx.args
    config = args.config
    clock = MonotonicClock()
    fb = ctx.framebuffer
    library = _open_library(args, clock)
    settings = LiveSettings(library, device_settings(config), options=ImportOptions())
    if args.kind == "sim":
        hw = sim_hardware(
            config,
            clock=clock,
            pace=args.pace,
            panel_memory=fb.pixels.reshape(PANEL_HEIGHT, PANEL_WIDTH, 4),
            record_payloads=args.record_payloads,
            **({"transcript_limit": None} if args.record_payloads else {}),  # a test reads it all
        )
        if not args.panel:
            hw.wiring.device.sink = None
    else:
        hw = pi_hardware(config)
    # Transient errors are retried as in the device; a hung call is bounded from outside: the
    # heartbeat stops, and the device kills and replaces this process (the only thing that frees
    # a thread stuck in a native call). So no call is handed to a worker thread, which would cost
    # two context switches on every transfer and every D/C toggle.
    bus = BoundedBus(hw.bus, speed_hz=config.wiring.speed_hz, clock=clock, inline=True)
    dc = BoundedPin(hw.dc, name="D/C", clock=clock, inline=True)
    reset = BoundedPin(hw.reset, name="RESET", clock=clock, inline=True) if hw.reset is not None else None
    backlight = BoundedBacklight(hw.backlight, clock=clock, inline=True) if hw.backlight is not None else None
    display = Display(
        bus,
        dc,
        reset,
        backlight,
        rotation=Rotation(settings.current().rotation),
        bgr=config.display.bgr,
        invert=config.display.invert,
        shadow=fb.pixels if args.kind != "sim" else False,
    )
    fb.begin()
    try:
        display.open()
    except BaseException:
        library.close()
        raise
    finally:
        fb.end()
    player = Player(
        display,
        library,
        clock=clock,
        dashboard_url=args.dashboard_url,
        refresh_interval=config.player.refresh_seconds,
        settings=settings.play_settings,  # rotation, shuffle, still time, night: the library's
        heartbeat=fb.beat,
        on_fatal=ctx.fatal,
        on_fault=ctx.fault,
        wire_hz=float(config.wiring.speed_hz),
        publisher=fb,
        on_version=fb.set_status,
    )
    # What readers need besides the pixels: the glass's state (sim) or the shadow's, and the
    # rotation content is drawn at (it changes at run time with the settings).
    state: Callable[[], tuple[int, ...]]
    if args.kind == "sim":
        panel = hw.panel
        state = lambda: (*panel.glass_state(), int(display.rotation))  # noqa: E731
    else:
        state = display.shadow_state

    def probe() -> str:
        return probe_display(display)

    def info() -> dict[str, Any]:
        return display_info(display, hw.backlight)

    calls: dict[str, Callable[..., Any]] = {"probe": probe, "display_info": info}
    if args.kind == "sim":
        fake = hw.wiring.device

        def fault(kind: str, *fault_args: Any) -> None:
            """Inject a fault into the fake bus (the simulator's fault drills and tests)."""
            if kind not in (
                "fail_transfer",
                "hang_transfer",
                "drop_transfer",
                "fail_randomly",
                "release",
                "clear_faults",
            ):
                raise ValueError(f"no such fault: {kind!r}")
            getattr(fake, kind)(*fault_args)

        def transcript(start: int = 0) -> list[tuple[float, bool, int, bytes]]:
            """The fake bus's transfers from ``start`` on: time, D/C, size and the payload's head."""
            entries = list(fake.transcript)[start:]
            return [(e.t, e.dc, e.nbytes, (e.data or b"")[:8]) for e in entries]

        calls.update({"sim_fault": fault, "transcript": transcript})

    def close() -> None:
        try:
            display.close()
        finally:
            library.close()

    return Hosted(player=player, display=display, state=state, close=close, calls=calls)


def _open_library(args: PlayerHostArgs, clock: Any) -> Any:
    """The library, opened as the device could open it (writable, read-only, or a stand-in).

    Changes the device makes reach it through the control channel's "changed" note at once;
    its own poll only catches other processes (``loop import`` run by hand).
    """
    from libloop.index import Library
    from loopapp.storage import UnavailableLibrary

    data_dir = args.config.data_dir
    if args.library_state == "unavailable":
        return UnavailableLibrary(args.library_problem or "The library cannot be opened.")
    read_only = args.library_state == "read_only"
    return Library(data_dir, clock=clock, poll_interval=2.0, read_only=read_only).open()


def probe_display(display: Display) -> str:
    """The bus takes a NOP command (bounded like every transfer): SPI and D/C work."""
    from libloop.ili9341 import Cmd, command
    from libloop.transport.spiclock import mhz

    display.send(command(Cmd.NOP))
    link = display.link()
    clock = mhz(link.clock_hz)
    if link.degraded:
        return f"answers on SPI at {clock}, degraded: {link.reason}"
    return f"answers on SPI at {clock}"


def display_info(display: Display, backlight: Any) -> dict[str, Any]:
    """The display's state for the health report."""
    stats = display.stats
    describe = getattr(backlight, "describe", None)
    return {
        "rotation": int(display.rotation),
        "open": display.is_open,
        "asleep": display.asleep,
        "brightness": display.brightness,
        "bytes_sent": stats.bytes,
        "transfers": stats.transfers,
        "spi": display.link().to_dict(),
        "backlight": str(describe()) if callable(describe) else None,
    }


class FramebufferView:
    """What the panel shows, read from the player process's shared framebuffer.

    The same reading interface as the panel model (``version``, ``glass``, ``snapshot``), so
    the simulator's window and the web app use it unchanged. Any thread may call it; a frame
    is read and rendered once, however many pollers ask for it.

    Args:
        framebuffer: the attached framebuffer.
        kind: "sim" (panel frame memory) or "pi" (the display's shadow copy).
    """

    def __init__(self, framebuffer: SharedFramebuffer, kind: str) -> None:
        self.framebuffer = framebuffer
        self.kind = kind
        self._lock = threading.Lock()
        self._copy = np.zeros(framebuffer.size, dtype=np.uint8)
        self._state: tuple[int, ...] = ()
        self._seq = -1
        self._rendered: tuple[int, Rotation, Any] | None = None  # (sequence, rotation, glass array)

    @property
    def version(self) -> int:
        """Changes whenever the panel shows something new."""
        return self.framebuffer.sequence

    @property
    def rotation(self) -> Rotation | None:
        """The rotation the player process draws at, as last published (None: not yet)."""
        from sim.panel import GLASS_STATE_WORDS

        state = self.framebuffer.state_words()
        index = GLASS_STATE_WORDS if self.kind == "sim" else 0
        if len(state) <= index or state[index] not in (0, 90, 180, 270) or self.framebuffer.sequence == 0:
            return None
        return Rotation(state[index])

    def glass(self, rotation: Rotation = Rotation.R0) -> Any:
        """The light of every glass pixel, ``(h, w, 3)`` uint8, as a person sees it (read-only)."""
        rotation = Rotation(rotation)
        with self._lock:
            cached = self._rendered
            if cached is not None and cached[0] == self.framebuffer.sequence and cached[1] == rotation:
                return cached[2]
            got = self.framebuffer.read(self._copy)
            if got is not None:
                self._seq, self._state = got
            light = self._render(rotation)
            light.flags.writeable = False
            self._rendered = (self._seq, rotation, light)
            return light

    def snapshot(self, rotation: Rotation = Rotation.R0) -> Image.Image:
        """What the glass shows, as an RGB image turned for ``rotation``."""
        from PIL import Image

        return Image.fromarray(np.ascontiguousarray(self.glass(rotation)), "RGB")

    def _render(self, rotation: Rotation) -> Any:
        state = self._state
        if self.kind == "sim":
            from sim.panel import GLASS_STATE_WORDS, render_glass

            if len(state) < GLASS_STATE_WORDS:  # nothing published yet: an uninitialised panel
                state = (0, 0) + (0,) * (GLASS_STATE_WORDS - 2)  # display off: white glass
            return render_glass(self._copy.reshape(PANEL_HEIGHT, PANEL_WIDTH, 4), state, rotation)
        from libloop.display import render_shadow

        opened, asleep, on, brightness = (
            (state[1], state[2], state[3], state[4]) if len(state) >= 5 else (1, 0, 1, 100)
        )
        w, h = (
            (PANEL_WIDTH, PANEL_HEIGHT)
            if rotation in (Rotation.R0, Rotation.R180)
            else (PANEL_HEIGHT, PANEL_WIDTH)
        )
        if not opened or brightness == 0:
            return np.zeros((h, w, 3), dtype=np.uint8)  # no light
        if asleep or not on:
            return np.full((h, w, 3), 255, dtype=np.uint8)  # blank, normally-white glass
        return np.asarray(render_shadow(self._copy, rotation))


def framebuffer_view(framebuffer: SharedFramebuffer, kind: str) -> FramebufferView:
    """A reader of the player process's framebuffer."""
    return FramebufferView(framebuffer, kind)
