"""The index rebuilt from the frame files: a lost or damaged database never loses the library.

The databases are damaged on disk the ways SD cards and people damage them (header bytes
overwritten, the file cut short, garbage, one page scrambled, the file gone), then opened with
the real SQLite, and repaired by ``loop fsck --repair`` as a person would run it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libloop.errors import LibraryDamaged
from libloop.index import Item, Library
from libloop.index.rebuild import open_or_repair, repair_damaged
from libloop.media.framefile import FrameFileWriter
from libloop.media.framemeta import BLOCK_SIZE, read_meta
from loopapp.cli import main
from tests.index_writer import make_frame_file

#: What the rebuild must give back of every item.
KEPT = ("id", "name", "kind", "frames", "duration_ms", "width", "height", "enabled", "position", "loops",
        "min_seconds", "source_name", "content_hash", "loop_count")  # fmt: skip


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Library]:
    library = Library(tmp_path / "data").open()
    yield library
    library.close()


def add(lib: Library, seed: int, frames: int = 2) -> Item:
    staged = lib.staging_path()
    return lib.add(staged, make_frame_file(staged, seed, frames=frames))


def view(items: list[Item]) -> list[dict[str, Any]]:
    return [{k: getattr(i, k) for k in KEPT} for i in items]


def populate(lib: Library) -> list[dict[str, Any]]:
    items = [add(lib, n, frames=1 if n == 2 else 2) for n in range(5)]
    lib.update(items[1].id, name="renamed ✨", enabled=False, loops=3, min_seconds=7.5)
    lib.move(items[4].id, 0)
    lib.delete(items[3].id)
    lib.settings.set("display.rotation", 90)
    return view(lib.items())


def lose_database(data: Path) -> None:
    for name in ("library.db", "library.db-wal", "library.db-shm"):
        (data / name).unlink(missing_ok=True)


# --- the metadata block --------------------------------------------------------------------


def test_every_add_writes_the_item_into_its_frame_file(lib: Library) -> None:
    item = add(lib, 1)
    meta = read_meta(lib.frame_path(item))
    assert meta is not None
    assert (meta["id"], meta["name"], meta["kind"], meta["position"]) == (item.id, item.name, "gif", 0)
    assert meta["content_hash"] == item.content_hash and meta["v"] == 1
    assert lib.frame_path(item).stat().st_size % BLOCK_SIZE == 0
    assert lib.fsck().ok, "the block is no damage: frames and checksums are untouched"


def test_renames_and_moves_follow_into_the_blocks(lib: Library) -> None:
    a, b, c = (add(lib, n) for n in range(3))
    lib.update(b.id, name="bee", enabled=False)
    lib.delete(a.id)  # positions shift in the index; the hints keep their order
    lib.move(c.id, 0)
    metas = {i.id: read_meta(lib.frame_path(i)) for i in lib.items()}
    assert metas[b.id] is not None and metas[b.id]["name"] == "bee" and metas[b.id]["enabled"] is False  # type: ignore[index]
    assert [i.id for i in sorted(lib.items(), key=lambda i: metas[i.id]["position"])] == [c.id, b.id]  # type: ignore[index]


def test_a_torn_update_leaves_the_previous_metadata(lib: Library) -> None:
    item = add(lib, 1)
    lib.update(item.id, name="first")
    lib.update(item.id, name="second")
    path = lib.frame_path(item)
    size = path.stat().st_size
    start = size - BLOCK_SIZE
    raw = bytearray(path.read_bytes())
    slots = [raw[start + k * 2040 : start + (k + 1) * 2040] for k in (0, 1)]
    newest = max((0, 1), key=lambda k: int.from_bytes(slots[k][:4], "little"))
    raw[start + newest * 2040 + 40] ^= 0xFF  # the newest slot is torn
    path.write_bytes(bytes(raw))
    meta = read_meta(path)
    assert meta is not None and meta["name"] == "first"


# --- a lost database --------------------------------------------------------------------------


def test_a_lost_database_is_rebuilt_at_start_up(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Library(data) as lib:
        before = populate(lib)
    lose_database(data)
    with Library(data) as lib:
        assert view(lib.items()) == before
        report = lib.recovery_report
        assert report is not None and {p.kind for p in report.problems} == {"adopted_file"}
        assert lib.fsck().ok
        later = add(lib, 99)  # the library works on: new ids never collide with adopted ones
        assert lib.items()[-1].id == later.id


def test_files_made_before_metadata_blocks_are_rebuilt_too(tmp_path: Path) -> None:
    data = tmp_path / "data"
    frames = data / "frames"
    frames.mkdir(parents=True)
    for n, name in enumerate(("old-one", "old-two")):
        with FrameFileWriter(frames / f"{name}.loop", 8, 6) as writer:
            for k in range(1 + n):
                writer.add_frame(make_pixels(n * 10 + k), 50)
            writer.commit()
    with Library(data) as lib:
        items = {i.id: i for i in lib.items()}
        assert set(items) == {"old-one", "old-two"}
        assert items["old-one"].kind == "image" and items["old-two"].kind == "gif"
        assert items["old-two"].name == "old-two" and items["old-two"].duration_ms == 100
        # Adoption gave them a block: the next rebuild knows their names and order.
        lib.update("old-two", name="second")
        lib.move("old-two", 0)
    lose_database(data)
    with Library(data) as lib:
        assert [(i.id, i.name) for i in lib.items()] == [("old-two", "second"), ("old-one", "old-one")]


def make_pixels(seed: int) -> Any:
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, (6, 8, 2), dtype=np.uint8)


# --- a damaged database -----------------------------------------------------------------------


def _header(db: Path) -> None:
    raw = bytearray(db.read_bytes())
    raw[0:16] = b"\xde\xad\xbe\xef" * 4
    db.write_bytes(bytes(raw))


def _truncated(db: Path) -> None:
    db.write_bytes(db.read_bytes()[:1500])


def _garbage(db: Path) -> None:
    db.write_bytes(os.urandom(db.stat().st_size))


def _scrambled_page(db: Path) -> None:
    raw = bytearray(db.read_bytes())
    raw[4096 * 2 : 4096 * 2 + 600] = os.urandom(600)  # a page of the schema's tables
    db.write_bytes(bytes(raw))


DAMAGES: dict[str, Callable[[Path], None]] = {
    "header overwritten": _header,
    "truncated": _truncated,
    "garbage": _garbage,
    "one page scrambled": _scrambled_page,
}


def damaged_library(tmp_path: Path, damage: Callable[[Path], None]) -> tuple[Path, list[dict[str, Any]]]:
    data = tmp_path / "data"
    with Library(data) as lib:
        before = populate(lib)
    damage(data / "library.db")
    return data, before


def open_damaged(data: Path) -> Library | None:
    """Open the damaged library: it refuses with one sentence, or (a page the check skips) opens."""
    try:
        return Library(data).open()
    except LibraryDamaged as exc:
        assert "loop fsck --repair" in str(exc) and "\n" not in str(exc)
        return None


@pytest.mark.parametrize("how", list(DAMAGES))
def test_a_damaged_database_is_refused_with_one_sentence_then_rebuilt(tmp_path: Path, how: str) -> None:
    data, before = damaged_library(tmp_path, DAMAGES[how])
    opened = open_damaged(data)
    if opened is not None:
        opened.close()
    library, report = open_or_repair(data)
    with library:
        assert view(library.items()) == before
        assert library.fsck().ok
    assert report is not None and report.problems[0].kind == "damaged_database"
    assert report.quarantine is not None
    assert (report.quarantine / "library.db").exists(), "the damaged database is kept, not deleted"
    manifest = json.loads((report.quarantine / "manifest.json").read_text())
    assert manifest["entries"][0]["kind"] == "damaged_database"


def test_settings_are_recovered_when_their_table_still_reads(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Library(data) as lib:
        populate(lib)
        lib.settings.set("web.password", "scrypt$hash")
    repair_damaged(data, "test")  # a database SQLite reads is set aside and rebuilt all the same
    with Library(data) as lib:
        assert lib.settings.get("web.password") == "scrypt$hash"
        assert lib.settings.get("display.rotation") == 90


def test_a_repair_says_when_the_settings_are_lost(tmp_path: Path) -> None:
    data, before = damaged_library(tmp_path, _garbage)
    report = repair_damaged(data, "garbage")
    assert "loop password" in report.problems[0].message
    with Library(data) as lib:
        assert view(lib.items()) == before and lib.settings.get("display.rotation") is None


def test_a_repair_waits_for_the_device_to_let_go(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Library(data) as lib:
        populate(lib)
        with pytest.raises(Exception, match="stop it"):
            repair_damaged(data, "test")
        assert len(lib.items()) == 4


def test_a_deleted_item_whose_file_comes_back_is_not_resurrected(lib: Library) -> None:
    keep, gone = add(lib, 1), add(lib, 2)
    saved = lib.frame_path(gone).read_bytes()
    lib.delete(gone.id)
    lib.frame_path(gone).write_bytes(saved)  # restored from a backup, say
    report = lib.fsck(repair=True)
    assert [p.kind for p in report.problems] == ["orphan_file"]
    assert [i.id for i in lib.items()] == [keep.id]


def test_an_unknown_sound_frame_file_is_adopted_by_a_repair(lib: Library, tmp_path: Path) -> None:
    add(lib, 1)
    other = Library(tmp_path / "other").open()
    try:
        stray = add(other, 5)
        shutil.copy(other.frame_path(stray), lib.frames_dir / stray.file_name)
    finally:
        other.close()
    assert [p.kind for p in lib.fsck().problems] == ["orphan_file"], "checking alone changes nothing"
    assert [p.kind for p in lib.fsck(repair=True).problems] == ["adopted_file"]
    assert lib.items()[-1].id == stray.id and lib.items()[-1].name == stray.name


# --- the rebuild gives back what the index held (property) --------------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(1, 3)),
        st.tuples(
            st.just("rename"),
            st.integers(0, 9),
            st.text(st.characters(codec="utf-8", categories=("L", "N", "Zs", "So")), min_size=1, max_size=30),
        ),
        st.tuples(st.just("toggle"), st.integers(0, 9)),
        st.tuples(st.just("move"), st.integers(0, 9), st.integers(0, 9)),
        st.tuples(st.just("reverse")),
        st.tuples(st.just("delete"), st.integers(0, 9)),
    ),
    max_size=14,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_the_rebuild_gives_back_the_library(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[Any, ...]]
) -> None:
    data = tmp_path_factory.mktemp("lib") / "data"
    with Library(data) as lib:
        seed = 0
        for op in ops:
            items = lib.items()
            if op[0] == "add":
                seed += 1
                add(lib, seed, frames=op[1])
            elif not items:
                continue
            elif op[0] == "rename" and op[2].strip():
                lib.update(items[op[1] % len(items)].id, name=op[2].strip())
            elif op[0] == "toggle":
                item = items[op[1] % len(items)]
                lib.update(item.id, enabled=not item.enabled)
            elif op[0] == "move":
                lib.move(items[op[1] % len(items)].id, op[2] % len(items))
            elif op[0] == "reverse":
                lib.reorder([i.id for i in reversed(items)])
            elif op[0] == "delete":
                lib.delete(items[op[1] % len(items)].id)
        before = view(lib.items())
    _header(data / "library.db")
    library, _ = open_or_repair(data)
    with library:
        assert view(library.items()) == before


# --- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["header overwritten", "garbage"])
def test_loop_fsck_repair_brings_a_damaged_library_back(
    tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data, before = damaged_library(tmp_path, DAMAGES[how])
    for argv in (["ls"], ["fsck"]):
        code = main([*argv, "--data", str(data)])
        out, err = capsys.readouterr()
        assert code == 1 and "Traceback" not in err
        assert "loop fsck --repair" in err and len(err.strip().splitlines()) == 1
    assert main(["fsck", "--repair", "--data", str(data)]) == 0
    out, err = capsys.readouterr()
    assert "repaired: The library database was damaged" in out and "library repaired" in out
    assert main(["ls", "--json", "--data", str(data)]) == 0
    listed = json.loads(capsys.readouterr().out)["items"]
    assert [i["id"] for i in listed] == [i["id"] for i in before]
    assert main(["fsck", "--data", str(data)]) == 0
    assert "library is consistent" in capsys.readouterr().out


def test_a_journal_left_without_its_database_is_set_aside_not_replayed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Library(data) as lib:
        before = populate(lib)
        (data / "kept-wal").write_bytes((data / "library.db-wal").read_bytes() or b"\0" * 32)
    (data / "library.db").unlink()
    (data / "kept-wal").rename(data / "library.db-wal")
    with Library(data) as lib:
        assert view(lib.items()) == before
    assert list((data / "quarantine").glob("*/library.db-wal"))
