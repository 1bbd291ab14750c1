"""Re-rendering the library in the background after a change of rotation, fit or colours.

Every item records what its frame file was rendered for (``Item.render``: panel size, fit,
dither, background). ``Rerenderer.refresh()`` compares that with what the settings want now
(``wanted(item)``) and queues the items that differ and kept their original; the import queue
runs it as background work (``ImportQueue.set_background``), one item at a time whenever no
upload waits. Each item's original is converted again (in a long-lived child process at lower
priority, ``worker="process"``, or on the queue's thread, ``"inline"``) into a staging file
that ``Library.replace_frames`` swaps into the item atomically; the player moves to the new
file at the item's next turn and plays the old one (fitted on the fly, if its shape is wrong)
until then.

Items without an original (imported before originals were kept) cannot be rendered again:
they are listed in ``progress()["needs_upload"]`` when their frames no longer fit the panel,
and keep playing fitted on the fly; re-uploading them gives them an original.

A delete during a re-render keeps its guarantee: the swap finds the item gone and the new
file is removed (``ItemNotFound``); an item changed meanwhile (another swap, a new fit) is
queued again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from libloop import childlog
from libloop.errors import ImportWorkerError, InvalidChange, ItemNotFound, LibraryUnavailable, LoopError
from libloop.index.items import Item
from libloop.media.importer import ImportOptions, ImportResult, import_media

__all__ = ["Rerenderer"]

log = logging.getLogger(__name__)

Render = dict[str, Any]


class RenderLibrary(Protocol):
    """What the re-render needs of ``libloop.index.Library``."""

    def items(self) -> list[Item]: ...
    def get(self, item_id: str) -> Item: ...
    def frame_path(self, item: Item) -> Path: ...
    def original_path(self, item: Item) -> Path | None: ...
    def staging_path(self, suffix: str = ".loop") -> Path: ...
    def replace_frames(
        self,
        item_id: str,
        frame_file: Path,
        *,
        frames: int,
        duration_ms: int,
        render: Mapping[str, Any] | None,
        expect_file: str | None = None,
    ) -> Item: ...


def frame_size(path: Path) -> tuple[int, int] | None:
    """The panel size a frame file was made for (its header), or None if it cannot be read."""
    from libloop.media.frames import open_frames

    try:
        with open_frames(path) as ff:
            return ff.width, ff.height
    except (LoopError, OSError, ValueError):
        return None


class Rerenderer:
    """Keeps the library's frame files rendered for the current settings (module docstring).

    Args:
        library: the open library.
        wanted: what an item's frame file should be rendered for now (``render_record`` shape).
        options: the base import options (limits, frame delays); size, fit and colours come
            from ``wanted``.
        worker: "process" (a child at lower priority, kept for a whole pass) or "inline".
        on_change: called after each item is swapped or given up (the queue's wake-up, say).
    """

    def __init__(
        self,
        library: RenderLibrary,
        wanted: Callable[[Item], Render],
        options: ImportOptions | None = None,
        *,
        worker: Literal["process", "inline"] = "process",
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.library = library
        self.wanted = wanted
        self.options = options or ImportOptions()
        self.worker = worker
        self.on_change = on_change
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified whenever the work changes
        self._pending: list[str] = []  # ids to render again, in play order
        self._finished: set[str] = set()  # rendered again in this pass
        self._needs_upload: dict[str, str] = {}  # id -> name: no original, frames do not fit
        self._failed: dict[str, str] = {}  # id -> why, until the next change of settings
        self._current: tuple[str, float] | None = None  # (id, progress 0..1)
        self._sizes: dict[str, tuple[int, int] | None] = {}  # file name -> frame size (cache)
        self._child: _RenderChild | None = None
        self._closed = False

    # --- planning --------------------------------------------------------------------------

    def refresh(self) -> None:
        """Compare every item with what is wanted now; queue those to render again."""
        try:
            items = self.library.items()
        except LibraryUnavailable as exc:  # the device runs without its library until repaired
            log.warning("nothing to re-render: %s", exc)
            return
        pending: list[str] = []
        needs_upload: dict[str, str] = {}
        for item in items:
            want = self.wanted(item)
            if item.render == want:
                continue
            if item.original is None:
                if self._misfits(item, want):
                    needs_upload[item.id] = item.name
                continue
            pending.append(item.id)
        with self._lock:
            if not self._pending and self._current is None:
                self._finished = set()  # a new pass
            self._failed = {}  # a change of settings is worth another try
            present = {item.id for item in items}
            current = self._current[0] if self._current is not None else None
            self._finished &= present
            self._pending = [i for i in pending if i != current]
            self._needs_upload = needs_upload
            self._idle.notify_all()
        if self.on_change is not None:
            self.on_change()

    def imported(self, item: Item) -> None:
        """A new upload (or one that gave an old item its original): render it again if needed.

        An upload converted while the settings changed was rendered for the old ones.
        """
        if item.original is None or item.render == self.wanted(item):
            return
        with self._lock:
            self._needs_upload.pop(item.id, None)
            current = self._current[0] if self._current is not None else None
            if item.id not in self._pending and item.id != current:
                self._pending.append(item.id)
            self._idle.notify_all()
        if self.on_change is not None:
            self.on_change()

    def _misfits(self, item: Item, want: Render) -> bool:
        """An item without an original: does it still need anything? (Only a wrong shape shows.)"""
        if item.render is not None:
            return (item.render.get("width"), item.render.get("height")) != (want["width"], want["height"])
        if item.file_name not in self._sizes:
            self._sizes[item.file_name] = frame_size(self.library.frame_path(item))
        return self._sizes[item.file_name] not in (None, (want["width"], want["height"]))

    def progress(self) -> dict[str, Any]:
        """``{"done", "total", "running", "current", "needs_upload", "failed"}`` for the API."""
        with self._lock:
            current = self._current
            done = len(self._finished)
            total = done + len(self._pending) + (1 if current is not None else 0) + len(self._failed)
            return {
                "done": done,
                "total": total,
                "running": current is not None or bool(self._pending),
                "current": None if current is None else {"id": current[0], "progress": round(current[1], 3)},
                "needs_upload": [{"id": i, "name": n} for i, n in self._needs_upload.items()],
                "failed": [{"id": i, "message": m} for i, m in self._failed.items()],
            }

    def state_of(self, item_id: str) -> str | None:
        """``"pending"`` (queued or rendering), ``"needs_upload"``, ``"failed"`` or None (up to date)."""
        with self._lock:
            if item_id in self._pending or (self._current is not None and self._current[0] == item_id):
                return "pending"
            if item_id in self._needs_upload:
                return "needs_upload"
            if item_id in self._failed:
                return "failed"
        return None

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or rendering (or ``timeout``); True when idle."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._pending and self._current is None, timeout)

    # --- the queue's background work ---------------------------------------------------------

    def has_work(self) -> bool:
        with self._lock:
            return bool(self._pending) and not self._closed

    def run_one(self) -> None:
        """Render the next queued item again and swap the result in."""
        with self._lock:
            if not self._pending or self._closed:
                return
            item_id = self._pending.pop(0)
            self._current = (item_id, 0.0)
        outcome = "failed:The re-render stopped unexpectedly."
        try:
            outcome = self._render(item_id)
        finally:
            # One step: the item leaves "current" and is counted, so progress never skips it.
            with self._lock:
                self._current = None
                if outcome == "done":
                    self._finished.add(item_id)
                elif outcome == "again" and item_id not in self._pending:
                    self._pending.append(item_id)
                elif outcome.startswith("failed:"):
                    self._failed[item_id] = outcome.removeprefix("failed:")
                idle_child = self._child if not self._pending else None
                if idle_child is not None:
                    self._child = None
                self._idle.notify_all()
            if idle_child is not None:
                idle_child.close()  # the pass is over: give the worker's memory back
        if self.on_change is not None:
            self.on_change()

    def _render(self, item_id: str) -> str:
        try:
            item = self.library.get(item_id)
        except ItemNotFound:
            return "gone"
        want = self.wanted(item)
        if item.render == want:
            return "done"
        src = self.library.original_path(item)
        if src is None or not src.exists():
            return f"failed:{item.name} has no kept original any more; re-upload it to re-render it."
        dest = self.library.staging_path()
        options = self.options.for_render(want)
        try:
            result = self._convert(item_id, src, dest, options, item.source_name or item.name)
            if self.wanted(self.library.get(item_id)) != want:
                raise InvalidChange("the settings changed meanwhile")
            self.library.replace_frames(
                item_id,
                dest,
                frames=result.frames,
                duration_ms=result.duration_ms,
                render=want,
                expect_file=item.file_name,
            )
        except ItemNotFound:
            return "gone"  # deleted meanwhile: the delete won, nothing is left of the re-render
        except InvalidChange:
            return "again"
        except LoopError as exc:
            log.warning("re-rendering %s failed: %s", item_id, exc)
            return f"failed:{exc}"
        finally:
            for leftover in (dest, dest.with_name(dest.name + ".partial")):
                with contextlib.suppress(OSError):
                    leftover.unlink()
        return "done"

    def _convert(
        self, item_id: str, src: Path, dest: Path, options: ImportOptions, name: str
    ) -> ImportResult:
        def report(p: float) -> None:
            with self._lock:
                if self._current is not None and self._current[0] == item_id:
                    self._current = (item_id, p)

        if self.worker == "inline":
            return import_media(src, dest, options, report, name=name)
        with self._lock:
            if self._closed:
                raise ImportWorkerError("The re-render is shut down.")
            if self._child is None:
                self._child = _RenderChild()
            child = self._child
        return child.convert(src, dest, options, name, report)

    def close(self) -> None:
        """Stop: nothing more is started; a conversion in progress is abandoned."""
        with self._lock:
            self._closed = True
            self._pending = []
            child, self._child = self._child, None
            self._idle.notify_all()
        if child is not None:
            child.close(wait=False)


class _RenderChild:
    """A spawned worker process at lower priority that converts one file after another."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe()
        self._proc = ctx.Process(target=_child_main, args=(child_conn,), name="loop-rerender", daemon=True)
        self._proc.start()
        child_conn.close()

    def convert(
        self, src: Path, dest: Path, options: ImportOptions, name: str, progress: Callable[[float], None]
    ) -> ImportResult:
        try:
            self._conn.send((str(src), str(dest), options, name))
            while True:
                message = self._conn.recv()
                if message[0] == "progress":
                    progress(float(message[1]))
                    continue
                break
        except (EOFError, OSError, BrokenPipeError):
            raise ImportWorkerError(
                f"The re-render of {name} stopped unexpectedly (worker exit code {self._proc.exitcode}); "
                "the file may need more memory than this device has."
            ) from None
        if message[0] == "error":
            error = LoopError(message[2])
            error.code = message[1]
            raise error
        fields = dict(message[1])
        fields["path"] = Path(fields["path"])
        return ImportResult(**fields)

    def close(self, *, wait: bool = True) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self._conn.send(None)
        if wait:
            self._proc.join(5.0)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5.0)
        self._conn.close()


class _Throttled:
    """Progress for the parent in steps of a tenth: each message wakes a thread in the player's process."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.last = -1.0

    def __call__(self, progress: float) -> None:
        if progress - self.last >= 0.1:
            self.last = progress
            self.conn.send(("progress", progress))


def _child_main(conn: Any) -> None:
    """The worker's body: lower priority, then convert each file it is sent until told to stop."""
    childlog.configure()
    with contextlib.suppress(OSError):
        os.nice(10)
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        src, dest, options, name = task
        try:
            result = import_media(Path(src), Path(dest), options, _Throttled(conn), name=name)
            conn.send(("ok", dataclasses.asdict(result)))
        except LoopError as exc:
            conn.send(("error", exc.code, str(exc)))
        except Exception as exc:  # a bug: report it, and carry on with the next file
            conn.send(
                ("error", "import_failed", f"Re-rendering {name} failed unexpectedly ({type(exc).__name__}).")
            )
