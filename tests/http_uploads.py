"""Uploading as real clients do: multipart bodies streamed over a socket, never built in memory.

``post_files(url, files)`` sends each file from disk (or a generated stream of a given size)
in 256 KiB pieces with ``http.client``, with a ``Content-Length`` (as browsers and curl send)
or chunked (``chunked=True``, as some scripts do), and returns the status and JSON answer.
"""

from __future__ import annotations

import http.client
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PIECE = 256 * 1024


@dataclass(frozen=True)
class Generated:
    """A file that is never on disk: ``size`` bytes of ``fill`` (for bodies of hundreds of MB)."""

    name: str
    size: int
    fill: bytes = b"\0"

    def pieces(self) -> Iterator[bytes]:
        block = (self.fill * (PIECE // len(self.fill) + 1))[:PIECE]
        left = self.size
        while left > 0:
            n = min(left, PIECE)
            yield block[:n]
            left -= n


Part = Path | Generated


def _name(part: Part) -> str:
    return part.name


def _size(part: Part) -> int:
    return part.stat().st_size if isinstance(part, Path) else part.size


def _pieces(part: Part) -> Iterator[bytes]:
    if isinstance(part, Generated):
        yield from part.pieces()
        return
    with part.open("rb") as f:
        while piece := f.read(PIECE):
            yield piece


def browser_filename(name: str) -> str:
    """A file name as browsers put it in a multipart header (WHATWG: ``"``, CR and LF escaped)."""
    return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def multipart_bytes(files: list[tuple[str, bytes]], boundary: str | None = None) -> tuple[bytes, str]:
    """A whole multipart/form-data body (small files) and its Content-Type, as a browser makes it."""
    boundary = boundary or "----loop" + secrets.token_hex(12)
    body = b"".join(_head(boundary, name) + data + b"\r\n" for name, data in files)
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _head(boundary: str, name: str) -> bytes:
    safe = browser_filename(name)
    return (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{safe}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode("utf-8", "surrogatepass")


def multipart_stream(files: list[Part], boundary: str) -> tuple[int, Iterator[bytes]]:
    """(Content-Length, pieces) of a multipart/form-data body with ``files`` in the field ``file``."""
    tail = f"--{boundary}--\r\n".encode()
    length = len(tail) + sum(len(_head(boundary, _name(p))) + _size(p) + 2 for p in files)

    def body() -> Iterator[bytes]:
        for part in files:
            yield _head(boundary, _name(part))
            yield from _pieces(part)
            yield b"\r\n"
        yield tail

    return length, body()


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def post_files(
    url: str,
    files: list[Part],
    *,
    query: str = "?wait=true",
    headers: dict[str, str] | None = None,
    chunked: bool = False,
    timeout: float = 300.0,
) -> Answer:
    """POST ``files`` to ``url + /api/media + query`` as a streamed multipart body."""
    parts = urlsplit(url)
    boundary = "----loop" + secrets.token_hex(12)
    length, pieces = multipart_stream(files, boundary)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        conn.putrequest("POST", f"/api/media{query}")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            conn.putheader("Content-Length", str(length))
        conn.endheaders()
        try:
            for piece in pieces:
                conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and stopped reading: its answer is still there
        response = conn.getresponse()
        return Answer(response.status, response.read(), {k.lower(): v for k, v in response.getheaders()})
    finally:
        conn.close()
