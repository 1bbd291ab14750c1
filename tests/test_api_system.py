"""System routes (health, live image, OpenAPI) and the JSON error contract of every route."""

from __future__ import annotations

import io

import pytest
from flask import Flask
from PIL import Image

from tests.webapp_fixtures import CSRF, SimServices, add_solid_item, app, device
from webapp.openapi import openapi_document

__all__ = ["app", "device"]


def test_health_has_components_resources_faults_and_wifi(app: Flask, device: SimServices) -> None:
    body = app.test_client().get("/api/health").get_json()
    assert body["state"] == "ok"
    assert isinstance(body["components"], list)
    assert isinstance(body["faults"], list)
    assert body["resources"]["disk_free_mb"] > 0
    assert body["wifi"]["connected"] is True
    assert body["wifi"]["ssid"] == "loop-sim"


def test_display_png_shows_what_the_panel_shows(app: Flask, device: SimServices) -> None:
    add_solid_item(device.library, "green", [(0, 255, 0)])
    device.pump()
    response = app.test_client().get("/api/display.png")
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.headers["Cache-Control"] == "no-store"
    image = Image.open(io.BytesIO(response.data)).convert("RGB")
    assert image.size == (240, 320)
    assert image.getpixel((120, 160)) == (0, 255, 0)


def test_openapi_document_lists_every_api_route(app: Flask) -> None:
    doc = app.test_client().get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        for method in rule.methods or set():
            if method not in ("HEAD", "OPTIONS"):
                assert (path, method) in documented, f"{method} {path} is not in the OpenAPI document"
    assert len(documented) == sum(
        len((r.methods or set()) - {"HEAD", "OPTIONS"})
        for r in app.url_map.iter_rules()
        if r.rule.startswith("/api/")
    )


def test_openapi_document_is_a_fresh_copy() -> None:
    doc = openapi_document()
    doc["paths"].clear()
    assert openapi_document()["paths"]


def test_dashboard_page_and_assets_are_served_with_a_strict_policy(app: Flask) -> None:
    client = app.test_client()
    with client.get("/") as page:
        assert page.status_code == 200
        assert b"LOOP" in page.data
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    for asset in ("app.js", "api.js", "ui.js", "library.js", "player.js", "uploads.js", "app.css"):
        with client.get(f"/static/{asset}") as response:
            assert response.status_code == 200, asset
    with client.get("/static/../webapp/__init__.py") as response:
        assert response.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/nothing-here", 404),
        ("get", "/api/media/x/y/z", 404),
        ("post", "/api/health", 405),
        ("delete", "/api/playlist", 405),
        ("put", "/api/media", 405),
        ("get", "/api/settings/password", 405),
    ],
)
def test_unknown_routes_and_wrong_methods_answer_json(
    app: Flask, method: str, path: str, status: int
) -> None:
    response = getattr(app.test_client(), method)(path, headers=CSRF)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] and error["message"]
    if status == 405:
        assert response.headers["Allow"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("patch", "/api/media/x"), ("put", "/api/playlist"), ("post", "/api/player"), ("post", "/api/login")],
)
def test_malformed_json_is_400_and_non_json_is_415(app: Flask, method: str, path: str) -> None:
    client = app.test_client()
    bad = getattr(client, method)(path, data="{not json", content_type="application/json", headers=CSRF)
    assert bad.status_code == 400
    assert bad.get_json()["error"]["code"] == "malformed_json"
    form = getattr(client, method)(
        path, data="a=1", content_type="application/x-www-form-urlencoded", headers=CSRF
    )
    assert form.status_code == 415
    assert "JSON" in form.get_json()["error"]["message"]


def test_oversized_json_body_is_413(app: Flask) -> None:
    body = '{"ids": [' + ",".join(['"x"'] * 300_000) + "]}"
    response = app.test_client().put(
        "/api/playlist", data=body, content_type="application/json", headers=CSRF
    )
    assert response.status_code == 413
    assert response.get_json()["error"]["message"]


def test_a_bug_is_a_json_500_without_details(device: SimServices) -> None:
    from webapp import create_app

    app = create_app(device, {"TESTING": False})

    def broken() -> bytes:
        raise RuntimeError("secret internals")

    device.display_png = broken  # type: ignore[method-assign]
    response = app.test_client().get("/api/display.png")
    assert response.status_code == 500
    assert "secret" not in response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "internal_error"


def test_hardware_error_is_503_with_the_library_sentence(device: SimServices) -> None:
    from libloop.errors import TransportTimeout
    from webapp import create_app

    app = create_app(device)

    def hung() -> bytes:
        raise TransportTimeout("The SPI bus did not answer within 2 s; the supervisor is resetting it.")

    device.display_png = hung  # type: ignore[method-assign]
    response = app.test_client().get("/api/display.png")
    assert response.status_code == 503
    assert response.get_json()["error"] == {
        "code": "transport_timeout",
        "message": "The SPI bus did not answer within 2 s; the supervisor is resetting it.",
    }


# --- the production server ----------------------------------------------------------------


def test_web_server_serves_on_a_free_port_and_stops(app: Flask) -> None:
    import json
    import urllib.request

    from webapp.server import WebServer

    with WebServer(app, "127.0.0.1", 0) as server:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(f"{server.url}/api/session", timeout=10) as response:
            assert json.load(response) == {"password_set": False, "logged_in": True}
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{server.url}/api/session", timeout=2)


def test_web_server_reports_a_busy_port_in_one_sentence(app: Flask) -> None:
    from webapp.server import WebServer, WebServerError

    with WebServer(app, "127.0.0.1", 0) as first:
        second = WebServer(app, "127.0.0.1", first.port)
        with pytest.raises(WebServerError, match="--port"):
            second.start()
