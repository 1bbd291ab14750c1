"""The library's API: adds, deletes, order, updates, settings, change signal, migrations, full disk."""

from __future__ import annotations

import errno
import random
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libloop.clock import FakeClock
from libloop.errors import DiskFull, InvalidChange, ItemNotFound, LibraryError, SchemaTooNew
from libloop.index import SCHEMA_VERSION, Item, Library, NewItem, durable, schema
from libloop.index.items import check_id, make_item_id
from tests.index_writer import make_frame_file

ITEM_KEYS = {"id", "name", "kind", "frames", "duration_ms", "width", "height", "enabled", "position"}


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Library]:
    library = Library(tmp_path / "data").open()
    yield library
    library.close()


def add(lib: Library, seed: int, **kwargs: object) -> Item:
    staged = lib.staging_path()
    meta = make_frame_file(staged, seed)
    return lib.add(staged, meta, **kwargs)  # type: ignore[arg-type]


def test_constructor_does_no_io(tmp_path: Path) -> None:
    Library(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_add_moves_the_file_and_appends_to_the_play_order(lib: Library) -> None:
    first, second = add(lib, 1), add(lib, 2)
    assert [i.id for i in lib.items()] == [first.id, second.id]
    assert [i.position for i in lib.items()] == [0, 1]
    assert lib.frame_path(first).is_file()
    assert first.file_name == f"{first.id}.loop"
    assert first.size_bytes == lib.frame_path(first).stat().st_size
    assert list(lib.tmp_dir.iterdir()) == []
    assert set(first.to_dict()) >= ITEM_KEYS
    assert first.enabled and first.loops == 1 and first.min_seconds == 0
    assert lib.find_by_hash(first.content_hash) == first
    assert lib.find_by_hash("nope") is None


@given(st.randoms(use_true_random=False))
def test_new_ids_never_look_like_a_command_line_option(rng: random.Random) -> None:
    item_id = make_item_id(rng)
    assert check_id(item_id) == item_id and len(item_id) == 12
    # No "-" or "_" at all: never first (argparse would take `loop rm -abc` for an option),
    # never at the ends where a person copying the id by double-click would lose it.
    assert item_id.isascii() and item_id.isalnum()


def test_ids_are_url_safe_and_never_reused(lib: Library) -> None:
    item = add(lib, 1)
    assert len(item.id) == 12 and item.id.isascii() and item.id.isalnum()
    lib.delete(item.id)
    with pytest.raises(InvalidChange, match="already used"):
        add(lib, 2, item_id=item.id)
    assert list(lib.tmp_dir.iterdir()) == [], "a failed add leaves nothing behind"


def test_delete_removes_entry_and_file_and_renumbers(lib: Library) -> None:
    a, b, c = add(lib, 1), add(lib, 2), add(lib, 3)
    gone = lib.delete(b.id)
    assert gone.id == b.id
    assert [(i.id, i.position) for i in lib.items()] == [(a.id, 0), (c.id, 1)]
    assert not lib.frame_path(b).exists()
    with pytest.raises(ItemNotFound):
        lib.get(b.id)
    with pytest.raises(ItemNotFound):
        lib.delete(b.id)
    assert lib.fsck().ok


def test_update_validates_and_playlist_skips_disabled(lib: Library) -> None:
    a, b = add(lib, 1), add(lib, 2)
    changed = lib.update(a.id, name="Sunset", enabled=False, loops=3, min_seconds=2.5)
    assert (changed.name, changed.enabled, changed.loops, changed.min_seconds) == ("Sunset", False, 3, 2.5)
    assert [i.id for i in lib.playlist()] == [b.id]
    for bad in ({"name": ""}, {"name": "a\nb"}, {"loops": 0}, {"loops": True}, {"min_seconds": -1.0}):
        with pytest.raises(InvalidChange) as info:
            lib.update(a.id, **bad)
        assert str(info.value).endswith(".")
    with pytest.raises(ItemNotFound):
        lib.update("missing", name="x")


def test_reorder_must_be_a_permutation(lib: Library) -> None:
    ids = [add(lib, n).id for n in range(3)]
    assert [i.id for i in lib.reorder(ids[::-1])] == ids[::-1]
    for bad in (ids[:2], [*ids, ids[0]], [*ids[:2], "zzz"], "abc"):
        with pytest.raises(InvalidChange):
            lib.reorder(bad)
    assert [i.id for i in lib.items()] == ids[::-1]


@given(st.permutations(range(5)), st.integers(0, 4), st.integers(0, 4))
def test_move_matches_list_semantics(
    tmp_path_factory: pytest.TempPathFactory, perm: list[int], src: int, dst: int
) -> None:
    with Library(tmp_path_factory.mktemp("mv")) as lib:
        ids = [add(lib, n).id for n in range(5)]
        lib.reorder([ids[p] for p in perm])
        expected = [ids[p] for p in perm]
        moved = expected.pop(src)
        expected.insert(dst, moved)
        assert [i.id for i in lib.move(moved, dst)] == expected
        assert [i.position for i in lib.items()] == list(range(5))


def test_move_rejects_positions_outside_the_order(lib: Library) -> None:
    item = add(lib, 9)
    for bad in (1, -1, True):
        with pytest.raises(InvalidChange):
            lib.move(item.id, bad)
    with pytest.raises(ItemNotFound):
        lib.move("nope", 0)


def test_settings_are_json_and_durable(tmp_path: Path) -> None:
    with Library(tmp_path) as lib:
        before = lib.generation
        lib.settings.set("brightness", 70)
        lib.settings.set("schedule", {"sleep": "23:00", "days": [1, 2]})
        assert lib.generation == before + 2
        with pytest.raises(InvalidChange):
            lib.settings.set("bad", float("nan"))
    with Library(tmp_path) as lib:
        assert lib.settings.as_dict() == {"brightness": 70, "schedule": {"sleep": "23:00", "days": [1, 2]}}
        assert lib.settings.get("missing", 5) == 5
        assert lib.settings.delete("brightness") and not lib.settings.delete("brightness")


def test_every_change_bumps_the_generation(lib: Library) -> None:
    seen = [lib.generation]
    a = add(lib, 1)
    seen.append(lib.generation)
    lib.update(a.id, loops=2)
    seen.append(lib.generation)
    lib.reorder([a.id])
    seen.append(lib.generation)
    lib.delete(a.id)
    seen.append(lib.generation)
    assert seen == sorted(set(seen))


def test_wait_for_change_times_out_on_the_injected_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    with Library(tmp_path, clock=clock) as lib:
        gen = lib.generation
        assert lib.wait_for_change(gen, timeout=30.0) == gen
        assert clock.monotonic() >= 1030.0
        assert lib.wait_for_change(gen - 1, timeout=30.0) == gen


def test_wait_for_change_wakes_on_an_in_process_change(lib: Library) -> None:
    gen = lib.generation
    result: list[int] = []
    started = threading.Event()

    def waiter() -> None:
        started.set()
        result.append(lib.wait_for_change(gen, timeout=60.0))

    thread = threading.Thread(target=waiter)
    thread.start()
    started.wait()
    add(lib, 1)
    thread.join(timeout=60.0)
    assert result and result[0] > gen


def test_wait_for_change_sees_another_process(tmp_path: Path) -> None:
    with Library(tmp_path, poll_interval=0.05) as lib:
        gen = lib.generation
        code = (
            "import sys; from libloop.index import Library\n"
            f"with Library({str(tmp_path)!r}) as lib: lib.settings.set('k', 1)\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)
        assert lib.wait_for_change(gen, timeout=60.0) == gen + 1


def test_threads_share_one_library(lib: Library) -> None:
    errors: list[BaseException] = []

    def worker(base: int) -> None:
        try:
            for n in range(5):
                item = add(lib, base + n)
                lib.update(item.id, loops=2)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [i.position for i in lib.items()] == list(range(20))
    assert lib.fsck().ok


def test_two_processes_write_the_same_library(tmp_path: Path) -> None:
    code = (
        "import sys; from tests.index_writer import run\n"
        f"run(__import__('pathlib').Path({str(tmp_path)!r}), int(sys.argv[1]), 8, shared=True)\n"
    )
    root = Path(__file__).parent.parent
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(s)], cwd=root, stdout=subprocess.DEVNULL)
        for s in (1, 2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with Library(tmp_path) as lib:
        assert [i.position for i in lib.items()] == list(range(len(lib.items())))
        report = lib.fsck()
        assert report.ok, report.problems


def test_a_v1_database_is_migrated(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "library.db", isolation_level=None)
    schema.MIGRATIONS[0](conn)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO items VALUES ('old1', 'Old', 'gif', 2, 80, 8, 6, 1, 0, 'o.gif', 'h', 0, 1.0, 'old1.loop', 10)"
    )
    conn.close()
    (tmp_path / "frames").mkdir()
    make_frame_file(tmp_path / "frames" / "old1.loop", 7)
    with Library(tmp_path) as lib:
        item = lib.get("old1")
        assert (item.loops, item.min_seconds, item.name) == (1, 0.0, "Old")
        assert schema.version(lib._require()) == SCHEMA_VERSION


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "library.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaTooNew, match="upgrade LOOP"):
        Library(tmp_path).open()


