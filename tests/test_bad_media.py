"""Bad input: every file in the bad corpus is refused (or cut) with a typed error and leaves nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libloop.errors import CorruptMedia, EmptyMedia, MediaError, MediaTooLarge, UnsupportedMedia
from libloop.media.importer import import_media
from tests.media_corpus import bad_media_corpus, good_media_corpus

EXPECTED: dict[str, type[MediaError] | None] = {
    "empty.gif": EmptyMedia,
    "text.mp4": UnsupportedMedia,
    "random.png": UnsupportedMedia,
    "truncated_anim.gif": CorruptMedia,
    "truncated_still.png": CorruptMedia,
    "truncated_photo.jpg": CorruptMedia,
    "truncated_clip.mp4": CorruptMedia,
    "header_only.gif": CorruptMedia,
    "bomb.png": MediaTooLarge,
    "bomb.gif": MediaTooLarge,
    "just_under_pillow_limit.png": MediaTooLarge,
    "absurd_1x100000.png": MediaTooLarge,
    "zero_frames.gif": EmptyMedia,
    "zero_length.mkv": EmptyMedia,
    "thousands_of_frames.gif": None,  # cut, not refused
}


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return bad_media_corpus(tmp_path_factory.mktemp("bad"))


def test_corpus_is_complete(bad: dict[str, Path]) -> None:
    assert set(bad) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input_is_refused_cleanly(bad: dict[str, Path], tmp_path: Path, name: str) -> None:
    expected = EXPECTED[name]
    dest = tmp_path / "out.loop"
    if expected is None:
        result = import_media(bad[name], dest)
        assert result.truncated and result.frames <= 1000
        return
    with pytest.raises(expected) as info:
        import_media(bad[name], dest)
    message = str(info.value)
    assert name in message and message.endswith(".") and "\n" not in message
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    good = good_media_corpus(tmp_path_factory.mktemp("seeds"))
    return [good[n].read_bytes() for n in ("anim.gif", "still.png", "photo.jpg", "anim.webp", "picture.bmp")]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=80)
@given(data=st.data())
def test_fuzzed_files_raise_only_media_errors_and_leave_nothing(
    seeds: list[bytes], tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    base = bytearray(data.draw(st.sampled_from(seeds)))
    mode = data.draw(st.sampled_from(["flip", "cut", "random", "splice"]))
    if mode == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            pos = data.draw(st.integers(0, len(base) - 1))
            base[pos] = data.draw(st.integers(0, 255))
    elif mode == "cut":
        base = base[: data.draw(st.integers(0, len(base)))]
    elif mode == "random":
        base = bytearray(data.draw(st.binary(max_size=512)))
    else:
        pos = data.draw(st.integers(0, len(base)))
        base[pos:pos] = data.draw(st.binary(min_size=1, max_size=64))
    d = tmp_path_factory.mktemp("fuzz")
    src = d / "upload.bin"
    src.write_bytes(bytes(base))
    out = d / "out"
    out.mkdir()
    try:
        import_media(src, out / "x.loop")
    except MediaError:
        assert list(out.iterdir()) == []
    else:
        assert [p.name for p in out.iterdir()] == ["x.loop"]
