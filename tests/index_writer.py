"""Helpers for the index tests, and the writer process the crash tests kill.

As a program: ``python tests/index_writer.py DATA SEED OPS`` opens the library in DATA and
performs OPS random adds, deletes, reorders and moves (seeded). Before each change it prints
``BEGIN <op> <json>`` and after the call returns ``ACK <op> <json>``, flushed, so the parent
knows exactly which changes were acknowledged and which one was in flight when it was killed.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from libloop.errors import InvalidChange, ItemNotFound  # noqa: E402
from libloop.index import Library, NewItem  # noqa: E402
from libloop.media.codec_zstd import ZstdWriter  # noqa: E402


def make_frame_file(
    path: Path,
    seed: int,
    *,
    frames: int = 2,
    width: int = 8,
    height: int = 6,
    content_hash: str | None = None,
) -> NewItem:
    """Write a small valid frame file at ``path`` and return metadata describing it."""
    rng = np.random.default_rng(seed)
    with ZstdWriter(path, width, height) as writer:
        for _ in range(frames):
            writer.add_frame(rng.integers(0, 256, (height, width, 2), dtype=np.uint8), 40)
        writer.commit()
    digest = content_hash or hashlib.sha256(f"source-{seed}".encode()).hexdigest()
    return NewItem(
        name=f"clip {seed}",
        kind="gif" if frames > 1 else "image",
        frames=frames,
        duration_ms=40 * frames,
        width=width,
        height=height,
        source_name=f"clip{seed}.gif",
        content_hash=digest,
    )


def make_original(lib: Library, content: bytes) -> tuple[Path, str]:
    """An upload to keep as an original: written to a staging path; returns it and its hash."""
    path = lib.staging_path(".original")
    path.write_bytes(content)
    return path, hashlib.sha256(content).hexdigest()


#: The "uploaded bytes" of the items this run added without an original (their hash matches).
_SOURCES: dict[str, bytes] = {}


def emit(kind: str, op: str, payload: object) -> None:
    sys.stdout.write(f"{kind} {op} {json.dumps(payload)}\n")
    sys.stdout.flush()


def run(data: Path, seed: int, ops: int, *, shared: bool = False) -> None:
    """Perform ``ops`` seeded random changes, reporting each (see the module docstring).

    With ``shared`` another writer works on the same library, so a change built from a stale
    view may be refused (InvalidChange, ItemNotFound); that is reported as ``REJECT``.
    """
    rng = random.Random(seed)
    with Library(data) as lib:
        emit("READY", "-", lib.generation)
        for n in range(ops):
            try:
                _one_change(lib, rng, seed, n)
            except (InvalidChange, ItemNotFound) as err:
                if not shared:
                    raise
                emit("REJECT", "-", str(err))
        emit("DONE", "-", lib.generation)


def _one_change(lib: Library, rng: random.Random, seed: int, n: int) -> None:
    ids = [i.id for i in lib.items()]
    choice = rng.random()
    bare = [i for i in lib.items() if i.original is None and i.id in _SOURCES]
    if bare and choice >= 0.95:  # an old item uploaded again: it adopts the upload as its original
        target = rng.choice(bare)
        emit("BEGIN", "adopt", target.id)
        original = lib.staging_path(".original")
        original.write_bytes(_SOURCES[target.id])
        lib.adopt_original(target.id, original)
        emit("ACK", "adopt", target.id)
    elif not ids or choice < 0.40:
        item_id = f"s{seed}n{n}"
        emit("BEGIN", "add", item_id)
        staged = lib.staging_path()
        if rng.random() < 0.6:  # with a kept original, from a small pool: some share one
            original, digest = make_original(lib, f"upload {rng.randrange(4)}".encode() * 50)
            meta = make_frame_file(staged, seed * 1000 + n, content_hash=digest)
            lib.add(staged, meta, item_id=item_id, original=original, render={"width": 8, "height": 6})
        else:
            meta = make_frame_file(staged, seed * 1000 + n)
            lib.add(staged, meta, item_id=item_id)
            _SOURCES[item_id] = f"source-{seed * 1000 + n}".encode()
        emit("ACK", "add", item_id)
    elif choice < 0.58:
        victim = rng.choice(ids)
        emit("BEGIN", "delete", victim)
        lib.delete(victim)
        emit("ACK", "delete", victim)
    elif choice < 0.68:  # a re-render swaps a new frame file into the item
        target = rng.choice(ids)
        emit("BEGIN", "rerender", target)
        staged = lib.staging_path()
        meta = make_frame_file(staged, seed * 1000 + n, frames=3)
        lib.replace_frames(target, staged, frames=3, duration_ms=meta.duration_ms, render={"n": n})
        emit("ACK", "rerender", target)
    elif choice < 0.85:
        order = ids[:]
        rng.shuffle(order)
        emit("BEGIN", "reorder", order)
        lib.reorder(order)
        emit("ACK", "reorder", order)
    else:
        target, position = rng.choice(ids), rng.randrange(len(ids))
        emit("BEGIN", "move", [target, position])
        lib.move(target, position)
        emit("ACK", "move", [target, position])


if __name__ == "__main__":
    run(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), shared=len(sys.argv) > 4)
