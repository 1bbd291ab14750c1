"""The import queue: uploads converted one at a time, out of the playback process's way.

``ImportQueue.submit`` takes ownership of an uploaded file and returns a ``Job`` at once; a
dispatcher thread runs the imports one after another. With ``worker="process"`` (the device)
each import runs in a fresh ``spawn``-ed child process at lower priority (``os.nice(10)``), so
decoding a video never competes with the player for the GIL or at equal CPU priority, and
whatever memory a decoder used goes back to the system when the child exits. The child reports
progress and its result through a pipe. ``worker="inline"`` runs the import in the dispatcher
thread (tests, scripts).

On success the parent hands the frame file to the library: ``library.add(frame_file, NewItem)``;
the frame file is written to ``library.staging_path()`` (same file system, so ``add`` is a
rename). The uploaded file goes into the same add as the item's kept original (moved, not
copied: it is on the data directory's file system), so a new rotation or fit can render it
again. Whatever happens, nothing of a job is left behind when it ends, and a failed job leaves
no frame file behind.

Background work: when no upload waits, the dispatcher runs the units of a ``BackgroundWork``
(the re-render of the library after a settings change, ``libloop.media.rerender``), one at a
time, so uploads always go first and the two never convert at once.

Duplicates: every job's ``content_hash`` (sha256 of the upload) ends up in the item. With
``dedupe=True`` the queue hashes the upload first and, if ``library.find_by_hash`` knows it,
finishes the job with the existing item instead of importing it again; by default
(``dedupe=False``) the caller decides and duplicates are imported as new items.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import secrets
import shutil
import threading
import unicodedata
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from libloop import childlog
from libloop.errors import ImportQueueClosed, ImportWorkerError, JobNotFound, LoopError
from libloop.index import durable
from libloop.index.items import MAX_NAME, Item, NewItem
from libloop.media.importer import ImportOptions, ImportResult, content_hash, import_media
from libloop.media.limits import Limits
from libloop.wording import plural

__all__ = ["ImportQueue", "Imported", "Job", "JobStatus", "import_into", "item_name", "new_item"]

JobStatus = Literal["queued", "running", "done", "failed"]

log = logging.getLogger(__name__)

#: Finished jobs remembered for ``get``/``jobs`` (older ones are forgotten).
KEEP_FINISHED = 200


class LibraryLike(Protocol):
    """What the queue needs of ``libloop.index.Library``."""

    def staging_path(self, suffix: str = ".loop") -> Path: ...

    def add(
        self,
        frame_file: Path,
        meta: NewItem,
        *,
        original: Path | None = None,
        render: Mapping[str, Any] | None = None,
    ) -> Item: ...

    def find_by_hash(self, content_hash: str) -> Item | None: ...

    def adopt_original(self, item_id: str, original: Path) -> Item: ...


@dataclass(frozen=True, slots=True)
class Job:
    """A snapshot of one import job (the queue keeps the live state)."""

    id: str
    filename: str
    status: JobStatus
    progress: float
    item: Item | None = None
    error: dict[str, str] | None = None
    #: A sentence about a successful import the person should know (e.g. it was cut short).
    warning: str | None = None
    #: The upload's content was already in the library; ``item`` is the existing entry.
    duplicate: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The HTTP API's import-job JSON shape (plus ``warning``)."""
        return {
            "id": self.id,
            "filename": self.filename,
            "status": self.status,
            "progress": round(self.progress, 4),
            "item": self.item.to_dict() if self.item is not None else None,
            "error": dict(self.error) if self.error is not None else None,
            "warning": self.warning,
            "duplicate": self.duplicate,
        }

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


def new_item(result: ImportResult, filename: str) -> NewItem:
    """The library entry for an import of ``filename`` (the upload's or file's original name)."""
    return NewItem(
        name=item_name(filename),
        kind=result.kind,
        frames=result.frames,
        duration_ms=result.duration_ms,
        width=result.width,
        height=result.height,
        source_name=filename,
        content_hash=result.content_hash,
        loop_count=result.loop_count,
    )


@dataclass(frozen=True, slots=True)
class Imported:
    """The outcome of :func:`import_into`."""

    item: Item
    #: The content was already in the library; ``item`` is the existing entry.
    existing: bool = False
    #: One sentence for the person, e.g. that a long input was cut at a limit.
    warning: str | None = None


