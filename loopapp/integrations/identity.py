"""Who this device is on the network: a stable id per data directory, and its host name.

The id names the device in Home Assistant (its ``unique_id`` values, discovery topics and
default MQTT topic), so it must never change while the data directory lives: it is created
once, written atomically to ``DATA/device-id`` and read back ever after. It is kept out of
the SQLite index on purpose, so that ``loop fsck --repair`` rebuilding a damaged database
does not make Home Assistant see a new device.

A new id is derived from the machine's id and the data directory's path rather than drawn
at random, so that a device that cannot write it (a full or read-only card) still starts,
under the same id it will store once it can.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import socket
from pathlib import Path

log = logging.getLogger(__name__)

#: The file in the data directory that holds the id.
ID_FILE = "device-id"
#: What an id looks like: also a valid MQTT topic level and Home Assistant discovery node id.
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{4,64}")


def device_id(data_dir: Path) -> str:
    """This data directory's device id, created on first use (``loop-`` and 10 hex digits)."""
    path = data_dir / ID_FILE
    existing = _read(path)
    if existing is not None:
        return existing
    new = derived_id(data_dir)
    try:
        return _store(data_dir, path, new)
    except OSError as exc:
        log.warning("cannot store the device id in %s (%s); using %s until it can be", path, exc, new)
        return new


def derived_id(data_dir: Path, machine_id: Path = Path("/etc/machine-id")) -> str:
    """The id a new data directory gets: stable for this machine and this path."""
    try:
        seed = machine_id.read_bytes().strip()
    except OSError:
        seed = b""
    if not seed:
        seed = secrets.token_bytes(16)  # no machine id: random, and stored below
    digest = hashlib.blake2b(seed + b"\0" + os.fsencode(data_dir.resolve()), digest_size=5).hexdigest()
    return f"loop-{digest}"


def _store(data_dir: Path, path: Path, new: str) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{ID_FILE}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="ascii") as out:
            out.write(new + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)  # never replaces an id another process wrote meanwhile
        except FileExistsError:
            other = _read(path)
            if other is not None:
                return other
            os.replace(tmp, path)  # the file was damaged: a new id is all that can be done
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    with contextlib.suppress(OSError):
        fd = os.open(data_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return new


def _read(path: Path) -> str | None:
    with contextlib.suppress(OSError, UnicodeDecodeError):
        text = path.read_text(encoding="ascii").strip()
        if ID_PATTERN.fullmatch(text):
            return text
    return None


def hostname() -> str:
    """This machine's short host name (what ``<hostname>.local`` is made of)."""
    name = socket.gethostname().split(".")[0].strip()
    return name or "loop"
