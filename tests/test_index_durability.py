"""Lost unsynced writes: no acknowledged item can point at a missing or partial frame file.

The durability helpers are wrapped to log every fsync, rename, unlink and index commit the
library does. A small model of a file system then replays the log and, for every crash point,
keeps only what was made durable: file data survives only up to its file's last fsync, a
directory entry only up to its directory's last fsync, and the index only up to its last
commit (SQLite with synchronous=FULL). At every point, every item in the durable index must
name a durable directory entry whose file's durable data is complete.
"""

from __future__ import annotations

import copy
import itertools
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from libloop.index import Library, durable
from tests.index_writer import make_frame_file

Event = tuple[Any, ...]


@dataclass
class DiskModel:
    """Which directory entries and file contents exist (volatile) and would survive (durable)."""

    dirs: dict[str, dict[str, int]] = field(default_factory=dict)
    data: dict[int, int] = field(default_factory=dict)  # inode -> bytes written
    durable_dirs: dict[str, dict[str, int]] = field(default_factory=dict)
    durable_data: dict[int, int] = field(default_factory=dict)
    full_size: dict[int, int] = field(default_factory=dict)
    index: set[str] = field(default_factory=set)  # file names the durable index points at
    inodes: itertools.count[int] = field(default_factory=itertools.count)

    def create(self, path: Path, size: int, *, synced: bool) -> None:
        inode = next(self.inodes)
        self.dirs.setdefault(str(path.parent), {})[path.name] = inode
        self.data[inode] = self.full_size[inode] = size
        if synced:
            self.durable_dirs.setdefault(str(path.parent), {})[path.name] = inode
            self.durable_data[inode] = size

    def apply(self, event: Event) -> None:
        kind = event[0]
        if kind == "fsync_file":
            path = Path(event[1])
            inode = self.dirs[str(path.parent)][path.name]
            self.durable_data[inode] = self.data[inode]
        elif kind == "fsync_dir":
            self.durable_dirs[event[1]] = dict(self.dirs.get(event[1], {}))
        elif kind == "rename":
            src, dst = Path(event[1]), Path(event[2])
            inode = self.dirs[str(src.parent)].pop(src.name)
            self.dirs.setdefault(str(dst.parent), {})[dst.name] = inode
        elif kind == "unlink":
            path = Path(event[1])
            self.dirs.get(str(path.parent), {}).pop(path.name, None)
        elif kind == "commit":
            self.index = set(event[1])

    def broken_items(self, frames_dir: Path) -> list[str]:
        """Items of the durable index whose file would be missing or partial after a crash now."""
        entries = self.durable_dirs.get(str(frames_dir), {})
        broken = []
        for name in sorted(self.index):
            inode = entries.get(name)
            if inode is None or self.durable_data.get(inode, 0) != self.full_size[inode]:
                broken.append(name)
        return broken


def every_crash_point(model: DiskModel, events: list[Event], frames_dir: Path) -> list[tuple[int, list[str]]]:
    """For each prefix of the log, the items that would point at a missing or partial file."""
    faults = []
    state = copy.deepcopy(model)
    for k, event in enumerate(events):
        state.apply(event)
        if broken := state.broken_items(frames_dir):
            faults.append((k, broken))
    return faults


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Library, list[Event]]]:
    events: list[Event] = []
    real = {
        name: getattr(durable, name) for name in ("fsync_file", "fsync_dir", "rename", "unlink", "commit")
    }

    def log(name: str) -> Any:
        def call(*args: Any) -> Any:
            result = real[name](*args)
            if name == "commit":
                conn: sqlite3.Connection = args[0]
                names = {row[0] for row in conn.execute("SELECT file_name FROM items")}
                events.append(("commit", frozenset(names)))
            else:
                events.append((name, *map(str, args)))
            return result

        return call

    lib = Library(tmp_path / "data").open()
    for name in real:
        monkeypatch.setattr(durable, name, log(name))
    yield lib, events
    lib.close()