def truncation_warning(result: ImportResult, filename: str, limits: Limits) -> str | None:
    """The sentence telling that an import was cut at a documented limit, or None."""
    if not result.truncated:
        return None
    if getattr(result, "cut_by_budget", False):
        return (
            f"{filename} takes more storage than LOOP gives one item, so it was cut to its first "
            f"{plural(result.frames, 'frame')} ({result.duration_ms / 1000:.1f} s); the budget is "
            f"{limits.max_item_bytes / 2**20:g} MB of frames per item."
        )
    return (
        f"{filename} was longer than LOOP keeps, so it was cut to its first "
        f"{plural(result.frames, 'frame')} ({result.duration_ms / 1000:.1f} s); the limits are "
        f"{plural(limits.max_frames, 'frame')} of animation and {limits.max_video_seconds:g} s of video."
    )


def import_into(
    library: LibraryLike,
    src: Path,
    filename: str,
    convert: Callable[[Path, Path], ImportResult],
    *,
    dedupe: bool = True,
    limits: Limits | None = None,
    keep: Literal["move", "copy"] | None = None,
    render: Mapping[str, Any] | None = None,
) -> Imported:
    """Import ``src`` into ``library``: the one path the upload queue and ``loop import`` share.

    ``convert(src, dest)`` writes the frame file (``import_media`` here or in a worker process).
    With ``dedupe``, content already in the library returns the existing item. ``keep`` keeps
    ``src`` as the item's original: ``"move"`` hands the file itself to the library (it must be
    on the data directory's file system; the upload queue's are), ``"copy"`` a copy of it
    (``loop import``, whose files are the person's own); None keeps nothing and leaves ``src``
    where it is. ``render`` records what the frame file is rendered for. A failure leaves no
    frame file and no copy behind.
    """
    if dedupe:
        existing = library.find_by_hash(content_hash(src))
        if existing is not None:
            if keep is not None and existing.original is None:
                # Uploaded again to give an item from before originals were kept its original.
                kept = src if keep == "move" else library.staging_path(".original")
                if keep == "copy":
                    _copy(src, kept)
                existing = library.adopt_original(existing.id, kept)
            return Imported(existing, existing=True)
    dest = library.staging_path()
    original: Path | None = None
    try:
        result = convert(src, dest)
        if keep == "copy":
            original = library.staging_path(".original")
            _copy(src, original)
        elif keep == "move":
            original = src
        # The library takes the frame file (and the original) over, on success and on failure.
        item = library.add(dest, new_item(result, filename), original=original, render=render)
    except BaseException:
        _remove(dest)
        _remove(dest.with_name(dest.name + ".partial"))
        if keep == "copy" and original is not None:
            _remove(original)
        raise
    return Imported(item, warning=truncation_warning(result, filename, limits or Limits()))


