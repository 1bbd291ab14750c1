"""The one entry point of the media pipeline: ``import_media(src, dest, options, progress)``.

Decode (by content) → composite → fit to the panel → RGB565 (dithered by default) → frame
file, one frame at a time, written atomically to ``dest``. Used by ``loop import`` and, through
``ImportQueue``, by the web app. Consecutive frames that come out identical on the panel are
merged into one longer frame (less to store, nothing to send).

Any failure raises a ``MediaError`` subclass (or ``DiskFull``) with one sentence and leaves no
file behind; an unexpected exception inside a decoder is reported as ``CorruptMedia`` so hostile
input can never surface as anything else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from libloop.color import rgb888_to_rgb565
from libloop.errors import CorruptMedia, LoopError, MediaTooLarge
from libloop.media.decode import DelayPolicy, Kind, open_media
from libloop.media.fit import FitMode, fit_frame, scaled_size
from libloop.media.framefile import MAX_SIDE, FrameFileWriter
from libloop.media.limits import Limits

__all__ = ["FORMATS", "ImportOptions", "ImportResult", "content_hash", "import_media"]

Progress = Callable[[float], None]

#: What ``ImportOptions.format`` takes: "auto" (v2, the codec chosen by kind), "zstd" or "h264"
#: (v2 with that codec) or "v1" (the previous format, every frame raw; for tests and the bench).
FORMATS = ("auto", "zstd", "h264", "v1")


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How to convert media for the panel.

    Attributes:
        width, height: the logical panel size for the configured rotation (240x320 portrait).
        fit: contain (letterbox), cover (crop) or stretch.
        background: RGB of letterbox bars and of transparent pixels.
        dither: ordered dithering in the RGB565 conversion (less banding in gradients).
        limits: what is accepted (see ``Limits``).
        short_delay_ms, min_delay_ms, still_ms: the frame delay policy (see ``DelayPolicy``).
        format: the frame file written (``FORMATS``): by default v2, video re-encoded as H.264
            at the panel's size (when PyAV can encode it), everything else lossless (zstd).
    """

    width: int = 240
    height: int = 320
    fit: FitMode = FitMode.CONTAIN
    background: tuple[int, int, int] = (0, 0, 0)
    dither: bool = True
    limits: Limits = field(default_factory=Limits)
    short_delay_ms: int = 100
    min_delay_ms: int = 20
    still_ms: int = 10_000
    format: str = "auto"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {self.format!r}")
        if not (1 <= self.width <= MAX_SIDE and 1 <= self.height <= MAX_SIDE):
            raise ValueError(f"panel size {self.width}x{self.height} is outside 1..{MAX_SIDE}")
        if len(self.background) != 3 or not all(0 <= c <= 255 for c in self.background):
            raise ValueError(f"background must be three 0..255 values, got {self.background!r}")
        object.__setattr__(self, "fit", FitMode(self.fit))

    def render_record(self) -> dict[str, Any]:
        """What a frame file made with these options was rendered for (``Item.render``)."""
        r, g, b = self.background
        return {
            "width": self.width,
            "height": self.height,
            "fit": str(self.fit),
            "dither": self.dither,
            "background": f"#{r:02x}{g:02x}{b:02x}",
        }

    def for_render(self, record: Mapping[str, Any]) -> ImportOptions:
        """These options (limits, delays) rendering for ``record`` (see ``render_record``)."""
        text = str(record["background"])
        return dataclasses.replace(
            self,
            width=int(record["width"]),
            height=int(record["height"]),
            fit=FitMode(record["fit"]),
            dither=bool(record["dither"]),
            background=(int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)),
        )

    @property
    def delays(self) -> DelayPolicy:
        return DelayPolicy(
            short_delay_ms=self.short_delay_ms, min_delay_ms=self.min_delay_ms, still_ms=self.still_ms
        )


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import produced.

    Attributes:
        kind: "gif" for any animation (GIF, APNG, animated WebP), "image" for a still, "video".
        frames: frames in the frame file (identical consecutive frames merged).
        duration_ms: one pass through all frames.
        width, height: the SOURCE size (after EXIF orientation / video rotation).
        loop_count: 0 = loop forever, n = play n times (see decode_gif for GIF's mapping).
        content_hash: sha256 hex of the source file's bytes.
        truncated: the input was cut at a limit (max frames, max video seconds, or the
            storage budget ``max_item_bytes``).
        format: the detected container/format ("GIF", "PNG", "JPEG", "mov", "matroska", ...).
        path: the frame file written.
        bytes: the frame file's size.
        codec: how its frames are stored ("raw" for v1, "zstd", "h264").
        cut_by_budget: the input was cut because its frames would pass ``max_item_bytes``.
    """

    kind: Kind
    frames: int
    duration_ms: int
    width: int
    height: int
    loop_count: int
    content_hash: str
    truncated: bool
    format: str
    path: Path
    bytes: int = 0
    codec: str = "raw"
    cut_by_budget: bool = False


def content_hash(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 hex of a file's bytes, read in chunks (never the whole file in memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class _Monotonic:
    """Forwards progress in 0..1, never backwards and without floods of tiny steps."""

    def __init__(self, callback: Progress | None) -> None:
        self.callback = callback
        self.last = -1.0

    def __call__(self, value: float) -> None:
        value = min(1.0, max(0.0, value))
        if self.callback is not None and (value >= self.last + 0.005 or (value == 1.0 and self.last < 1.0)):
            self.last = value
            self.callback(value)


@contextlib.contextmanager
def _decoding(label: str) -> Iterator[None]:
    """Turn a decoder's unexpected failure into a typed media error with one sentence."""
    try:
        yield
    except LoopError:
        raise
    except MemoryError as exc:
        raise MediaTooLarge(f"{label} needs more memory to decode than this device has.") from exc
    except Exception as exc:
        raise CorruptMedia(
            f"{label} could not be decoded ({type(exc).__name__}); it may be damaged."
        ) from exc


def import_media(
    src: Path,
    dest: Path,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
    *,
    name: str | None = None,
) -> ImportResult:
    """Convert ``src`` into a display-ready frame file at ``dest`` (written atomically).

    Args:
        src: the uploaded file; recognised by content, its name does not matter.
        dest: where the frame file goes (its directory must exist).
        options: panel size, fit, colours, limits and delay policy.
        progress: called with 0..1, monotonically, ending with 1.0 on success.
        name: how to call the file in error messages (defaults to ``src.name``).

    Raises:
        EmptyMedia, UnsupportedMedia, CorruptMedia, MediaTooLarge: bad input (nothing written).
        MissingExtra: a video and PyAV is not installed.
        DiskFull: the disk filled up (nothing left behind).
    """
    opts = options or ImportOptions()
    label = name or Path(src).name
    report = _Monotonic(progress)
    report(0.0)
    src = Path(src)

    def prescale(w: int, h: int) -> tuple[int, int]:
        return scaled_size(w, h, opts.width, opts.height, opts.fit)

    with _decoding(label):
        source = open_media(src, limits=opts.limits, delays=opts.delays, prescale=prescale, name=label)
        digest = content_hash(src)
    budget = opts.limits.max_item_bytes
    # A frame never takes more than its raw size (plus a codec's few bytes of framing), so
    # stopping while one more still fits keeps the file within the budget.
    frame_bound = opts.width * opts.height * 2 + 1024
    cut_by_budget = False
    with source, _writer(dest, opts, source.kind, source.loop_count) as (writer, codec):
        rgb_in = writer.wants_rgb888
        pending: npt.NDArray[np.uint8] | None = None
        pending_ms = 0
        total_ms = 0
        written_ms = 0
        with _decoding(label):
            for frame in source.frames():
                rgb = fit_frame(frame.image, opts.width, opts.height, opts.fit, opts.background)
                shown = rgb if rgb_in else rgb888_to_rgb565(rgb, dither=opts.dither)
                if pending is not None and np.array_equal(pending, shown):
                    pending_ms += frame.duration_ms
                else:
                    if pending is not None:
                        if writer.bytes_upper_bound + 2 * frame_bound > budget:
                            cut_by_budget = True
                            break
                        writer.add_frame(pending, min(pending_ms, 0xFFFFFFFF))
                        written_ms += pending_ms
                    pending, pending_ms = shown, frame.duration_ms
                total_ms += frame.duration_ms
                report(0.99 * frame.progress)
        if pending is not None:
            writer.add_frame(pending, min(pending_ms, 0xFFFFFFFF))
            written_ms += pending_ms
        writer.commit()
        frames = writer.frame_count
    report(1.0)
    return ImportResult(
        kind=source.kind,
        frames=frames,
        duration_ms=written_ms if cut_by_budget else total_ms,
        width=source.width,
        height=source.height,
        loop_count=source.loop_count,
        content_hash=digest,
        truncated=source.truncated or cut_by_budget,
        format=source.format,
        path=Path(dest),
        bytes=Path(dest).stat().st_size,
        codec=codec,
        cut_by_budget=cut_by_budget,
    )


class _RawWriter(FrameFileWriter):
    """The v1 writer with the interface of the v2 ones."""

    wants_rgb888 = False

    @property
    def bytes_upper_bound(self) -> int:
        return self._pos + 24 * (self.frame_count + 1) + 24 * len(self._regions) + 4096


@contextlib.contextmanager
def _writer(dest: Path, opts: ImportOptions, kind: Kind, loop_count: int) -> Iterator[tuple[Any, str]]:
    """The frame file writer for ``opts.format`` and the media's kind, and its codec's name."""
    fmt = opts.format
    if fmt == "auto":
        from libloop.media.codec_h264 import h264_available

        even = opts.width % 2 == 0 and opts.height % 2 == 0
        fmt = "h264" if kind == "video" and even and h264_available() else "zstd"
    writer: Any
    if fmt == "v1":
        writer = _RawWriter(dest, opts.width, opts.height, loop_count=loop_count)
        name = "raw"
    elif fmt == "h264":
        from libloop.media.codec_h264 import H264Writer

        writer = H264Writer(dest, opts.width, opts.height, loop_count=loop_count)
        name = "h264"
    else:
        from libloop.media.codec_zstd import LEVEL, VIDEO_LEVEL, ZstdWriter

        level = VIDEO_LEVEL if kind == "video" else LEVEL
        writer = ZstdWriter(dest, opts.width, opts.height, loop_count=loop_count, level=level)
        name = "zstd"
    with writer:
        yield writer, name
