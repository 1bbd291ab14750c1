"""The settings API and the item play settings: live changes, re-render, validation, restarts."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from PIL import Image

from libloop.media.frames import open_frames
from libloop.settings import DeviceSettings
from tests.webapp_fixtures import CSRF, SimServices, add_solid_item, gif_bytes
from webapp import create_app

SETTINGS_KEYS = {"rotation", "fit", "dither", "background", "still_seconds", "shuffle", "night"}


@pytest.fixture
def device(tmp_path: Path) -> Iterator[SimServices]:
    svc = SimServices(tmp_path / "data", defaults=DeviceSettings())  # a fresh device
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def app(device: SimServices) -> Flask:
    return create_app(device, {"TESTING": True})


def patch(app: Flask, body: Any) -> Any:
    return app.test_client().patch("/api/settings", json=body, headers=CSRF)


def upload(app: Flask, name: str, content: bytes) -> dict[str, Any]:
    data = {"file": [(io.BytesIO(content), name)]}
    response = app.test_client().post(
        "/api/media?wait=true", data=data, headers=CSRF, content_type="multipart/form-data"
    )
    assert response.status_code == 201, response.get_json()
    item: dict[str, Any] = response.get_json()["jobs"][0]["item"]
    return item


def panel_png_size(app: Flask) -> tuple[int, int]:
    return Image.open(io.BytesIO(app.test_client().get("/api/display.png").data)).size


def frame_sizes(device: SimServices) -> list[tuple[int, int]]:
    sizes = []
    for item in device.library.items():
        with open_frames(device.library.frame_path(item)) as ff:
            sizes.append((ff.width, ff.height))
    return sizes


def test_a_fresh_device_answers_the_documented_defaults(app: Flask) -> None:
    body = app.test_client().get("/api/settings").get_json()
    assert set(body) >= SETTINGS_KEYS | {"orientation_asked", "panel", "rerender"}
    assert body["rotation"] == 0 and body["fit"] == "contain" and body["dither"] is True
    assert body["background"] == "#000000" and body["still_seconds"] == 10 and body["shuffle"] is False
    assert body["night"] is None and body["orientation_asked"] is False
    assert body["panel"] == {"width": 240, "height": 320}
    assert body["rerender"]["done"] == 0 and body["rerender"]["total"] == 0


def test_the_config_files_values_are_a_fresh_devices_defaults(tmp_path: Path) -> None:
    defaults = DeviceSettings(rotation=270, fit="cover", still_seconds=4.0)
    svc = SimServices(tmp_path / "data", defaults=defaults)
    try:
        app = create_app(svc, {"TESTING": True})
        body = app.test_client().get("/api/settings").get_json()
        assert (body["rotation"], body["fit"], body["still_seconds"]) == (270, "cover", 4.0)
        assert panel_png_size(app) == (320, 240)
        assert patch(app, {"fit": "stretch"}).get_json()["fit"] == "stretch"  # the API's wins
    finally:
        svc.close()


def test_rotation_90_turns_the_panel_and_re_renders_every_item_landscape(
    app: Flask, device: SimServices
) -> None:
    red = upload(app, "red.gif", gif_bytes([(255, 0, 0), (200, 0, 0)], size=(64, 48)))
    blue = upload(app, "blue.gif", gif_bytes([(0, 0, 255)], size=(48, 64)))
    assert red["original"] is True and red["original_bytes"] > 0 and red["rerender"] is None
    device.pump()
    assert frame_sizes(device) == [(240, 320), (240, 320)]
    answer = patch(app, {"rotation": 90})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["rotation"] == 90 and body["panel"] == {"width": 320, "height": 240}
    assert body["orientation_asked"] is True  # choosing a rotation answers the first-run question
    assert body["rerender"]["total"] == 2
    device.pump()  # the single-threaded player applies it at its next step
    assert panel_png_size(app) == (320, 240)
    assert device.rerender.wait_idle(30)
    assert frame_sizes(device) == [(320, 240), (320, 240)]
    progress = app.test_client().get("/api/settings").get_json()["rerender"]
    assert progress["done"] == progress["total"] == 2 and progress["running"] is False
    items = app.test_client().get("/api/media").get_json()["items"]
    assert [i["rerender"] for i in items] == [None, None]
    assert {i["id"] for i in items} == {red["id"], blue["id"]}
    assert device.library.fsck().ok


def test_settings_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = SimServices(data)
    app = create_app(first, {"TESTING": True})
    assert patch(app, {"rotation": 90, "shuffle": True, "night": {"start": "23:30"}}).status_code == 200
    first.close()
    again = SimServices(data)
    try:
        app = create_app(again, {"TESTING": True})
        body = app.test_client().get("/api/settings").get_json()
        assert body["rotation"] == 90 and body["shuffle"] is True
        assert body["night"] == {
            "start": "23:30",
            "end": "07:00",
            "days": list(body["night"]["days"]),
            "brightness": 0,
        }
        assert len(body["night"]["days"]) == 7
        assert panel_png_size(app) == (320, 240)
    finally:
        again.close()


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        ({"rotation": 45}, "rotation must be 0, 90, 180 or 270 (degrees), not 45."),
        ({"rotation": True}, "rotation must be 0, 90, 180 or 270 (degrees), not true."),
        ({"fit": "zoom"}, "fit must be contain"),
        ({"dither": "yes"}, 'dither must be true or false, not "yes".'),
        ({"background": "red"}, 'background must be a colour written "#rrggbb"'),
        ({"still_seconds": 0}, "still_seconds must be a number of seconds from 0.5 to 86400, not 0."),
        ({"shuffle": 1}, "shuffle must be true or false, not 1."),
        ({"night": {"start": "25:00"}}, 'night start must be a 24-hour time "HH:MM"'),
        ({"night": {"start": "07:00"}}, "The night must start and end at different times"),
        (
            {"night": {"days": ["mon", "funday"]}},
            "night days are mon, tue, wed, thu, fri, sat and sun, not 'fun'.",
        ),
        ({"night": {"days": []}}, "night needs at least one day; use null for no night."),
        ({"night": {"brightness": 101}}, "night brightness must be a whole number from 0 (panel off) to 100"),
        ({"night": {"colour": 1}}, "night has no field 'colour'"),
        ({"night": "late"}, "night must be null (no night)"),
        ({"rotaton": 90}, "There is no setting called 'rotaton'; the settings are rotation, fit,"),
        ({}, "Name at least one setting to change"),
    ],
)
def test_a_bad_value_is_refused_with_one_sentence_and_nothing_changes(
    app: Flask, body: dict[str, Any], sentence: str
) -> None:
    before = app.test_client().get("/api/settings").get_json()
    answer = patch(app, {"shuffle": True, **body} if body and "shuffle" not in body else body)
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error["code"] == "invalid_setting"
    assert error["message"].startswith(sentence) or sentence in error["message"]
    assert error["message"].count(". ") == 0 and error["message"].endswith(".")  # one sentence
    assert app.test_client().get("/api/settings").get_json() == before  # not even the valid part


def test_night_takes_partial_changes_and_null(app: Flask, device: SimServices) -> None:
    body = patch(app, {"night": {"start": "22:30", "end": "6:45", "days": ["sat", "fri"], "brightness": 15}})
    assert body.get_json()["night"] == {
        "start": "22:30",
        "end": "06:45",
        "days": ["fri", "sat"],
        "brightness": 15,
    }
    body = patch(app, {"night": {"brightness": 0}})
    assert body.get_json()["night"]["days"] == ["fri", "sat"] and body.get_json()["night"]["brightness"] == 0
    device.pump()
    status = app.test_client().get("/api/player").get_json()
    assert status["night"]["start"] == "22:30" and status["night"]["brightness"] == 0
    assert patch(app, {"night": None}).get_json()["night"] is None


def test_items_take_fit_seconds_and_loops(app: Flask, device: SimServices) -> None:
    item = upload(app, "wide.gif", gif_bytes([(0, 255, 0), (0, 0, 255)], size=(96, 32)))
    client = app.test_client()
    url = f"/api/media/{item['id']}"
    changed = client.patch(url, json={"fit": "cover", "seconds": 12.5, "loops": 3}, headers=CSRF)
    assert changed.status_code == 200
    body = changed.get_json()
    assert (body["fit"], body["seconds"], body["loops"]) == ("cover", 12.5, 3)
    assert device.rerender.wait_idle(30)
    rendered = device.library.get(item["id"])
    assert rendered.render is not None and rendered.render["fit"] == "cover"
    with open_frames(device.library.frame_path(rendered)) as ff:
        top = ff.frame_array(0)[0]
    assert top.any()  # cover fills the panel: no black bar at the top any more
    back = client.patch(url, json={"fit": None, "seconds": None}, headers=CSRF).get_json()
    assert (back["fit"], back["seconds"]) == (None, None)
    for bad, word in (
        ({"fit": "zoom"}, "'fit'"),
        ({"seconds": 0.1}, "'seconds'"),
        ({"seconds": "5"}, "'seconds'"),
    ):
        answer = client.patch(url, json=bad, headers=CSRF)
        assert answer.status_code == 400 and word in answer.get_json()["error"]["message"]


def test_items_without_an_original_are_flagged_and_keep_playing(app: Flask, device: SimServices) -> None:
    old = add_solid_item(device.library, "old", [(255, 255, 0)])  # as imported before originals
    new = upload(app, "new.gif", gif_bytes([(0, 255, 255)]))
    patch(app, {"rotation": 90})
    assert device.rerender.wait_idle(30)
    progress = app.test_client().get("/api/settings").get_json()["rerender"]
    assert progress["needs_upload"] == [{"id": old.id, "name": "old"}]
    assert progress["done"] == progress["total"] == 1
    states = {i["id"]: i["rerender"] for i in app.test_client().get("/api/media").get_json()["items"]}
    assert states == {old.id: "needs_upload", new["id"]: None}
    device.player.show(old.id)
    device.pump(0.3)
    status = app.test_client().get("/api/player").get_json()
    assert status["current"] == old.id and not status["faults"]  # fitted on the fly
    assert panel_png_size(app) == (320, 240)


def test_a_change_back_before_the_re_render_leaves_nothing_to_do(app: Flask, device: SimServices) -> None:
    upload(app, "a.gif", gif_bytes([(10, 20, 30)]))
    device.rerender.close()  # the background work stops taking items: the change stays queued
    assert patch(app, {"rotation": 90}).get_json()["rerender"]["total"] == 1
    body = patch(app, {"rotation": 0}).get_json()
    assert body["rerender"]["total"] == 0 and body["rerender"]["running"] is False
    assert frame_sizes(device) == [(240, 320)]


def test_uploading_an_old_item_again_gives_it_its_original_and_re_renders_it(
    app: Flask, device: SimServices
) -> None:
    import hashlib

    from libloop.index import NewItem
    from libloop.media.importer import ImportOptions, import_media

    content = gif_bytes([(250, 120, 0)], size=(64, 64))
    src = device.data_dir / "old.gif"
    src.write_bytes(content)
    staged = device.library.staging_path()
    result = import_media(src, staged, ImportOptions())
    old = device.library.add(  # as imported before originals were kept
        staged,
        NewItem(
            "old",
            "image",
            result.frames,
            result.duration_ms,
            64,
            64,
            "old.gif",
            hashlib.sha256(content).hexdigest(),
        ),
    )
    patch(app, {"rotation": 90})
    assert device.rerender.wait_idle(30)
    assert device.settings.item_state(old.id) == "needs_upload"
    job = upload(app, "old again.gif", content)
    assert job["id"] == old.id and job["original"] is True
    assert device.rerender.wait_idle(30)
    assert device.settings.item_state(old.id) is None
    assert frame_sizes(device) == [(320, 240)]


def test_an_upload_converted_for_old_settings_is_rendered_again(app: Flask, device: SimServices) -> None:
    from libloop.media.importer import ImportOptions

    patch(app, {"rotation": 90})
    device.imports.options = ImportOptions()  # as if the upload began before the change
    upload(app, "late.gif", gif_bytes([(0, 90, 250)]))
    assert device.rerender.wait_idle(30)
    assert frame_sizes(device) == [(320, 240)]


def test_a_re_rendered_item_gets_a_new_preview_address(app: Flask, device: SimServices) -> None:
    item = upload(app, "p.gif", gif_bytes([(200, 0, 200)]))
    assert item["preview_url"] == f"/api/media/{item['id']}/preview.gif"
    with app.test_client().get(item["preview_url"]) as first:
        assert Image.open(io.BytesIO(first.data)).size == (120, 160)
    patch(app, {"rotation": 90})
    assert device.rerender.wait_idle(30)
    (after,) = app.test_client().get("/api/media").get_json()["items"]
    assert after["preview_url"].startswith(f"/api/media/{item['id']}/preview.gif?v=")
    with app.test_client().get(after["preview_url"]) as second:
        assert Image.open(io.BytesIO(second.data)).size == (160, 120)
