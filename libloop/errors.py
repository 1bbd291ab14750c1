"""Typed errors of the library.

Every error's ``str()`` is one sentence a person can act on: what happened and what to do.
The faces (CLI, HTTP) print it as it is; they never need to inspect a traceback.
Modules add their own subclasses here so there is one place to look them up.
"""

from __future__ import annotations


class LoopError(Exception):
    """Base class of every error LOOP raises on purpose."""

    #: A short machine-readable code, used by the HTTP API's error body.
    code: str = "loop_error"


class MissingExtra(LoopError):
    """An optional dependency is not installed."""

    code = "missing_extra"

    def __init__(self, what: str, extra: str, package: str | None = None) -> None:
        self.extra = extra
        self.package = package or extra
        super().__init__(f"{what} needs the {extra} extra: pip install 'libloop[{extra}]'.")


# --- hardware and transports ---------------------------------------------------------


class HardwareError(LoopError):
    """The SPI bus, a GPIO line or the panel misbehaved."""

    code = "hardware_error"


class TransportError(HardwareError):
    """An SPI or GPIO operation failed."""

    code = "transport_error"


class TransportTimeout(TransportError):
    """An SPI or GPIO operation did not finish within its bound (a hung driver or bus)."""

    code = "transport_timeout"


class TransferCut(TransportError):
    """An SPI transfer failed part-way and the bus has changed how it sends; resend the whole operation.

    Raised by a bus that switched to smaller transfers after a driver fault (the Pi 5's DMA
    timeouts). Some of the failed transfer may have reached the panel, so the caller must
    start the operation again from its address window; the display does this itself.
    """

    code = "spi_transfer_cut"


class DeviceNotFound(HardwareError):
    """A device node (``/dev/spidev*``, ``/dev/gpiochip*``) does not exist."""

    code = "device_not_found"


class DevicePermissionError(HardwareError):
    """A device node exists but this user may not open it."""

    code = "device_permission"


# --- media -----------------------------------------------------------------------------


class MediaError(LoopError):
    """An uploaded file could not be turned into frames."""

    code = "media_error"


class UnsupportedMedia(MediaError):
    """The content is not a picture, animation or video LOOP can read."""

    code = "unsupported_media"


class CorruptMedia(MediaError):
    """The file is truncated or damaged."""

    code = "corrupt_media"


class EmptyMedia(MediaError):
    """The file has no content (zero bytes, zero frames, zero-length video)."""

    code = "empty_media"


class MediaTooLarge(MediaError):
    """The file's dimensions, pixel count or frame count exceed the documented limits."""

    code = "media_too_large"


class FrameFileError(LoopError):
    """A display-ready frame file is damaged or of an unknown version."""

    code = "frame_file_error"


# --- index -----------------------------------------------------------------------------


class LibraryError(LoopError):
    """The media library (index) could not do what was asked."""

    code = "library_error"


class ItemNotFound(LibraryError):
    """No item with that id is in the library."""

    code = "not_found"

    def __init__(self, item_id: str) -> None:
        self.item_id = item_id
        super().__init__(f"No item with id {item_id!r} is in the library; list the library to see the ids.")


class InvalidChange(LibraryError):
    """A change to the library is malformed (e.g. a play order that is not a permutation)."""

    code = "invalid_change"


class DiskFull(LoopError):
    """There is not enough free space to finish writing."""

    code = "disk_full"


# --- player ----------------------------------------------------------------------------


class PlayerError(LoopError):
    """The player could not do what was asked."""

    code = "player_error"


# --- health ----------------------------------------------------------------------------


class StorageFull(DiskFull):
    """Free space on the data directory's disk would drop below the reserve."""

    code = "storage_full"

    def __init__(self, free_mb: int) -> None:
        self.free_mb = free_mb
        super().__init__(
            f"The SD card is nearly full ({free_mb} MB free); delete some media before uploading more."
        )


# --- index (appended) ------------------------------------------------------------------


class SchemaTooNew(LibraryError):
    """The library database was written by a newer LOOP than this one."""

    code = "schema_too_new"

    def __init__(self, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"The library database has schema version {found}, newer than this LOOP understands "
            f"({supported}); upgrade LOOP to use it."
        )


class LegacyIndexError(LibraryError):
    """An old device's media_index.json could not be imported."""

    code = "legacy_index_error"


# --- media import jobs (appended) --------------------------------------------------------


class ImportWorkerError(MediaError):
    """The worker process converting an upload stopped without a result (e.g. killed for memory)."""

    code = "import_worker_failed"


class JobNotFound(LoopError):
    """No import job with that id is known."""

    code = "not_found"

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"No import job with id {job_id!r} is known; it may have finished long ago.")


class ImportQueueClosed(LoopError):
    """The import queue is shut down and takes no more uploads."""

    code = "import_queue_closed"


# --- export (appended) -------------------------------------------------------------------


class ExportError(LoopError):
    """``loop export`` cannot write its frames where it was asked to."""

    code = "export_error"


# --- player (appended) -------------------------------------------------------------------


class ItemDisabled(PlayerError):
    """The item to show is in the library but disabled, so the player does not play it."""

    code = "item_disabled"

    def __init__(self, item_id: str, name: str) -> None:
        self.item_id = item_id
        super().__init__(
            f"The item {name!r} is disabled, so it is not played; enable it first (its switch on "
            f'the dashboard, or PATCH /api/media/{item_id} with {{"enabled": true}}).'
        )


# --- API tokens (appended) ---------------------------------------------------------------


class InvalidSetting(InvalidChange):
    """A device setting's name or value is not one LOOP knows; the message says what is allowed."""

    code = "invalid_setting"


class TokenNotFound(LibraryError):
    """No API token with that name exists."""

    code = "not_found"

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"There is no API token named {name!r}; `loop token ls` lists them.")


class TokenExists(LibraryError):
    """An API token with that name already exists."""

    code = "token_exists"

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"An API token named {name!r} already exists; choose another name or revoke that one first."
        )


# --- storage faults (appended) ---------------------------------------------------------


class StorageError(LoopError):
    """The data directory's disk failed a read or a write (an I/O error, a read-only card)."""

    code = "storage_error"


class StorageReadOnly(StorageError):
    """The data directory is on a read-only file system (a card the kernel remounted read-only)."""

    code = "storage_read_only"


class LibraryDamaged(LibraryError):
    """The library database is damaged: ``loop fsck --repair`` sets it aside and rebuilds it."""

    code = "library_damaged"


class LibraryUnavailable(LibraryError):
    """The library could not be opened at start-up; the device runs without it until repaired."""

    code = "library_unavailable"
