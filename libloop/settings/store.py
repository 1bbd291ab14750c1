"""The live settings kept in the library database, over the config file's defaults.

Each setting the person changed is stored under ``device.<name>`` in the library's settings
table, all of one change in one transaction (so it survives a restart, and the player hears
about it through the library's generation like any other change). A setting never changed
has the value of ``defaults`` (the config file's ``[display]``, for a fresh device); once the
API or the CLI sets it, the stored value wins.
"""

from __future__ import annotations

from typing import Any, Protocol

from libloop.errors import InvalidSetting

from .schema import KEYS, DeviceSettings, check, validate_patch

PREFIX = "device."


class _KeyValues(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...
    def update(self, values: dict[str, Any]) -> None: ...
    def as_dict(self) -> dict[str, Any]: ...


class _HasSettings(Protocol):
    @property
    def settings(self) -> _KeyValues: ...


class SettingsStore:
    """``current()`` and ``patch(changes)`` of one library's live settings.

    Args:
        library: the open library (``libloop.index.Library``) whose settings table holds them.
        defaults: a fresh device's values (the config file's).
    """

    def __init__(self, library: _HasSettings, defaults: DeviceSettings | None = None) -> None:
        self._library = library
        self.defaults = defaults or DeviceSettings()

    def stored(self) -> dict[str, Any]:
        """The settings that were changed (not defaults), as stored; a damaged value is skipped."""
        everything = self._library.settings.as_dict()
        found: dict[str, Any] = {}
        for key in KEYS:
            if PREFIX + key in everything:
                try:
                    found[key] = check(key, everything[PREFIX + key], self.defaults)
                except InvalidSetting:
                    continue  # written by something else; the default stands
        return found

    def current(self) -> DeviceSettings:
        """Every setting: the stored ones over the defaults."""
        return self.defaults.changed(self.stored())

    def patch(self, body: object) -> DeviceSettings:
        """Check and store a change (any of the settings); return the settings after it.

        Choosing a rotation also counts as having answered the first-run orientation question.

        Raises:
            InvalidSetting: a name or value that is wrong (nothing is stored).
        """
        current = self.current()
        changes = validate_patch(body, current)
        if "rotation" in changes and "orientation_asked" not in changes:
            changes["orientation_asked"] = True
        self._library.settings.update({PREFIX + key: value for key, value in changes.items()})
        return current.changed(changes)
