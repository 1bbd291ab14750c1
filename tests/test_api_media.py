"""The media API: library, uploads and import jobs, edits, deletes, play order, previews."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.media_corpus import bad_media_corpus, good_media_corpus
from tests.webapp_fixtures import CSRF, MB, SimServices, add_solid_item, app, device, gif_bytes
from webapp import create_app
from webapp.api_media import display_name

__all__ = ["app", "device"]

ITEM_KEYS = {"id", "name", "kind", "frames", "duration_ms", "width", "height", "enabled", "position"}


def upload(app: Flask, files: list[tuple[bytes, str]], *, wait: bool = True, **kw: Any) -> Any:
    data = {"file": [(io.BytesIO(content), name) for content, name in files]}
    query = "?wait=true" if wait else ""
    return app.test_client().post(
        f"/api/media{query}", data=data, headers=CSRF, content_type="multipart/form-data", **kw
    )


def leftovers(device: SimServices) -> list[Path]:
    """Files an upload left in the incoming directory or in the frames' staging area."""
    device.settle_imports()
    found = [p for p in device.upload_dir.rglob("*") if p.is_file()]
    return found + [p for p in device.library.tmp_dir.rglob("*") if p.is_file()]


# --- listing -------------------------------------------------------------------------------


def test_library_is_listed_in_play_order_with_the_spec_shape(app: Flask, device: SimServices) -> None:
    a = add_solid_item(device.library, "a", [(255, 0, 0)])
    b = add_solid_item(device.library, "b", [(0, 255, 0), (0, 0, 255)])
    device.library.reorder([b.id, a.id])
    items = app.test_client().get("/api/media").get_json()["items"]
    assert [i["id"] for i in items] == [b.id, a.id]
    assert [i["position"] for i in items] == [0, 1]
    for item in items:
        assert set(item) >= ITEM_KEYS
        assert item["preview_url"] == f"/api/media/{item['id']}/preview.gif"  # ?v=… once re-rendered
    assert items[0]["kind"] == "gif" and items[0]["frames"] == 2


# --- uploads -----------------------------------------------------------------------------------


def test_upload_returns_202_and_a_job_that_finishes(app: Flask, device: SimServices) -> None:
    response = upload(app, [(gif_bytes([(255, 0, 0), (0, 0, 255)]), "cat.gif")], wait=False)
    assert response.status_code == 202
    (job,) = response.get_json()["jobs"]
    assert job["filename"] == "cat.gif"
    assert job["status"] in ("queued", "running", "done")
    device.imports.wait(job["id"], 30)
    done = app.test_client().get(f"/api/jobs/{job['id']}").get_json()
    assert done["status"] == "done" and done["progress"] == 1.0 and done["error"] is None
    assert set(done["item"]) >= ITEM_KEYS
    assert [i.id for i in device.library.items()] == [done["item"]["id"]]
    assert leftovers(device) == []


def test_upload_with_wait_is_201_and_plays(app: Flask, device: SimServices) -> None:
    response = upload(app, [(gif_bytes([(0, 255, 0)]), "green.gif")])
    assert response.status_code == 201
    (job,) = response.get_json()["jobs"]
    assert job["status"] == "done"
    assert job["item"]["name"] == "green"
    device.pump()
    assert device.wiring.snapshot().getpixel((120, 160)) == (0, 255, 0)


def test_several_files_in_one_upload(app: Flask, device: SimServices) -> None:
    files = [(gif_bytes([(i * 40, 0, 0)]), f"f{i}.gif") for i in range(3)]
    response = upload(app, files)
    assert response.status_code == 201
    assert [j["filename"] for j in response.get_json()["jobs"]] == ["f0.gif", "f1.gif", "f2.gif"]
    assert [i.name for i in device.library.items()] == ["f0", "f1", "f2"]


def test_every_good_kind_of_media_imports(app: Flask, device: SimServices, tmp_path: Path) -> None:
    corpus = good_media_corpus(tmp_path / "good")
    files = [(path.read_bytes(), name) for name, path in corpus.items()]
    response = upload(app, files)
    assert response.status_code == 201, response.get_json()
    # The corpus holds one PNG twice (once named .gif): the second is a duplicate of the first.
    distinct = {path.read_bytes() for path in corpus.values()}
    assert len(device.library.items()) == len(distinct) == len(corpus) - 1
    duplicates = [job["filename"] for job in response.get_json()["jobs"] if job["duplicate"]]
    assert duplicates == ["png_named.gif"]
    kinds = {job["filename"]: job["item"]["kind"] for job in response.get_json()["jobs"]}
    assert kinds["anim.gif"] == "gif" and kinds["still.png"] == "image" and kinds["clip.mp4"] == "video"
    assert leftovers(device) == []


