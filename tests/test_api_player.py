"""The player API: state, every action, and the caller's mistakes."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.webapp_fixtures import CSRF, SimServices, add_solid_item, app, device

__all__ = ["app", "device"]


def post(app: Flask, body: Any) -> Any:
    return app.test_client().post("/api/player", json=body, headers=CSRF)


def test_state_has_the_spec_shape(app: Flask, device: SimServices) -> None:
    add_solid_item(device.library, "red", [(255, 0, 0)])
    device.pump()
    body = app.test_client().get("/api/player").get_json()
    assert body["state"] == "playing"
    assert body["current"] == device.library.items()[0].id
    for key in (
        "frames_shown",
        "frames_dropped",
        "bytes_sent",
        "transfers",
        "refresh_bytes",
        "fps",
        "late_p99_ms",
    ):
        assert key in body["stats"]
    assert body["stats"]["frames_shown"] > 0


def test_empty_library_is_reported_as_empty(app: Flask, device: SimServices) -> None:
    device.pump()
    assert app.test_client().get("/api/player").get_json()["state"] == "empty"


def test_pause_resume_sleep_wake(app: Flask, device: SimServices) -> None:
    add_solid_item(device.library, "anim", [(255, 0, 0), (0, 255, 0)])
    device.pump()
    for action, state in [
        ("pause", "paused"),
        ("resume", "playing"),
        ("sleep", "sleeping"),
        ("wake", "playing"),
    ]:
        assert post(app, {"action": action}).status_code == 200
        device.pump()
        assert app.test_client().get("/api/player").get_json()["state"] == state


def test_next_previous_and_show(app: Flask, device: SimServices) -> None:
    a = add_solid_item(device.library, "a", [(255, 0, 0)], duration_ms=60_000)
    b = add_solid_item(device.library, "b", [(0, 0, 255)], duration_ms=60_000)
    device.pump()

    def current() -> str:
        return str(app.test_client().get("/api/player").get_json()["current"])

    assert current() == a.id
    post(app, {"action": "next"})
    device.pump()
    assert current() == b.id
    post(app, {"action": "previous"})
    device.pump()
    assert current() == a.id
    assert post(app, {"action": "show", "id": b.id}).status_code == 200
    device.pump()
    assert current() == b.id
    assert device.wiring.snapshot().getpixel((120, 160)) == (0, 0, 255)


def test_brightness_reaches_the_backlight(app: Flask, device: SimServices) -> None:
    add_solid_item(device.library, "a", [(255, 0, 0)])
    assert post(app, {"action": "brightness", "value": 40}).status_code == 200
    device.pump()
    assert device.wiring.panel.backlight == 40
    assert app.test_client().get("/api/player").get_json()["brightness"] == 40


def test_show_unknown_item_is_404(app: Flask) -> None:
    response = post(app, {"action": "show", "id": "nope"})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_show_with_an_id_that_cannot_exist_is_404(app: Flask) -> None:
    for raw in ('"\\ud800"', '"../x"', '"' + "a" * 65 + '"'):
        body = '{"action": "show", "id": ' + raw + "}"
        response = app.test_client().post(
            "/api/player", data=body, content_type="application/json", headers=CSRF
        )
        assert response.status_code == 404, raw


def test_show_disabled_item_says_it_is_disabled(app: Flask, device: SimServices) -> None:
    shown = add_solid_item(device.library, "red", [(255, 0, 0)], duration_ms=60_000)
    item = add_solid_item(device.library, "blue", [(0, 0, 255)], duration_ms=60_000)
    device.library.update(item.id, enabled=False)
    device.pump()
    response = post(app, {"action": "show", "id": item.id})
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "item_disabled"
    assert "'blue' is disabled" in error["message"] and '"enabled": true' in error["message"]
    device.pump()
    assert app.test_client().get("/api/player").get_json()["current"] == shown.id
    assert device.wiring.snapshot().getpixel((120, 160)) == (255, 0, 0)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"action": "dance"},
        {"action": 3},
        {"action": "show"},
        {"action": "show", "id": 5},
        {"action": "brightness"},
        {"action": "brightness", "value": 101},
        {"action": "brightness", "value": -1},
        {"action": "brightness", "value": "50"},
        {"action": "brightness", "value": True},
        [],
        "pause",
    ],
)
def test_bad_actions_are_400_with_a_sentence(app: Flask, body: Any) -> None:
    response = post(app, body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["message"].endswith(".")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # the app is reusable
@given(
    value=st.one_of(st.integers(), st.floats(allow_nan=True), st.text(max_size=5), st.none(), st.booleans())
)
def test_brightness_values_are_accepted_or_refused_never_crash(app: Flask, value: Any) -> None:
    response = post(app, {"action": "brightness", "value": value})
    ok = not isinstance(value, bool | str | type(None)) and value == value and 0 <= value <= 100
    assert response.status_code == (200 if ok else 400)
