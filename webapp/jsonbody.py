"""Parsing request bodies as JSON with bounds on size and nesting.

Python's ``json`` parser recurses once per nested array or object, so a body of a thousand
``[`` is a ``RecursionError`` deep inside it. ``parse_json`` measures the nesting before
parsing (vectorised with numpy: a few milliseconds for a hostile megabyte, about what
``json.loads`` itself takes) and refuses anything deeper than ``MAX_JSON_DEPTH``; the API's
documents nest three levels at most.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 1 << 20

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_STEP = np.zeros(256, dtype=np.int8)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1


class JsonBodyError(ValueError):
    """A body that is not acceptable JSON; ``code`` and ``str()`` go into the API's error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def nesting_depth(data: bytes) -> int:
    """How deep arrays and objects nest in ``data`` (brackets inside strings do not count).

    Vectorised, so a hostile megabyte costs a few milliseconds: a quote opens or closes a
    string unless an odd run of backslashes precedes it, and a bracket counts only outside
    strings. For malformed input the answer is exact up to the first error, which is as far
    as a parser reading left to right recurses.
    """
    if b"[" not in data and b"{" not in data:
        return 0
    raw = np.frombuffer(data, dtype=np.uint8)
    steps = np.take(_STEP, raw)
    if b'"' in data:
        quote = raw == _QUOTE
        if b"\\" in data:
            # Runs of backslashes: an odd one escapes the byte after it.
            edges = np.diff((raw == _BACKSLASH).view(np.int8), prepend=np.int8(0), append=np.int8(0))
            starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
            escaped = ends[((ends - starts) & 1).astype(bool)]
            quote[escaped[escaped < raw.size]] = False
        # A byte after an odd number of real quotes is inside a string.
        inside = np.bitwise_xor.accumulate(quote.view(np.uint8))
        steps = np.where(inside, np.int8(0), steps)
    return max(0, int(np.cumsum(steps, dtype=np.int32).max()))


def parse_json(data: bytes, *, max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The JSON value in ``data``.

    Raises:
        JsonBodyError: ``json_too_large``, ``json_too_deep`` or ``malformed_json``.
    """
    if len(data) > max_bytes:
        raise JsonBodyError("json_too_large", f"The JSON body is larger than {max_bytes} bytes.")
    if nesting_depth(data) > max_depth:
        raise JsonBodyError(
            "json_too_deep", f"The JSON body nests arrays or objects deeper than {max_depth} levels."
        )
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, a 5,000-digit number
        raise JsonBodyError("malformed_json", "The request body is not valid JSON.") from None


__all__ = ["MAX_JSON_BYTES", "MAX_JSON_DEPTH", "JsonBodyError", "nesting_depth", "parse_json"]