def test_closed_library_says_so(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="not open"):
        Library(tmp_path).items()


@pytest.mark.parametrize("step", ["fsync_file", "rename", "fsync_dir"])
def test_enospc_during_add_fails_that_add_only(
    lib: Library, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    keep = add(lib, 1)
    gen = lib.generation

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(durable, step, full)
    staged = lib.staging_path()
    meta = make_frame_file(staged, 2)
    with pytest.raises(DiskFull) as info:
        lib.add(staged, meta)
    assert "disk is full" in str(info.value) and str(info.value).count(".") == 1
    monkeypatch.undo()
    assert lib.items() == [keep]
    assert lib.generation == gen
    assert not staged.exists()
    assert sorted(p.name for p in lib.frames_dir.iterdir()) == [".tmp", keep.file_name]
    assert lib.fsck(repair=True).ok, "whatever the failed add left, repair (and start-up) finishes"
    assert lib.fsck().ok
    assert add(lib, 3).position == 1, "the library works again once there is space"


def test_a_full_database_fails_the_add_with_disk_full(lib: Library) -> None:
    keep = add(lib, 1)
    conn = lib._require()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    staged = lib.staging_path()
    meta = make_frame_file(staged, 2)
    big = NewItem(**{**meta.__dict__, "source_name": "x" * 200_000})
    with pytest.raises(DiskFull):
        lib.add(staged, big)
    conn.execute("PRAGMA max_page_count = 1073741823")
    assert lib.items() == [keep]
    assert not staged.exists()
    assert lib.fsck().ok
