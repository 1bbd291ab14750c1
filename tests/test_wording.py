"""Counted nouns: "1 frame", "2 frames", never "1 frames"."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libloop.wording import plural


def test_one_is_singular_everything_else_plural() -> None:
    assert plural(1, "frame") == "1 frame"
    assert plural(0, "frame") == "0 frames"
    assert plural(2, "problem") == "2 problems"
    assert plural(1, "entry", "entries") == "1 entry"
    assert plural(3, "entry", "entries") == "3 entries"


@given(st.integers(), st.sampled_from(["frame", "item", "second", "file", "problem"]))
def test_the_noun_agrees_with_the_count(count: int, noun: str) -> None:
    text = plural(count, noun)
    number, word = text.split(" ")
    assert int(number) == count
    assert word == (noun if count == 1 else noun + "s")


@pytest.mark.parametrize("count", [1.0, True, "1"])
def test_only_whole_counts(count: object) -> None:
    with pytest.raises(TypeError):
        plural(count, "frame")  # type: ignore[arg-type]
