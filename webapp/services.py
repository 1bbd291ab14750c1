"""What the web app needs from the device: the ``Services`` protocol.

The app never imports the device; ``create_app(services)`` is handed an object with this
shape (``loopapp.device.Device`` in production, a test fixture built from the same real
parts in tests) and keeps it in ``app.extensions["loop"]``. Everything the HTTP API does goes
through these calls, so the protocol is the whole contract between the two.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from flask import Flask, current_app


class ItemLike(Protocol):
    """An item of the library (``libloop.index.Item``)."""

    @property
    def id(self) -> str: ...

    def to_dict(self) -> dict[str, Any]:
        """The SPEC's item shape (id, name, kind, frames, duration_ms, width, height, enabled, position)."""
        ...


class SettingsLike(Protocol):
    """The library's durable key-value settings (``Library.settings``)."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> bool: ...


class TokenInfoLike(Protocol):
    """What is known about an API token (``libloop.index.TokenInfo``), never its secret."""

    @property
    def name(self) -> str: ...

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "created", "last_used"}`` (ISO 8601 times; ``last_used`` may be null)."""
        ...


class TokensLike(Protocol):
    """Named API tokens (``Library.tokens``, ``libloop.index.ApiTokens``)."""

    def create(self, name: str) -> str:
        """A new token's secret; ``InvalidChange`` for a bad name, ``TokenExists`` for a taken one."""
        ...

    def list(self) -> Sequence[TokenInfoLike]: ...

    def revoke(self, name: str) -> None:
        """Delete a token; ``TokenNotFound`` when there is none of that name."""
        ...

    def authenticate(self, secret: str) -> TokenInfoLike | None:
        """The token with this secret, or None."""
        ...


class SessionsLike(Protocol):
    """Recorded dashboard logins (``Library.sessions``, ``libloop.index.LoginSessions``)."""

    def start(self) -> str: ...
    def is_live(self, session_id: str) -> bool: ...
    def end(self, session_id: str) -> bool: ...
    def end_all(self) -> int: ...


class LibraryLike(Protocol):
    """The subset of ``libloop.index.Library`` the API uses."""

    @property
    def settings(self) -> SettingsLike: ...

    @property
    def tokens(self) -> TokensLike: ...

    @property
    def sessions(self) -> SessionsLike: ...

    def frame_path(self, item: Any) -> Path:
        """Where an item's frame file is."""
        ...

    def items(self) -> Sequence[ItemLike]:
        """Every item, in play order."""
        ...

    def get(self, item_id: str) -> ItemLike:
        """One item; raises ``ItemNotFound``."""
        ...

    def update(
        self,
        item_id: str,
        *,
        name: str | None = None,
        enabled: bool | None = None,
        loops: int | None = None,
        min_seconds: float | None = None,
        fit: Any = ...,
        seconds: Any = ...,
        dither: Any = ...,
    ) -> ItemLike:
        """Change an item's name or play settings; raises ``ItemNotFound``/``InvalidChange``.

        ``fit`` and ``seconds`` take None for the device's default; left out, they stay.
        """
        ...

    def reorder(self, ids: Sequence[str]) -> Any:
        """Set the play order; ``ids`` must be a permutation of the library's ids (``InvalidChange``)."""
        ...


class JobLike(Protocol):
    """An import job (``libloop.media.jobs.Job``)."""

    @property
    def id(self) -> str: ...

    def to_dict(self) -> dict[str, Any]:
        """The SPEC's job shape (id, filename, status, progress, item, error)."""
        ...


class ImportsLike(Protocol):
    """The import queue (``libloop.media.jobs.ImportQueue``)."""

    def submit(
        self, src_path: Path, filename: str, *, on_done: Callable[[Any], None] | None = None
    ) -> JobLike:
        """Queue ``src_path`` for import; the queue owns (and removes) the file from now on.

        ``on_done(job)`` runs when the job has finished (done or failed).
        """
        ...

    def get(self, job_id: str) -> JobLike:
        """A job by id; raises ``LoopError`` (``code == "not_found"``) for an unknown id."""
        ...

    def wait(self, job_id: str, timeout: float | None = None) -> JobLike:
        """Block until the job is done or failed, or the timeout passes; returns it either way."""
        ...


