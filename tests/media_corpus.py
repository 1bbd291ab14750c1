"""Test media generated on the spot (nothing downloaded): good files and a bad-input corpus.

``good_media_corpus(tmpdir)`` and ``bad_media_corpus(tmpdir)`` return ``{name: path}``; other
test modules (the web app's API tests) import them. ``gif_bytes`` hand-assembles GIFs so tests
control every field (disposal, transparency, local palettes, interlacing, loop extension).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["GifFrame", "bad_media_corpus", "gif_bytes", "good_media_corpus", "make_video"]

Color = tuple[int, int, int]


@dataclass
class GifFrame:
    """One image block of a hand-made GIF; ``pixels`` are palette indices, row-major."""

    x: int
    y: int
    pixels: list[list[int]]
    disposal: int = 0
    delay_cs: int = 10
    transparent: int | None = None
    local_palette: Sequence[Color] | None = None
    interlaced: bool = False
    gce: bool = True
    extra: dict[str, int] = field(default_factory=dict)


def _lzw_literal(indices: Sequence[int]) -> bytes:
    """LZW data at minimum code size 8 that only uses literal codes (with clears), 9-bit codes."""
    clear, end = 256, 257
    codes = [clear]
    run = 0
    for i in indices:
        if run == 250:  # clear before the table would grow past 9-bit codes
            codes.append(clear)
            run = 0
        codes.append(i)
        run += 1
    codes.append(end)
    out = bytearray()
    acc = bits = 0
    for c in codes:
        acc |= c << bits
        bits += 9
        while bits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            bits -= 8
    if bits:
        out.append(acc & 0xFF)
    return bytes(out)


def _sub_blocks(data: bytes) -> bytes:
    out = bytearray()
    for i in range(0, len(data), 255):
        chunk = data[i : i + 255]
        out.append(len(chunk))
        out += chunk
    out.append(0)
    return bytes(out)


def _palette(colors: Sequence[Color]) -> bytes:
    padded = list(colors) + [(0, 0, 0)] * (256 - len(colors))
    return b"".join(bytes(c) for c in padded)


def interlace_order(h: int) -> list[int]:
    """Row order of an interlaced GIF image of height ``h``."""
    return [*range(0, h, 8), *range(4, h, 8), *range(2, h, 4), *range(1, h, 2)]


def gif_bytes(
    width: int,
    height: int,
    palette: Sequence[Color] | None,
    frames: Sequence[GifFrame],
    *,
    background_index: int = 0,
    loop: int | None = None,
    trailer: bool = True,
) -> bytes:
    """Assemble a GIF89a byte by byte (256-entry palettes)."""
    out = bytearray(b"GIF89a")
    flags = 0xF7 if palette is not None else 0x70
    out += struct.pack("<HHBBB", width, height, flags, background_index, 0)
    if palette is not None:
        out += _palette(palette)
    if loop is not None:
        out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", loop) + b"\x00"
    for f in frames:
        if f.gce:
            packed = (f.disposal << 2) | (1 if f.transparent is not None else 0)
            out += b"\x21\xf9\x04" + struct.pack("<BHB", packed, f.delay_cs, f.transparent or 0) + b"\x00"
        h, w = len(f.pixels), len(f.pixels[0])
        flags = (0x87 if f.local_palette is not None else 0) | (0x40 if f.interlaced else 0)
        out += b"\x2c" + struct.pack("<HHHHB", f.x, f.y, w, h, flags)
        if f.local_palette is not None:
            out += _palette(f.local_palette)
        rows = [f.pixels[r] for r in interlace_order(h)] if f.interlaced else f.pixels
        out += b"\x08" + _sub_blocks(_lzw_literal([v for row in rows for v in row]))
    if trailer:
        out += b"\x3b"
    return bytes(out)


def _gradient(w: int, h: int, phase: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack(
        [(x * 255 // max(1, w - 1) + phase) % 256, y * 255 // max(1, h - 1), (x + y + phase) % 256], -1
    )
    return rgb.astype(np.uint8)


def make_video(path: Path, *, frames: int, fps: int, width: int, height: int, fmt: str | None = None) -> Path:
    """Encode a small moving-bar video with PyAV (libx264 for MP4/MOV/MKV, VP8 for WebM)."""
    import av

    codec = "libvpx" if path.suffix == ".webm" else "libx264"
    with av.open(str(path), "w", format=fmt) as container:
        stream: Any = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            a = np.full((height, width, 3), 30, dtype=np.uint8)
            x = (i * 7) % max(1, width - 16)
            a[:, x : x + 16] = (250, 200, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _empty_video(path: Path) -> Path:
    """A Matroska file with a video stream header and not a single frame."""
    import av

    container = av.open(str(path), "w")
    stream: Any = container.add_stream("libx264", rate=10)
    stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
    container.start_encoding()
    container.close()
    return path


def good_media_corpus(tmpdir: Path) -> dict[str, Path]:
    """Valid uploads of every kind LOOP reads, small and fast to import."""
    d = Path(tmpdir)
    d.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    pal = [(0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [GifFrame(0, 0, [[(x + y + i) % 4 for x in range(16)] for y in range(12)]) for i in range(3)]
    out["anim.gif"] = d / "anim.gif"
    out["anim.gif"].write_bytes(gif_bytes(16, 12, pal, frames, loop=0))
    out["still.png"] = d / "still.png"
    Image.fromarray(_gradient(64, 48)).save(out["still.png"])
    out["photo.jpg"] = d / "photo.jpg"
    Image.fromarray(_gradient(80, 60)).save(out["photo.jpg"], quality=90)
    out["picture.bmp"] = d / "picture.bmp"
    Image.fromarray(_gradient(30, 40)).save(out["picture.bmp"])
    out["still.webp"] = d / "still.webp"
    Image.fromarray(_gradient(40, 40)).save(out["still.webp"])
    imgs = [Image.fromarray(_gradient(32, 24, p * 40)) for p in range(3)]
    out["anim.png"] = d / "anim.png"
    imgs[0].save(out["anim.png"], save_all=True, append_images=imgs[1:], duration=80, loop=0)
    out["anim.webp"] = d / "anim.webp"
    imgs[0].save(out["anim.webp"], save_all=True, append_images=imgs[1:], duration=80, loop=0, lossless=True)
    out["png_named.gif"] = d / "png_named.gif"
    out["png_named.gif"].write_bytes(out["still.png"].read_bytes())
    out["clip.mp4"] = make_video(d / "clip.mp4", frames=12, fps=12, width=64, height=48)
    return out


def bad_media_corpus(tmpdir: Path) -> dict[str, Path]:
    """Uploads LOOP must refuse (or cut): each name says what is wrong with the file."""
    d = Path(tmpdir)
    d.mkdir(parents=True, exist_ok=True)
    good = good_media_corpus(d / "_good")
    out: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        out[name] = d / name
        out[name].write_bytes(data)

    put("empty.gif", b"")
    put("text.mp4", b"this is not a video, just some text someone renamed\n" * 20)
    put("random.png", bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8)))
    for name in ("anim.gif", "still.png", "photo.jpg", "clip.mp4"):
        data = good[name].read_bytes()
        stem, ext = name.rsplit(".", 1)
        put(f"truncated_{stem}.{ext}", data[: max(20, len(data) // 2)])
    put("header_only.gif", gif_bytes(16, 16, [(0, 0, 0)], [], trailer=False)[:13])
    # Decompression bombs: tiny files whose header claims a huge picture.
    bomb = io.BytesIO()
    Image.new("1", (12000, 12000)).save(bomb, format="PNG")  # 144 MP, under 2x Pillow's limit
    put("bomb.png", bomb.getvalue())
    put("bomb.gif", gif_bytes(60000, 60000, [(0, 0, 0)], [GifFrame(0, 0, [[0]])]))
    just_under = io.BytesIO()
    Image.new("1", (9400, 9400)).save(just_under, format="PNG")  # 88.4 MP: just under Pillow's 89 MP
    put("just_under_pillow_limit.png", just_under.getvalue())
    wide = io.BytesIO()
    Image.new("RGB", (100000, 1)).save(wide, format="PNG")
    put("absurd_1x100000.png", wide.getvalue())
    put("zero_frames.gif", gif_bytes(8, 8, [(0, 0, 0)], []))
    many = [GifFrame(0, 0, [[i % 2]], delay_cs=2) for i in range(1500)]
    put("thousands_of_frames.gif", gif_bytes(1, 1, [(0, 0, 0), (255, 255, 255)], many, loop=0))
    out["zero_length.mkv"] = _empty_video(d / "zero_length.mkv")
    return out