def test_bad_input_corpus_is_refused_with_a_sentence_and_leaves_nothing(
    app: Flask, device: SimServices, tmp_path: Path
) -> None:
    corpus = bad_media_corpus(tmp_path / "bad")
    refused = 0
    for name, path in corpus.items():
        before = device.library.items()
        response = upload(app, [(path.read_bytes(), name)])
        body = response.get_json()
        if response.status_code == 201:  # the corpus allows cutting (e.g. thousands of frames)
            continue
        refused += 1
        assert response.status_code in (413, 415, 422), (name, response.status_code, body)
        message = body["error"]["message"]
        assert message.endswith(".") and len(message) > 20, (name, message)
        assert body["jobs"][0]["status"] == "failed"
        assert body["jobs"][0]["error"] == body["error"]
        assert device.library.items() == before, name
        assert leftovers(device) == [], name
    assert refused >= len(corpus) - 3


def test_a_text_file_named_gif_is_refused_by_content(app: Flask, device: SimServices) -> None:
    response = upload(app, [(b"GIF? no, just text\n" * 50, "notreally.gif")])
    assert response.status_code in (415, 422)
    assert response.get_json()["error"]["message"]
    assert device.library.items() == []


def test_first_failure_decides_the_status_and_every_job_is_reported(app: Flask, device: SimServices) -> None:
    response = upload(app, [(gif_bytes([(1, 2, 3)]), "ok.gif"), (b"", "empty.gif")])
    assert 400 <= response.status_code < 500
    body = response.get_json()
    assert [j["status"] for j in body["jobs"]] == ["done", "failed"]
    assert body["error"] == body["jobs"][1]["error"]
    assert len(device.library.items()) == 1


def test_upload_larger_than_the_limit_is_413_and_leaves_nothing(device: SimServices) -> None:
    device.max_upload_bytes = 50_000
    app = create_app(device)
    response = upload(app, [(b"\0" * 60_000, "big.gif")])
    assert response.status_code == 413
    assert "larger" in response.get_json()["error"]["message"]
    assert leftovers(device) == [] and device.library.items() == []


def test_upload_refused_when_the_disk_is_nearly_full(tmp_path: Path) -> None:
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    svc = SimServices(tmp_path / "data", disk_usage=lambda _path: usage(8000 * MB, 7900 * MB, 100 * MB))
    try:
        response = upload(create_app(svc), [(gif_bytes([(1, 2, 3)]), "a.gif")])
        assert response.status_code == 507
        body = response.get_json()
        assert body["error"]["code"] == "storage_full"
        assert "nearly full" in body["error"]["message"]
        assert leftovers(svc) == []
    finally:
        svc.close()


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"data": {"other": (io.BytesIO(b"x"), "a.gif")}, "content_type": "multipart/form-data"}, 400),
        ({"data": {"file": "not a file part"}, "content_type": "multipart/form-data"}, 400),
        ({"json": {"file": "x"}}, 415),
        ({"data": b"GIF89a", "content_type": "image/gif"}, 415),
    ],
)
def test_malformed_uploads(app: Flask, device: SimServices, kwargs: dict[str, Any], status: int) -> None:
    response = app.test_client().post("/api/media", headers=CSRF, **kwargs)
    assert response.status_code == status
    assert response.get_json()["error"]["message"]
    assert leftovers(device) == []