class SettingsServiceLike(Protocol):
    """The live device settings (``libloop.settings.live.LiveSettings``)."""

    def to_dict(self) -> dict[str, Any]:
        """Every setting (SPEC's shape), ``panel`` and the re-render's ``rerender`` progress."""
        ...

    def patch(self, body: object) -> dict[str, Any]:
        """Check, store and apply a change; ``to_dict()`` after it (``InvalidSetting`` if wrong)."""
        ...

    def item_state(self, item_id: str) -> str | None:
        """An item's re-render state: "pending", "needs_upload", "failed" or None (up to date)."""
        ...

    def item_changed(self) -> None:
        """An item's own fit changed: re-render what no longer matches."""
        ...


class StatusLike(Protocol):
    """The player's status (``libloop.player.PlayerStatus``)."""

    def to_dict(self) -> dict[str, Any]:
        """At least ``state``, ``current`` and ``stats`` as in the SPEC."""
        ...


class PlayerLike(Protocol):
    """The player controls the API exposes (``libloop.player.Player``)."""

    def pause(self) -> Any: ...
    def resume(self) -> Any: ...
    def next(self) -> Any: ...
    def previous(self) -> Any: ...
    def show(self, item_id: str) -> Any: ...
    def set_brightness(self, percent: int) -> Any: ...
    def sleep(self) -> Any: ...
    def wake(self) -> Any: ...
    def status(self) -> StatusLike: ...


@runtime_checkable
class Services(Protocol):
    """Everything the web app needs from the running device.

    Attributes:
        library: the media index.
        imports: the import queue.
        player: the player.
        upload_dir: where uploads are streamed to (``DATA/incoming``); same filesystem as the
            frames so an import can rename rather than copy.
        preview_dir: a directory the app may fill with cached preview GIFs (``DATA/previews``);
            the app removes stale files itself.
        max_upload_bytes: the largest request body ``POST /api/media`` accepts.
        settings: the live device settings (rotation, fit, timing, night, shuffle).
    """

    @property
    def library(self) -> LibraryLike: ...
    @property
    def imports(self) -> ImportsLike: ...
    @property
    def player(self) -> PlayerLike: ...
    @property
    def upload_dir(self) -> Path: ...
    @property
    def preview_dir(self) -> Path: ...
    @property
    def max_upload_bytes(self) -> int: ...
    @property
    def settings(self) -> SettingsServiceLike: ...

    def delete_item(self, item_id: str) -> None:
        """Evict the item from the player, then delete it from the library.

        Returns only when the panel shows something else and no frame of the item can reach
        it again; raises ``ItemNotFound`` when there is no such item.
        """
        ...

    def display_png(self) -> bytes:
        """A PNG of what the panel shows now, as a person sees it (240x320 or rotated)."""
        ...

    def display_image(self) -> Any:
        """What the panel shows now, as a person sees it, as a PIL image (the live view)."""
        ...

    def display_version(self) -> int:
        """A number that changes whenever the panel shows something new (cheap: the live view
        asks it up to 30 times a second)."""
        ...

    def health(self) -> Mapping[str, Any]:
        """Components, resources and recent faults (JSON-ready)."""
        ...

    def wifi(self) -> Mapping[str, Any]:
        """Wi-Fi status (JSON-ready), e.g. ``{"connected": bool, "ssid": str|None, ...}``."""
        ...

    def check_upload(self, size: int | None) -> None:
        """Raise a ``LoopError`` (``DiskFull``) if an upload of ``size`` bytes must be refused."""
        ...


def services() -> Services:
    """The services of the current app (inside a request)."""
    return get_services(current_app)


def get_services(app: Flask) -> Services:
    """The services ``create_app`` stored on ``app``."""
    found: Services = app.extensions["loop"]
    return found
