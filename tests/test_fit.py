"""Fitting to the panel: contain, cover, stretch, transparency over the background."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from libloop.color import rgb888_to_rgb565
from libloop.media.fit import FitMode, fit_frame, scaled_size
from libloop.media.regions import dirty_rects


@given(st.integers(1, 5000), st.integers(1, 5000), st.sampled_from(list(FitMode)))
def test_scaled_size_respects_mode(w: int, h: int, mode: FitMode) -> None:
    sw, sh = scaled_size(w, h, 240, 320, mode)
    if mode is FitMode.CONTAIN:
        assert sw <= 240 and sh <= 320 and (sw == 240 or sh == 320)
    elif mode is FitMode.COVER:
        assert sw >= 240 and sh >= 320 and (sw == 240 or sh == 320)
    else:
        assert (sw, sh) == (240, 320)


def test_contain_letterboxes_with_background() -> None:
    img = Image.new("RGB", (400, 100), (200, 10, 10))
    out = fit_frame(img, 240, 320, FitMode.CONTAIN, background=(0, 0, 50))
    assert out.shape == (320, 240, 3)
    assert out[0, 0].tolist() == [0, 0, 50] and out[-1, -1].tolist() == [0, 0, 50]
    assert out[160, 120].tolist() == [200, 10, 10]


def test_cover_crops_centre() -> None:
    a = np.zeros((100, 300, 3), dtype=np.uint8)
    a[:, :100] = (255, 0, 0)
    a[:, 100:200] = (0, 255, 0)
    a[:, 200:] = (0, 0, 255)
    out = fit_frame(Image.fromarray(a), 240, 320, FitMode.COVER)
    assert out.shape == (320, 240, 3)
    assert out[160, 120, 1] > 200  # the centre (green) fills the middle
    assert out[160, 0, 1] > 200 and out[160, 239, 1] > 200


def test_stretch_fills() -> None:
    out = fit_frame(Image.new("RGB", (10, 10), (1, 2, 3)), 240, 320, FitMode.STRETCH)
    assert (out == (1, 2, 3)).all()


def test_transparent_pixels_show_background() -> None:
    img = Image.new("RGBA", (240, 320), (255, 255, 255, 0))
    out = fit_frame(img, 240, 320, FitMode.CONTAIN, background=(7, 8, 9))
    assert (out == (7, 8, 9)).all()


def test_dithering_keeps_static_areas_identical_so_regions_stay_small() -> None:
    y, x = np.mgrid[0:320, 0:240]
    base = np.stack([x, y * 255 // 319, (x + y) % 256], -1).astype(np.uint8)
    moved = base.copy()
    moved[100:120, 50:70] = (255, 255, 255)
    a = rgb888_to_rgb565(base, dither=True)
    b = rgb888_to_rgb565(moved, dither=True)
    rects = dirty_rects(a, b)
    assert len(rects) == 1 and rects[0].pixels <= 20 * 20


@pytest.mark.parametrize("mode", list(FitMode))
def test_output_shape_for_landscape_panel(mode: FitMode) -> None:
    assert fit_frame(Image.new("RGB", (33, 77)), 320, 240, mode).shape == (240, 320, 3)
