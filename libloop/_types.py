"""Type aliases shared by the library."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Buffer as Buffer  # PEP 688: any bytes-like object
else:  # collections.abc.Buffer arrives in Python 3.12; at run time only annotations use it
    Buffer = bytes | bytearray | memoryview

__all__ = ["Buffer"]
