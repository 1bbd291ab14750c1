"""Screens the player draws itself: "the library is empty" and "something is wrong".

The empty screen is what a person sees the first time they plug LOOP in, so it must tell
them what to do without a manual: the dashboard's address as large text and as a QR code a
phone camera can read from the 2.8" glass (dark modules on white with the 4-module quiet
zone the standard requires, each module several pixels wide). Both screens are drawn with
Pillow's built-in font so nothing depends on fonts installed on the Pi.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import segno
from PIL import Image, ImageDraw, ImageFont

__all__ = ["QrPlacement", "empty_screen", "error_screen", "qr_matrix", "qr_placement"]

BACKGROUND = (12, 12, 20)
FOREGROUND = (235, 235, 235)
ACCENT = (255, 170, 40)
ERROR_BG = (90, 10, 10)
QUIET_ZONE = 4
MARGIN = 8

_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font(size: int) -> _Font:
    return ImageFont.load_default(size=size)


def qr_matrix(text: str) -> npt.NDArray[np.bool_]:
    """The QR code for ``text`` as a boolean module matrix (True = dark), quiet zone included."""
    qr = segno.make(text, error="m", micro=False)
    rows = list(qr.matrix_iter(scale=1, border=QUIET_ZONE))
    return np.array(rows, dtype=bool)


@dataclass(frozen=True)
class QrPlacement:
    """Where the QR code sits on a screen: top-left pixel, pixels per module, modules a side."""

    x: int
    y: int
    scale: int
    modules: int

    @property
    def side(self) -> int:
        """Width (and height) in pixels, quiet zone included."""
        return self.scale * self.modules


def qr_placement(size: tuple[int, int], text: str) -> QrPlacement:
    """Where ``empty_screen`` draws the QR code for ``text`` on a screen of ``size``.

    Portrait screens put it in the middle band, landscape ones on the left half.
    """
    w, h = size
    modules = qr_matrix(text).shape[0]
    if w >= h:  # landscape: QR on the left, text on the right
        room = min(w // 2, h - 2 * MARGIN)
        scale = max(1, room // modules)
        side = scale * modules
        return QrPlacement(MARGIN, (h - side) // 2, scale, modules)
    room = min(w - 2 * MARGIN, int(h * 0.62))
    scale = max(1, room // modules)
    side = scale * modules
    return QrPlacement((w - side) // 2, 44, scale, modules)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: _Font, width: int) -> list[str]:
    """Break ``text`` into lines no wider than ``width`` pixels (long words are cut)."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}".strip()
            if draw.textlength(candidate, font=font) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = word
            while draw.textlength(line, font=font) > width and len(line) > 1:
                cut = len(line)
                while cut > 1 and draw.textlength(line[:cut], font=font) > width:
                    cut -= 1
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


def _text_block(
    draw: ImageDraw.ImageDraw,
    x: int,
    y: int,
    width: int,
    text: str,
    font: _Font,
    fill: tuple[int, int, int],
    *,
    center: bool = True,
) -> int:
    """Draw wrapped text from ``y``; returns the y below it."""
    size = int(getattr(font, "size", 14))
    for line in _wrap(draw, text, font, width):
        lw = draw.textlength(line, font=font)
        lx = x + (width - lw) / 2 if center else x
        draw.text((lx, y), line, font=font, fill=fill)
        y += size + 4
    return y


def empty_screen(size: tuple[int, int], dashboard_url: str) -> Image.Image:
    """The screen for an empty library: how to add media, the address as text and QR code.

    Without an address (the network is not up yet) it says how to find one instead.
    """
    w, h = size
    img = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(img)
    title, body, small = _font(22), _font(16), _font(14)
    if not dashboard_url:
        y = _text_block(draw, MARGIN, h // 4, w - 2 * MARGIN, "LOOP", title, ACCENT)
        y = _text_block(draw, MARGIN, y + 8, w - 2 * MARGIN, "Nothing to play yet.", body, FOREGROUND)
        _text_block(
            draw,
            MARGIN,
            y + 8,
            w - 2 * MARGIN,
            "Connect LOOP to your network, then open its dashboard in a browser to add GIFs, "
            "pictures and videos.",
            small,
            FOREGROUND,
        )
        return img
    place = qr_placement(size, dashboard_url)
    modules = qr_matrix(dashboard_url)
    dark = np.where(modules, 0, 255).astype(np.uint8)
    qr = Image.fromarray(dark, "L").resize((place.side, place.side), Image.Resampling.NEAREST)
    img.paste(qr.convert("RGB"), (place.x, place.y))
    if w >= h:
        tx = place.x + place.side + MARGIN
        tw = w - tx - MARGIN
        y = _text_block(draw, tx, MARGIN + 10, tw, "Nothing to play yet.", body, ACCENT)
        y = _text_block(draw, tx, y + 6, tw, "Scan the code or open", small, FOREGROUND)
        y = _text_block(draw, tx, y + 2, tw, dashboard_url, body, ACCENT)
        _text_block(draw, tx, y + 6, tw, "to add GIFs, pictures and videos.", small, FOREGROUND)
        return img
    _text_block(draw, MARGIN, 12, w - 2 * MARGIN, "Nothing to play yet.", title, ACCENT)
    y = place.y + place.side + 8
    y = _text_block(draw, MARGIN, y, w - 2 * MARGIN, "Scan or open", small, FOREGROUND)
    y = _text_block(draw, MARGIN, y, w - 2 * MARGIN, dashboard_url, body, ACCENT)
    _text_block(draw, MARGIN, y + 2, w - 2 * MARGIN, "to add GIFs, pictures and videos.", small, FOREGROUND)
    return img


def error_screen(size: tuple[int, int], message: str, dashboard_url: str = "") -> Image.Image:
    """The screen for fatal trouble: what went wrong, in words, and where to look."""
    w = size[0]
    img = Image.new("RGB", size, ERROR_BG)
    draw = ImageDraw.Draw(img)
    y = _text_block(draw, MARGIN, MARGIN + 16, w - 2 * MARGIN, "LOOP cannot play", _font(22), ACCENT)
    y = _text_block(draw, MARGIN, y + 10, w - 2 * MARGIN, message, _font(16), FOREGROUND)
    hint = f"See {dashboard_url} for details." if dashboard_url else "Run `loop doctor` for details."
    _text_block(draw, MARGIN, y + 12, w - 2 * MARGIN, hint, _font(14), FOREGROUND)
    return img
