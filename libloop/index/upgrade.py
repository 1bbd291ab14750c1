"""Converting a library's v1 frame files to v2 in the background, while the device plays.

A library made by an earlier LOOP has frame files in format v1 (every frame raw). They keep
playing; ``loop fsck --repair`` converts them, and so does the device on its own: at start-up,
when any item is still v1, ``BackgroundUpgrade`` runs the same conversion in a child process
at the lowest priority (``os.nice(19)``), one item after another, so playback and imports keep
the cores they need. Each file is written beside the old one and renamed over it with the
item's new size in one transaction (see ``fsck.OLD_FORMAT``): a crash or a stop in the middle
leaves the old file, playable, and a leftover in ``frames/.tmp`` that start-up removes.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
from pathlib import Path
from typing import Any

from libloop import childlog
from libloop.errors import FrameFileError

__all__ = ["BackgroundUpgrade", "old_format_items"]

log = logging.getLogger(__name__)


def old_format_items(library: Any) -> list[str]:
    """Ids of the items whose frame files are still in format v1 (reads ten bytes of each)."""
    from libloop.media.framefile_v2 import file_version

    old = []
    for item in library.items():
        try:
            if file_version(library.frame_path(item)) == 1:
                old.append(item.id)
        except FrameFileError:
            continue
    return old


def _child(data_dir: str) -> None:
    childlog.configure()
    with contextlib.suppress(OSError):
        os.nice(19)
    from libloop.index import Library, fsck

    with Library(Path(data_dir)).open() as library:
        report = fsck.FsckReport()
        fsck._check_formats(library, report, repair=True)
    for problem in report.problems:
        log.info("%s", problem.message)


class BackgroundUpgrade:
    """Runs the v1 → v2 conversion of a library in a niced child process (see the module docstring)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self._process: Any = None

    def start(self, library: Any) -> bool:
        """Start converting if ``library`` has v1 items; returns whether a conversion started."""
        if self._process is not None or not old_format_items(library):
            return False
        ctx = multiprocessing.get_context("spawn")
        self._process = ctx.Process(
            target=_child, args=(str(self.data_dir),), name="loop-upgrade", daemon=True
        )
        self._process.start()
        return True

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the conversion to end; True when it has (or never started)."""
        if self._process is None:
            return True
        self._process.join(timeout)
        return not self._process.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the conversion (a file half-converted is left as it was: still v1, still playing)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.is_alive():
            process.terminate()
        process.join(timeout)
        if process.is_alive():  # pragma: no cover - SIGTERM is not ignored by the child
            process.kill()
            process.join(timeout)
