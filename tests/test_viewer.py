"""The pygame viewer, headless: screenshots match the panel, events close it, pygame is optional."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from libloop.errors import MissingExtra
from libloop.ili9341 import Rotation
from sim.viewer import Viewer
from sim.wiring import SimWiring

pytest.importorskip("pygame")


@pytest.fixture
def wiring() -> SimWiring:
    wiring = SimWiring()
    display = wiring.display()
    display.open()
    rng = np.random.default_rng(3)
    display.show_frame(rng.integers(0, 256, 240 * 320 * 2, dtype=np.uint8).tobytes())
    return wiring


@pytest.mark.parametrize("rotation", list(Rotation))
def test_screenshot_is_the_panel_scaled_up(wiring: SimWiring, tmp_path: Path, rotation: Rotation) -> None:
    with Viewer(wiring.panel, scale=3, headless=True, rotation=rotation) as viewer:
        assert viewer.pump()
        path = viewer.save_png(tmp_path / "shot.png")
    shot = np.asarray(Image.open(path).convert("RGB"))
    expected = np.asarray(wiring.panel.snapshot(rotation))
    assert shot.shape == (expected.shape[0] * 3, expected.shape[1] * 3, 3)
    assert np.array_equal(shot[::3, ::3], expected)
    assert np.array_equal(shot[2::3, 2::3], expected)


def test_redraws_only_when_the_panel_changes(wiring: SimWiring, tmp_path: Path) -> None:
    with Viewer(wiring.panel, headless=True) as viewer:
        drawn = viewer.frames_drawn
        viewer.pump()
        assert viewer.frames_drawn == drawn
        display = wiring.display()
        display.open()
        display.fill((0, 0, 255))
        viewer.pump()
        assert viewer.frames_drawn == drawn + 1
        shot = np.asarray(Image.open(viewer.save_png(tmp_path / "blue.png")).convert("RGB"))
        assert (shot == [0, 0, 255]).all()


def test_a_quit_event_closes_the_window(wiring: SimWiring) -> None:
    import pygame

    viewer = Viewer(wiring.panel, headless=True)
    viewer.open()
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert viewer.pump() is False
    assert not viewer.is_open
    assert viewer.pump() is False


def test_must_run_on_the_main_thread(wiring: SimWiring) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            Viewer(wiring.panel, headless=True).open()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert errors and "main thread" in str(errors[0])


def test_missing_pygame_names_the_sim_extra(wiring: SimWiring, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pygame", None)
    with pytest.raises(MissingExtra, match=r"The simulator window needs the sim extra"):
        Viewer(wiring.panel, headless=True).open()


def test_scale_must_be_positive(wiring: SimWiring) -> None:
    with pytest.raises(ValueError):
        Viewer(wiring.panel, scale=0)
