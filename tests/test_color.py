"""RGB565 conversion: exact bit layout, dithering bounds, round trip."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from libloop.color import quantize, rgb565_to_rgb888, rgb888_to_rgb565

images = st.tuples(st.integers(1, 24), st.integers(1, 24)).flatmap(
    lambda hw: arrays(np.uint8, (hw[0], hw[1], 3))
)


def reference_565(rgb: np.ndarray) -> bytes:
    out = bytearray()
    for r, g, b in rgb.reshape(-1, 3).tolist():
        v = ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3)
        out += v.to_bytes(2, "big")
    return bytes(out)


# Tall and narrow too, so the conversion's bands of rows meet at their boundaries.
tall_images = st.tuples(st.integers(1, 130), st.integers(1, 6)).flatmap(
    lambda hw: arrays(np.uint8, (hw[0], hw[1], 3))
)


@given(st.one_of(images, tall_images))
def test_matches_bit_layout(rgb: np.ndarray) -> None:
    assert bytes(rgb888_to_rgb565(rgb)) == reference_565(rgb)
    out = np.empty((*rgb.shape[:2], 2), np.uint8)
    assert rgb888_to_rgb565(rgb, out=out) is out and bytes(out) == reference_565(rgb)


def codes(rgb565: np.ndarray) -> np.ndarray:
    v = rgb565.view(">u2")[:, :, 0].astype(int)
    return np.stack([(v >> 11) & 0x1F, (v >> 5) & 0x3F, v & 0x1F], axis=2)


@given(images)
def test_dither_picks_one_of_the_two_nearest_levels(rgb: np.ndarray) -> None:
    # Each channel lands on a level next to the exact scaled value: never more than one level off.
    exact = rgb.astype(float) * np.array([31, 63, 31]) / 255
    got = codes(rgb888_to_rgb565(rgb, dither=True))
    assert (np.abs(got - exact) < 1).all()


def test_dither_reduces_banding_error_on_a_gradient() -> None:
    ramp = np.tile(np.linspace(0, 255, 256, dtype=np.float64), (16, 1))
    rgb = np.stack([ramp] * 3, axis=2).round().astype(np.uint8)
    truth = rgb.astype(float).mean(axis=0)
    plain = quantize(rgb).astype(float).mean(axis=0)
    dith = quantize(rgb, dither=True).astype(float).mean(axis=0)
    assert np.abs(dith - truth).mean() < np.abs(plain - truth).mean() / 2


@given(images)
def test_quantize_is_idempotent(rgb: np.ndarray) -> None:
    once = quantize(rgb)
    assert (quantize(once) == once).all()


def test_full_intensity_is_white() -> None:
    white = np.full((1, 1, 3), 255, np.uint8)
    assert bytes(rgb888_to_rgb565(white)) == b"\xff\xff"
    assert rgb565_to_rgb888(b"\xff\xff", 1, 1).tolist() == [[[255, 255, 255]]]


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32)])
def test_rejects_non_rgb_arrays(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        rgb888_to_rgb565(bad)


def test_rejects_wrong_length() -> None:
    with pytest.raises(ValueError):
        rgb565_to_rgb888(b"\x00" * 5, 2, 2)
