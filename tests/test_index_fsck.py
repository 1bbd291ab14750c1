"""fsck finds each kind of problem, and repair fixes it or quarantines it without losing data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from libloop.index import Item, Library, fsck
from tests.index_writer import make_frame_file


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Library]:
    library = Library(tmp_path / "data").open()
    yield library
    library.close()


def add(lib: Library, seed: int) -> Item:
    staged = lib.staging_path()
    return lib.add(staged, make_frame_file(staged, seed))


def kinds(report: fsck.FsckReport) -> list[str]:
    return sorted(p.kind for p in report.problems)


def manifest(lib: Library) -> list[dict[str, object]]:
    records: list[dict[str, object]] = []
    for path in sorted(lib.quarantine_dir.glob("*/manifest.json")):
        records.extend(json.loads(path.read_text())["entries"])
    return records


def test_a_sound_library_is_ok(lib: Library) -> None:
    add(lib, 1)
    report = lib.fsck()
    assert report.ok and report.problems == [] and report.items_checked == 1 and report.files_checked == 1
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True


def test_missing_file_is_reported_then_the_entry_is_quarantined(lib: Library) -> None:
    keep, lost = add(lib, 1), add(lib, 2)
    lib.frame_path(lost).unlink()
    report = lib.fsck()
    assert kinds(report) == ["missing_file"] and not report.ok
    assert report.problems[0].item_id == lost.id and lost.name in report.problems[0].message
    assert lib.items()[1].id == lost.id, "checking alone changes nothing"
    repaired = lib.fsck(repair=True)
    assert repaired.ok and repaired.quarantine is not None
    assert [i.id for i in lib.items()] == [keep.id]
    [record] = manifest(lib)
    assert record["kind"] == "missing_file" and record["item"]["id"] == lost.id  # type: ignore[index]
    assert lib.fsck().problems == []


def test_orphan_file_is_quarantined_not_deleted(lib: Library) -> None:
    add(lib, 1)
    orphan = lib.frames_dir / "stray.loop"
    orphan.write_bytes(b"precious")
    assert kinds(lib.fsck()) == ["orphan_file"]
    report = lib.fsck(repair=True)
    assert report.ok and not orphan.exists()
    assert report.quarantine is not None
    assert (report.quarantine / "stray.loop").read_bytes() == b"precious"
    assert manifest(lib)[0]["original_path"] == str(orphan)


def test_corrupt_frame_file_is_found_by_checksum_and_quarantined(lib: Library) -> None:
    good, bad = add(lib, 1), add(lib, 2)
    path = lib.frame_path(bad)
    raw = bytearray(path.read_bytes())
    raw[4096 + 5] ^= 0xFF  # a pixel of frame 0
    path.write_bytes(bytes(raw))
    assert lib.recovery_report is not None
    report = lib.fsck()
    assert kinds(report) == ["corrupt_file"] and report.problems[0].item_id == bad.id
    report = lib.fsck(repair=True)
    assert report.ok and [i.id for i in lib.items()] == [good.id]
    assert report.quarantine is not None and (report.quarantine / bad.file_name).read_bytes() == bytes(raw)
    assert manifest(lib)[0]["item"]["name"] == bad.name  # type: ignore[index]


def test_tmp_leftovers_are_removed_but_live_staging_paths_are_not(lib: Library) -> None:
    leftover = lib.tmp_dir / "old.loop.partial"
    leftover.write_bytes(b"x")
    live = lib.staging_path()
    live.write_bytes(b"being written")
    (lib.tmp_dir / f"{live.name}.partial").write_bytes(b"being written")
    assert kinds(lib.fsck()) == ["tmp_leftover"]
    assert lib.fsck(repair=True).ok
    assert sorted(p.name for p in lib.tmp_dir.iterdir()) == sorted([live.name, f"{live.name}.partial"])


def test_a_frame_file_still_being_written_is_not_a_leftover(lib: Library) -> None:
    # The writer fills `<staging>.partial` and renames it only at the end: until then the
    # staging path itself does not exist, and fsck must still leave the partial alone.
    live = lib.staging_path()
    partial = lib.tmp_dir / f"{live.name}.partial"
    partial.write_bytes(b"first frames")
    assert lib.fsck(repair=True).ok
    assert partial.exists()


def test_another_process_s_work_in_progress_is_left_alone(lib: Library) -> None:
    other = Library(lib.data_dir).open()  # a second opener, as the CLI beside the device
    try:
        (lib.tmp_dir / "theirs.loop").write_bytes(b"x")
        other._require().execute(
            "INSERT INTO pending (op, item_id, file_name) VALUES ('add', 'theirs', 'theirs.loop')"
        )
        (lib.frames_dir / "theirs.loop").write_bytes(b"x")
        report = lib.fsck(repair=True)
        assert report.problems == []
        assert (lib.tmp_dir / "theirs.loop").exists() and (lib.frames_dir / "theirs.loop").exists()
    finally:
        other.close()
    # Once alone, the interrupted add is rolled back and the leftover removed.
    report = lib.fsck(repair=True)
    assert kinds(report) == ["pending_add", "tmp_leftover"] and report.ok
    assert not (lib.frames_dir / "theirs.loop").exists()


def test_positions_with_gaps_are_renumbered_in_order(lib: Library) -> None:
    ids = [add(lib, n).id for n in range(3)]
    conn = lib._require()
    for pos, item_id in zip((3, 10, 42), ids, strict=True):
        conn.execute("UPDATE items SET position = ? WHERE id = ?", (pos, item_id))
    assert kinds(lib.fsck()) == ["positions"]
    gen = lib.generation
    assert lib.fsck(repair=True).ok
    assert [(i.id, i.position) for i in lib.items()] == [(x, n) for n, x in enumerate(ids)]
    assert lib.generation > gen


def test_tombstoned_unlink_is_finished(lib: Library) -> None:
    item = add(lib, 1)
    conn = lib._require()
    conn.execute("DELETE FROM items WHERE id = ?", (item.id,))
    conn.execute(
        "INSERT INTO pending (op, item_id, file_name) VALUES ('unlink', ?, ?)", (item.id, item.file_name)
    )
    assert kinds(lib.fsck()) == ["pending_unlink"]
    assert lib.fsck(repair=True).ok
    assert not lib.frame_path(item).exists()
    assert lib.fsck().problems == []


def test_schema_problems_are_reported(lib: Library) -> None:
    conn = lib._require()
    conn.execute("PRAGMA user_version = 99")
    conn.execute("DROP TABLE settings")
    messages = [p.message for p in lib.fsck(repair=True).problems if p.kind == "schema"]
    assert len(messages) == 2 and any("version is 99" in m for m in messages)
    assert not lib.fsck().ok


def test_start_up_recovery_finishes_crash_leftovers_and_reports_the_rest(tmp_path: Path) -> None:
    with Library(tmp_path) as lib:
        keep = add(lib, 1)
        conn = lib._require()
        conn.execute("INSERT INTO pending (op, item_id, file_name) VALUES ('add', 'half', 'half.loop')")
        conn.execute("UPDATE items SET position = 5")
        (lib.frames_dir / "half.loop").write_bytes(b"half")
        (lib.tmp_dir / "x.loop.partial").write_bytes(b"x")
        (lib.frames_dir / "stray.loop").write_bytes(b"stray")
    with Library(tmp_path) as lib:
        report = lib.recovery_report
        assert report is not None
        assert kinds(report) == ["orphan_file", "pending_add", "positions", "tmp_leftover"]
        assert [p.kind for p in report.problems if not p.repaired] == ["orphan_file"]
        assert (lib.frames_dir / "stray.loop").exists(), "start-up never moves user files"
        assert [(i.id, i.position) for i in lib.items()] == [(keep.id, 0)]
        assert not (lib.frames_dir / "half.loop").exists()
        assert list(lib.tmp_dir.iterdir()) == []


def test_uploads_left_by_a_crash_are_reported_and_removed(lib: Library) -> None:
    incoming = lib.data_dir / "incoming"
    incoming.mkdir()
    (incoming / "a1b2.gif.upload").write_bytes(b"GIF89a half of it")
    report = lib.fsck()
    assert kinds(report) == ["upload_leftover"] and not report.ok
    assert lib.fsck(repair=True).problems[0].repaired
    assert list(incoming.iterdir()) == [] and lib.fsck().ok
