"""Helpers of the fault-injection suite (tests/test_faults.py): real faults, recorded answers.

Faults are made real where the machine allows it: a data directory on a small tmpfs that is
really full (``SmallDisk``), remounted read-only, databases and frame files damaged on disk.
What cannot be made real for one file only (an I/O error when reading it, a refused write of
the index while the device runs) is injected at the system call by strace (``inject``), as the
crash tests do. Every answer the device gives is recorded in an ``Answers`` table.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from libloop.color import rgb888_to_rgb565
from libloop.index import Item, Library, NewItem
from libloop.media.codec_zstd import ZstdWriter
from tests.e2e_helpers import DeviceProcess, HttpResult, http, wait_until

STRACE = shutil.which("strace") or "/usr/bin/strace"
W, H = 240, 320
#: 5xx answers that are deliberate: storage that refuses (503) and a full disk (507).
DELIBERATE_5XX = (503, 507)


# --- what the device answered -------------------------------------------------------------


@dataclass
class Row:
    case: str
    action: str
    status: str
    answer: str


@dataclass
class Answers:
    """Every answer of the suite, printed as one table at the end (run pytest with ``-s``)."""

    rows: list[Row] = field(default_factory=list)

    def http(self, case: str, action: str, result: HttpResult) -> HttpResult:
        self.rows.append(Row(case, action, str(result.status), summary(result)))
        check_answer(action, result)
        return result

    def note(self, case: str, action: str, status: str, answer: str) -> None:
        self.rows.append(Row(case, action, status, answer))

    def table(self) -> str:
        lines = ["", "| case | action | status | the device answered |", "|---|---|---|---|"]
        for r in self.rows:
            lines.append(f"| {r.case} | {r.action} | {r.status} | {r.answer.replace('|', '/')} |")
        return "\n".join(lines)


def summary(result: HttpResult, width: int = 110) -> str:
    """One line of an answer: the error's code and sentence, or what the body is."""
    try:
        body = result.json()
    except ValueError:
        return f"{len(result.body)} bytes (not JSON)"
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        text = f"{error.get('code')}: {error.get('message')}"
    elif isinstance(body, dict) and "id" in body and "name" in body:
        text = f"item {body['name']!r}"
    elif isinstance(body, dict) and "items" in body:
        text = f"{len(body['items'])} items"
    elif isinstance(body, dict) and "state" in body:
        text = f"state {body['state']}"
    else:
        text = json.dumps(body)[:width]
    return text if len(text) <= width else text[: width - 1] + "…"


def check_answer(action: str, result: HttpResult) -> None:
    """No 5xx but the deliberate ones, and every error in the JSON error shape."""
    assert result.status < 500 or result.status in DELIBERATE_5XX, (
        f"{action}: {result.status} {result.body!r}"
    )
    if result.status >= 400:
        body = result.json()
        assert set(body["error"]) >= {"code", "message"}, f"{action}: {body}"
        assert "Traceback" not in result.body.decode(errors="replace")


def stop_cleanly(device: DeviceProcess) -> str:
    """SIGTERM the device: it must still be alive, exit 0, and have logged no traceback."""
    assert device.proc.poll() is None, "the device died"
    code, err = device.stop()
    assert code == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    return err


# --- a small disk -------------------------------------------------------------------------


