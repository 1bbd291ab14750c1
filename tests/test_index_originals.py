"""Kept originals and re-rendered frame files in the index: add, share, delete, swap, repair."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from libloop.errors import InvalidChange, ItemNotFound
from libloop.index import Item, Library
from libloop.index.store import UNSET
from tests.index_writer import make_frame_file


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Library]:
    library = Library(tmp_path / "data").open()
    yield library
    library.close()


def upload(lib: Library, content: bytes, seed: int = 1, **kwargs: object) -> Item:
    """Add an item whose original upload had ``content``."""
    original = lib.staging_path(".original")
    original.write_bytes(content)
    staged = lib.staging_path()
    meta = make_frame_file(staged, seed, content_hash=hashlib.sha256(content).hexdigest())
    return lib.add(staged, meta, original=original, render={"width": 8, "height": 6}, **kwargs)  # type: ignore[arg-type]


def kept(lib: Library) -> set[str]:
    return {p.name for p in lib.originals_dir.iterdir()}


def test_the_original_is_kept_under_its_content_hash_and_counted(lib: Library) -> None:
    item = upload(lib, b"a cat" * 100)
    digest = hashlib.sha256(b"a cat" * 100).hexdigest()
    assert item.original == digest
    assert item.original_bytes == 500
    assert lib.original_path(item) == lib.originals_dir / digest
    assert (lib.originals_dir / digest).read_bytes() == b"a cat" * 100
    assert item.render == {"width": 8, "height": 6}
    assert list(lib.tmp_dir.iterdir()) == []  # the staged original was moved, not copied
    assert item.to_dict()["original_bytes"] == 500


def test_items_of_the_same_content_share_one_original_until_the_last_is_deleted(lib: Library) -> None:
    first = upload(lib, b"same", seed=1)
    second = upload(lib, b"same", seed=2)
    other = upload(lib, b"other", seed=3)
    assert first.original == second.original != other.original
    assert len(kept(lib)) == 2
    assert list(lib.tmp_dir.iterdir()) == []  # the second copy was dropped
    lib.delete(first.id)
    assert kept(lib) == {second.original, other.original}
    lib.delete(second.id)
    assert kept(lib) == {other.original}
    assert lib.fsck().ok


def test_an_item_without_an_original_is_fine(lib: Library) -> None:
    staged = lib.staging_path()
    item = lib.add(staged, make_frame_file(staged, 5))
    assert item.original is None and item.original_bytes == 0 and item.render is None
    assert lib.original_path(item) is None


def test_an_original_needs_a_sha256_name_and_a_refused_add_leaves_nothing(lib: Library) -> None:
    original = lib.staging_path(".original")
    original.write_bytes(b"x")
    staged = lib.staging_path()
    meta = make_frame_file(staged, 1, content_hash="not a hash")
    with pytest.raises(InvalidChange, match="sha256"):
        lib.add(staged, meta, original=original)
    assert not original.exists() and not staged.exists()
    assert lib.items() == [] and kept(lib) == set()


def test_a_failed_add_removes_the_original_it_brought(lib: Library, monkeypatch: pytest.MonkeyPatch) -> None:
    from libloop.index import durable

    real = durable.commit
    calls = {"n": 0}

    def failing_commit(conn: sqlite3.Connection) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # intent, original placed, then the item's commit fails
            raise sqlite3.OperationalError("disk I/O error")
        real(conn)

    monkeypatch.setattr(durable, "commit", failing_commit)
    with pytest.raises(Exception, match="I/O"):
        upload(lib, b"doomed")
    monkeypatch.setattr(durable, "commit", real)
    assert lib.items() == []
    assert kept(lib) == set()
    assert [p for p in lib.frames_dir.iterdir() if p.is_file()] == []


def test_an_interrupted_add_leaves_no_original_after_start_up(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Library(data) as lib:
        keep = upload(lib, b"keep me")
        # What a crash after the original was placed but before the item committed leaves:
        # the intent naming it, the frame file and the original in place.
        digest = hashlib.sha256(b"lost").hexdigest()
        (lib.originals_dir / digest).write_bytes(b"lost")
        (lib.frames_dir / "ghost.loop").write_bytes(b"junk")
        with lib._transaction("test") as conn:
            conn.execute(
                "INSERT INTO pending (op, item_id, file_name, staged, original) VALUES ('add', 'ghost', 'ghost.loop', 'x', ?)",
                (digest,),
            )
    with Library(data) as lib:
        assert kept(lib) == {keep.original}
        assert not (lib.frames_dir / "ghost.loop").exists()
        assert [i.id for i in lib.items()] == [keep.id]
        assert lib.fsck().ok


def test_start_up_removes_an_original_a_crashed_delete_left(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Library(data) as lib:
        item = upload(lib, b"gone")
        with lib._transaction("test") as conn:  # the delete committed; its clean-up never ran
            conn.execute("DELETE FROM items WHERE id = ?", (item.id,))
    with Library(data) as lib:
        assert kept(lib) == set()
        report = lib.recovery_report
        assert report is not None
        assert [p.kind for p in report.problems if p.kind == "orphan_original"] == ["orphan_original"]


def test_fsck_repairs_an_item_whose_original_is_gone(lib: Library) -> None:
    item = upload(lib, b"fragile")
    path = lib.original_path(item)
    assert path is not None
    path.unlink()
    report = lib.fsck()
    assert not report.ok and [p.kind for p in report.problems] == ["missing_original"]
    repaired = lib.fsck(repair=True)
    assert repaired.ok
    fixed = lib.get(item.id)
    assert fixed.original is None and fixed.original_bytes == 0
    assert lib.frame_path(fixed).exists()  # it keeps playing
    assert lib.fsck().ok


def test_fsck_quarantines_a_stray_file_in_originals(lib: Library) -> None:
    (lib.originals_dir / "notes.txt").write_text("mine")
    assert [p.kind for p in lib.fsck().problems] == ["stray_original"]
    report = lib.fsck(repair=True)
    assert report.quarantine is not None and (report.quarantine / "notes.txt").read_text() == "mine"
    assert lib.fsck().ok


def test_a_quarantined_entry_takes_its_original_along(lib: Library) -> None:
    item = upload(lib, b"precious")
    lib.frame_path(item).unlink()  # its frame file is lost
    report = lib.fsck(repair=True)
    assert report.quarantine is not None
    assert (report.quarantine / str(item.original)).read_bytes() == b"precious"
    assert kept(lib) == set() and lib.items() == []


def test_replace_frames_swaps_the_file_and_removes_the_old_one(lib: Library) -> None:
    item = upload(lib, b"turn me")
    old = lib.frame_path(item)
    gen = lib.generation
    staged = lib.staging_path()
    make_frame_file(staged, 9, frames=3, width=6, height=8)
    new = lib.replace_frames(
        item.id,
        staged,
        frames=3,
        duration_ms=120,
        render={"width": 6, "height": 8},
        expect_file=item.file_name,
    )
    assert new.file_name != item.file_name and new.file_name.startswith(item.id)
    assert not old.exists() and lib.frame_path(new).exists()
    assert (new.frames, new.duration_ms, new.render) == (3, 120, {"width": 6, "height": 8})
    assert (new.position, new.name, new.original) == (item.position, item.name, item.original)
    assert lib.generation > gen
    assert list(lib.tmp_dir.iterdir()) == []
    assert lib.fsck().ok


def test_replace_frames_of_a_deleted_or_changed_item_leaves_nothing(lib: Library) -> None:
    item = upload(lib, b"short lived")
    lib.delete(item.id)
    staged = lib.staging_path()
    make_frame_file(staged, 9)
    with pytest.raises(ItemNotFound):
        lib.replace_frames(item.id, staged, frames=2, duration_ms=80, render=None)
    assert not staged.exists()
    other = upload(lib, b"other", seed=2)
    staged = lib.staging_path()
    make_frame_file(staged, 10)
    with pytest.raises(InvalidChange, match="changed while"):
        lib.replace_frames(other.id, staged, frames=2, duration_ms=80, render=None, expect_file="stale.loop")
    assert not staged.exists()
    assert {p.name for p in lib.frames_dir.iterdir() if p.is_file()} == {other.file_name}
    assert lib.fsck().ok


def test_item_fit_and_seconds_take_none_for_the_default(lib: Library) -> None:
    item = upload(lib, b"settings")
    assert (item.fit, item.seconds) == (None, None)
    changed = lib.update(item.id, fit="cover", seconds=12)
    assert (changed.fit, changed.seconds) == ("cover", 12.0)
    assert lib.update(item.id, name="renamed").fit == "cover"  # left alone
    back = lib.update(item.id, fit=None, seconds=None)
    assert (back.fit, back.seconds) == (None, None)
    assert lib.update(item.id, fit=UNSET).fit is None
    with pytest.raises(InvalidChange, match="fit must be"):
        lib.update(item.id, fit="zoom")
    with pytest.raises(InvalidChange, match="seconds must be from"):
        lib.update(item.id, seconds=0.1)


def test_a_version_3_database_is_migrated_with_no_originals(tmp_path: Path) -> None:
    from libloop.index import schema

    data = tmp_path / "data"
    data.mkdir()
    conn = sqlite3.connect(data / "library.db")
    for step in schema.MIGRATIONS[:3]:
        step(conn)
    conn.execute("PRAGMA user_version = 3")
    conn.execute(
        """INSERT INTO items (id, name, kind, frames, duration_ms, width, height, position, source_name,
           content_hash, created, file_name, size_bytes) VALUES ('old', 'old', 'gif', 2, 80, 8, 6, 0,
           'old.gif', 'h', 0, 'old.loop', 10)"""
    )
    conn.execute("INSERT INTO used_ids VALUES ('old')")
    conn.commit()
    conn.close()
    (data / "frames").mkdir()
    make_frame_file(data / "frames" / "old.loop", 1)
    with Library(data) as lib:
        (item,) = lib.items()
        assert (item.original, item.original_bytes, item.render, item.fit, item.seconds) == (
            None,
            0,
            None,
            None,
            None,
        )
        assert schema.version(lib._require()) == schema.SCHEMA_VERSION


def test_an_item_without_an_original_adopts_one(lib: Library) -> None:
    content = b"uploaded long ago" * 10
    staged = lib.staging_path()
    old = lib.add(staged, make_frame_file(staged, 3, content_hash=hashlib.sha256(content).hexdigest()))
    assert old.original is None
    gen = lib.generation
    copy = lib.staging_path(".original")
    copy.write_bytes(content)
    adopted = lib.adopt_original(old.id, copy)
    assert adopted.original == old.content_hash and adopted.original_bytes == len(content)
    assert (lib.originals_dir / old.content_hash).read_bytes() == content
    assert lib.generation > gen and not copy.exists()
    again = lib.staging_path(".original")
    again.write_bytes(content)
    assert lib.adopt_original(old.id, again) == lib.get(old.id)  # has one: nothing changes
    assert not again.exists()
    assert lib.fsck().ok
    lib.delete(old.id)
    assert kept(lib) == set()
    gone = lib.staging_path(".original")
    gone.write_bytes(content)
    with pytest.raises(ItemNotFound):
        lib.adopt_original(old.id, gone)
    assert not gone.exists() and kept(lib) == set()
