"""The library against a dict-and-list model, through changes, reopenings and crashes.

Items may keep an original (from a small pool of contents, so some share one) and may have
their frame file swapped by a re-render. A crash is simulated the way a SIGKILL leaves the
disk: at a chosen durability step of an add, delete, reorder or re-render (before an fsync, a rename, an unlink or a commit), the data directory is
copied as it is at that instant; the machine then continues on the copy (start-up recovery
runs when it opens) and abandons the original. The in-flight change must then be wholly
present or wholly absent, and everything acknowledged before it must be there.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from libloop.errors import InvalidChange
from libloop.index import Library, durable
from tests.index_writer import make_frame_file

NAMES = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40).filter(
    lambda s: s.strip() != "" and s.isprintable()
)
DURABLE_STEPS = ("fsync_file", "rename", "fsync_dir", "commit", "unlink")


class Crash(BaseException):
    """Raised at the crash point to stop the change (like a SIGKILL stops the process)."""


def snapshot(src: Path, dst: Path) -> None:
    """Copy what a killed process would leave on disk (the SQLite shared-memory file is rebuilt)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("library.db-shm", "library.lock"))


class LibraryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="loop-stateful-"))
        self.copies = 0
        self.data = self.root / "d0"
        self.lib = Library(self.data).open()
        self.order: list[str] = []
        self.fields: dict[str, dict[str, Any]] = {}
        self.seed = 0

    def teardown(self) -> None:
        self.lib.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # --- the model's changes -----------------------------------------------------------

    def _stage(self, content: int | None = None) -> tuple[Path, Any, dict[str, Any]]:
        """A frame file to add, and (with ``content``) the upload to keep as its original."""
        self.seed += 1
        staged = self.lib.staging_path()
        extra: dict[str, Any] = {}
        digest = None
        if content is not None:
            upload = f"upload number {content}".encode() * 8
            digest = hashlib.sha256(upload).hexdigest()
            extra["original"] = self.lib.staging_path(".original")
            extra["original"].write_bytes(upload)
        return (
            staged,
            make_frame_file(staged, self.seed, frames=1 + self.seed % 3, content_hash=digest),
            extra,
        )

    def _model_add(self, item_id: str, name: str, original: str | None = None) -> None:
        self.order.append(item_id)
        self.fields[item_id] = {
            "name": name, "enabled": True, "loops": 1, "min_seconds": 0.0, "original": original,
        }  # fmt: skip

    def _model_delete(self, item_id: str) -> None:
        self.order.remove(item_id)
        del self.fields[item_id]

    # --- rules -------------------------------------------------------------------------

    @rule(content=st.none() | st.integers(0, 2))
    def add(self, content: int | None) -> None:
        staged, meta, extra = self._stage(content)
        item = self.lib.add(staged, meta, **extra)
        assert item.position == len(self.order)
        self._model_add(item.id, meta.name, item.original)
        assert (item.original is not None) == (content is not None)

    @precondition(lambda self: self.order)
    @rule(data=st.data())
    def rerender(self, data: st.DataObject) -> None:
        target = data.draw(st.sampled_from(self.order))
        staged, meta, _ = self._stage()
        item = self.lib.replace_frames(
            target, staged, frames=meta.frames, duration_ms=meta.duration_ms, render={}
        )
        assert item.frames == meta.frames and item.render == {}

    @precondition(lambda self: self.order)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        victim = data.draw(st.sampled_from(self.order))
        assert self.lib.delete(victim).id == victim
        self._model_delete(victim)

    @rule(data=st.data())
    def reorder(self, data: st.DataObject) -> None:
        new = data.draw(st.permutations(self.order))
        assert [i.id for i in self.lib.reorder(new)] == new
        self.order = list(new)

    @precondition(lambda self: self.order)
    @rule(data=st.data())
    def reorder_rejected(self, data: st.DataObject) -> None:
        bad = data.draw(
            st.one_of(
                st.just(self.order[:-1]),
                st.just([*self.order, self.order[0]]),
                st.just([*self.order[1:], "not-an-id"]),
            )
        )
        try:
            self.lib.reorder(bad)
        except InvalidChange:
            return
        raise AssertionError(f"reorder({bad}) was accepted")

    @precondition(lambda self: self.order)
    @rule(data=st.data(), position=st.integers(0, 30))
    def move(self, data: st.DataObject, position: int) -> None:
        target = data.draw(st.sampled_from(self.order))
        position %= len(self.order)
        self.lib.move(target, position)
        self.order.remove(target)
        self.order.insert(position, target)

    @precondition(lambda self: self.order)
    @rule(
        data=st.data(),
        name=st.none() | NAMES,
        enabled=st.none() | st.booleans(),
        loops=st.none() | st.integers(1, 9),
        min_seconds=st.none() | st.floats(0, 600),
    )
    def update(
        self,
        data: st.DataObject,
        name: str | None,
        enabled: bool | None,
        loops: int | None,
        min_seconds: float | None,
    ) -> None:
        target = data.draw(st.sampled_from(self.order))
        self.lib.update(target, name=name, enabled=enabled, loops=loops, min_seconds=min_seconds)
        changes = {"name": name, "enabled": enabled, "loops": loops, "min_seconds": min_seconds}
        self.fields[target].update({k: v for k, v in changes.items() if v is not None})

    @rule()
    def reopen(self) -> None:
        self.lib.close()
        self.lib = Library(self.data).open()
        assert self.lib.recovery_report is not None and self.lib.recovery_report.ok

    @rule(
        op=st.sampled_from(["add", "delete", "reorder", "rerender"]),
        step=st.integers(0, 10),
        content=st.none() | st.integers(0, 2),
        data=st.data(),
    )
    def crash(self, op: str, step: int, content: int | None, data: st.DataObject) -> None:
        self.copies += 1
        copy = self.root / f"d{self.copies}"
        calls = {"n": 0}
        originals = {name: getattr(durable, name) for name in DURABLE_STEPS}

        def hooked(name: str) -> Callable[..., Any]:
            def call(*args: Any) -> Any:
                if calls["n"] == step:
                    snapshot(self.data, copy)
                    raise Crash
                calls["n"] += 1
                return originals[name](*args)

            return call

        before = list(self.order)
        after: list[str]
        added: tuple[str, str, str | None] | None = None
        for name in DURABLE_STEPS:
            setattr(durable, name, hooked(name))
        try:
            if op == "add":
                staged, meta, extra = self._stage(content)
                item_id = f"c{self.copies}"
                added = (item_id, meta.name, meta.content_hash if extra else None)
                after = [*before, item_id]
                self.lib.add(staged, meta, item_id=item_id, **extra)
            elif op == "rerender" and before:
                target = data.draw(st.sampled_from(before))
                staged, meta, _ = self._stage()
                after = list(before)
                self.lib.replace_frames(
                    target, staged, frames=meta.frames, duration_ms=meta.duration_ms, render={}
                )
            elif op == "delete" and before:
                victim = data.draw(st.sampled_from(before))
                after = [x for x in before if x != victim]
                self.lib.delete(victim)
            else:
                after = data.draw(st.permutations(before))
                self.lib.reorder(after)
        except Crash:
            pass
        finally:
            for name, fn in originals.items():
                setattr(durable, name, fn)
        if not copy.exists():  # the change finished before the crash point: crash just after it
            snapshot(self.data, copy)
        self.lib.close()
        self.data = copy
        self.lib = Library(copy).open()
        recovered = [i.id for i in self.lib.items()]
        assert recovered in (before, list(after)), f"half a change survived: {recovered}"
        if recovered != before or before == list(after):
            if added is not None:
                self._model_add(*added)
            for gone in set(before) - set(after):
                self._model_delete(gone)
            self.order = list(after)

    # --- what must always hold ---------------------------------------------------------

    @invariant()
    def matches_the_model(self) -> None:
        items = self.lib.items()
        assert [i.id for i in items] == self.order
        assert [i.position for i in items] == list(range(len(items)))
        for item in items:
            expected = self.fields[item.id]
            assert (item.name, item.enabled, item.loops, item.min_seconds) == (
                expected["name"], expected["enabled"], expected["loops"], expected["min_seconds"],
            )  # fmt: skip
        assert [i.id for i in self.lib.playlist()] == [x for x in self.order if self.fields[x]["enabled"]]

    @invariant()
    def files_match_entries(self) -> None:
        items = self.lib.items()
        files = {p.name for p in self.lib.frames_dir.iterdir() if p.is_file()}
        assert files == {i.file_name for i in items} and len(files) == len(self.order)
        assert all(i.file_name.startswith(i.id) for i in items)
        kept = {p.name for p in self.lib.originals_dir.iterdir()}
        assert kept == {self.fields[x]["original"] for x in self.order} - {None}
        assert {i.id: i.original for i in items} == {x: self.fields[x]["original"] for x in self.order}


LibraryMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=15, deadline=None)
TestLibraryMachine = LibraryMachine.TestCase
