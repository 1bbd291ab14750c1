"""Pictures and animated pictures through Pillow: PNG/APNG, JPEG (EXIF orientation), BMP, WebP.

Dimensions are checked on the header before any pixel is decoded, and Pillow's
``DecompressionBombWarning`` is an error here (``MediaTooLarge``), whatever the warning filters
of the process. JPEGs are decoded in draft mode at the smallest DCT scale that still covers the
panel, which is several times faster than a full decode followed by a downscale.

Animated WebP is composited by Pillow (libwebp's demuxer does the blending and disposal);
its loop count already means "play n times" (0 = forever) and frame delays follow the same
``DelayPolicy`` as GIFs. Animated PNGs do not come here: ``decode_apng`` composites them
(Pillow's APNG compositing differs from the specification's).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from libloop.errors import CorruptMedia, MediaTooLarge, UnsupportedMedia
from libloop.media.decode import DelayPolicy, MediaSource, Prescale, SourceFrame
from libloop.media.limits import Limits

__all__ = ["PillowSource", "open_picture"]

#: Pillow formats accepted (the JPEG opener also yields MPO, how many cameras store JPEGs).
FORMATS = ("PNG", "JPEG", "BMP", "WEBP")

#: EXIF orientations that swap width and height.
_TRANSPOSED = {5, 6, 7, 8}

_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
)


class PillowSource(MediaSource):
    """A still or an animated picture opened with Pillow (header read, pixels not yet)."""

    def __init__(
        self, im: Image.Image, *, limits: Limits, delays: DelayPolicy, prescale: Prescale | None, name: str
    ):
        self._im = im
        self.name = name
        self.limits = limits
        self.delays = delays
        self.prescale = prescale
        self.format = str(im.format)
        orientation = 1
        with contextlib.suppress(*_DECODE_ERRORS):
            orientation = int(im.getexif().get(0x0112, 1))
        w, h = im.size
        self.width, self.height = (h, w) if orientation in _TRANSPOSED else (w, h)
        limits.check_dimensions(w, h, name)
        animated = bool(getattr(im, "is_animated", False)) and self.format != "MPO"
        self._n = min(int(getattr(im, "n_frames", 1)), limits.max_frames) if animated else 1
        self.truncated = animated and int(getattr(im, "n_frames", 1)) > limits.max_frames
        self.kind = "gif" if self._n > 1 else "image"
        self.loop_count = int(im.info.get("loop", 0)) if self.kind == "gif" else 0

    @property
    def frame_count(self) -> int:
        return self._n

    def frames(self) -> Iterator[SourceFrame]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                if self.kind == "image":
                    yield SourceFrame(self._still(), self.delays.still_ms, 1.0)
                    return
                for i in range(self._n):
                    self._im.seek(i)
                    frame = self._im.convert("RGBA")
                    delay = self._im.info.get("duration")
                    duration = self.delays.animation_delay(float(delay) if delay is not None else None)
                    yield SourceFrame(frame, duration, (i + 1) / self._n)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise MediaTooLarge(f"{self.name} is too large to decode safely; scale it down first.") from exc
        except _DECODE_ERRORS as exc:
            raise CorruptMedia(
                f"{self.name} is damaged or truncated ({self.format}); upload it again."
            ) from exc

    def _still(self) -> Image.Image:
        im = self._im
        if self.prescale is not None and self.format in ("JPEG", "MPO"):
            tw, th = self.prescale(self.width, self.height)
            if im.size != (self.width, self.height):
                tw, th = th, tw  # draft works on the stored (unrotated) size
            im.draft("RGB", (tw, th))
        im.load()
        im = ImageOps.exif_transpose(im)
        has_alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
        return im.convert("RGBA" if has_alpha else "RGB")

    def close(self) -> None:
        self._im.close()


def open_picture(
    path: Path, *, limits: Limits, delays: DelayPolicy, prescale: Prescale | None, name: str
) -> PillowSource:
    """Open a picture with Pillow and check its header.

    Raises:
        UnsupportedMedia: Pillow does not recognise it as one of ``FORMATS``.
        CorruptMedia: the header is damaged.
        MediaTooLarge: over the limits, or a decompression bomb.
    """
    Image.init()  # register every plugin, so that ``formats`` can name WEBP
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path, formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaTooLarge(f"{name} is too large to decode safely; scale it down first.") from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedMedia(f"{name} looks like a picture but its format cannot be read.") from exc
    except _DECODE_ERRORS as exc:
        raise CorruptMedia(f"{name} is a damaged picture; upload it again.") from exc
    try:
        return PillowSource(im, limits=limits, delays=delays, prescale=prescale, name=name)
    except _DECODE_ERRORS as exc:
        im.close()
        raise CorruptMedia(f"{name} is a damaged picture; upload it again.") from exc
    except BaseException:
        im.close()
        raise
