"""The player tells other faces about its changes: a counter, and a wait that never slows the loop.

MQTT mirrors the player's state from its own thread through ``Player.wait_for_change``; these
tests pin down what counts as a change (state, current item, its name, brightness) and what
does not (every frame of an animation), on the fake clock, single-threaded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from libloop.color import rgb565_to_rgb888, rgb888_to_rgb565
from libloop.player.screens import empty_screen
from tests.test_player_core import Rig, square_frames


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.close()


def test_version_moves_on_every_control_and_not_on_frames(rig: Rig) -> None:
    a = rig.add(square_frames(4), 100, name="a")
    b = rig.add(square_frames(4, base=(0, 150, 0)), 100, name="b")
    p = rig.player
    p.step()
    start = p.version
    rig.player.run_frames(3)  # the rest of a's frames: frames are not changes
    assert p.version == start
    steps: list[tuple[str, object]] = [
        ("pause", p.pause),
        ("resume", p.resume),
        ("next", p.next),
        ("brightness", lambda: p.set_brightness(40)),
        ("sleep", p.sleep),
        ("wake", p.wake),
        ("show", lambda: p.show(a.id)),
    ]
    for what, control in steps:
        before = p.version
        control()  # type: ignore[operator]
        p.step()
        assert p.version > before, f"{what} did not count as a change"
    assert p.status().current == a.id
    before = p.version
    rig.library.update(a.id, name="renamed")
    p.step()
    assert p.version > before and p.status().current_name == "renamed"
    before = p.version
    rig.library.update(b.id, name="b2")  # not the current item: the state did not change
    p.step()
    assert p.version == before


def test_the_end_of_the_library_is_a_change(rig: Rig) -> None:
    item = rig.add(square_frames(2), 100)
    rig.player.step()
    before = rig.player.version
    rig.player.evict(item.id)
    rig.library.delete(item.id)
    rig.player.step()
    assert rig.player.status().state == "empty" and rig.player.version > before


def test_a_waiter_is_woken_by_a_change_made_on_another_thread(rig: Rig) -> None:
    rig.add(square_frames(2), 100)
    rig.player.step()
    seen = rig.player.version
    woke: list[int] = []
    waiter = threading.Thread(target=lambda: woke.append(rig.player.wait_for_change(seen, 10.0)))
    waiter.start()
    rig.player.pause()
    rig.player.step()
    waiter.join(10)
    assert woke and woke[0] > seen
    assert rig.player.wait_for_change(woke[0], 0.0) == woke[0]  # no change: returns at once


def test_a_new_dashboard_address_redraws_the_empty_screen(tmp_path: Path) -> None:
    rig = Rig(tmp_path, dashboard_url="http://127.0.0.1:8080")
    try:
        rig.player.step()
        rig.player.set_dashboard_url("http://loop.local:8080")
        rig.player.step()
        expected = rgb565_to_rgb888(
            rgb888_to_rgb565(np.asarray(empty_screen((240, 320), "http://loop.local:8080"))).tobytes(),
            240,
            320,
        )
        assert np.array_equal(rig.glass(), expected)
    finally:
        rig.close()


def test_the_loop_never_waits_for_a_face_holding_the_change_lock(rig: Rig) -> None:
    """A face that holds the condition (descheduled on a busy machine, say) costs no frame."""
    rig.add(square_frames(4), 100)
    rig.player.step()
    before = rig.player.version
    rig.player._changes.acquire()  # what a waiter holds while it checks the counter
    try:
        rig.player.pause()
        rig.player.step()  # returns: the loop only tries the lock
        assert rig.player.status().state == "paused"
    finally:
        rig.player._changes.release()
    rig.player.step()  # and tells the change on the next turn
    assert rig.player.version > before
