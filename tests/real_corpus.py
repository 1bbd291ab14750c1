"""A realistic media corpus, made at test time: what phones, cameras and the web really upload.

Nothing here is committed as a binary. Each builder writes one file into a directory and returns
a ``CorpusFile``: its path and an ``Expect`` saying what a correct import must show (kind,
orientation-corrected size, the colour layout of the upright picture, frame counts, durations).
The content is seeded noise and texture, so files compress the way real ones do (a 12 MP photo
is ~4 MB, the "25 MB JPEG" really is ~25 MB), and every picture carries an orientation marker:
seen upright, its top-left quarter is red, top-right green, bottom-left blue, bottom-right white
(``QUADRANTS``). Only the correct orientation shows that layout.

``RealCorpus`` builds files on demand and keeps them: tests get one through the session-scoped
``real_corpus`` fixture (``tests/conftest.py``), which stores the files under
``.pytest_cache/`` (keyed by ``CORPUS_VERSION``) so the 30 s 1080p encode runs once per
checkout, not once per run. Set ``LOOP_CORPUS_CACHE=0`` to build into the session's temporary
directory instead. ``python -m tests.real_corpus DIR`` builds everything and prints how long
each file took.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import ExifTags, Image, TiffImagePlugin

__all__ = [
    "BUILDERS",
    "CORPUS_VERSION",
    "QUADRANTS",
    "CorpusFile",
    "Expect",
    "RealCorpus",
    "animated_webp",
    "apng",
    "assert_bars",
    "assert_marker",
    "assert_quadrants",
    "close",
    "contain_box",
    "gif_10mb",
    "h264_720p_30s",
    "h264_1080p_30s",
    "h264_mov_rotated_180",
    "hevc_mov_rotated",
    "jpeg_12mp",
    "jpeg_25mb",
    "mean_colour",
    "mkv_legacy_rotate_tag",
    "png_alpha",
    "portrait_phone_photo",
    "vp9_webm",
]

#: Bump when any builder's output changes: the cross-run cache is keyed by it.
CORPUS_VERSION = 3

Color = tuple[int, int, int]
U8 = npt.NDArray[np.uint8]

RED: Color = (210, 40, 40)
GREEN: Color = (40, 190, 60)
BLUE: Color = (40, 60, 210)
WHITE: Color = (230, 230, 230)
YELLOW: Color = (250, 220, 0)
#: Colours of the upright picture's quarters: top-left, top-right, bottom-left, bottom-right.
QUADRANTS: tuple[Color, Color, Color, Color] = (RED, GREEN, BLUE, WHITE)


@dataclass(frozen=True, slots=True)
class Expect:
    """What a correct import of a corpus file shows.

    Attributes:
        kind: "image", "gif" (any animation) or "video".
        format: the detected format ("JPEG", "GIF", "PNG", "WEBP", "mov", "matroska").
        width, height: the source size as displayed (after EXIF orientation / video rotation).
        quadrants: colours of the displayed picture's quarters (TL, TR, BL, BR), or None.
        frames: inclusive range of frames in the frame file (identical neighbours merge).
        duration_ms: inclusive range of one pass's playing time (None: a still).
        file_bytes: inclusive range of the file's size, to keep the corpus realistic.
        loop_count: the player's loop count (0 = forever, n = n plays).
        alpha_bands: for a picture with alpha, the (alpha, rgb) of its left, middle and right
            thirds, as stored (what shows is rgb composited over the background).
        marker: for animations, a function from frame index to the moving yellow marker's box
            (x0, y0, x1, y1) in displayed source pixels.
    """

    kind: Literal["image", "gif", "video"]
    format: str
    width: int
    height: int
    quadrants: tuple[Color, Color, Color, Color] | None
    frames: tuple[int, int]
    duration_ms: tuple[int, int] | None
    file_bytes: tuple[int, int]
    loop_count: int = 0
    alpha_bands: tuple[tuple[int, Color], tuple[int, Color], tuple[int, Color]] | None = None
    marker: Callable[[int], tuple[int, int, int, int]] | None = None


@dataclass(frozen=True, slots=True)
class CorpusFile:
    """One generated file and what its import must show."""

    name: str
    path: Path
    expect: Expect


# ---------------------------------------------------------------------------------------------
# Pixels


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng([CORPUS_VERSION, *name.encode()])


def _quadrant_bands(
    width: int, height: int, rng: np.random.Generator, *, luma_noise: int, chroma_noise: int, band: int = 512
) -> Iterator[tuple[int, U8]]:
    """The upright marker picture, a band of rows at a time: quadrant colours + texture + noise.

    Yields (first row, rows) so that 24 MP pictures never need a full-size int16 copy.
    """
    colours = np.array(QUADRANTS, dtype=np.int16).reshape(2, 2, 3)
    gx = (18 * np.sin(np.linspace(0, 7.0, width))).astype(np.int16)
    for y0 in range(0, height, band):
        y1 = min(height, y0 + band)
        rows = np.arange(y0, y1)
        gy = (14 * np.cos(rows * (5.0 / height))).astype(np.int16)
        top = (rows < height // 2).astype(np.intp)
        out = np.empty((y1 - y0, width, 3), dtype=np.int16)
        half = width // 2
        out[:, :half] = colours[1 - top, 0][:, None, :]
        out[:, half:] = colours[1 - top, 1][:, None, :]
        out += (gx[None, :] + gy[:, None])[:, :, None]
        if luma_noise:
            out += rng.integers(-luma_noise, luma_noise + 1, (y1 - y0, width, 1), dtype=np.int16)
        if chroma_noise:
            out += rng.integers(-chroma_noise, chroma_noise + 1, (y1 - y0, width, 3), dtype=np.int16)
        yield y0, np.clip(out, 0, 255).astype(np.uint8)


def _quadrant_picture(width: int, height: int, rng: np.random.Generator, **noise: int) -> U8:
    out = np.empty((height, width, 3), dtype=np.uint8)
    for y0, rows in _quadrant_bands(width, height, rng, **noise):
        out[y0 : y0 + rows.shape[0]] = rows
    return out


def stored_from_upright(upright: U8, orientation: int) -> U8:
    """The pixels a camera stores so that EXIF ``orientation`` displays ``upright``.

    Written from the EXIF definitions (where the stored 0th row and column appear), with
    numpy, not with Pillow: 6 means "display rotated 90 degrees clockwise", so the stored image
    is the upright one turned counter-clockwise; 2, 3, 4, 5 and 7 are their own inverses.
    """
    ops: dict[int, Callable[[U8], U8]] = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, 1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, -1),
    }
    return np.ascontiguousarray(ops[orientation](upright))


def _camera_exif(make: str, model: str, orientation: int, when: str) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = make
    exif[ExifTags.Base.Model] = model
    exif[ExifTags.Base.Software] = f"{model} firmware 1.2.0"
    exif[ExifTags.Base.DateTime] = when
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.XResolution] = TiffImagePlugin.IFDRational(72, 1)
    exif[ExifTags.Base.YResolution] = TiffImagePlugin.IFDRational(72, 1)
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = when
    sub[ExifTags.Base.DateTimeDigitized] = when
    sub[ExifTags.Base.ExposureTime] = TiffImagePlugin.IFDRational(1, 120)
    sub[ExifTags.Base.FNumber] = TiffImagePlugin.IFDRational(18, 10)
    sub[ExifTags.Base.ISOSpeedRatings] = 125
    sub[ExifTags.Base.FocalLength] = TiffImagePlugin.IFDRational(26, 1)
    return exif.tobytes()


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")


# ---------------------------------------------------------------------------------------------
# Pictures


def jpeg_12mp(d: Path, orientation: int) -> CorpusFile:
    """A 12 MP (4000x3000 stored) camera JPEG with EXIF ``orientation`` 1..8, ~4 MB."""
    if orientation not in range(1, 9):
        raise ValueError(f"EXIF orientation is 1..8, not {orientation}")
    name = f"jpeg_12mp_o{orientation}.jpg"
    w, h = (4000, 3000) if orientation <= 4 else (3000, 4000)
    path = d / name
    if not path.exists():
        upright = _quadrant_picture(w, h, _rng(name), luma_noise=14, chroma_noise=3)
        tmp = _tmp(path)
        exif = _camera_exif("Canon", "Canon EOS 90D", orientation, "2024:05:18 14:03:27")
        Image.fromarray(stored_from_upright(upright, orientation)).save(
            tmp, "JPEG", quality=92, subsampling="4:2:0", exif=exif
        )
        tmp.replace(path)
    return CorpusFile(
        name,
        path,
        Expect("image", "JPEG", w, h, QUADRANTS, (1, 1), None, (2_500_000, 7_000_000)),
    )


def portrait_phone_photo(d: Path) -> CorpusFile:
    """An iPhone-style portrait photo: 3024x4032 upright, stored 4032x3024 with Orientation 6."""
    name = "portrait_phone.jpg"
    path = d / name
    if not path.exists():
        upright = _quadrant_picture(3024, 4032, _rng(name), luma_noise=12, chroma_noise=3)
        tmp = _tmp(path)
        exif = _camera_exif("Apple", "iPhone 13", 6, "2024:07:02 09:41:00")
        Image.fromarray(stored_from_upright(upright, 6)).save(
            tmp, "JPEG", quality=90, subsampling="4:2:0", exif=exif
        )
        tmp.replace(path)
    return CorpusFile(
        name, path, Expect("image", "JPEG", 3024, 4032, QUADRANTS, (1, 1), None, (2_000_000, 6_000_000))
    )


def jpeg_25mb(d: Path) -> CorpusFile:
    """A ~25 MB, 24 MP (6000x4000) JPEG at quality 98, 4:2:2, with full-colour noise (a big camera's fine JPEG)."""
    name = "jpeg_25mb.jpg"
    path = d / name
    if not path.exists():
        picture = _quadrant_picture(6000, 4000, _rng(name), luma_noise=20, chroma_noise=10)
        tmp = _tmp(path)
        exif = _camera_exif("NIKON CORPORATION", "NIKON D7500", 1, "2023:11:30 16:20:05")
        Image.fromarray(picture).save(tmp, "JPEG", quality=98, subsampling="4:2:2", exif=exif)
        tmp.replace(path)
    return CorpusFile(
        name, path, Expect("image", "JPEG", 6000, 4000, QUADRANTS, (1, 1), None, (22_000_000, 29_000_000))
    )


def png_alpha(d: Path) -> CorpusFile:
    """A 1200x900 RGBA PNG: left third fully transparent (hiding green), middle half-transparent red, right opaque blue."""
    name = "png_alpha.png"
    path = d / name
    bands: tuple[tuple[int, Color], tuple[int, Color], tuple[int, Color]] = (
        (0, (0, 255, 0)),
        (128, (255, 0, 0)),
        (255, (0, 0, 255)),
    )
    if not path.exists():
        w, h = 1200, 900
        a = np.zeros((h, w, 4), dtype=np.uint8)
        for i, (alpha, rgb) in enumerate(bands):
            a[:, i * w // 3 : (i + 1) * w // 3] = (*rgb, alpha)
        tmp = _tmp(path)
        Image.fromarray(a, "RGBA").save(tmp, "PNG")
        tmp.replace(path)
    return CorpusFile(
        name, path, Expect("image", "PNG", 1200, 900, None, (1, 1), None, (1_000, 200_000), alpha_bands=bands)
    )


def _marker_box(i: int, w: int, h: int, size: int, step: int) -> tuple[int, int, int, int]:
    """A square moving left to right along the middle band, wrapping around."""
    travel = max(1, w - size)
    x = (i * step) % travel
    y = h // 2 - size // 2
    return x, y, x + size, y + size


def _animation_frames(name: str, w: int, h: int, n: int, size: int, step: int, noise: int) -> Iterator[U8]:
    rng = _rng(name)
    base = _quadrant_picture(w, h, rng, luma_noise=0, chroma_noise=0)
    for i in range(n):
        frame = base.copy()
        if noise:
            grain = rng.integers(-noise, noise + 1, (h, w, 1), dtype=np.int16)
            frame = np.clip(frame.astype(np.int16) + grain, 0, 255).astype(np.uint8)
        x0, y0, x1, y1 = _marker_box(i, w, h, size, step)
        frame[y0:y1, x0:x1] = YELLOW
        yield frame


def animated_webp(d: Path) -> CorpusFile:
    """A 480x480 lossy animated WebP (Pillow/libwebp), 36 frames of 80 ms, looping forever."""
    name = "animated.webp"
    path = d / name
    w = h = 480
    n, size, step = 36, 96, 10
    if not path.exists():
        frames = [Image.fromarray(f) for f in _animation_frames(name, w, h, n, size, step, noise=10)]
        tmp = _tmp(path)
        frames[0].save(
            tmp, "WEBP", save_all=True, append_images=frames[1:], duration=80, loop=0, quality=80, method=0
        )
        tmp.replace(path)
    return CorpusFile(
        name,
        path,
        Expect(
            "gif",
            "WEBP",
            w,
            h,
            QUADRANTS,
            (n, n),
            (n * 80, n * 80),
            (100_000, 3_000_000),
            loop_count=0,
            marker=lambda i: _marker_box(i, w, h, size, step),
        ),
    )


def apng(d: Path) -> CorpusFile:
    """A 400x300 APNG written by Pillow: 24 frames of 50 ms, loop 3 times, a marker over quadrants."""
    name = "animated.png"
    path = d / name
    w, h = 400, 300
    n, size, step = 24, 60, 12
    if not path.exists():
        frames = [Image.fromarray(f) for f in _animation_frames(name, w, h, n, size, step, noise=6)]
        tmp = _tmp(path)
        frames[0].save(tmp, "PNG", save_all=True, append_images=frames[1:], duration=50, loop=3)
        tmp.replace(path)
    return CorpusFile(
        name,
        path,
        Expect(
            "gif",
            "PNG",
            w,
            h,
            QUADRANTS,
            (n, n),
            (n * 50, n * 50),
            (500_000, 6_000_000),
            loop_count=3,
            marker=lambda i: _marker_box(i, w, h, size, step),
        ),
    )


def gif_10mb(d: Path) -> CorpusFile:
    """A ~10 MB animated GIF: 480x270, 58 frames of 50 ms, a local palette and full-frame noise each.

    Each frame's palette is 255 random dark colours (0..120) plus yellow at index 0 for the marker,
    and its pixels are random indices: LZW cannot shrink that, as with dithered screen captures.
    """
    name = "gif_10mb.gif"
    path = d / name
    w, h = 480, 270
    n, size, step = 58, 60, 6
    if not path.exists():
        rng = _rng(name)
        frames = []
        for i in range(n):
            idx = rng.integers(1, 256, (h, w), dtype=np.uint8)
            x0, y0, x1, y1 = _marker_box(i, w, h, size, step)
            idx[y0:y1, x0:x1] = 0
            palette = rng.integers(0, 121, (256, 3), dtype=np.uint8)
            palette[0] = YELLOW
            im = Image.fromarray(idx, "P")
            im.putpalette(palette.tobytes())
            frames.append(im)
        tmp = _tmp(path)
        frames[0].save(
            tmp, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0, optimize=False
        )
        tmp.replace(path)
    return CorpusFile(
        name,
        path,
        Expect(
            "gif",
            "GIF",
            w,
            h,
            None,
            (n, n),
            (n * 50, n * 50),
            (9_000_000, 12_000_000),
            loop_count=0,
            marker=lambda i: _marker_box(i, w, h, size, step),
        ),
    )


# ---------------------------------------------------------------------------------------------
# Video


def _stored_rect(
    rect: tuple[int, int, int, int], disp_w: int, disp_h: int, turn: int
) -> tuple[int, int, int, int]:
    """A display-space box (x0, y0, x1, y1) in the stored frame, for a display turn of 0/90/180 CW."""
    x0, y0, x1, y1 = rect
    if turn == 0:
        return rect
    if turn == 180:
        return disp_w - x1, disp_h - y1, disp_w - x0, disp_h - y0
    # Displayed = stored turned 90 clockwise, so stored = displayed turned counter-clockwise:
    # displayed (x, y) sits at stored (y, disp_w - 1 - x).
    return y0, disp_w - x1, y1, disp_w - x0


def _encode_video(
    path: Path,
    *,
    codec: str,
    fmt: str,
    display: tuple[int, int],
    seconds: float,
    fps: int,
    turn: int = 0,
    options: dict[str, str] | None = None,
    legacy_rotate_tag: bool = False,
    name: str,
) -> None:
    """Encode the marker picture with moving film grain and a moving yellow bar.

    The picture is designed upright at ``display`` size and stored turned so that a player
    applying the container's rotation (``turn`` degrees clockwise) shows it upright: a display
    matrix (as phones write), or with ``legacy_rotate_tag`` only a ``rotate`` stream tag.
    Frames are built directly in YUV 4:2:0 (a slice copy per frame), so making 900 1080p
    frames costs about a second and the encoder's time dominates.
    """
    import av

    rng = _rng(name)
    dw, dh = display
    upright = _quadrant_picture(dw, dh, rng, luma_noise=0, chroma_noise=0)
    stored = {0: upright, 90: np.rot90(upright, 1), 180: upright[::-1, ::-1]}[turn]
    sh, sw = stored.shape[:2]
    base = av.VideoFrame.from_ndarray(np.ascontiguousarray(stored), format="rgb24")
    yuv = base.reformat(format="yuv420p").to_ndarray()
    # Film grain that moves over a still picture: luma lowered by the grain's mean, plus a
    # sliding window of a grain strip twice as wide (uint8 sums stay under 256).
    luma = np.clip(yuv[:sh].astype(np.int16) - 14, 0, 227).astype(np.uint8)
    grain = rng.integers(0, 29, (sh, 2 * sw), dtype=np.uint8)
    frames = round(seconds * fps)
    bar_w, bar_h = max(8, dw // 12), max(8, dh // 10)
    buf = yuv.copy()
    tmp = _tmp(path)
    with av.open(str(tmp), "w", format=fmt, options={"fflags": "+bitexact"}) as container:
        stream: Any = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = sw, sh, "yuv420p"
        stream.options = options or {}
        if turn and not legacy_rotate_tag:
            stream.set_display_rotation(-turn)  # PyAV takes counter-clockwise degrees
        if legacy_rotate_tag:
            stream.metadata["rotate"] = str(turn)
        for i in range(frames):
            off = (i * 4) % sw
            np.add(luma, grain[:, off : off + sw], out=buf[:sh])
            bx = (i * max(1, dw // 90)) % (dw - bar_w)
            x0, y0, x1, y1 = _stored_rect(
                (bx, dh // 2 - bar_h // 2, bx + bar_w, dh // 2 + bar_h // 2), dw, dh, turn
            )
            buf[y0:y1, x0:x1] = 225
            for packet in stream.encode(av.VideoFrame.from_ndarray(buf, format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)


_X264 = {"preset": "ultrafast", "crf": "23"}
_X265 = {"preset": "ultrafast", "x265-params": "log-level=error"}


def h264_1080p_30s(d: Path) -> CorpusFile:
    """A 1920x1080 H.264 MP4 (yuv420p, 30 fps, libx264 ultrafast) of 30 s, ~13 MB."""
    name = "h264_1080p_30s.mp4"
    path = d / name
    if not path.exists():
        _encode_video(
            path,
            codec="libx264",
            fmt="mp4",
            display=(1920, 1080),
            seconds=30,
            fps=30,
            options=_X264,
            name=name,
        )
    return CorpusFile(
        name,
        path,
        Expect("video", "mov", 1920, 1080, QUADRANTS, (880, 900), (29_900, 30_100), (5_000_000, 40_000_000)),
    )


def h264_720p_30s(d: Path) -> CorpusFile:
    """A 1280x720 H.264 MP4 (yuv420p, 30 fps, libx264 ultrafast) of 30 s, ~14 MB (the storage bench's)."""
    name = "h264_720p_30s.mp4"
    path = d / name
    if not path.exists():
        _encode_video(
            path,
            codec="libx264",
            fmt="mp4",
            display=(1280, 720),
            seconds=30,
            fps=30,
            options=_X264,
            name=name,
        )
    return CorpusFile(
        name,
        path,
        Expect("video", "mov", 1280, 720, QUADRANTS, (880, 900), (29_900, 30_100), (3_000_000, 30_000_000)),
    )


def hevc_available() -> bool:
    """Whether PyAV's FFmpeg can encode HEVC (libx265)."""
    import av

    return "libx265" in av.codecs_available


def hevc_mov_rotated(d: Path) -> CorpusFile:
    """What an iPhone records held upright: HEVC in a MOV, 1920x1080 stored, shown 1080x1920 (turned 90 CW), 3 s.

    Falls back to H.264 when PyAV's FFmpeg has no libx265 (then the name says h264).
    """
    hevc = hevc_available()
    name = "hevc_rotated.mov" if hevc else "h264_rotated_fallback.mov"
    path = d / name
    if not path.exists():
        _encode_video(
            path,
            codec="libx265" if hevc else "libx264",
            fmt="mov",
            display=(1080, 1920),
            seconds=3,
            fps=30,
            turn=90,
            options=_X265 if hevc else _X264,
            name=name,
        )
    return CorpusFile(
        name,
        path,
        Expect("video", "mov", 1080, 1920, QUADRANTS, (85, 90), (2_950, 3_050), (50_000, 20_000_000)),
    )


def h264_mov_rotated_180(d: Path) -> CorpusFile:
    """A phone video recorded upside down: H.264 MOV, 1280x720, display matrix turned 180 degrees, 2 s."""
    name = "h264_rotated_180.mov"
    path = d / name
    if not path.exists():
        _encode_video(
            path,
            codec="libx264",
            fmt="mov",
            display=(1280, 720),
            seconds=2,
            fps=30,
            turn=180,
            options=_X264,
            name=name,
        )
    return CorpusFile(
        name,
        path,
        Expect("video", "mov", 1280, 720, QUADRANTS, (55, 60), (1_950, 2_050), (50_000, 10_000_000)),
    )


def mkv_legacy_rotate_tag(d: Path) -> CorpusFile:
    """An MKV whose only rotation is a legacy ``rotate=90`` tag (older tools wrote it; no display matrix)."""
    name = "legacy_rotate_tag.mkv"
    path = d / name
    if not path.exists():
        _encode_video(
            path,
            codec="libx264",
            fmt="matroska",
            display=(480, 640),
            seconds=1,
            fps=30,
            turn=90,
            options=_X264,
            legacy_rotate_tag=True,
            name=name,
        )
    return CorpusFile(
        name,
        path,
        Expect("video", "matroska", 480, 640, QUADRANTS, (28, 30), (950, 1_050), (10_000, 5_000_000)),
    )


def vp9_webm(d: Path) -> CorpusFile:
    """A 1280x720 VP9 WebM (libvpx-vp9, realtime, speed 8), 10 s at 30 fps."""
    name = "vp9_720p.webm"
    path = d / name
    if not path.exists():
        _encode_video(
            path,
            codec="libvpx-vp9",
            fmt="webm",
            display=(1280, 720),
            seconds=10,
            fps=30,
            options={"deadline": "realtime", "cpu-used": "8", "row-mt": "1", "b": "2M"},
            name=name,
        )
    return CorpusFile(
        name,
        path,
        Expect("video", "matroska", 1280, 720, QUADRANTS, (290, 300), (9_900, 10_100), (500_000, 10_000_000)),
    )


# ---------------------------------------------------------------------------------------------
# Checking what a panel shows (a frame file's frame, or /api/display.png, as an RGB array)

Box = tuple[int, int, int, int]


def contain_box(w: int, h: int, panel_w: int, panel_h: int) -> Box:
    """Where a w x h picture lands on the panel with "contain": (x0, y0, x1, y1), computed here."""
    scale = min(panel_w / w, panel_h / h)
    sw, sh = min(panel_w, round(w * scale)), min(panel_h, round(h * scale))
    x0, y0 = (panel_w - sw) // 2, (panel_h - sh) // 2
    return x0, y0, x0 + sw, y0 + sh


def _panel_size(frame: U8) -> tuple[int, int]:
    return int(frame.shape[1]), int(frame.shape[0])


def to_panel(box: Box, src: tuple[int, int], panel: tuple[int, int]) -> Box:
    """A box in displayed source pixels, in panel pixels ("contain")."""
    px0, py0, px1, py1 = contain_box(*src, *panel)
    sx, sy = (px1 - px0) / src[0], (py1 - py0) / src[1]
    x0, y0, x1, y1 = box
    return round(px0 + x0 * sx), round(py0 + y0 * sy), round(px0 + x1 * sx), round(py0 + y1 * sy)


def mean_colour(frame: U8, cx: float, cy: float, r: int) -> Color:
    """Mean RGB of the (2r+1)-pixel square around (cx, cy)."""
    patch = frame[max(0, round(cy) - r) : round(cy) + r + 1, max(0, round(cx) - r) : round(cx) + r + 1, :3]
    m = patch.reshape(-1, 3).mean(axis=0)
    return int(m[0]), int(m[1]), int(m[2])


def close(got: Color, want: Color, tol: int) -> bool:
    return all(abs(g - w) <= tol for g, w in zip(got, want, strict=True))


def assert_quadrants(frame: U8, size: tuple[int, int], what: str = "") -> None:
    """The upright marker (red, green / blue, white) shows in the quarters of a w x h picture shown "contain"."""
    x0, y0, x1, y1 = contain_box(*size, *_panel_size(frame))
    w, h = x1 - x0, y1 - y0
    r = max(2, min(w, h) // 16)
    centres = [(x0 + w / 4, y0 + h / 4), (x0 + 3 * w / 4, y0 + h / 4), (x0 + w / 4, y0 + 3 * h / 4)]
    centres.append((x0 + 3 * w / 4, y0 + 3 * h / 4))
    seen = [mean_colour(frame, cx, cy, r) for cx, cy in centres]
    for got, want in zip(seen, QUADRANTS, strict=True):
        nearest = min(QUADRANTS, key=lambda c: sum((a - b) ** 2 for a, b in zip(c, got, strict=True)))
        assert nearest == want and close(got, want, 60), f"{what}: quarters show {seen}, want {QUADRANTS}"


def assert_bars(frame: U8, size: tuple[int, int], background: Color) -> None:
    """Letterbox bars (if a w x h picture needs any on this panel) are the background colour."""
    pw, ph = _panel_size(frame)
    x0, y0, x1, y1 = contain_box(*size, pw, ph)
    if y0 >= 4:
        assert close(mean_colour(frame, pw / 2, y0 / 2, 1), background, 8)
        assert close(mean_colour(frame, pw / 2, (y1 + ph) / 2, 1), background, 8)
    if x0 >= 4:
        assert close(mean_colour(frame, x0 / 2, ph / 2, 1), background, 8)
        assert close(mean_colour(frame, (x1 + pw) / 2, ph / 2, 1), background, 8)


def assert_marker(frame: U8, box: Box, size: tuple[int, int], present: bool) -> None:
    """The yellow marker is (or is not) at ``box`` (source pixels of a w x h animation)."""
    x0, y0, x1, y1 = to_panel(box, size, _panel_size(frame))
    got = mean_colour(frame, (x0 + x1) / 2, (y0 + y1) / 2, max(1, (x1 - x0) // 5))
    assert close(got, YELLOW, 50) == present, (box, got)


# ---------------------------------------------------------------------------------------------
# The registry and its cache

BUILDERS: dict[str, Callable[[Path], CorpusFile]] = {
    **{f"jpeg_12mp_o{o}": (lambda d, o=o: jpeg_12mp(d, o)) for o in range(1, 9)},  # type: ignore[misc]
    "portrait_phone": portrait_phone_photo,
    "jpeg_25mb": jpeg_25mb,
    "png_alpha": png_alpha,
    "animated_webp": animated_webp,
    "apng": apng,
    "gif_10mb": gif_10mb,
    "h264_1080p_30s": h264_1080p_30s,
    "hevc_mov_rotated": hevc_mov_rotated,
    "h264_mov_rotated_180": h264_mov_rotated_180,
    "mkv_legacy_rotate_tag": mkv_legacy_rotate_tag,
    "vp9_webm": vp9_webm,
}


class RealCorpus:
    """Corpus files built on first request and kept in ``root`` (thread-safe, crash-safe).

    A file is written under a temporary name and renamed into place when complete, so a
    file present under its name is whole; building again is a no-op.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._files: dict[str, CorpusFile] = {}
        #: Seconds each first request took in this process (about 0 when the file was cached).
        self.build_seconds: dict[str, float] = {}

    def get(self, name: str) -> CorpusFile:
        """The corpus file ``name`` (a key of ``BUILDERS``), built if it is not there yet."""
        with self._lock:
            if name not in self._files:
                builder = BUILDERS[name]
                start = time.perf_counter()
                entry = builder(self.root)
                self.build_seconds[name] = time.perf_counter() - start
                self._files[name] = entry
            return self._files[name]

    __getitem__ = get

    def names(self) -> list[str]:
        return list(BUILDERS)


def corpus_root(cache_dir: Path | None, fallback: Path) -> Path:
    """Where the session's corpus lives: the cross-run cache unless ``LOOP_CORPUS_CACHE=0``.

    ``cache_dir`` is named ``...-v<CORPUS_VERSION>``; caches of other versions next to it are
    removed (they are a few hundred megabytes each and can never be used again).
    """
    if cache_dir is None or os.environ.get("LOOP_CORPUS_CACHE", "1") == "0":
        return fallback
    stem = cache_dir.name.rsplit("-v", 1)[0]
    for old in cache_dir.parent.glob(f"{stem}-v*"):
        if old != cache_dir and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return cache_dir


def main(argv: list[str]) -> int:
    """``DIR [--import]``: build every corpus file into DIR; print size and build time (and import time)."""
    args = [a for a in argv if a != "--import"]
    if len(args) != 1:
        print("usage: python -m tests.real_corpus DIR [--import]", file=sys.stderr)
        return 2
    timed_import = "--import" in argv
    corpus = RealCorpus(Path(args[0]))
    totals = [0.0, 0.0]
    for name in corpus.names():
        start = time.perf_counter()
        entry = corpus.get(name)
        built = time.perf_counter() - start
        line = f"{name:24s} {entry.path.stat().st_size / 1e6:8.2f} MB  built {built:6.2f} s"
        totals[0] += built
        if timed_import:
            from libloop.media.importer import import_media

            dest = corpus.root / f".{name}.loop"
            start = time.perf_counter()
            result = import_media(entry.path, dest)
            took = time.perf_counter() - start
            dest.unlink()
            totals[1] += took
            line += f"  imported {took:6.2f} s ({result.frames} frames, {result.duration_ms} ms)"
        print(line)
    print(
        f"{'total':24s} {'':11s}  built {totals[0]:6.2f} s"
        + (f"  imported {totals[1]:6.2f} s" if timed_import else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