def item_name(filename: str) -> str:
    """A display name from an uploaded file name: no directories, no extension, printable, 1..200 chars."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.strip(".") else base
    clean = "".join(c if unicodedata.category(c)[0] not in "CZ" or c == " " else " " for c in stem)
    clean = " ".join(clean.split())[:MAX_NAME].strip()
    return clean or "untitled"


@dataclass(slots=True)
class _Task:
    job: Job
    src: Path
    on_done: Callable[[Job], None] | None = None


def _child_main(conn: Any, src: str, dest: str, options: ImportOptions, name: str) -> None:
    """Worker process body: lower priority, import, report progress and the result through ``conn``."""
    childlog.configure()
    with contextlib.suppress(OSError):
        os.nice(10)
    try:
        result = import_media(Path(src), Path(dest), options, lambda p: conn.send(("progress", p)), name=name)
        conn.send(("ok", dataclasses.asdict(result)))
    except LoopError as exc:
        conn.send(("error", exc.code, str(exc)))
    except BaseException as exc:  # a bug; report it instead of dying silently
        conn.send(("error", "import_failed", f"Importing {name} failed unexpectedly ({type(exc).__name__})."))
    finally:
        conn.close()


class ImportQueue:
    """Runs imports one at a time and adds the results to the library.

    Args:
        library: the index (``libloop.index.Library`` or anything with its
            ``staging_path``/``add``/``find_by_hash``).
        options: how media is converted (panel size, fit, limits...).
        staging_dir: where uploads wait before import (``DATA/incoming``); ``incoming_path``
            hands out fresh paths in it. Frame files go to the library's staging path instead.
        worker: "process" (a spawned child per import, at lower priority) or "inline".
        dedupe: return the existing item for an upload whose content is already in the library.
    """

    def __init__(
        self,
        library: LibraryLike,
        options: ImportOptions | None = None,
        *,
        staging_dir: Path,
        worker: Literal["process", "inline"] = "process",
        dedupe: bool = False,
    ) -> None:
        if worker not in ("process", "inline"):
            raise ValueError(f"worker must be 'process' or 'inline', not {worker!r}")
        self.library = library
        self.options = options or ImportOptions()
        self.staging_dir = Path(staging_dir)
        self.worker = worker
        self.dedupe = dedupe
        self._cond = threading.Condition()
        self._jobs: dict[str, Job] = {}
        self._finished: deque[str] = deque()
        self._queue: deque[_Task] = deque()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._child: Any = None
        self._background: BackgroundWork | None = None

    # --- public API ----------------------------------------------------------------------

    def submit(self, src: Path, filename: str, *, on_done: Callable[[Job], None] | None = None) -> Job:
        """Queue ``src`` (an uploaded file the queue now owns and will remove) for import.

        ``on_done(job)`` is called in the queue's thread with the finished job (done or
        failed), after the item is in the library; an exception it raises is logged, not
        propagated.

        Raises:
            ImportQueueClosed: ``close()`` was called (``src`` is removed).
        """
        job = Job(id=secrets.token_urlsafe(9), filename=filename, status="queued", progress=0.0)
        with self._cond:
            if self._closed:
                _remove(Path(src))
                raise ImportQueueClosed("The import queue is shut down; uploads are not accepted now.")
            self._jobs[job.id] = job
            self._queue.append(_Task(job, Path(src), on_done))
            self._start_thread()
            self._cond.notify_all()
        return job

    def set_background(self, work: BackgroundWork | None) -> None:
        """Run ``work`` whenever no upload waits (one background source; None removes it)."""
        with self._cond:
            self._background = work
        self.poke()

    def poke(self) -> None:
        """The background work may have something to do now: wake the dispatcher."""
        with self._cond:
            if self._closed:
                return
            self._start_thread()
            self._cond.notify_all()

    def _start_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="import-queue", daemon=True)
            self._thread.start()

    def incoming_path(self, filename: str = "") -> Path:
        """A fresh path in ``staging_dir`` to save an upload to before ``submit`` (creates the directory)."""
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        suffix = "".join(c for c in Path(filename.replace("\\", "/")).suffix[:10] if c.isalnum() or c == ".")
        return self.staging_dir / f"{secrets.token_urlsafe(12)}{suffix}.upload"

    def get(self, job_id: str) -> Job:
        """The current snapshot of a job; JobNotFound if unknown (or long forgotten)."""
        with self._cond:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def jobs(self) -> list[Job]:
        """Snapshots of the known jobs, oldest first."""
        with self._cond:
            return list(self._jobs.values())

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job is done or failed (or ``timeout`` seconds pass); return its snapshot."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._jobs.get(job_id) is None or self._jobs[job_id].finished, timeout
            )
        return self.get(job_id)

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop: fail the queued jobs, stop a running worker process, and wait for the dispatcher.

        Background work is not stopped here (its owner closes it, first, so that a unit in
        progress does not hold up the wait).
        """
        with self._cond:
            self._closed = True
            queued = list(self._queue)
            self._queue.clear()
            child = self._child
            self._cond.notify_all()
        for task in queued:
            _remove(task.src)
            self._finish(
                task.job, error={"code": "cancelled", "message": "The import was cancelled at shut-down."}
            )
        if child is not None:
            with contextlib.suppress(Exception):
                child.terminate()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> ImportQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- machinery -----------------------------------------------------------------------

    def _update(self, job: Job, **changes: Any) -> Job:
        with self._cond:
            current = self._jobs.get(job.id, job)
            new = dataclasses.replace(current, **changes)
            self._jobs[job.id] = new
            self._cond.notify_all()
            return new

    def _finish(
        self,
        job: Job,
        *,
        item: Item | None = None,
        error: dict[str, str] | None = None,
        warning: str | None = None,
        duplicate: bool = False,
    ) -> Job:
        if error is None:
            final = self._update(
                job, status="done", progress=1.0, item=item, error=None, warning=warning, duplicate=duplicate
            )
        else:
            final = self._update(job, status="failed", error=error)
        with self._cond:
            self._finished.append(job.id)
            while len(self._finished) > KEEP_FINISHED:
                self._jobs.pop(self._finished.popleft(), None)
        return final

    def _progress(self, job: Job) -> Callable[[float], None]:
        def report(p: float) -> None:
            with self._cond:
                current = self._jobs.get(job.id)
                if current is not None and p > current.progress:
                    self._jobs[job.id] = dataclasses.replace(current, progress=min(0.99, p))
                    self._cond.notify_all()

        return report

    def _tell_background(self, item: Item) -> None:
        work = self._background
        if work is not None:
            try:
                work.imported(item)
            except Exception:
                log.exception("the background work could not take note of an import")

    def _background_waiting(self) -> bool:
        work = self._background
        if work is None:
            return False
        try:
            return work.has_work()
        except Exception:
            log.exception("the background work could not say whether it has work")
            return False

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or bool(self._queue) or self._background_waiting())
                if self._closed and not self._queue:
                    return
                task = self._queue.popleft() if self._queue else None
                work = self._background
            if task is not None:
                self._process(task)
            elif work is not None:
                try:
                    work.run_one()
                except Exception:
                    log.exception("background work failed")

    def _process(self, task: _Task) -> None:
        job = self._update(task.job, status="running")
        outcome: dict[str, Any] = {
            "error": {"code": "import_failed", "message": "The import was interrupted."}
        }
        options = self.options  # one job, one set of options (settings may change meanwhile)
        try:
            done = import_into(
                self.library,
                task.src,
                job.filename,
                lambda src, dest: self._import(job, src, dest, options),
                dedupe=self.dedupe,
                limits=options.limits,
                keep="move",
                render=options.render_record(),
            )
            outcome = {"item": done.item, "warning": done.warning, "duplicate": done.existing}
            self._tell_background(done.item)
        except LoopError as exc:
            outcome = {"error": {"code": exc.code, "message": str(exc)}}
        except Exception as exc:
            outcome = {"error": {"code": "import_failed", "message": f"The import failed ({exc})."}}
        finally:
            # Clean up before the job is reported finished: whoever waits on it may check
            # at once that nothing was left behind.
            _remove(task.src)
            final = self._finish(job, **outcome)
        if task.on_done is not None:
            try:
                task.on_done(final)
            except Exception:
                log.exception("the follow-up of import %s failed", final.id)

    def _import(self, job: Job, src: Path, dest: Path, options: ImportOptions) -> ImportResult:
        name = Path(job.filename).name or job.filename
        if self.worker == "inline":
            return import_media(src, dest, options, self._progress(job), name=name)
        ctx = multiprocessing.get_context("spawn")
        receiver, sender = ctx.Pipe(duplex=False)
        child = ctx.Process(
            target=_child_main,
            args=(sender, str(src), str(dest), options, name),
            name="loop-import",
            daemon=True,
        )
        with self._cond:
            if self._closed:
                raise ImportQueueClosed("The import queue is shut down; the import was not started.")
            self._child = child
            child.start()
        sender.close()
        report = self._progress(job)
        outcome: tuple[Any, ...] | None = None
        try:
            while outcome is None:
                try:
                    message = receiver.recv()
                except EOFError:
                    break
                if message[0] == "progress":
                    report(float(message[1]))
                else:
                    outcome = message
        finally:
            receiver.close()
            child.join()
            with self._cond:
                self._child = None
        if outcome is None:
            raise ImportWorkerError(
                f"The import of {name} stopped unexpectedly (worker exit code {child.exitcode}); "
                "the file may need more memory than this device has."
            )
        if outcome[0] == "error":
            error = LoopError(outcome[2])
            error.code = outcome[1]
            raise error
        fields = dict(outcome[1])
        fields["path"] = Path(fields["path"])
        return ImportResult(**fields)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _copy(src: Path, dest: Path) -> None:
    """Copy a file (a disk that fills up is ``DiskFull``; nothing is left of a failed copy)."""
    try:
        with durable.translate_errors("keeping a copy of the original"):
            shutil.copyfile(src, dest)
    except BaseException:
        _remove(dest)
        raise


class BackgroundWork(Protocol):
    """Work the queue runs a unit at a time while no upload waits (see the module docstring)."""

    def has_work(self) -> bool:
        """Whether a unit is waiting; cheap, called under the queue's lock."""
        ...

    def run_one(self) -> None:
        """Do one unit (on the queue's thread); exceptions are logged, not propagated."""
        ...

    def imported(self, item: Item) -> None:
        """An upload finished as ``item`` (new, or an existing one it matched)."""
        ...