def mount_problem() -> str | None:
    """Why a tmpfs cannot be mounted here (None when it can)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return "mounting a small tmpfs needs root and mount(8)"
    with tempfile.TemporaryDirectory() as where:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", where], capture_output=True)
        if done.returncode != 0:
            return f"mount is not permitted here: {done.stderr.decode(errors='replace').strip()[:200]}"
        subprocess.run(["umount", where], check=True)
    return None


def strace_problem() -> str | None:
    if not Path(STRACE).exists():
        return f"strace is not installed ({STRACE})"
    probe = subprocess.run([STRACE, "-f", "-o", "/dev/null", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"strace cannot trace here: {probe.stderr.strip()[:200]}"
    return None


class SmallDisk:
    """A tmpfs of ``size_mb`` at ``root``: a disk that really fills up and really goes read-only."""

    def __init__(self, root: Path, size_mb: int) -> None:
        self.root = root
        self.size_mb = size_mb
        self.filler = root / "filler"

    def __enter__(self) -> SmallDisk:
        self.root.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m", "tmpfs", str(self.root)], check=True
        )
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["umount", "-l", str(self.root)], check=False)

    def free(self) -> int:
        return shutil.disk_usage(self.root).free

    def leave_free(self, nbytes: int) -> int:
        """Grow or shrink the filler so that about ``nbytes`` stay free; returns what is free."""
        self.filler.touch()
        size = self.filler.stat().st_size
        target = max(0, size + self.free() - nbytes)
        if target < size:
            os.truncate(self.filler, target)
        elif target > size:
            fd = os.open(self.filler, os.O_WRONLY)
            try:
                with contextlib.suppress(OSError):  # ENOSPC at the very end is the point
                    os.posix_fallocate(fd, size, target - size)
            finally:
                os.close(fd)
        return self.free()

    def fill(self) -> None:
        self.leave_free(0)
        with contextlib.suppress(OSError), open(self.filler, "ab") as out:
            while True:  # the last few bytes a page-granular fallocate leaves
                out.write(b"\0" * 512)
                out.flush()

    def remount(self, *, read_only: bool) -> None:
        mode = "ro" if read_only else "rw"
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.root)], check=True)


def inject(paths: list[Path], syscalls: list[str], error: str, when: str | None = None) -> list[str]:
    """An strace prefix failing ``syscalls`` on ``paths`` (and only there) with ``error``."""
    spec = f"{','.join(syscalls)}:error={error}" + (f":when={when}" if when else "")
    prefix = [STRACE, "-f", "-qq", "-o", "/dev/null"]
    for path in paths:
        prefix += ["-P", str(path)]
    return [*prefix, "-e", f"trace={','.join(syscalls)}", "-e", f"inject={spec}"]


# --- a library to play ---------------------------------------------------------------------

COLOURS = [(220, 30, 30), (30, 200, 30), (40, 60, 230), (230, 200, 30)]


def frames_of(colour: tuple[int, int, int], n: int) -> list[np.ndarray]:
    out = []
    for k in range(n):
        rgb = np.full((H, W, 3), colour, dtype=np.uint8)
        rgb[10 + 20 * k : 40 + 20 * k, 10:60] = 255  # a moving square: each frame differs
        out.append(rgb888_to_rgb565(rgb))
    return out


def make_library(data: Path, count: int = 3, frames: int = 4, duration_ms: int = 60) -> list[Item]:
    """``count`` animated items of distinct colours, made with the library itself (v2 files, as
    imports write them: a library of v1 files would be upgraded under the tests' feet)."""
    items = []
    with Library(data) as lib:
        for n in range(count):
            path = lib.staging_path()
            with ZstdWriter(path, W, H) as writer:
                for f in frames_of(COLOURS[n % len(COLOURS)], frames):
                    writer.add_frame(f, duration_ms)
                writer.commit()
            meta = NewItem(
                name=f"clip {n}",
                kind="gif",
                frames=frames,
                duration_ms=frames * duration_ms,
                width=W,
                height=H,
                source_name=f"clip{n}.gif",
                content_hash=f"{n:064x}",
            )
            items.append(lib.add(path, meta))
    return items


def wait_for_play(device: DeviceProcess, timeout: float = 20) -> dict[str, object]:
    """Wait until the player shows frames; return its state."""
    seen: dict[str, object] = {}

    def playing() -> bool:
        seen.update(http("GET", f"{device.url}/api/player").json())
        stats = seen.get("stats") or {}
        return seen.get("state") == "playing" and int(stats.get("frames_shown", 0)) > 2  # type: ignore[union-attr]

    wait_until(playing, timeout, "the player to play")
    return seen


def consistent(device: DeviceProcess, data: Path) -> None:
    """The index and frames/ agree (no entry without its file, no file without its entry)."""
    listed = http("GET", f"{device.url}/api/media")
    if listed.status != 200:
        return
    ids = {item["id"] for item in listed.json()["items"]}
    files = {p.stem for p in (data / "frames").glob("*.loop")}
    assert ids == files, (ids, files)
