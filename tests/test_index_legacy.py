"""Importing every shape of the old device's media_index.json (fixtures in tests/fixtures/legacy)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libloop.errors import CorruptMedia, LegacyIndexError
from libloop.index import Library, NewItem
from libloop.index.legacy import parse_legacy
from tests.index_writer import make_frame_file

FIXTURES = Path(__file__).parent / "fixtures" / "legacy"
SOURCES = {"cat.gif": b"GIF89a cat", "media/sunset.png": b"\x89PNG sunset", "broken.gif": b"GIF89a broken"}


@pytest.fixture
def device(tmp_path: Path) -> Iterator[tuple[Library, Path]]:
    """An old device's folder (sources + index) beside a fresh library."""
    old = tmp_path / "old"
    for name, data in SOURCES.items():
        (old / name).parent.mkdir(parents=True, exist_ok=True)
        (old / name).write_bytes(data)
    lib = Library(tmp_path / "data").open()
    yield lib, old
    lib.close()


def converter(lib: Library) -> Any:
    def convert(source: Path) -> tuple[Path, NewItem]:
        data = source.read_bytes()
        if b"broken" in data:
            raise CorruptMedia(f"The file {source.name} is damaged; export it again.")
        staged = lib.staging_path()
        meta = make_frame_file(staged, zlib.crc32(data))
        return staged, dataclasses.replace(
            meta, name=source.stem, source_name=source.name, content_hash=hashlib.sha256(data).hexdigest()
        )

    return convert


def use_fixture(old: Path, name: str) -> Path:
    index = old / "media_index.json"
    shutil.copy(FIXTURES / name, index)
    return index


def summary(lib: Library) -> list[tuple[str, str, bool]]:
    return [(i.id, i.name, i.enabled) for i in lib.items()]


@pytest.mark.parametrize("fixture", ["list_shape.json", "dict_shape.json"])
def test_list_and_dict_shapes_keep_ids_names_order_and_enabled(
    device: tuple[Library, Path], fixture: str
) -> None:
    lib, old = device
    index = use_fixture(old, fixture)
    report = lib.import_legacy(index, converter(lib))
    assert report.ok, report.to_dict()
    assert summary(lib) == [("b2", "Sunset", False), ("a1", "Cat", True)]
    assert not index.exists() and report.backup is not None
    assert report.backup.name.startswith("media_index.json.imported-")
    assert report.backup.read_bytes() == (FIXTURES / fixture).read_bytes()
    assert (old / "cat.gif").exists(), "old source files are left alone"
    assert lib.fsck().ok


def test_mixed_shape_reports_what_it_could_not_import(device: tuple[Library, Path]) -> None:
    lib, old = device
    report = lib.import_legacy(use_fixture(old, "mixed_shape.json"), converter(lib))
    assert [(i.name, i.enabled) for i in lib.items()] == [("Cat", True), ("sunset", True)]
    assert lib.items()[0].id == "a1", "a valid old id is kept; a bare file name gets a new one"
    reasons = {s.key: s.reason for s in report.skipped}
    assert "no longer exists" in reasons["c3"]
    assert "no file" in reasons["e5"]
    assert "same id" in reasons["a1"]
    assert "could not be converted" in reasons["f6"] and "damaged" in reasons["f6"]
    assert report.already_present == ["a1"], "d4 is the same picture as a1"
    assert any("version" in n for n in report.notes)
    assert not report.ok and report.error is None
    assert report.backup is not None and report.backup.exists()
    assert json.loads(json.dumps(report.to_dict()))["skipped"]


@pytest.mark.parametrize("fixture", ["truncated.json", "binary.json"])
def test_unreadable_json_is_kept_as_a_backup(device: tuple[Library, Path], fixture: str) -> None:
    lib, old = device
    report = lib.import_legacy(use_fixture(old, fixture), converter(lib))
    assert report.error is not None and "not valid JSON" in report.error and not report.ok
    assert report.backup is not None and report.backup.name.startswith("media_index.json.unreadable-")
    assert report.backup.read_bytes() == (FIXTURES / fixture).read_bytes()
    assert lib.items() == []


def test_reimporting_after_an_interruption_adds_nothing_twice(device: tuple[Library, Path]) -> None:
    lib, old = device
    lib.import_legacy(use_fixture(old, "list_shape.json"), converter(lib))
    report = lib.import_legacy(use_fixture(old, "list_shape.json"), converter(lib))
    assert report.imported == [] and sorted(report.already_present) == ["a1", "b2"]
    assert len(lib.items()) == 2
    assert list(lib.tmp_dir.iterdir()) == []


def test_a_missing_index_is_a_clear_error(device: tuple[Library, Path]) -> None:
    lib, old = device
    with pytest.raises(LegacyIndexError, match="no legacy index"):
        lib.import_legacy(old / "nope.json", converter(lib))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON)
def test_parsing_never_fails_and_accounts_for_every_entry(data: Any) -> None:
    entries, skipped, notes = parse_legacy(data)
    assert all(e.file for e in entries)
    assert len({e.key for e in entries}) == len(entries)
    if isinstance(data, list):
        assert len(entries) + len(skipped) == len(data)
    if not isinstance(data, list | dict):
        assert entries == [] and notes
