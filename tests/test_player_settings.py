"""The player following live settings, on the simulated rig with a fake clock.

Rotation turns the panel at once and old-shape files play fitted; a re-rendered file is
picked up at the item's next turn; stills stay on for ``still_seconds`` or their own
``seconds``; an animation's ``seconds`` cuts its turn; shuffle plays rounds; a night dims.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from libloop.color import rgb888_to_rgb565
from libloop.ili9341 import Rotation
from libloop.index import Item
from libloop.media.framefile import FrameFileWriter
from libloop.player.night import NightSchedule
from libloop.player.ports import PlaySettings
from tests.test_player_core import H, Rig, W, solid, square_frames

UTC = dt.UTC


class Live:
    """A settings source the test changes (the device's comes from the library)."""

    def __init__(self) -> None:
        self.value = PlaySettings()

    def __call__(self) -> PlaySettings:
        return self.value

    def set(self, rig: Rig, **changes: object) -> None:
        self.value = PlaySettings(**{**self.value.__dict__, **changes})
        rig.player.apply_settings()  # queued: the loop runs it first thing in its next step
        rig.player.step()


@pytest.fixture
def live() -> Live:
    return Live()


@pytest.fixture
def rig(tmp_path: Path, live: Live) -> Iterator[Rig]:
    r = Rig(tmp_path, settings=live, shuffle_rng=random.Random(7))
    yield r
    r.close()


def rerender(rig: Rig, item: Item, width: int, height: int, rgb: tuple[int, int, int]) -> Item:
    """Swap a new frame file of ``width`` x ``height`` into ``item`` (what a re-render does)."""
    path = rig.library.staging_path()
    with FrameFileWriter(path, width, height) as writer:
        writer.add_frame(rgb888_to_rgb565(np.full((height, width, 3), rgb, np.uint8)), 100)
        writer.add_frame(rgb888_to_rgb565(np.full((height, width, 3), rgb, np.uint8) // 2), 100)
        writer.commit()
    return rig.library.replace_frames(item.id, path, frames=2, duration_ms=200, render={"width": width})


def test_a_new_rotation_turns_the_panel_at_once_and_old_files_play_fitted(rig: Rig, live: Live) -> None:
    item = rig.add([solid((0, 200, 0)), solid((0, 100, 0))], 100)
    rig.player.run_frames(2)
    live.set(rig, rotation=90)
    assert rig.display.rotation is Rotation.R90 and rig.display.size == (320, 240)
    rig.player.run_frames(1)
    glass = np.asarray(rig.wiring.snapshot(Rotation.R90).convert("RGB"))
    assert glass.shape == (240, 320, 3)
    # The portrait frames (240x320) fitted into the landscape panel: 180x240 in the middle.
    assert (
        glass[120, 160, 1] > 50 and tuple(glass[120, 20]) == (0, 0, 0) and tuple(glass[120, 300]) == (0, 0, 0)
    )
    assert rig.player.status().current == item.id and not rig.player.status().faults


def test_a_re_rendered_file_is_played_from_the_next_turn(rig: Rig, live: Live) -> None:
    a = rig.add([solid((0, 200, 0)), solid((0, 100, 0))] * 3, 100, name="a")
    b = rig.add([solid((0, 0, 200)), solid((0, 0, 100))], 100, name="b")
    live.set(rig, rotation=90)
    rig.player.run_frames(1)
    assert rig.player.status().current == a.id and rig.player.status().frame == 1
    new_a = rerender(rig, a, 320, 240, (250, 0, 0))  # during a's turn
    rig.player.run_frames(1)
    glass = np.asarray(rig.wiring.snapshot(Rotation.R90).convert("RGB"))
    assert glass[120, 160, 1] > 50  # still the old file, fitted, until the turn ends
    while rig.player.status().current != b.id:
        rig.player.run_frames(1)
    while rig.player.status().current != a.id:
        rig.player.run_frames(1)
    glass = np.asarray(rig.wiring.snapshot(Rotation.R90).convert("RGB"))
    assert glass[120, 20, 0] > 100 and glass[120, 300, 0] > 100  # the new file fills the panel
    assert not rig.library.frame_path(a).exists() and rig.library.frame_path(new_a).exists()


def turns(rig: Rig, count: int) -> list[tuple[str, float]]:
    """The next ``count`` whole turns: (item id, how long it stayed on), from the next change."""
    p, clock = rig.player, rig.clock
    while p.status().current is None:
        p.step()
    current = p.status().current
    while p.status().current == current:
        p.step()
    found: list[tuple[str, float]] = []
    began, current = clock.monotonic(), p.status().current
    while len(found) < count:
        p.step()
        if p.status().current != current:
            assert current is not None
            found.append((current, round(clock.monotonic() - began, 2)))
            began, current = clock.monotonic(), p.status().current
    return found


def test_stills_stay_on_for_still_seconds_or_their_own_seconds(rig: Rig, live: Live) -> None:
    first = rig.add([solid((255, 0, 0))], 10_000, name="first")
    second = rig.add([solid((0, 0, 255))], 10_000, name="second")
    live.set(rig, still_seconds=3)
    rig.library.update(second.id, seconds=7)
    assert turns(rig, 3) == [(second.id, 7.0), (first.id, 3.0), (second.id, 7.0)]
    live.set(rig, still_seconds=1)
    assert turns(rig, 2) == [(second.id, 7.0), (first.id, 1.0)]


def test_an_animations_own_seconds_cut_its_turn_at_a_frame_boundary(rig: Rig) -> None:
    long = rig.add(square_frames(10), 500, name="five seconds a pass")  # 5 s a pass
    other = rig.add([solid((1, 2, 3))], 1000, name="other")
    rig.library.update(long.id, seconds=2.2)
    rig.library.update(other.id, seconds=1)
    assert turns(rig, 2) == [(other.id, 1.0), (long.id, 2.5)]  # the first boundary after 2.2 s
    rig.library.update(long.id, seconds=None, loops=2)
    assert turns(rig, 2) == [(long.id, 10.0), (other.id, 1.0)]  # loops: two whole passes


def test_shuffle_plays_every_item_once_a_round(rig: Rig, live: Live) -> None:
    items = [rig.add([solid((10 * k, 0, 0))], 1000, name=f"i{k}") for k in range(5)]
    live.set(rig, shuffle=True)
    played: list[str] = []
    p = rig.player
    p.step()
    while len(played) < 15:
        current = p.status().current
        if current is not None and (not played or played[-1] != current):
            played.append(current)
        p.step()
    ids = sorted(i.id for i in items)
    rounds = [played[k : k + 5] for k in range(0, 15, 5)]
    assert all(sorted(r) == ids for r in rounds[1:])  # the first round began mid-way (with item 0)
    assert sorted(played[:5]) == ids
    assert played != [i.id for i in items] * 3  # not the play order
    assert all(a != b for a, b in itertools.pairwise(played))
    live.set(rig, shuffle=False)
    p.next()
    p.step()
    after = p.status().current
    p.next()
    p.step()
    order = [i.id for i in items]
    assert p.status().current == order[(order.index(after) + 1) % 5]  # back to the play order


def test_a_night_that_dims_lowers_the_backlight_and_plays_on(rig: Rig, live: Live) -> None:
    wall = [dt.datetime(2026, 3, 10, 21, 59, 59, tzinfo=UTC)]
    night = NightSchedule.parse("22:00", "07:00", lambda: wall[0], brightness=30, tz=UTC)
    rig.add(square_frames(4), 100)
    live.set(rig, night=night)
    p = rig.player
    p.set_brightness(80)
    p.run_frames(2)
    assert rig.wiring.panel.backlight == 80
    wall[0] = dt.datetime(2026, 3, 10, 22, 0, 1, tzinfo=UTC)
    shown = p.stats.frames_shown
    p.run_frames(3)
    assert rig.wiring.panel.backlight == 30 and p.status().state == "playing"
    assert p.stats.frames_shown == shown + 3
    night_status = p.status().night
    assert night_status is not None and night_status["active"] and night_status["brightness"] == 30
    p.wake()  # by hand: full brightness until the schedule next flips
    p.run_frames(1)
    assert rig.wiring.panel.backlight == 80
    wall[0] = dt.datetime(2026, 3, 11, 7, 0, 1, tzinfo=UTC)
    p.run_frames(1)
    assert rig.wiring.panel.backlight == 80
    live.set(rig, night=NightSchedule.parse("22:00", "07:00", lambda: wall[0], tz=UTC))
    wall[0] = dt.datetime(2026, 3, 11, 23, 0, tzinfo=UTC)
    p.step()
    assert p.status().state == "sleeping" and rig.wiring.panel.backlight == 0


def test_the_frame_size_follows_rotation_back_and_forth(rig: Rig, live: Live) -> None:
    rig.add([solid((200, 200, 0))], 1000)
    for rotation, size in ((90, (320, 240)), (180, (W, H)), (270, (320, 240)), (0, (W, H))):
        live.set(rig, rotation=rotation)
        rig.player.run_frames(1)
        assert rig.display.size == size
        image = rig.wiring.snapshot(Rotation(rotation))
        assert image.size == size
        assert np.asarray(image.convert("RGB"))[size[1] // 2, size[0] // 2, 0] > 150
