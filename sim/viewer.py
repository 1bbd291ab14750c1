"""A pygame window that shows the simulated panel's glass, scaled up, and saves screenshots.

pygame is imported when the window opens, so ``sim`` works without it (headless simulation
needs only the panel model). With ``headless=True`` SDL's dummy video driver is used: nothing
appears on screen but drawing and screenshots work, which is how the tests and CI run it.

SDL requires its window to be driven from the main thread: call :meth:`Viewer.pump` from the
main loop (it never blocks) and do everything else on other threads.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from libloop.errors import MissingExtra
from libloop.ili9341 import Rotation, logical_size

__all__ = ["GlassSource", "Viewer"]


class GlassSource(Protocol):
    """What the window shows: the panel model, or a reader of the player process's framebuffer."""

    @property
    def version(self) -> int:
        """Changes whenever the glass may show something new."""
        ...

    def glass(self, rotation: Rotation = Rotation.R0) -> Any:
        """The glass as an ``(h, w, 3)`` uint8 array, turned for ``rotation``."""
        ...


def _import_pygame() -> ModuleType:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame
    except ImportError:
        raise MissingExtra("The simulator window", "sim", "pygame") from None
    return pygame


class Viewer:
    """Shows ``panel.snapshot(rotation)`` in a window ``scale`` times the panel's size.

    Args:
        panel: the panel model to show (or anything with its ``version`` and ``glass``, such as
            the device's view of the player process's framebuffer).
        scale: integer magnification (nearest-neighbour, so pixels stay crisp).
        title: the window title.
        headless: use SDL's dummy video driver (no window appears).
        rotation: how to turn the glass for viewing; settable while running.
    """

    def __init__(
        self,
        panel: GlassSource,
        *,
        scale: int = 2,
        title: str = "LOOP",
        headless: bool = False,
        rotation: Rotation = Rotation.R0,
    ) -> None:
        if scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale}")
        self.panel = panel
        self.scale = scale
        self.title = title
        self.headless = headless
        self.rotation = Rotation(rotation)
        self.frames_drawn = 0
        self._pygame: Any = None
        self._screen: Any = None
        self._shown: tuple[int, Rotation] | None = None

    def __enter__(self) -> Viewer:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._screen is not None

    def open(self) -> None:
        """Create the window (or the dummy surface) and draw the panel once.

        Raises:
            MissingExtra: pygame is not installed.
            RuntimeError: called from a thread other than the main thread.
        """
        if self._screen is not None:
            return
        self._check_thread()
        if self.headless:
            os.environ["SDL_VIDEODRIVER"] = "dummy"
        pygame = self._pygame = _import_pygame()
        pygame.display.init()
        pygame.display.set_caption(self.title)
        self._resize()
        self._draw()

    def close(self) -> None:
        """Close the window; safe to call twice."""
        if self._screen is None:
            return
        self._screen = None
        self._shown = None
        self._pygame.display.quit()

    def pump(self) -> bool:
        """Handle window events and redraw if the panel changed; False once the window is closed."""
        if self._screen is None:
            return False
        self._check_thread()
        pygame = self._pygame
        for event in pygame.event.get():
            if event.type == pygame.QUIT or (
                event.type == pygame.KEYDOWN and event.key in (pygame.K_ESCAPE, pygame.K_q)
            ):
                self.close()
                return False
        if self._shown != (self.panel.version, self.rotation):
            self._draw()
        return True

    def save_png(self, path: str | Path) -> Path:
        """Write what the window shows (scaled) to a PNG file and return its path."""
        if self._screen is None:
            self.open()
        elif self._shown != (self.panel.version, self.rotation):
            self._draw()
        out = Path(path)
        self._pygame.image.save(self._screen, str(out))
        return out

    def _check_thread(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("The simulator window must be driven from the main thread; call pump() there.")

    def _size(self) -> tuple[int, int]:
        w, h = logical_size(self.rotation)
        return w * self.scale, h * self.scale

    def _resize(self) -> None:
        size = self._size()
        if self._screen is None or self._screen.get_size() != size:
            self._screen = self._pygame.display.set_mode(size)

    def _draw(self) -> None:
        pygame = self._pygame
        version = self.panel.version
        glass = np.ascontiguousarray(self.panel.glass(self.rotation))
        h, w = glass.shape[:2]
        if self._screen.get_size() != (w * self.scale, h * self.scale):
            self._resize()
        surface = pygame.image.frombuffer(glass.tobytes(), (w, h), "RGB")
        if self.scale != 1:
            surface = pygame.transform.scale(surface, (w * self.scale, h * self.scale))
        self._screen.blit(surface, (0, 0))
        pygame.display.flip()
        self._shown = (version, self.rotation)
        self.frames_drawn += 1
