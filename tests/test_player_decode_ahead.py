"""The player with decode-ahead on the real clock: a decoder that falls behind costs frames, never the loop.

A v2 file's frames are decoded on a worker thread; the player asks ``ready(k)`` before it sends
frame ``k``. Here the decoder is held at a gate the test controls: while it is shut the loop
keeps beating and counts the frames it could not show as dropped, and the panel keeps what it
had; once it opens, the item plays on from where the schedule is, not from where it stopped.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from libloop.clock import MonotonicClock
from libloop.index import Library, NewItem
from libloop.media import frames as frames_module
from libloop.media.codec import FrameDecoder
from libloop.media.codec_zstd import ZstdWriter
from libloop.player import Player
from sim.wiring import SimWiring

W, H = 240, 320


class GatedDecoder:
    """Wraps a real decoder; ``goto`` waits at ``gate`` once ``shut`` is set."""

    def __init__(self, inner: FrameDecoder, gate: threading.Event, shut: threading.Event) -> None:
        self._inner, self._gate, self._shut = inner, gate, shut

    def goto(self, i: int, *, pixels: bool = True) -> None:
        if self._shut.is_set():
            self._gate.wait(10)
        self._inner.goto(i, pixels=pixels)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_decoder_that_falls_behind_drops_frames_and_never_stalls_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, shut = threading.Event(), threading.Event()
    real = frames_module.make_decoder
    monkeypatch.setattr(frames_module, "make_decoder", lambda ff: GatedDecoder(real(ff), gate, shut))
    clock = MonotonicClock()
    wiring = SimWiring(clock=clock)
    display = wiring.display()
    display.open()
    library = Library(tmp_path / "data", clock=clock).open()
    path = library.staging_path()
    rng = np.random.default_rng(0)
    with ZstdWriter(path, W, H) as writer:
        for i in range(30):
            f = rng.integers(0, 256, (H, W, 2), dtype=np.uint8)
            f[:10] = i  # every frame differs
            writer.add_frame(f, 20)
        writer.commit()
    library.add(path, NewItem("clip", "gif", 30, 600, W, H, "clip.gif", "h"))

    beats = 0
    progress = threading.Condition()

    def beat() -> None:
        nonlocal beats
        with progress:
            beats += 1
            progress.notify_all()

    player = Player(display, library, clock=clock, heartbeat=beat)

    def wait_for(what: Any, timeout: float = 10.0) -> bool:
        with progress:
            return progress.wait_for(what, timeout)

    player.start()
    try:
        assert wait_for(lambda: player.stats.frames_shown >= 10), "it never played"
        shut.set()  # from now on the worker blocks inside its decoder
        shown = player.stats.frames_shown
        assert wait_for(lambda: player.stats.frames_dropped >= 20), "late frames were not dropped"
        assert player.stats.frames_shown <= shown + frames_module.DEPTH + 1  # what was decoded already
        held = beats
        assert wait_for(lambda: beats >= held + 3), "the loop stopped beating while the decoder was stuck"
        gate.set()
        shut.clear()
        resumed = player.stats.frames_shown
        assert wait_for(lambda: player.stats.frames_shown >= resumed + 10), "it did not play on"
        assert player.status().state == "playing" and not player.status().faults
    finally:
        gate.set()
        player.stop()
        library.close()
        display.close()
