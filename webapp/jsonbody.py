"""Parsing request bodies as JSON with bounds on size and nesting.

Python's ``json`` parser recurses once per nested array or object, so a body of a thousand
``[`` is a ``RecursionError`` deep inside it. ``parse_json`` measures the nesting before
parsing (in C speed: strings are cut out with one regular expression, then numpy adds up the
brackets) and refuses anything deeper than ``MAX_JSON_DEPTH``; the API's documents nest
three levels at most.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 1 << 20

# A JSON string, or an unterminated one running to the end: it matches at its first quote
# without backtracking, so the scan is linear however hostile the body.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
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

    For malformed input this is an upper bound of what a parser reading left to right would
    reach before failing.
    """
    if b"[" not in data and b"{" not in data:
        return 0
    bare = _STRING.sub(b"", data)
    opening = bare.count(b"[") + bare.count(b"{")
    if opening <= 1:
        return opening
    steps = _STEP[np.frombuffer(bare, dtype=np.uint8)]
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