def test_no_crash_point_leaves_an_item_without_its_whole_file(recorded: tuple[Library, list[Event]]) -> None:
    lib, events = recorded
    model = DiskModel()
    checked = 0

    def replay_new(start: int) -> None:
        nonlocal checked
        for event in events[start:]:
            model.apply(event)
            assert model.broken_items(lib.frames_dir) == [], f"a crash after {event} loses a file"
            checked += 1

    for seed in range(6):
        staged = lib.staging_path()
        meta = make_frame_file(staged, seed)
        # The frame file writer's own fsyncs are not trusted: the model starts the file volatile.
        model.create(staged, staged.stat().st_size, synced=False)
        start = len(events)
        lib.add(staged, meta)
        replay_new(start)
        if seed % 3 == 2:
            start = len(events)
            ids = [i.id for i in lib.items()]
            lib.delete(ids[0])
            lib.reorder(ids[1:][::-1])
            replay_new(start)
    assert model.index == {i.file_name for i in lib.items()}
    assert checked >= 6 * 5


def test_every_prefix_of_an_add_is_safe(recorded: tuple[Library, list[Event]]) -> None:
    lib, events = recorded
    existing = [
        lib.add(p, make_frame_file(p, 100 + k)) for k, p in enumerate([lib.staging_path() for _ in range(2)])
    ]
    base = DiskModel()
    for item in existing:
        base.create(lib.frame_path(item), lib.frame_path(item).stat().st_size, synced=True)
    base.index = {i.file_name for i in existing}
    staged = lib.staging_path()
    meta = make_frame_file(staged, 7)
    base.create(staged, staged.stat().st_size, synced=False)
    start = len(events)
    lib.add(staged, meta)
    add_events = events[start:]
    kinds = [e[0] for e in add_events]
    assert kinds.index("fsync_file") < kinds.index("rename") < kinds.index("fsync_dir")
    assert kinds.index("fsync_dir") < len(kinds) - 1 - kinds[::-1].index("commit")
    assert every_crash_point(base, add_events, lib.frames_dir) == []


def test_the_model_catches_a_commit_before_the_directory_fsync(recorded: tuple[Library, list[Event]]) -> None:
    """The checker is not vacuous: the wrong order (commit, then fsync the directory) fails it."""
    lib, events = recorded
    staged = lib.staging_path()
    meta = make_frame_file(staged, 3)
    base = DiskModel()
    base.create(staged, staged.stat().st_size, synced=False)
    start = len(events)
    item = lib.add(staged, meta)
    good = events[start:]
    final_commit = max(i for i, e in enumerate(good) if e[0] == "commit")
    dir_sync = next(i for i, e in enumerate(good) if e[0] == "fsync_dir")
    bad = [e for i, e in enumerate(good) if i != dir_sync]
    bad.insert(final_commit, good[dir_sync])  # fsync the directory only after the commit
    faults = every_crash_point(base, bad, lib.frames_dir)
    assert faults and faults[0][1] == [item.file_name]
    no_file_sync = [e for e in good if e[0] != "fsync_file"]
    assert every_crash_point(base, no_file_sync, lib.frames_dir), "a partial file must be caught too"


def test_a_delete_removes_the_entry_before_the_file(recorded: tuple[Library, list[Event]]) -> None:
    lib, events = recorded
    staged = lib.staging_path()
    item = lib.add(staged, make_frame_file(staged, 5))
    base = DiskModel()
    base.create(lib.frame_path(item), lib.frame_path(item).stat().st_size, synced=True)
    base.index = {item.file_name}
    start = len(events)
    lib.delete(item.id)
    delete_events = events[start:]
    kinds = [e[0] for e in delete_events]
    assert kinds.index("commit") < kinds.index("unlink")
    assert every_crash_point(base, delete_events, lib.frames_dir) == []
