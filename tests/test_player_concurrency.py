"""The delete guarantee under concurrency: the player thread runs on the real clock while
another thread adds, reorders, disables and deletes items.

Every item's frames use colours no other item uses, and the fake bus records every payload,
so the bus transcript tells which item each pixel transfer belonged to. After ``evict`` +
``library.delete`` return, not one transfer of that item may start.
"""

from __future__ import annotations

import random
import secrets
import time
from pathlib import Path

import numpy as np
import pytest

from libloop.clock import MonotonicClock
from libloop.index import Library, NewItem
from libloop.media.codec_zstd import ZstdWriter
from libloop.player import Player
from sim.wiring import SimWiring

W, H = 240, 320


def _code(i: int, variant: int) -> bytes:
    """A two-byte RGB565 colour unique to item ``i`` (high byte >= 0x20: never a coordinate)."""
    value = 0x2000 + i * 4 + variant
    return value.to_bytes(2, "big")


def _frames(i: int) -> list[np.ndarray]:
    frames = []
    for variant in range(2):
        code = np.frombuffer(_code(i, 2 + variant), dtype=np.uint8)
        f = np.empty((H, W, 2), dtype=np.uint8)
        f[:] = np.frombuffer(_code(i, 0), dtype=np.uint8)
        f[100:116, 100:116] = code  # a 16x16 square that changes colour every frame
        frames.append(f)
    return frames


def _add(library: Library, i: int) -> str:
    path = library.staging_path()
    with ZstdWriter(path, W, H) as writer:
        for f in _frames(i):
            writer.add_frame(f, 15)
        writer.commit()
    meta = NewItem(f"item{i}", "gif", 2, 30, W, H, f"item{i}.gif", secrets.token_hex(8))
    return library.add(path, meta).id


def _owner(payload: bytes | None, codes: dict[bytes, int]) -> int | None:
    if payload is None or len(payload) < 32:
        return None  # command arguments (windows), not pixels
    return codes.get(payload[:2])


@pytest.mark.parametrize("seed", range(6))
def test_no_frame_of_a_deleted_item_after_delete_returns(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    clock = MonotonicClock()
    wiring = SimWiring(clock=clock, record_payloads=True)
    display = wiring.display()
    display.open()
    library = Library(tmp_path / "data", clock=clock).open()
    errors: list[BaseException] = []
    player = Player(display, library, clock=clock, refresh_interval=0.5, on_fatal=errors.append)
    codes: dict[bytes, int] = {}
    ids: dict[int, str] = {}
    next_index = 0

    def add() -> None:
        nonlocal next_index
        i = next_index
        next_index += 1
        for v in range(4):
            codes[_code(i, v)] = i
        ids[i] = _add(library, i)

    for _ in range(3):
        add()
    deleted_at: dict[int, float] = {}
    player.start()
    try:
        for _ in range(30):
            time.sleep(rng.uniform(0.0, 0.03))  # let it play a little (pacing, not synchronisation)
            op = rng.choice(["delete", "delete", "add", "reorder", "disable", "next", "show"])
            live = [i for i in ids if i not in deleted_at]
            if op == "add" or not live:
                add()
            elif op == "delete":
                i = rng.choice(live)
                # Prefer the item on the panel: that is the hard case.
                current = player.status().current
                for j in live:
                    if ids[j] == current and rng.random() < 0.7:
                        i = j
                player.evict(ids[i], timeout=2.0)
                library.delete(ids[i])
                deleted_at[i] = clock.monotonic()
            elif op == "reorder":
                order = [it.id for it in library.items()]
                rng.shuffle(order)
                library.reorder(order)
            elif op == "disable":
                item_id = ids[rng.choice(live)]
                library.update(item_id, enabled=not library.get(item_id).enabled)
            elif op == "next":
                player.next()
            else:
                playable = [it.id for it in library.playlist()]
                if playable:
                    player.show(rng.choice(playable))
        # An observation window, not synchronisation: a frame of a deleted item sent late
        # would land in the transcript during it.
        time.sleep(0.05)
    finally:
        player.stop()
        library.close()
    assert not errors
    assert deleted_at, "the run deleted nothing"
    transcript = list(wiring.device.transcript)
    pixel_transfers = 0
    for entry in transcript:
        owner = _owner(entry.data, codes)
        if owner is None:
            continue
        pixel_transfers += 1
        if owner in deleted_at:
            assert entry.t <= deleted_at[owner], f"item {owner} reached the bus after its delete returned"
    assert pixel_transfers > 50  # it really was playing all along
