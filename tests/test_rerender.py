"""The background re-render on a real library: plans, swaps, deletes meanwhile, failures, workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from libloop.index import Item, Library
from libloop.media.frames import open_frames
from libloop.media.importer import ImportOptions, ImportResult
from libloop.media.jobs import import_into
from libloop.media.rerender import Rerenderer
from tests.e2e_helpers import solid_gif
from tests.webapp_fixtures import add_solid_item

PORTRAIT = ImportOptions()
LANDSCAPE = ImportOptions(width=320, height=240)


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Library]:
    library = Library(tmp_path / "data").open()
    yield library
    library.close()


def add(lib: Library, tmp: Path, name: str, colour: tuple[int, int, int]) -> Item:
    from libloop.media.importer import import_media

    src = tmp / f"{name}.gif"
    src.write_bytes(solid_gif([colour, (255, 255, 255)], size=(64, 40)))

    def convert(s: Path, d: Path) -> ImportResult:
        return import_media(s, d, PORTRAIT, name=name)

    return import_into(lib, src, f"{name}.gif", convert, keep="copy", render=PORTRAIT.render_record()).item


class Wanted:
    """What the settings want: portrait or landscape."""

    def __init__(self) -> None:
        self.options = PORTRAIT

    def __call__(self, item: Item) -> dict[str, Any]:
        return self.options.render_record()


def sizes(lib: Library) -> list[tuple[int, int]]:
    found = []
    for item in lib.items():
        with open_frames(lib.frame_path(item)) as ff:
            found.append((ff.width, ff.height))
    return found


def run_all(rerender: Rerenderer) -> list[dict[str, Any]]:
    seen = [rerender.progress()]
    while rerender.has_work():
        rerender.run_one()
        seen.append(rerender.progress())
    return seen


def test_a_pass_renders_every_item_again_and_counts_up(lib: Library, tmp_path: Path) -> None:
    for k in range(5):
        add(lib, tmp_path, f"i{k}", (50 * k, 100, 200))
    legacy = add_solid_item(lib, "legacy", [(9, 9, 9)])
    wanted = Wanted()
    rerender = Rerenderer(lib, wanted, worker="inline")
    rerender.refresh()
    assert rerender.progress()["total"] == 0 and not rerender.has_work()
    wanted.options = LANDSCAPE
    rerender.refresh()
    seen = run_all(rerender)
    assert [(p["done"], p["total"]) for p in seen] == [(k, 5) for k in range(6)]
    assert seen[-1]["running"] is False
    assert seen[-1]["needs_upload"] == [{"id": legacy.id, "name": "legacy"}]
    assert sizes(lib) == [(320, 240)] * 5 + [(240, 320)]
    assert rerender.state_of(legacy.id) == "needs_upload"
    assert all(rerender.state_of(i.id) is None for i in lib.items()[:5])
    assert len([p for p in lib.frames_dir.iterdir() if p.is_file()]) == 6  # the old files are gone
    assert list(lib.tmp_dir.iterdir()) == []
    assert lib.fsck().ok


def test_a_delete_during_a_re_render_wins_and_leaves_nothing(lib: Library, tmp_path: Path) -> None:
    victim = add(lib, tmp_path, "victim", (200, 0, 0))
    keep = add(lib, tmp_path, "keep", (0, 200, 0))
    wanted = Wanted()

    class DeleteMidway(Rerenderer):
        def _convert(self, item_id: str, *args: Any) -> ImportResult:
            result = super()._convert(item_id, *args)
            if item_id == victim.id:
                lib.delete(item_id)  # as DELETE /api/media/{id} would, while the file is made
            return result

    rerender = DeleteMidway(lib, wanted, worker="inline")
    wanted.options = LANDSCAPE
    rerender.refresh()
    run_all(rerender)
    assert [i.id for i in lib.items()] == [keep.id]
    assert sizes(lib) == [(320, 240)]
    assert {p.name for p in lib.frames_dir.iterdir() if p.is_file()} == {lib.get(keep.id).file_name}
    assert {p.name for p in lib.originals_dir.iterdir()} == {keep.original}
    assert list(lib.tmp_dir.iterdir()) == []
    assert lib.fsck().ok


def test_a_change_of_settings_mid_pass_renders_again(lib: Library, tmp_path: Path) -> None:
    item = add(lib, tmp_path, "a", (10, 20, 30))
    wanted = Wanted()

    class ChangeMidway(Rerenderer):
        def _convert(self, item_id: str, *args: Any) -> ImportResult:
            result = super()._convert(item_id, *args)
            wanted.options = ImportOptions(width=320, height=240, dither=False)
            return result

    rerender = ChangeMidway(lib, wanted, worker="inline")
    wanted.options = LANDSCAPE
    rerender.refresh()
    rerender.run_one()  # its result no longer matches: queued again, not swapped in
    assert lib.get(item.id).render == PORTRAIT.render_record()
    assert rerender.state_of(item.id) == "pending"
    rerender.run_one()
    assert lib.get(item.id).render == ImportOptions(width=320, height=240, dither=False).render_record()


def test_a_lost_original_is_reported_not_fatal(lib: Library, tmp_path: Path) -> None:
    item = add(lib, tmp_path, "a", (10, 20, 30))
    other = add(lib, tmp_path, "b", (30, 20, 10))
    original = lib.original_path(item)
    assert original is not None
    original.unlink()
    wanted = Wanted()
    rerender = Rerenderer(lib, wanted, worker="inline")
    wanted.options = LANDSCAPE
    rerender.refresh()
    seen = run_all(rerender)
    assert seen[-1]["failed"] == [
        {"id": item.id, "message": "a has no kept original any more; re-upload it to re-render it."}
    ]
    assert rerender.state_of(item.id) == "failed" and rerender.state_of(other.id) is None
    assert sizes(lib) == [(240, 320), (320, 240)]


def test_the_process_worker_renders_in_a_child_and_stops_after_the_pass(lib: Library, tmp_path: Path) -> None:
    for k in range(3):
        add(lib, tmp_path, f"p{k}", (80 * k, 0, 100))
    wanted = Wanted()
    rerender = Rerenderer(lib, wanted, worker="process")
    try:
        wanted.options = LANDSCAPE
        rerender.refresh()
        seen = run_all(rerender)
        assert seen[-1]["done"] == 3 and sizes(lib) == [(320, 240)] * 3
        assert rerender._child is None  # the worker went when the pass ended
    finally:
        rerender.close()
