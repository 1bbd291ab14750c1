"""ImportQueue: jobs run one at a time, report progress, add to the library, clean up after themselves."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from libloop.errors import ImportQueueClosed, JobNotFound
from libloop.index import Library
from libloop.media.jobs import ImportQueue, Job, item_name
from tests.media_corpus import good_media_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return good_media_corpus(tmp_path_factory.mktemp("good"))


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Library]:
    lib = Library(tmp_path / "data").open()
    yield lib
    lib.close()


def upload(corpus: dict[str, Path], name: str, queue: ImportQueue) -> Path:
    dest = queue.incoming_path(name)
    shutil.copyfile(corpus[name], dest)
    return dest


def leftovers(library: Library) -> list[str]:
    return sorted(p.name for p in library.tmp_dir.iterdir())


def test_inline_jobs_add_items_and_remove_uploads(
    corpus: dict[str, Path], library: Library, tmp_path: Path
) -> None:
    with ImportQueue(library, staging_dir=tmp_path / "incoming", worker="inline") as queue:
        jobs = [queue.submit(upload(corpus, n, queue), n) for n in ("anim.gif", "still.png", "clip.mp4")]
        done = [queue.wait(j.id, timeout=60) for j in jobs]
    assert [j.status for j in done] == ["done"] * 3
    assert [j.item.kind for j in done if j.item] == ["gif", "image", "video"]
    assert [i.name for i in library.items()] == ["anim", "still", "clip"]
    assert list((tmp_path / "incoming").iterdir()) == []
    assert leftovers(library) == []
    d = done[0].to_dict()
    assert set(d) == {"id", "filename", "status", "progress", "item", "error", "warning", "duplicate"}
    assert d["progress"] == 1.0 and d["item"]["id"] == done[0].item.id  # type: ignore[union-attr]


def test_bad_upload_fails_with_code_and_leaves_nothing(library: Library, tmp_path: Path) -> None:
    with ImportQueue(library, staging_dir=tmp_path / "incoming", worker="inline") as queue:
        src = queue.incoming_path("x.mp4")
        src.write_text("not a video")
        job = queue.wait(queue.submit(src, "x.mp4").id, timeout=60)
    assert job.status == "failed" and job.item is None
    assert job.error is not None and job.error["code"] == "unsupported_media"
    assert "x.mp4" in job.error["message"]
    assert not src.exists() and library.items() == [] and leftovers(library) == []


def test_dedupe_returns_the_existing_item(corpus: dict[str, Path], library: Library, tmp_path: Path) -> None:
    with ImportQueue(library, staging_dir=tmp_path / "in", worker="inline", dedupe=True) as queue:
        a = queue.wait(queue.submit(upload(corpus, "still.png", queue), "a.png").id, 60)
        b = queue.wait(queue.submit(upload(corpus, "still.png", queue), "b.png").id, 60)
    assert a.item is not None and b.item is not None and a.item.id == b.item.id
    assert len(library.items()) == 1


def test_unknown_job_and_closed_queue(library: Library, tmp_path: Path) -> None:
    queue = ImportQueue(library, staging_dir=tmp_path / "in", worker="inline")
    with pytest.raises(JobNotFound):
        queue.get("nope")
    queue.close()
    src = tmp_path / "late.png"
    src.write_bytes(b"x")
    with pytest.raises(ImportQueueClosed):
        queue.submit(src, "late.png")
    assert not src.exists()


@pytest.mark.parametrize(
    ("filename", "name"),
    [
        ("holiday.gif", "holiday"),
        ("../../etc/passwd", "passwd"),
        ("a\x00b\nc.png", "a b c"),
        (".gif", ".gif"),
        ("", "untitled"),
    ],
)
def test_item_names_from_hostile_filenames(filename: str, name: str) -> None:
    assert item_name(filename) == name


def test_process_worker_imports_and_reports_progress(
    corpus: dict[str, Path], library: Library, tmp_path: Path
) -> None:
    with ImportQueue(library, staging_dir=tmp_path / "in", worker="process") as queue:
        ok = queue.submit(upload(corpus, "anim.webp", queue), "anim.webp")
        bad_src = queue.incoming_path("bad.gif")
        bad_src.write_bytes(b"GIF89a\x01")
        bad = queue.submit(bad_src, "bad.gif")
        done: Job = queue.wait(ok.id, timeout=120)
        failed = queue.wait(bad.id, timeout=120)
    assert done.status == "done" and done.item is not None and done.item.frames == 3
    assert failed.status == "failed" and failed.error is not None and failed.error["code"] == "corrupt_media"
    assert leftovers(library) == [] and list((tmp_path / "in").iterdir()) == []


def test_an_input_cut_at_a_limit_says_so(corpus: dict[str, Path], library: Library, tmp_path: Path) -> None:
    from libloop.media.importer import ImportOptions
    from libloop.media.limits import Limits

    options = ImportOptions(limits=Limits(max_frames=2))
    queue = ImportQueue(library, options, staging_dir=tmp_path / "in", worker="inline")
    job = queue.wait(queue.submit(upload(corpus, "anim.gif", queue), "anim.gif").id, 30)
    assert job.status == "done" and job.item is not None and job.item.frames == 2
    assert job.warning is not None and "anim.gif" in job.warning and "2 frames" in job.warning
    assert job.to_dict()["warning"] == job.warning
    full = queue.wait(queue.submit(upload(corpus, "still.png", queue), "still.png").id, 30)
    assert full.warning is None and full.to_dict()["warning"] is None
    queue.close()


def test_import_into_leaves_the_source_and_nothing_else(corpus: dict[str, Path], library: Library) -> None:
    from libloop.media.importer import import_media
    from libloop.media.jobs import import_into

    src = corpus["anim.gif"]
    first = import_into(library, src, "anim.gif", lambda s, d: import_media(s, d))
    again = import_into(library, src, "anim.gif", lambda s, d: import_media(s, d))
    assert not first.existing and again.existing and again.item.id == first.item.id
    assert src.exists() and leftovers(library) == []
