"""GIF decoding compared against frames composited by hand, the way browsers show them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libloop.media.decode import DelayPolicy, open_media
from tests.media_corpus import GifFrame, gif_bytes

RED, GREEN, BLUE, WHITE, GREY = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (90, 90, 90)
PALETTE = [GREY, RED, GREEN, BLUE, WHITE]
Canvas = list[list[tuple[int, int, int, int]]]


def expected_frames(
    width: int, height: int, palette: list[tuple[int, int, int]], frames: list[GifFrame]
) -> list[Canvas]:
    """Reference compositor written from the GIF89a spec + browser behaviour, pixel by pixel."""
    canvas: Canvas = [[(0, 0, 0, 0)] * width for _ in range(height)]
    shown: list[Canvas] = []
    for f in frames:
        before = [row[:] for row in canvas]
        pal = list(f.local_palette) if f.local_palette is not None else palette
        for dy, row in enumerate(f.pixels):
            for dx, index in enumerate(row):
                x, y = f.x + dx, f.y + dy
                if x < width and y < height and index != f.transparent:
                    canvas[y][x] = (*pal[index], 255)
        shown.append([row[:] for row in canvas])
        for dy, row in enumerate(f.pixels):
            for dx in range(len(row)):
                x, y = f.x + dx, f.y + dy
                if x < width and y < height:
                    if f.disposal == 2:
                        canvas[y][x] = (0, 0, 0, 0)
                    elif f.disposal == 3:
                        canvas[y][x] = before[y][x]
    return shown


def decode(tmp_path: Path, data: bytes, name: str = "t.gif") -> tuple[object, list[np.ndarray], list[int]]:
    path = tmp_path / name
    path.write_bytes(data)
    with open_media(path) as src:
        out = [(np.asarray(f.image.convert("RGBA")), f.duration_ms) for f in src.frames()]
        return src, [a for a, _ in out], [d for _, d in out]


def assert_same(decoded: np.ndarray, expected: Canvas) -> None:
    exp = np.array(expected, dtype=np.uint8)
    transparent = exp[:, :, 3] == 0
    assert np.array_equal(decoded[:, :, 3] == 0, transparent), "transparency differs"
    assert np.array_equal(decoded[~transparent, :3], exp[~transparent, :3]), "colours differ"


def _frames(disposal: int, transparent: int | None) -> list[GifFrame]:
    return [
        GifFrame(0, 0, [[1, 1, 1, 1, 1, 1]] * 5, disposal=0),
        GifFrame(1, 1, [[2, 0, 2], [2, 2, 0], [0, 2, 2]], disposal=disposal, transparent=transparent),
        GifFrame(3, 2, [[3, 3, 3], [3, 0, 3]], disposal=0, transparent=transparent),
        GifFrame(0, 0, [[4]], disposal=0),
    ]


@pytest.mark.parametrize("disposal", [0, 1, 2, 3])
@pytest.mark.parametrize("transparent", [None, 0])
def test_every_disposal_method_matches_hand_compositing(
    tmp_path: Path, disposal: int, transparent: int | None
) -> None:
    frames = _frames(disposal, transparent)
    _src, decoded, _ = decode(tmp_path, gif_bytes(6, 5, PALETTE, frames, background_index=2, loop=0))
    expected = expected_frames(6, 5, PALETTE, frames)
    assert len(decoded) == len(expected) == 4
    for got, exp in zip(decoded, expected, strict=True):
        assert_same(got, exp)


def test_disposal_2_clears_to_transparent_not_to_background_colour(tmp_path: Path) -> None:
    # Pillow paints the logical-screen background colour here; browsers clear to transparent.
    frames = [GifFrame(0, 0, [[1, 1], [1, 1]], disposal=2), GifFrame(0, 0, [[3]], disposal=0)]
    _, decoded, _ = decode(tmp_path, gif_bytes(2, 2, PALETTE, frames, background_index=2))
    assert decoded[1][0, 0].tolist() == [*BLUE, 255]
    assert decoded[1][1, 1, 3] == 0


def test_first_frame_transparency_shows_the_background(tmp_path: Path) -> None:
    frames = [GifFrame(0, 0, [[0, 1], [1, 0]], transparent=0)]
    _, decoded, _ = decode(tmp_path, gif_bytes(2, 2, PALETTE, frames))
    assert decoded[0][:, :, 3].tolist() == [[0, 255], [255, 0]]


def test_local_palettes_and_interlacing(tmp_path: Path) -> None:
    local = [(10, 20, 30), (40, 50, 60), (70, 80, 90)]
    rows = [[(x + y) % 3 for x in range(5)] for y in range(11)]
    frames = [
        GifFrame(0, 0, rows, interlaced=True),
        GifFrame(1, 1, [[1, 2], [2, 1]], local_palette=local),
        GifFrame(0, 0, rows, interlaced=True, local_palette=local, disposal=3),
    ]
    _, decoded, _ = decode(tmp_path, gif_bytes(5, 11, PALETTE, frames))
    for got, exp in zip(decoded, expected_frames(5, 11, PALETTE, frames), strict=True):
        assert_same(got, exp)


def test_frames_outside_the_screen_are_clipped(tmp_path: Path) -> None:
    frames = [GifFrame(0, 0, [[1, 1], [1, 1]]), GifFrame(1, 1, [[3, 3, 3], [3, 3, 3]])]
    _, decoded, _ = decode(tmp_path, gif_bytes(2, 2, PALETTE, frames))
    assert_same(decoded[1], expected_frames(2, 2, PALETTE, frames)[1])


@pytest.mark.parametrize(("loop", "expected"), [(None, 1), (0, 0), (1, 2), (5, 6)])
def test_loop_counts_map_to_plays(tmp_path: Path, loop: int | None, expected: int) -> None:
    frames = [GifFrame(0, 0, [[1]]), GifFrame(0, 0, [[2]])]
    src, _, _ = decode(tmp_path, gif_bytes(1, 1, PALETTE, frames, loop=loop))
    assert src.loop_count == expected  # type: ignore[attr-defined]
    assert src.kind == "gif"  # type: ignore[attr-defined]


def test_short_delays_play_as_browsers_play_them(tmp_path: Path) -> None:
    frames = [GifFrame(0, 0, [[i % 4]], delay_cs=d) for i, d in enumerate([0, 1, 2, 5, 100])]
    frames.append(GifFrame(0, 0, [[1]], gce=False))
    _, _, durations = decode(tmp_path, gif_bytes(1, 1, PALETTE, frames))
    assert durations == [100, 100, 20, 50, 1000, 100]


def test_delay_policy_is_configurable() -> None:
    policy = DelayPolicy(short_delay_ms=70, min_delay_ms=40)
    assert [policy.animation_delay(d) for d in (0, 10, 20, 50, None)] == [70, 70, 40, 50, 70]


def test_single_frame_gif_is_a_still(tmp_path: Path) -> None:
    src, _decoded, durations = decode(
        tmp_path, gif_bytes(2, 2, PALETTE, [GifFrame(0, 0, [[1, 2], [3, 4]])], loop=0)
    )
    assert src.kind == "image" and src.loop_count == 0  # type: ignore[attr-defined]
    assert durations == [DelayPolicy().still_ms]


def test_missing_trailer_keeps_complete_frames(tmp_path: Path) -> None:
    frames = [GifFrame(0, 0, [[1]]), GifFrame(0, 0, [[2]])]
    _, decoded, _ = decode(tmp_path, gif_bytes(1, 1, PALETTE, frames, trailer=False))
    assert len(decoded) == 2


@st.composite
def random_gifs(draw: st.DrawFn) -> tuple[int, int, list[GifFrame]]:
    w, h = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    frames = []
    for _ in range(draw(st.integers(1, 5))):
        fw, fh = draw(st.integers(1, w)), draw(st.integers(1, h))
        x, y = draw(st.integers(0, w - fw)), draw(st.integers(0, h - fh))
        pix = [[draw(st.integers(0, 4)) for _ in range(fw)] for _ in range(fh)]
        frames.append(
            GifFrame(
                x,
                y,
                pix,
                disposal=draw(st.integers(0, 3)),
                transparent=draw(st.one_of(st.none(), st.integers(0, 4))),
                interlaced=draw(st.booleans()),
            )
        )
    return w, h, frames


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(random_gifs())
def test_random_gifs_match_hand_compositing(tmp_path: Path, gif: tuple[int, int, list[GifFrame]]) -> None:
    w, h, frames = gif
    _, decoded, _ = decode(tmp_path, gif_bytes(w, h, PALETTE, frames))
    expected = expected_frames(w, h, PALETTE, frames)
    assert len(decoded) == len(expected)
    for got, exp in zip(decoded, expected, strict=True):
        assert_same(got, exp)


PAL = [(255, 0, 0), (0, 0, 255)]
FOUR_FRAMES = [GifFrame(0, 0, [[i % 2] * 8 for _ in range(8)]) for i in range(4)]


def test_a_gif_cut_after_some_complete_frames_is_refused(tmp_path: Path) -> None:
    from libloop.errors import CorruptMedia

    whole = gif_bytes(8, 8, PAL, FOUR_FRAMES, loop=0)
    # Cut inside the third frame's data: two complete frames precede the cut.
    cut = whole[: len(whole) * 3 // 5]
    with pytest.raises(CorruptMedia, match="truncated"):
        decode(tmp_path, cut)


def test_a_gif_that_only_lacks_its_trailer_byte_is_played(tmp_path: Path) -> None:
    whole = gif_bytes(8, 8, PAL, FOUR_FRAMES, loop=0)
    assert whole.endswith(b";")
    _, frames, _ = decode(tmp_path, whole[:-1])
    assert len(frames) == 4


# What follows a GIF's last block is not part of it: browsers play the first GIF in the file.

FIRST = [
    GifFrame(0, 0, [[1, 1, 2], [2, 1, 1]], disposal=2),
    GifFrame(1, 0, [[3, 0], [0, 3]], transparent=0),
]
SECOND = [GifFrame(0, 0, [[4] * 5] * 4), GifFrame(0, 0, [[2] * 5] * 4)]


def first_stream(trailer: bool = True) -> bytes:
    return gif_bytes(3, 2, PALETTE, FIRST, loop=2, trailer=trailer)


def assert_plays_the_first_stream(tmp_path: Path, data: bytes) -> None:
    src, decoded, _ = decode(tmp_path, data)
    assert (src.width, src.height, src.loop_count) == (3, 2, 3)  # type: ignore[attr-defined]
    expected = expected_frames(3, 2, PALETTE, FIRST)
    assert len(decoded) == len(expected)
    for got, exp in zip(decoded, expected, strict=True):
        assert_same(got, exp)


@pytest.mark.parametrize(
    "tail",
    [
        b"\x00" * 512,  # padded to a sector
        b"garbage appended by an uploader\r\n",
        bytes(range(256)),
        gif_bytes(5, 4, PALETTE, SECOND, loop=0),  # a second GIF concatenated
    ],
    ids=["zeros", "text", "bytes", "second-gif"],
)
@pytest.mark.parametrize("trailer", [True, False], ids=["trailer", "no-trailer"])
def test_whatever_follows_the_gif_is_ignored(tmp_path: Path, tail: bytes, trailer: bool) -> None:
    assert_plays_the_first_stream(tmp_path, first_stream(trailer) + tail)


def test_a_second_gif_after_a_missing_trailer_is_not_played(tmp_path: Path) -> None:
    data = first_stream(trailer=False) + gif_bytes(5, 4, PALETTE, SECOND, loop=0)
    assert_plays_the_first_stream(tmp_path, data)


def test_junk_before_any_image_is_still_refused(tmp_path: Path) -> None:
    from libloop.errors import CorruptMedia

    header_only = gif_bytes(3, 2, PALETTE, [], trailer=False)
    with pytest.raises(CorruptMedia, match="damaged"):
        decode(tmp_path, header_only + b"junk")


def test_a_gif_cut_inside_its_data_is_refused_even_with_junk_after_the_cut(tmp_path: Path) -> None:
    from libloop.errors import CorruptMedia

    whole = gif_bytes(8, 8, PAL, FOUR_FRAMES, loop=0)
    # The cut leaves the third frame's sub-blocks open: what follows is read as its data.
    cut = whole[: len(whole) * 3 // 5]
    with pytest.raises(CorruptMedia, match="truncated"):
        decode(tmp_path, cut + b"\xff" * 3)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(random_gifs(), st.binary(max_size=64), st.booleans())
def test_random_gifs_with_random_tails_play_as_browsers_play_them(
    tmp_path: Path, gif: tuple[int, int, list[GifFrame]], tail: bytes, trailer: bool
) -> None:
    w, h, frames = gif
    if not trailer and tail[:1] in (b"!", b",", b";"):
        tail = b"\x00" + tail  # a tail that does not start a block
    _, decoded, _ = decode(tmp_path, gif_bytes(w, h, PALETTE, frames, trailer=trailer) + tail)
    expected = expected_frames(w, h, PALETTE, frames)
    assert len(decoded) == len(expected)
    for got, exp in zip(decoded, expected, strict=True):
        assert_same(got, exp)
