"""APNG decoding against frames composited here, pixel by pixel, from the APNG specification.

The files are assembled byte by byte (``apng_bytes``: struct, zlib, crc32), so each test controls
every field: which frame the default image is, offsets, delays, dispose and blend operations,
how the data is split into chunks. ``reference_frames`` composites them one pixel at a time in
plain Python floats, following the specification's wording (canvas transparent black, SOURCE
replaces, OVER is the PNG "over" operator on straight alpha, dispose NONE / BACKGROUND /
PREVIOUS, PREVIOUS on the first frame counts as BACKGROUND); it never calls Pillow.

Decoded and expected frames are compared as they would look on the panel: composited over
several background colours (colour under full transparency does not matter, and a
one-level rounding difference in alpha cannot hide a wrong operator).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libloop.color import rgb565_to_rgb888
from libloop.errors import CorruptMedia
from libloop.media.decode import open_media
from libloop.media.frames import open_frames
from libloop.media.importer import ImportOptions, import_media
from libloop.media.limits import Limits

NONE, BACKGROUND, PREVIOUS = 0, 1, 2
SOURCE, OVER = 0, 1
RGBA = tuple[int, int, int, int]
Canvas = list[list[tuple[float, float, float, float]]]


@dataclass
class Frame:
    """One APNG frame: RGBA pixels (or palette indices with ``apng_bytes(palette=...)``)."""

    pixels: npt.NDArray[np.uint8]
    x: int = 0
    y: int = 0
    delay: tuple[int, int] = (1, 10)  # delay_num, delay_den
    dispose: int = NONE
    blend: int = SOURCE


def solid(w: int, h: int, rgba: RGBA) -> npt.NDArray[np.uint8]:
    a = np.empty((h, w, 4), dtype=np.uint8)
    a[...] = rgba
    return a


# ---------------------------------------------------------------------------------------------
# A tiny APNG encoder


def chunk(kind: bytes, data: bytes, *, crc: int | None = None) -> bytes:
    value = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", value)


def image_data(pixels: npt.NDArray[np.uint8]) -> bytes:
    """Scanlines, each with filter type 0 (None), zlib-compressed."""
    rows = pixels.reshape(pixels.shape[0], -1)
    return zlib.compress(b"".join(b"\x00" + row.tobytes() for row in rows))


def split(data: bytes, parts: int) -> list[bytes]:
    step = max(1, -(-len(data) // parts))
    return [data[i : i + step] for i in range(0, len(data), step)] or [b""]


def apng_bytes(
    width: int,
    height: int,
    frames: Sequence[Frame],
    *,
    hidden_default: npt.NDArray[np.uint8] | None = None,
    num_plays: int = 0,
    num_frames: int | None = None,
    parts: int = 1,
    iend: bool = True,
    palette: Sequence[RGBA] | None = None,
) -> bytes:
    """An APNG: frame 0 is the default image unless ``hidden_default`` is given (then it precedes every fcTL)."""
    colour_type = 3 if palette is not None else 6
    out = bytearray(b"\x89PNG\r\n\x1a\n")
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", b"".join(bytes(c[:3]) for c in palette))
        out += chunk(b"tRNS", bytes(c[3] for c in palette))
    out += chunk(b"acTL", struct.pack(">II", len(frames) if num_frames is None else num_frames, num_plays))
    seq = 0

    def control(f: Frame) -> bytes:
        nonlocal seq
        h, w = f.pixels.shape[:2]
        body = struct.pack(">IIIIIHHBB", seq, w, h, f.x, f.y, *f.delay, f.dispose, f.blend)
        seq += 1
        return chunk(b"fcTL", body)

    rest = list(frames)
    if hidden_default is not None:
        for piece in split(image_data(hidden_default), parts):
            out += chunk(b"IDAT", piece)
    else:
        first = rest.pop(0)
        out += control(first)
        for piece in split(image_data(first.pixels), parts):
            out += chunk(b"IDAT", piece)
    for f in rest:
        out += control(f)
        for piece in split(image_data(f.pixels), parts):
            out += chunk(b"fdAT", struct.pack(">I", seq) + piece)
            seq += 1
    if iend:
        out += chunk(b"IEND", b"")
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# The reference compositor


def over_pixel(s: RGBA, d: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """PNG specification, "Alpha channel processing": straight-alpha OVER, rounded to 8 bits."""
    a_s, a_d = s[3] / 255, d[3] / 255
    a_o = a_s + a_d * (1 - a_s)
    if a_o == 0:
        return 0, 0, 0, 0
    r, g, b = ((s[i] * a_s + d[i] * a_d * (1 - a_s)) / a_o for i in range(3))
    return round(r), round(g), round(b), round(a_o * 255)


def reference_frames(
    width: int, height: int, frames: Sequence[Frame], palette: Sequence[RGBA] | None = None
) -> list[Canvas]:
    canvas: Canvas = [[(0, 0, 0, 0)] * width for _ in range(height)]
    shown: list[Canvas] = []
    for i, f in enumerate(frames):
        dispose = BACKGROUND if i == 0 and f.dispose == PREVIOUS else f.dispose
        before = [row[:] for row in canvas]
        h, w = f.pixels.shape[:2]
        for dy in range(h):
            for dx in range(w):
                if palette is not None:
                    s: RGBA = palette[int(f.pixels[dy, dx])]
                else:
                    r, g, b, a = (int(v) for v in f.pixels[dy, dx])
                    s = (r, g, b, a)
                y, x = f.y + dy, f.x + dx
                canvas[y][x] = s if f.blend == SOURCE else over_pixel(s, canvas[y][x])
        shown.append([row[:] for row in canvas])
        for dy in range(h):
            for dx in range(w):
                y, x = f.y + dy, f.x + dx
                if dispose == BACKGROUND:
                    canvas[y][x] = (0, 0, 0, 0)
                elif dispose == PREVIOUS:
                    canvas[y][x] = before[y][x]
    return shown


BACKGROUNDS = [(0, 0, 0), (255, 255, 255), (30, 160, 90)]


def on_background(rgba: npt.NDArray[np.float64], bg: tuple[int, int, int]) -> npt.NDArray[np.float64]:
    a = rgba[..., 3:4] / 255
    return rgba[..., :3] * a + np.array(bg, dtype=np.float64) * (1 - a)


def assert_looks_same(decoded: npt.NDArray[np.uint8], expected: Canvas, what: str = "") -> None:
    exp = np.array(expected, dtype=np.float64)
    got = decoded.astype(np.float64)
    assert got.shape == exp.shape, what
    for bg in BACKGROUNDS:
        diff = np.abs(on_background(got, bg) - on_background(exp, bg)).max()
        assert diff <= 2.0, f"{what}: over {bg} the frame differs by {diff:.1f} levels"


def decode(
    tmp_path: Path, data: bytes, **kw: object
) -> tuple[object, list[npt.NDArray[np.uint8]], list[int]]:
    path = tmp_path / "t.png"
    path.write_bytes(data)
    with open_media(path, **kw) as src:  # type: ignore[arg-type]
        out = [(np.asarray(f.image.convert("RGBA")).copy(), f.duration_ms) for f in src.frames()]
        return src, [a for a, _ in out], [d for _, d in out]


def check(
    tmp_path: Path, width: int, height: int, frames: Sequence[Frame], **kw: object
) -> list[npt.NDArray[np.uint8]]:
    palette = kw.get("palette")
    _, decoded, _ = decode(tmp_path, apng_bytes(width, height, frames, **kw))  # type: ignore[arg-type]
    expected = reference_frames(width, height, frames, palette)  # type: ignore[arg-type]
    assert len(decoded) == len(expected)
    for i, (got, exp) in enumerate(zip(decoded, expected, strict=True)):
        assert_looks_same(got, exp, f"frame {i}")
    return decoded


RED, GREEN, BLUE = (255, 0, 0, 255), (0, 255, 0, 255), (0, 0, 255, 255)
HALF_RED, HALF_BLUE = (255, 0, 0, 128), (0, 0, 255, 128)


# ---------------------------------------------------------------------------------------------
# The default image


def test_a_default_image_outside_the_animation_is_never_shown(tmp_path: Path) -> None:
    frames = [Frame(solid(3, 2, GREEN)), Frame(solid(3, 2, BLUE))]
    data = apng_bytes(3, 2, frames, hidden_default=solid(3, 2, RED))
    src, decoded, _ = decode(tmp_path, data)
    assert len(decoded) == 2 and src.kind == "gif"  # type: ignore[attr-defined]
    assert [d[0, 0].tolist() for d in decoded] == [list(GREEN), list(BLUE)]


def test_a_default_image_that_is_the_first_frame_is_shown(tmp_path: Path) -> None:
    decoded = check(tmp_path, 3, 2, [Frame(solid(3, 2, RED)), Frame(solid(1, 1, GREEN), x=2, y=1)])
    assert decoded[0][0, 0].tolist() == list(RED)


def test_the_hidden_default_image_does_not_show_through_a_transparent_first_frame(tmp_path: Path) -> None:
    # The canvas starts transparent black whatever the default image holds.
    frames = [Frame(solid(2, 2, (0, 0, 0, 0))), Frame(solid(1, 1, GREEN), blend=OVER)]
    _, decoded, _ = decode(tmp_path, apng_bytes(2, 2, frames, hidden_default=solid(2, 2, RED)))
    assert decoded[0][..., 3].max() == 0
    assert decoded[1][1, 1, 3] == 0 and decoded[1][0, 0].tolist() == list(GREEN)


def test_no_frame_after_actl_leaves_the_default_image_as_a_still(tmp_path: Path) -> None:
    data = apng_bytes(2, 2, [], hidden_default=solid(2, 2, RED))
    src, decoded, durations = decode(tmp_path, data)
    assert src.kind == "image" and len(decoded) == 1  # type: ignore[attr-defined]
    assert decoded[0][0, 0].tolist() == list(RED)
    assert durations == [10_000]


def test_a_single_frame_animation_is_a_still(tmp_path: Path) -> None:
    src, decoded, _ = decode(
        tmp_path, apng_bytes(2, 2, [Frame(solid(2, 2, BLUE))], hidden_default=solid(2, 2, RED))
    )
    assert src.kind == "image"  # type: ignore[attr-defined]
    assert decoded[0][0, 0].tolist() == list(BLUE)


# ---------------------------------------------------------------------------------------------
# Blending


def test_over_with_partial_alpha_on_partial_alpha(tmp_path: Path) -> None:
    # Half blue over half red: alpha 0.5 + 0.5 * 0.5 = 0.75 (191), colour (85, 0, 170).
    # (Pillow's APNG reader gives alpha 128 here: it pastes through a mask.)
    decoded = check(tmp_path, 1, 1, [Frame(solid(1, 1, HALF_RED)), Frame(solid(1, 1, HALF_BLUE), blend=OVER)])
    r, g, b, a = decoded[1][0, 0].tolist()
    assert abs(a - 191) <= 1 and abs(r - 85) <= 1 and g == 0 and abs(b - 170) <= 1


def test_over_onto_opaque_is_a_mix_and_fully_transparent_pixels_leave_the_canvas(tmp_path: Path) -> None:
    top = np.array([[(0, 0, 255, 64), (0, 255, 0, 0), (255, 255, 255, 255)]], dtype=np.uint8)
    decoded = check(tmp_path, 3, 1, [Frame(solid(3, 1, RED)), Frame(top, blend=OVER)])
    assert decoded[1][0, 1].tolist() == list(RED)
    assert decoded[1][0, 2].tolist() == [255, 255, 255, 255]


def test_source_replaces_colour_and_alpha(tmp_path: Path) -> None:
    decoded = check(
        tmp_path, 2, 1, [Frame(solid(2, 1, RED)), Frame(solid(1, 1, (0, 255, 0, 0)), x=1, blend=SOURCE)]
    )
    assert decoded[1][0, 1, 3] == 0 and decoded[1][0, 0].tolist() == list(RED)


# ---------------------------------------------------------------------------------------------
# Disposal and offsets


@pytest.mark.parametrize("dispose", [NONE, BACKGROUND, PREVIOUS])
@pytest.mark.parametrize("blend", [SOURCE, OVER])
def test_every_dispose_and_blend_pair_matches_the_reference(tmp_path: Path, dispose: int, blend: int) -> None:
    frames = [
        Frame(solid(4, 3, RED)),
        Frame(solid(2, 2, HALF_BLUE), x=1, y=1, dispose=dispose, blend=blend),
        Frame(solid(2, 1, (0, 255, 0, 200)), x=2, y=0, dispose=dispose, blend=blend),
        Frame(solid(1, 1, (255, 255, 255, 90)), x=3, y=2, blend=OVER),
    ]
    check(tmp_path, 4, 3, frames)


def test_dispose_previous_restores_what_was_there_before_the_frame(tmp_path: Path) -> None:
    frames = [
        Frame(solid(2, 1, RED)),
        Frame(solid(1, 1, GREEN), dispose=PREVIOUS),
        Frame(solid(1, 1, BLUE), x=1),
    ]
    decoded = check(tmp_path, 2, 1, frames)
    assert decoded[2].reshape(-1, 4).tolist() == [list(RED), list(BLUE)]


def test_dispose_previous_after_previous_goes_back_to_the_last_kept_canvas(tmp_path: Path) -> None:
    frames = [
        Frame(solid(3, 1, RED)),
        Frame(solid(1, 1, GREEN), x=0, dispose=PREVIOUS),
        Frame(solid(1, 1, GREEN), x=1, dispose=PREVIOUS),
        Frame(solid(1, 1, BLUE), x=2, blend=OVER),
    ]
    decoded = check(tmp_path, 3, 1, frames)
    assert decoded[3].reshape(-1, 4).tolist() == [list(RED), list(RED), list(BLUE)]


def test_dispose_background_clears_the_region_to_transparent_black(tmp_path: Path) -> None:
    frames = [
        Frame(solid(2, 2, RED)),
        Frame(solid(1, 2, GREEN), x=1, dispose=BACKGROUND),
        Frame(solid(1, 1, BLUE)),
    ]
    decoded = check(tmp_path, 2, 2, frames)
    assert decoded[2][:, 1, 3].tolist() == [0, 0]


def test_dispose_previous_on_the_first_frame_counts_as_background(tmp_path: Path) -> None:
    frames = [Frame(solid(2, 1, RED), dispose=PREVIOUS), Frame(solid(1, 1, BLUE), x=1, blend=OVER)]
    decoded = check(tmp_path, 2, 1, frames)
    assert decoded[1][0, 0, 3] == 0


def test_dispose_previous_on_the_first_frame_after_a_hidden_default_counts_as_background(
    tmp_path: Path,
) -> None:
    frames = [Frame(solid(2, 1, GREEN), dispose=PREVIOUS), Frame(solid(1, 1, BLUE), x=1, blend=OVER)]
    _, decoded, _ = decode(tmp_path, apng_bytes(2, 1, frames, hidden_default=solid(2, 1, RED)))
    assert decoded[1][0, 0, 3] == 0 and decoded[1][0, 1].tolist() == list(BLUE)


def test_frames_at_offsets_and_data_split_over_many_chunks(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frames = [Frame(rng.integers(0, 256, (5, 7, 4), dtype=np.uint8))]
    frames += [
        Frame(rng.integers(0, 256, (2, 3, 4), dtype=np.uint8), x=4, y=3, blend=OVER, dispose=PREVIOUS),
        Frame(rng.integers(0, 256, (3, 2, 4), dtype=np.uint8), x=0, y=2, blend=OVER, dispose=BACKGROUND),
        Frame(rng.integers(0, 256, (1, 7, 4), dtype=np.uint8), x=0, y=4, blend=OVER),
    ]
    check(tmp_path, 7, 5, frames, parts=4)


def test_palette_frames_take_plte_and_trns_from_before_idat(tmp_path: Path) -> None:
    palette = [(255, 0, 0, 255), (0, 0, 255, 100), (0, 255, 0, 0), (250, 250, 250, 255)]
    frames = [
        Frame(np.array([[0, 1, 2], [3, 0, 1]], dtype=np.uint8)),
        Frame(np.array([[1, 1], [2, 3]], dtype=np.uint8), x=1, y=0, blend=OVER),
    ]
    check(tmp_path, 3, 2, frames, palette=palette)


# ---------------------------------------------------------------------------------------------
# Timing and loops


def test_delays_are_num_over_den_seconds_with_den_0_meaning_100(tmp_path: Path) -> None:
    delays = [(1, 10), (7, 0), (3, 100), (0, 5), (1, 1000), (15, 1000), (1, 3), (2, 1)]
    frames = [Frame(solid(1, 1, (i * 30, 0, 0, 255)), delay=d) for i, d in enumerate(delays)]
    _, _, durations = decode(tmp_path, apng_bytes(1, 1, frames))
    # 0 and 1 ms play as 100 ms (as browsers do for every animated format), 15 ms is raised to 20.
    assert durations == [100, 70, 30, 100, 100, 20, 333, 2000]


@pytest.mark.parametrize("plays", [0, 1, 3])
def test_num_plays_is_the_loop_count(tmp_path: Path, plays: int) -> None:
    src, _, _ = decode(
        tmp_path, apng_bytes(1, 1, [Frame(solid(1, 1, RED)), Frame(solid(1, 1, BLUE))], num_plays=plays)
    )
    assert src.loop_count == plays  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Damage and limits


def two_frames() -> list[Frame]:
    return [Frame(solid(4, 4, RED)), Frame(solid(2, 2, BLUE), x=1, y=1), Frame(solid(4, 4, GREEN))]


def test_a_missing_iend_after_the_last_complete_frame_is_played(tmp_path: Path) -> None:
    _, decoded, _ = decode(tmp_path, apng_bytes(4, 4, two_frames(), iend=False))
    assert len(decoded) == 3


def test_a_file_cut_inside_frame_data_is_refused(tmp_path: Path) -> None:
    whole = apng_bytes(4, 4, two_frames(), iend=False)
    with pytest.raises(CorruptMedia, match="truncated"):
        decode(tmp_path, whole[:-10])


def test_a_bad_crc_is_refused(tmp_path: Path) -> None:
    data = bytearray(apng_bytes(4, 4, two_frames()))
    at = data.index(b"fdAT") + 8  # inside the first fdAT's data
    data[at] ^= 0xFF
    with pytest.raises(CorruptMedia, match="damaged"):
        decode(tmp_path, bytes(data))


def test_sequence_numbers_out_of_order_are_refused(tmp_path: Path) -> None:
    data = bytearray(apng_bytes(4, 4, two_frames()))
    at = data.index(b"fcTL", data.index(b"IDAT"))  # the second frame's fcTL
    body = bytes(data[at + 4 : at + 30])
    fixed = chunk(b"fcTL", struct.pack(">I", 9) + body[4:])
    data[at - 4 : at + 34] = fixed
    with pytest.raises(CorruptMedia):
        decode(tmp_path, bytes(data))


def with_chunk_after_actl(data: bytes, extra: bytes) -> bytes:
    at = data.index(b"acTL") + 4 + 8 + 4  # past acTL's type, data and CRC
    return data[:at] + extra + data[at:]


def test_a_damaged_ancillary_chunk_the_decoder_does_not_need_is_skipped(tmp_path: Path) -> None:
    # Browsers skip ancillary chunks with a bad CRC; only the chunks that make the image count.
    text = chunk(b"tEXt", b"Comment\x00made by a phone", crc=0)
    _, decoded, _ = decode(tmp_path, with_chunk_after_actl(apng_bytes(4, 4, two_frames()), text))
    assert len(decoded) == 3


def test_a_chunk_claiming_more_bytes_than_the_file_has_is_refused_before_reading(tmp_path: Path) -> None:
    hostile = struct.pack(">I", 0x7FFFFFF0) + b"zTXt" + b"\x00" * 16
    with pytest.raises(CorruptMedia, match="truncated"):
        decode(tmp_path, with_chunk_after_actl(apng_bytes(4, 4, two_frames()), hostile))


def test_a_frame_outside_the_canvas_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CorruptMedia):
        decode(tmp_path, apng_bytes(4, 4, [Frame(solid(4, 4, RED)), Frame(solid(2, 2, BLUE), x=3, y=0)]))


def test_frames_beyond_actl_count_are_ignored(tmp_path: Path) -> None:
    _, decoded, _ = decode(tmp_path, apng_bytes(4, 4, two_frames(), num_frames=2))
    assert len(decoded) == 2


def test_long_animations_are_cut_at_max_frames(tmp_path: Path) -> None:
    frames = [Frame(solid(1, 1, (i, 0, 0, 255))) for i in range(12)]
    src, decoded, _ = decode(tmp_path, apng_bytes(1, 1, frames), limits=Limits(max_frames=5))
    assert len(decoded) == 5 and src.truncated  # type: ignore[attr-defined]


def test_half_transparent_frames_reach_the_panel_over_the_background(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(
        apng_bytes(24, 32, [Frame(solid(24, 32, HALF_RED)), Frame(solid(24, 32, HALF_BLUE), blend=OVER)])
    )
    result = import_media(path, tmp_path / "a.loop", ImportOptions(background=(0, 255, 0), dither=False))
    assert (result.kind, result.frames) == ("gif", 2)
    with open_frames(result.path) as ff:
        shown = rgb565_to_rgb888(ff.frame(1), ff.width, ff.height)[160, 120].tolist()
    # 0.75 alpha of (85, 0, 170) over green: (64, 64, 128), to RGB565 precision.
    assert all(abs(g - w) <= 8 for g, w in zip(shown, [64, 64, 128], strict=True)), shown


# ---------------------------------------------------------------------------------------------
# Random sequences

ALPHAS = st.one_of(st.sampled_from([0, 255]), st.integers(0, 255))


@st.composite
def random_apngs(draw: st.DrawFn) -> tuple[int, int, list[Frame], bool]:
    w, h = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    frames = []
    for i in range(draw(st.integers(1, 5))):
        fw, fh = (w, h) if i == 0 else (draw(st.integers(1, w)), draw(st.integers(1, h)))
        x, y = (0, 0) if i == 0 else (draw(st.integers(0, w - fw)), draw(st.integers(0, h - fh)))
        colours = [
            (draw(st.integers(0, 255)), draw(st.integers(0, 255)), draw(st.integers(0, 255)))
            for _ in range(3)
        ]
        pixels = np.array(
            [[(*draw(st.sampled_from(colours)), draw(ALPHAS)) for _ in range(fw)] for _ in range(fh)],
            dtype=np.uint8,
        )
        frames.append(
            Frame(
                pixels,
                x,
                y,
                dispose=draw(st.sampled_from([NONE, BACKGROUND, PREVIOUS])),
                blend=draw(st.sampled_from([SOURCE, OVER])),
            )
        )
    return w, h, frames, draw(st.booleans())


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(random_apngs())
def test_random_apngs_match_the_reference(tmp_path: Path, case: tuple[int, int, list[Frame], bool]) -> None:
    w, h, frames, hide_default = case
    hidden = solid(w, h, (255, 0, 255, 255)) if hide_default else None
    _, decoded, _ = decode(tmp_path, apng_bytes(w, h, frames, hidden_default=hidden))
    expected = reference_frames(w, h, frames)
    assert len(decoded) == len(expected)
    for i, (got, exp) in enumerate(zip(decoded, expected, strict=True)):
        assert_looks_same(got, exp, f"frame {i}")
