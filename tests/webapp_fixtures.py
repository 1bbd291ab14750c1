"""The web app's test device: ``webapp.services.Services`` built from the real parts.

A real ``Library`` in a temporary data directory, the real ``ImportQueue`` (inline worker),
the real ``Player`` on a real ``Display`` over the simulated rig (``sim.wiring.SimWiring``),
a real ``Supervisor`` and ``ResourceMonitor``. Nothing here imitates the API's behaviour;
``loopapp.device.Device`` is the production composition of the same parts.

By default the player runs single-threaded on a fake clock: tests call ``pump()`` to let it
play, which keeps them deterministic. ``threaded=True`` (the browser tests) runs the player
on its own thread with the real clock, as on the device.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask

from libloop.clock import FakeClock, MonotonicClock
from libloop.color import rgb888_to_rgb565
from libloop.health import FakeWifi, ResourceMonitor, Supervisor
from libloop.ili9341 import Rotation
from libloop.index import Item, Library, NewItem
from libloop.media.codec_zstd import ZstdWriter
from libloop.media.rerender import Rerenderer
from libloop.player.player import Player, evict_and_delete
from libloop.settings import DeviceSettings
from libloop.settings.live import LiveSettings
from sim.wiring import SimWiring
from webapp import create_app

MB = 1024 * 1024


class SimServices:
    """The services the web app needs, on a simulated panel (see the module docstring)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        threaded: bool = False,
        max_upload_bytes: int = 16 * MB,
        disk_usage: Callable[[str], Any] | None = None,
        defaults: DeviceSettings | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.upload_dir = data_dir / "incoming"
        self.preview_dir = data_dir / "previews"
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        self.max_upload_bytes = max_upload_bytes
        self.threaded = threaded
        self.library = Library(data_dir).open()
        self._imports: Any = None
        # The live settings and the background re-render, composed as loopapp.device does. Unless
        # ``defaults`` says otherwise, a device whose first-run question was answered.
        self.settings = LiveSettings(
            self.library, defaults if defaults is not None else DeviceSettings(orientation_asked=True)
        )
        self.rerender = Rerenderer(
            self.library, self.settings.wanted, worker="inline", on_change=lambda: self.imports.poke()
        )
        clock = MonotonicClock() if threaded else FakeClock(0.0)
        self.wiring = SimWiring(clock=clock)
        self.display = self.wiring.display(rotation=Rotation(self.settings.current().rotation))
        self.display.open()
        self.player = Player(self.display, self.library, clock=clock, settings=self.settings.play_settings)
        self.settings.attach(player=self.player, rerender=self.rerender)
        self.resources = (
            ResourceMonitor(data_dir)
            if disk_usage is None
            else ResourceMonitor(data_dir, disk_usage=disk_usage)
        )
        self.resources.sample()
        self.wifi_monitor = FakeWifi()
        self.supervisor = Supervisor(clock)
        self.supervisor.add_section("resources", self.resources.snapshot)
        self.supervisor.add_section("wifi", lambda: self.wifi_monitor.status().to_dict())
        if threaded:
            self.player.start()

    # --- the Services protocol ---------------------------------------------------------

    @property
    def imports(self) -> Any:
        """The import queue, made on first use."""
        if self._imports is None:
            from libloop.media.jobs import ImportQueue

            self._imports = ImportQueue(
                self.library, staging_dir=self.upload_dir, worker="inline", dedupe=True
            )
            self.settings.attach(imports=self._imports)
            self._imports.set_background(self.rerender)
        return self._imports

    def delete_item(self, item_id: str) -> None:
        evict_and_delete(self.player, self.library, item_id)

    def display_png(self) -> bytes:
        out = io.BytesIO()
        self.wiring.snapshot(self.display.rotation).save(out, format="PNG")
        return out.getvalue()

    def display_image(self) -> Any:
        return self.wiring.snapshot()

    def display_version(self) -> int:
        return int(self.wiring.panel.version)

    def health(self) -> Mapping[str, Any]:
        return self.supervisor.snapshot()

    def wifi(self) -> Mapping[str, Any]:
        return self.wifi_monitor.status().to_dict()

    def check_upload(self, size: int | None) -> None:
        self.resources.check_upload(size or 0)

    # --- test helpers --------------------------------------------------------------------

    def pump(self, seconds: float = 0.5) -> None:
        """Let the single-threaded player play ``seconds`` of simulated time."""
        if not self.threaded:
            self.player.run_until(self.player.clock.monotonic() + seconds)

    def settle_imports(self) -> None:
        """Wait until the import queue has finished everything (it is made afresh on next use)."""
        if self._imports is not None:
            self._imports.close()
            self._imports = None

    def close(self) -> None:
        self.rerender.close()
        self.player.stop()
        close_imports = getattr(self._imports, "close", None)
        if close_imports is not None:
            close_imports()
        self.display.close()
        self.library.close()


def add_solid_item(
    library: Library, name: str, colors: list[tuple[int, int, int]], duration_ms: int = 100
) -> Item:
    """Add an item whose frames are solid colours, straight through the frame-file writer."""
    width, height = 240, 320
    path = library.staging_path()
    with ZstdWriter(path, width, height) as writer:
        for color in colors:
            rgb = np.empty((height, width, 3), dtype=np.uint8)
            rgb[:] = color
            writer.add_frame(rgb888_to_rgb565(rgb), duration_ms)
        writer.commit()
    meta = NewItem(
        name=name,
        kind="gif" if len(colors) > 1 else "image",
        frames=len(colors),
        duration_ms=duration_ms * len(colors),
        width=width,
        height=height,
        source_name=name,
        content_hash=f"test-{name}-{colors}",
    )
    return library.add(path, meta)


def gif_bytes(colors: list[tuple[int, int, int]], size: tuple[int, int] = (48, 64)) -> bytes:
    """A small animated GIF (one solid colour a frame), as uploaded by a person."""
    from PIL import Image

    frames = [Image.new("RGB", size, color) for color in colors]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


@pytest.fixture
def device(tmp_path: Path) -> Iterator[SimServices]:
    """A simulated device in a temporary data directory (single-threaded player)."""
    svc = SimServices(tmp_path / "data")
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def app(device: SimServices) -> Flask:
    """The web app on the simulated device."""
    return create_app(device, {"TESTING": True})


CSRF = {"X-Loop-Request": "1"}
