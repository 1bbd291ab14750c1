"""Live settings put to work: read them, change them, and make every part follow at once.

``LiveSettings`` is what the device hands the web app (``services.settings``) and what the
CLI's ``loop settings`` reaches through the API. A change is checked and stored (``store``),
then applied without a restart:

- the player reads the new settings and applies them before the call returns (the panel has
  turned when ``PATCH /api/settings`` answers);
- uploads from now on are rendered for the new panel shape, fit and colours;
- a change of rotation, fit, dither or background (or of an item's own fit) queues the items
  whose frame files no longer match for a background re-render from their kept originals.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Protocol

from libloop.ili9341 import Rotation, logical_size
from libloop.index.items import Item
from libloop.media.fit import FitMode
from libloop.media.importer import ImportOptions
from libloop.player.night import NightSchedule, local_zone
from libloop.player.ports import PlaySettings

from .schema import RENDER_KEYS, DeviceSettings, Night
from .store import SettingsStore

__all__ = ["LiveSettings"]


class _Library(Protocol):
    @property
    def generation(self) -> int: ...
    @property
    def settings(self) -> Any: ...


class _Player(Protocol):
    def apply_settings(self, timeout: float = ...) -> None: ...


class _Imports(Protocol):
    options: ImportOptions


class _Rerender(Protocol):
    def refresh(self) -> None: ...
    def progress(self) -> dict[str, Any]: ...
    def state_of(self, item_id: str) -> str | None: ...


class LiveSettings:
    """The device's live settings (see the module docstring).

    Args:
        library: the open library (the settings live in its database).
        defaults: a fresh device's settings (the config file's ``[display]`` and night).
        options: the base import options (limits and frame delays; size, fit and colours
            come from the settings).
        tz: the time zone of the night schedule (default: this machine's).
        wall_clock: the current time, for the night schedule (tests inject one).
    """

    def __init__(
        self,
        library: _Library,
        defaults: DeviceSettings | None = None,
        *,
        options: ImportOptions | None = None,
        tz: dt.tzinfo | None = None,
        wall_clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.library = library
        self.store = SettingsStore(library, defaults)
        self.options = options or ImportOptions()
        self.tz = tz or local_zone()
        self.wall_clock = wall_clock
        self.player: _Player | None = None
        self.imports: _Imports | None = None
        self.rerender: _Rerender | None = None
        self._cached: tuple[int, DeviceSettings] | None = None

    def attach(
        self,
        *,
        player: _Player | None = None,
        imports: _Imports | None = None,
        rerender: _Rerender | None = None,
    ) -> None:
        """Name the parts that follow the settings (each optional)."""
        if player is not None:
            self.player = player
        if imports is not None:
            self.imports = imports
            imports.options = self.import_options()
        if rerender is not None:
            self.rerender = rerender

    # --- reading -------------------------------------------------------------------------

    def current(self) -> DeviceSettings:
        """The settings now (read again after any committed change of the library)."""
        generation = self.library.generation
        cached = self._cached
        if cached is None or cached[0] != generation:
            cached = (generation, self.store.current())
            self._cached = cached
        return cached[1]

    def to_dict(self) -> dict[str, Any]:
        """What ``GET /api/settings`` answers: the settings, the panel's size, the re-render."""
        settings = self.current()
        width, height = logical_size(Rotation(settings.rotation))
        body = settings.to_dict()
        body["panel"] = {"width": width, "height": height}
        body["rerender"] = (
            self.rerender.progress()
            if self.rerender is not None
            else {"done": 0, "total": 0, "running": False, "current": None, "needs_upload": [], "failed": []}
        )
        return body

    def wanted(self, item: Item) -> dict[str, Any]:
        """What ``item``'s frame file should be rendered for now (``ImportOptions.render_record``)."""
        settings = self.current()
        dither = settings.dither if item.dither is None else item.dither
        return self._record(settings, item.fit or settings.fit, dither)

    def import_options(self) -> ImportOptions:
        """How a new upload is rendered now."""
        settings = self.current()
        return self.options.for_render(self._record(settings, settings.fit, settings.dither))

    def play_settings(self) -> PlaySettings:
        """What the player follows (``Player(settings=...)``)."""
        settings = self.current()
        return PlaySettings(
            rotation=settings.rotation,
            shuffle=settings.shuffle,
            still_seconds=settings.still_seconds,
            night=self._schedule(settings.night),
            background=settings.background_rgb,
        )

    def item_state(self, item_id: str) -> str | None:
        """An item's re-render state: "pending", "needs_upload", "failed" or None (up to date)."""
        return self.rerender.state_of(item_id) if self.rerender is not None else None

    # --- changing ------------------------------------------------------------------------

    def patch(self, body: object) -> dict[str, Any]:
        """Check, store and apply a change; the new ``to_dict()``. InvalidSetting if it is wrong."""
        before = self.current()
        after = self.store.patch(body)
        self._cached = None
        if self.imports is not None:
            self.imports.options = self.import_options()
        if self.rerender is not None and any(getattr(before, k) != getattr(after, k) for k in RENDER_KEYS):
            self.rerender.refresh()
        if self.player is not None:
            self.player.apply_settings()
        return self.to_dict()

    def item_changed(self) -> None:
        """An item's own fit or dither changed: re-render what no longer matches."""
        if self.rerender is not None:
            self.rerender.refresh()

    # --- helpers -------------------------------------------------------------------------

    @staticmethod
    def _record(settings: DeviceSettings, fit: str, dither: bool) -> dict[str, Any]:
        width, height = logical_size(Rotation(settings.rotation))
        return {
            "width": width,
            "height": height,
            "fit": str(FitMode(fit)),
            "dither": dither,
            "background": settings.background,
        }

    def _schedule(self, night: Night | None) -> NightSchedule | None:
        if night is None:
            return None
        kwargs: dict[str, Any] = {"days": night.days, "brightness": night.brightness, "tz": self.tz}
        return NightSchedule.parse(night.start, night.end, self.wall_clock, **kwargs)
