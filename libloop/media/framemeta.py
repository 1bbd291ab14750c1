"""The metadata block at the end of a frame file: what the index knows of the item, kept with its pixels.

A frame file carries its pixels, durations and size; this block adds what only the index
knew — the item's id, name, kind, play position and play settings — so that ``loop fsck
--repair`` can rebuild a lost or unreadable index from ``frames/`` alone. It is a section of
its own, independent of the frame format's version, found from the end of the file:

* the block is the last ``BLOCK_SIZE`` (4096) bytes of the file, starting on a page boundary
  (the frame format ignores what follows its own data: see ``framefile``);
* it ends with a 16-byte footer: magic ``LOOPMETA``, block version (u16), slot size (u16),
  and a CRC-32 of those 12 bytes (u32), all little-endian;
* before the footer, two slots of ``SLOT_SIZE`` bytes. A slot is a sequence number (u32), a
  payload length (u32), a CRC-32 of the sequence number and the payload (u32), then the
  payload: a UTF-8 JSON object (``{"v": 1, "id": ..., "name": ..., ...}``), zero-padded.

Readers take the valid slot with the higher sequence number. An update rewrites only the
other slot, so a write torn by a power cut leaves the previous metadata readable. The block is
a hint for repairs, not the record of truth (that is the index): updates are not fsynced,
and a file without a block (made before blocks existed) still plays and is still rebuilt from
(its id is its file name; see ``libloop.index.rebuild``).
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["BLOCK_SIZE", "META_VERSION", "append_meta", "read_meta", "write_meta"]

MAGIC = b"LOOPMETA"
BLOCK_VERSION = 1
#: Version of the JSON payload (its "v" field).
META_VERSION = 1
BLOCK_SIZE = 4096
PAGE = 4096
_FOOTER = struct.Struct("<8sHHI")
_SLOT_HEAD = struct.Struct("<III")
SLOT_SIZE = (BLOCK_SIZE - _FOOTER.size) // 2
MAX_PAYLOAD = SLOT_SIZE - _SLOT_HEAD.size
#: Text fields cut to this many characters when the payload would not fit a slot.
_SHORTEN = ("source_name", "name")


def _footer() -> bytes:
    head = _FOOTER.pack(MAGIC, BLOCK_VERSION, SLOT_SIZE, 0)[:-4]
    return head + struct.pack("<I", zlib.crc32(head))


def _encode(meta: Mapping[str, Any]) -> bytes:
    """The JSON payload of ``meta``; long text fields are shortened until it fits a slot."""
    body = {"v": META_VERSION, **meta}
    for field in (None, *_SHORTEN):
        if field is not None and isinstance(body.get(field), str):
            body[field] = body[field][:60]
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
        if len(payload) <= MAX_PAYLOAD:
            return payload
    raise ValueError(f"the metadata does not fit in {MAX_PAYLOAD} bytes")


def _slot(seq: int, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(struct.pack("<I", seq)))
    return _SLOT_HEAD.pack(seq, len(payload), crc) + payload.ljust(MAX_PAYLOAD, b"\0")


def _parse_slot(raw: bytes) -> tuple[int, dict[str, Any]] | None:
    seq, length, crc = _SLOT_HEAD.unpack_from(raw, 0)
    if not 0 < length <= MAX_PAYLOAD:
        return None
    payload = raw[_SLOT_HEAD.size : _SLOT_HEAD.size + length]
    if zlib.crc32(payload, zlib.crc32(struct.pack("<I", seq))) != crc:
        return None
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("v"), int):
        return None
    return seq, value


def _read_block(fd: int) -> tuple[int, list[tuple[int, dict[str, Any]] | None]] | None:
    """(offset of the block, its two parsed slots) or None when the file ends in no valid block."""
    size = os.fstat(fd).st_size
    if size < BLOCK_SIZE or size % PAGE:
        return None
    start = size - BLOCK_SIZE
    raw = os.pread(fd, BLOCK_SIZE, start)
    if len(raw) != BLOCK_SIZE or raw[-_FOOTER.size :] != _footer():
        return None
    slots = [_parse_slot(raw[k * SLOT_SIZE : (k + 1) * SLOT_SIZE]) for k in (0, 1)]
    return start, slots


def read_meta(path: Path) -> dict[str, Any] | None:
    """The newest valid metadata of the frame file at ``path``, or None (no block, or both slots bad).

    Never raises for a damaged file; an unreadable one (``OSError``) is reported as None too.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        block = _read_block(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    if block is None:
        return None
    valid = [slot for slot in block[1] if slot is not None]
    if not valid:
        return None
    return max(valid, key=lambda s: s[0])[1]


def append_meta(fd: int, data_end: int, meta: Mapping[str, Any]) -> int:
    """Add a block holding ``meta`` after ``data_end`` (the end of the frame data) in an open file.

    The caller owns ``fd`` (opened for writing) and fsyncs it. Returns the new file size.
    """
    start = (data_end + PAGE - 1) // PAGE * PAGE
    block = _slot(1, _encode(meta)) + bytes(SLOT_SIZE) + _footer()
    os.ftruncate(fd, start)
    written = os.pwrite(fd, block, start)
    if written != len(block):
        raise OSError(f"short write of the metadata block ({written} of {len(block)} bytes)")
    return start + len(block)


def write_meta(path: Path, meta: Mapping[str, Any], *, data_end: int | None = None) -> bool:
    """Store ``meta`` in the file's block: the older slot is overwritten; no fsync (a repair hint).

    A file without a block gets one appended when ``data_end`` (where its frame data ends) is
    given and matches the file's size; otherwise nothing is written and False is returned.
    Raises ``OSError`` when the file cannot be written.
    """
    payload = _encode(meta)
    fd = os.open(path, os.O_RDWR)
    try:
        block = _read_block(fd)
        if block is None:
            if data_end is None or os.fstat(fd).st_size != data_end:
                return False
            append_meta(fd, data_end, meta)
            return True
        start, slots = block
        seqs = [slot[0] if slot is not None else -1 for slot in slots]
        older = 0 if seqs[0] <= seqs[1] else 1
        seq = max(max(seqs), 0) + 1
        os.pwrite(fd, _slot(seq, payload), start + older * SLOT_SIZE)
        return True
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
