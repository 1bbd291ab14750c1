"""Counted nouns in messages people read: "1 frame", "2 frames", "0 problems"."""

from __future__ import annotations

__all__ = ["plural"]


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """``count`` and ``noun``, the noun in the plural unless the count is exactly one.

    The plural is ``noun + "s"`` unless ``plural_noun`` says otherwise
    (``plural(2, "entry", "entries")``).
    """
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"plural() counts whole things, not {count!r}")
    word = noun if count == 1 else (plural_noun if plural_noun is not None else f"{noun}s")
    return f"{count} {word}"
