"""Who this device is on the network: a stable id per data directory, and its host name.

The id names the device in Home Assistant (its ``unique_id`` values, discovery topics and
default MQTT topic), so it must never change while the data directory lives: it is created
once, written atomically to ``DATA/device-id`` and read back ever after. It is kept out of
the SQLite index on purpose, so that ``loop fsck --repair`` rebuilding a damaged database
does not make Home Assistant see a new device.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
from pathlib import Path

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
    new = f"loop-{secrets.token_hex(5)}"
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{ID_FILE}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="ascii") as out:
        out.write(new + "\n")
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(tmp, path)  # never replaces an id another process wrote meanwhile
    except FileExistsError:
        other = _read(path)
        if other is not None:
            tmp.unlink()
            return other
        os.replace(tmp, path)  # the file was damaged: a new id is all that can be done
    else:
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