def test_wait_must_be_a_boolean(app: Flask) -> None:
    response = app.test_client().post(
        "/api/media?wait=maybe", headers=CSRF, data={"file": (io.BytesIO(b"x"), "a.gif")}
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "hostile",
    [
        "../../etc/passwd",
        "..\\..\\boot.ini",
        "/abs/path/x.gif",
        "a\x00b.gif",
        "\x1b[31mred.gif",
        "....gif",
        "",
        "tab\there.gif",
        "\u202egnp.gif",
    ],
)
def test_hostile_filenames_never_become_paths(app: Flask, device: SimServices, hostile: str) -> None:
    response = upload(app, [(gif_bytes([(9, 9, 9)]), hostile)])
    assert response.status_code == 201
    job = response.get_json()["jobs"][0]
    assert "/" not in job["filename"] and "\\" not in job["filename"]
    assert all(ch.isprintable() for ch in job["filename"])
    assert job["item"]["name"]
    data_files = {p.name for p in device.data_dir.rglob("*")}
    assert not any(part in data_files for part in ("passwd", "boot.ini"))
    assert leftovers(device) == []


@given(raw=st.text(max_size=300))
def test_display_name_is_printable_text_without_path(raw: str) -> None:
    name = display_name(raw)
    assert 1 <= len(name) <= 200
    assert "/" not in name and "\\" not in name
    assert all(ch.isprintable() for ch in name)
    assert name == name.strip() and not name.startswith(".")


def test_unknown_job_is_404(app: Flask) -> None:
    response = app.test_client().get("/api/jobs/nope")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


# --- edits -----------------------------------------------------------------------------------


def test_patch_renames_toggles_and_sets_play_settings(app: Flask, device: SimServices) -> None:
    item = add_solid_item(device.library, "old", [(1, 1, 1)])
    client = app.test_client()
    body = {"name": "  New name \u200b", "enabled": False, "loops": 3, "min_seconds": 2.5}
    response = client.patch(f"/api/media/{item.id}", json=body, headers=CSRF)
    assert response.status_code == 200
    got = response.get_json()
    assert (got["name"], got["enabled"], got["loops"], got["min_seconds"]) == ("New name", False, 3, 2.5)
    stored = device.library.get(item.id)
    assert (stored.name, stored.enabled, stored.loops, stored.min_seconds) == ("New name", False, 3, 2.5)


def test_empty_patch_changes_nothing(app: Flask, device: SimServices) -> None:
    item = add_solid_item(device.library, "same", [(1, 1, 1)])
    response = app.test_client().patch(f"/api/media/{item.id}", json={}, headers=CSRF)
    assert response.status_code == 200 and response.get_json()["name"] == "same"


@pytest.mark.parametrize(
    "body",
    [
        {"name": 5},
        {"name": ""},
        {"name": "\n\t"},
        {"enabled": "yes"},
        {"enabled": 1},
        {"loops": 0},
        {"loops": 1.5},
        {"loops": True},
        {"loops": 10_000},
        {"min_seconds": -1},
        {"min_seconds": "3"},
        {"min_seconds": 1e9},
        {"colour": "red"},
        [1, 2],
    ],
)
def test_patch_validates_types_and_ranges(app: Flask, device: SimServices, body: Any) -> None:
    item = add_solid_item(device.library, "keep", [(1, 1, 1)])
    response = app.test_client().patch(f"/api/media/{item.id}", json=body, headers=CSRF)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"]
    assert device.library.get(item.id) == item


def test_patch_unknown_item_is_404(app: Flask) -> None:
    response = app.test_client().patch("/api/media/nope", json={"name": "x"}, headers=CSRF)
    assert response.status_code == 404


# --- play order --------------------------------------------------------------------------------


def test_playlist_sets_the_order_and_answers_it(app: Flask, device: SimServices) -> None:
    ids = [add_solid_item(device.library, n, [(1, 1, 1)]).id for n in "abc"]
    response = app.test_client().put("/api/playlist", json={"ids": ids[::-1]}, headers=CSRF)
    assert response.status_code == 200
    assert [i["id"] for i in response.get_json()["items"]] == ids[::-1]
    assert [i.id for i in device.library.items()] == ids[::-1]


@pytest.mark.parametrize("mangle", ["missing", "duplicate", "unknown"])
def test_playlist_that_is_not_a_permutation_is_422(app: Flask, device: SimServices, mangle: str) -> None:
    ids = [add_solid_item(device.library, n, [(1, 1, 1)]).id for n in "ab"]
    wrong = {"missing": ids[:1], "duplicate": [ids[0], ids[0], ids[1]], "unknown": [*ids, "zzz"]}[mangle]
    response = app.test_client().put("/api/playlist", json={"ids": wrong}, headers=CSRF)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_change"
    assert [i.id for i in device.library.items()] == ids


