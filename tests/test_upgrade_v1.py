"""A library made by the previous format (v1 frame files) upgrades to v2 with nothing lost.

The library is built the way an older LOOP built it: items imported with the v1 writer (every
frame raw), renamed, reordered, one disabled. ``loop fsck`` reports each old file,
``loop fsck --repair`` converts them in place, and afterwards the ids, the order, the names,
the settings and every frame as the player sends it are what they were, in less space.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from libloop.clock import FakeClock
from libloop.index import Library
from libloop.media.framefile_v2 import file_version
from libloop.media.frames import open_frames
from libloop.media.importer import ImportOptions, import_media
from libloop.media.jobs import import_into
from libloop.player import Player
from sim.wiring import SimWiring
from tests.media_corpus import good_media_corpus

ROOT = Path(__file__).resolve().parent.parent


def snapshot_frames(
    library: Library,
) -> dict[str, list[tuple[bytes, list[tuple[int, int, int, int, bytes]], int]]]:
    """Every item's frames as the player sends them: whole frame, regions with pixels, duration."""
    out = {}
    for item in library.items():
        with open_frames(library.frame_path(item)) as frames:
            out[item.id] = [
                (
                    bytes(frames.frame(i)),
                    [(r.x0, r.y0, r.x1, r.y1, bytes(r.data)) for r in frames.regions(i)],
                    frames.durations_ms[i],
                )
                for i in range(frames.frame_count)
            ]
    return out


@pytest.fixture
def v1_library(tmp_path: Path) -> Path:
    corpus = good_media_corpus(tmp_path / "corpus")
    data = tmp_path / "data"
    options = ImportOptions(format="v1")
    with Library(data).open() as library:
        for name in ("anim.gif", "still.png", "anim.gif"):
            if name in corpus:
                import_into(
                    library, corpus[name], name, lambda s, d: import_media(s, d, options), dedupe=False
                )
        for name in sorted(corpus):
            if name.endswith((".mp4", ".webp")) and len(library.items()) < 5:
                import_into(library, corpus[name], name, lambda s, d: import_media(s, d, options))
        items = library.items()
        library.update(items[0].id, name="renamed first")
        library.update(items[1].id, enabled=False)
        library.reorder([i.id for i in reversed(items)])
        assert all(file_version(library.frame_path(i)) == 1 for i in library.items())
    return data


def _fsck(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "loopapp.cli", "fsck", "--data", str(data), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_fsck_repair_converts_a_v1_library_and_nothing_is_lost(v1_library: Path) -> None:
    from libloop.media.framemeta import read_meta

    with Library(v1_library).open() as library:
        before = library.items()
        frames_before = snapshot_frames(library)
        meta_before = {i.id: read_meta(library.frame_path(i)) for i in before}
        assert all(meta_before.values()), "the index stamped its metadata block on each file"
        bytes_before = sum(library.frame_path(i).stat().st_size for i in before)
    assert len(before) >= 3

    check = _fsck(v1_library)
    assert check.returncode != 0 and "old frame format" in check.stdout + check.stderr
    repair = _fsck(v1_library, "--repair")
    assert repair.returncode == 0, repair.stdout + repair.stderr

    with Library(v1_library).open() as library:
        after = library.items()
        assert [(i.id, i.name, i.position, i.enabled, i.frames, i.duration_ms) for i in after] == [
            (i.id, i.name, i.position, i.enabled, i.frames, i.duration_ms) for i in before
        ]
        assert all(file_version(library.frame_path(i)) == 2 for i in after)
        assert snapshot_frames(library) == frames_before
        assert {i.id: read_meta(library.frame_path(i)) for i in after} == meta_before  # carried over
        assert all(i.size_bytes == library.frame_path(i).stat().st_size for i in after)
        assert sum(i.size_bytes for i in after) < bytes_before / 3
        assert library.fsck().problems == []
        assert list(library.tmp_dir.iterdir()) == []
    assert _fsck(v1_library).returncode == 0


def test_the_player_shows_the_same_pixels_before_and_after_the_upgrade(v1_library: Path) -> None:
    def glass_sequence() -> list[bytes]:
        clock = FakeClock(1000.0)
        wiring = SimWiring(clock=clock)
        display = wiring.display()
        display.open()
        with Library(v1_library).open() as library:
            player = Player(display, library, clock=clock)
            seen = []
            for _ in range(40):
                player.step()
                seen.append(np.asarray(wiring.snapshot()).tobytes())
            player.stop()
        display.close()
        return seen

    before = glass_sequence()
    assert _fsck(v1_library, "--repair").returncode == 0
    assert glass_sequence() == before


def test_the_device_converts_a_v1_library_in_the_background_while_it_is_open(v1_library: Path) -> None:
    from libloop.index.upgrade import BackgroundUpgrade, old_format_items

    with Library(v1_library).open() as library:
        before = [(i.id, i.name, i.position) for i in library.items()]
        frames_before = snapshot_frames(library)
        assert len(old_format_items(library)) == len(before)
        upgrade = BackgroundUpgrade(v1_library)
        assert upgrade.start(library)
        assert upgrade.wait(120), "the conversion did not finish"
        assert old_format_items(library) == []
        assert [(i.id, i.name, i.position) for i in library.items()] == before
        assert snapshot_frames(library) == frames_before
        assert not BackgroundUpgrade(v1_library).start(library), "nothing left to convert"
        upgrade.stop()