@pytest.mark.parametrize("body", [{}, {"ids": "abc"}, {"ids": [1, 2]}, {"order": []}])
def test_playlist_malformed_is_400(app: Flask, body: Any) -> None:
    assert app.test_client().put("/api/playlist", json=body, headers=CSRF).status_code == 400


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_permutation_round_trips(app: Flask, device: SimServices, data: st.DataObject) -> None:
    if not device.library.items():
        for n in "abcde":
            add_solid_item(device.library, n, [(1, 1, 1)])
    ids = [i.id for i in device.library.items()]
    order = data.draw(st.permutations(ids))
    answer = app.test_client().put("/api/playlist", json={"ids": order}, headers=CSRF).get_json()
    assert [i["id"] for i in answer["items"]] == order
    assert [i["position"] for i in answer["items"]] == list(range(len(order)))


# --- delete ------------------------------------------------------------------------------------


def test_delete_answers_after_the_panel_moved_off_the_item(app: Flask, device: SimServices) -> None:
    red = add_solid_item(device.library, "red", [(255, 0, 0)], duration_ms=60_000)
    add_solid_item(device.library, "blue", [(0, 0, 255)], duration_ms=60_000)
    device.pump()
    assert device.wiring.snapshot().getpixel((120, 160)) == (255, 0, 0)
    response = app.test_client().delete(f"/api/media/{red.id}", headers=CSRF)
    assert response.status_code == 200
    body = response.get_json()
    assert body["deleted"] == red.id
    assert [i["name"] for i in body["items"]] == ["blue"]
    assert device.wiring.snapshot().getpixel((120, 160)) == (0, 0, 255)  # no pump needed
    device.pump(2)
    assert device.wiring.snapshot().getpixel((120, 160)) == (0, 0, 255)
    assert not device.library.frame_path(red).exists()


def test_delete_the_last_item_shows_something_else(app: Flask, device: SimServices) -> None:
    only = add_solid_item(device.library, "only", [(255, 255, 0)])
    device.pump()
    assert app.test_client().delete(f"/api/media/{only.id}", headers=CSRF).status_code == 200
    assert device.wiring.snapshot().getpixel((120, 160)) != (255, 255, 0)
    assert app.test_client().get("/api/media").get_json()["items"] == []


def test_delete_unknown_item_is_404(app: Flask) -> None:
    response = app.test_client().delete("/api/media/nope", headers=CSRF)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


# --- previews ---------------------------------------------------------------------------------


def test_preview_is_an_animated_gif_of_the_frames_cached_once(app: Flask, device: SimServices) -> None:
    item = add_solid_item(device.library, "anim", [(255, 0, 0), (0, 0, 255)], duration_ms=200)
    client = app.test_client()
    with client.get(f"/api/media/{item.id}/preview.gif") as response:
        assert response.status_code == 200
        assert response.mimetype == "image/gif"
        etag = response.headers["ETag"]
        image = Image.open(io.BytesIO(response.data))
        assert getattr(image, "n_frames", 1) == 2
        assert image.size == (120, 160)
        assert image.convert("RGB").getpixel((60, 80)) == (255, 0, 0)
        image.seek(1)
        assert image.convert("RGB").getpixel((60, 80)) == (0, 0, 255)
        assert image.info["duration"] == 200
    cached = list(device.preview_dir.glob(f"{item.id}-*.gif"))
    assert len(cached) == 1
    with client.get(f"/api/media/{item.id}/preview.gif", headers={"If-None-Match": etag}) as again:
        assert again.status_code == 304
    client.delete(f"/api/media/{item.id}", headers=CSRF)
    assert list(device.preview_dir.glob(f"{item.id}-*.gif")) == []


def test_preview_of_a_long_animation_is_capped(app: Flask, device: SimServices) -> None:
    colors = [(i, 255 - i, 0) for i in range(0, 250, 2)]  # 125 frames
    item = add_solid_item(device.library, "long", colors, duration_ms=40)
    with app.test_client().get(f"/api/media/{item.id}/preview.gif") as response:
        image = Image.open(io.BytesIO(response.data))
        assert getattr(image, "n_frames", 1) <= 60


def test_preview_of_unknown_item_is_404(app: Flask) -> None:
    assert app.test_client().get("/api/media/nope/preview.gif").status_code == 404
