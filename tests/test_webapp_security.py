"""Password, login sessions and cross-site request protection of the dashboard and API."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.webapp_fixtures import CSRF, SimServices, add_solid_item, app, device
from webapp import create_app, security

__all__ = ["app", "device"]


def set_password(client: FlaskClient, password: str | None) -> int:
    return client.post("/api/settings/password", json={"password": password}, headers=CSRF).status_code


# --- password hashing ---------------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(password=st.text(min_size=1, max_size=40), other=st.text(min_size=1, max_size=40))
def test_hash_verifies_only_its_password(password: str, other: str) -> None:
    stored = security.hash_password(password)
    if len(password) >= 12:
        assert password not in stored
    assert security.verify_password(password, stored)
    assert security.verify_password(other, stored) == (other == password)


def test_lone_surrogates_in_a_password_are_fine(app: Flask) -> None:
    client = app.test_client()
    body = '{"password": "\\ud800abcd"}'
    response = client.post("/api/settings/password", data=body, content_type="application/json", headers=CSRF)
    assert response.status_code == 200
    login = app.test_client().post("/api/login", data=body, content_type="application/json", headers=CSRF)
    assert login.get_json()["logged_in"] is True


def test_hashes_are_salted() -> None:
    assert security.hash_password("same") != security.hash_password("same")


@pytest.mark.parametrize(
    "stored", ["", "plain", "scrypt$x$8$1$AA==$AA==", "md5$1$2$3$4$5", "scrypt$2$8$1$!!$!!"]
)
def test_malformed_stored_hashes_never_verify(stored: str) -> None:
    assert not security.verify_password("anything", stored)


# --- off by default, one call to set or clear ----------------------------------------------


def test_no_password_on_a_fresh_device(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/api/session").get_json() == {"password_set": False, "logged_in": True}
    assert client.get("/api/media").status_code == 200


def test_setting_a_password_locks_other_clients_out(app: Flask, device: SimServices) -> None:
    owner, stranger = app.test_client(), app.test_client()
    assert set_password(owner, "hunter22") == 200
    stored = device.library.settings.get(security.PASSWORD_KEY)
    assert stored.startswith("scrypt$") and "hunter22" not in stored
    assert owner.get("/api/media").status_code == 200  # the one who set it stays logged in
    for path in ("/api/media", "/api/player", "/api/health", "/api/display.png", "/api/jobs/x"):
        response = stranger.get(path)
        assert response.status_code == 401, path
        assert response.get_json()["error"]["code"] == "login_required"
    assert stranger.get("/api/session").get_json() == {"password_set": True, "logged_in": False}
    assert stranger.get("/api/openapi.json").status_code == 200
    with stranger.get("/") as page:
        assert page.status_code == 200  # the page itself shows the login form


def test_login_logout_and_wrong_password(app: Flask) -> None:
    owner, other = app.test_client(), app.test_client()
    set_password(owner, "correct horse")
    wrong = other.post("/api/login", json={"password": "battery"}, headers=CSRF)
    assert wrong.status_code == 401
    assert wrong.get_json()["error"]["code"] == "wrong_password"
    ok = other.post("/api/login", json={"password": "correct horse"}, headers=CSRF)
    assert ok.get_json() == {"password_set": True, "logged_in": True}
    assert other.get("/api/media").status_code == 200
    other.post("/api/logout", headers=CSRF)
    assert other.get("/api/media").status_code == 401


def test_session_cookie_is_httponly_and_samesite_strict(app: Flask) -> None:
    client = app.test_client()
    set_password(client, "secret1")
    response = client.post("/api/login", json={"password": "secret1"}, headers=CSRF)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie


def test_changing_the_password_ends_other_sessions(app: Flask) -> None:
    a, b = app.test_client(), app.test_client()
    set_password(a, "first-pass")
    b.post("/api/login", json={"password": "first-pass"}, headers=CSRF)
    assert b.get("/api/media").status_code == 200
    set_password(a, "second-pass")
    assert a.get("/api/media").status_code == 200
    assert b.get("/api/media").status_code == 401


def test_clearing_the_password_opens_the_dashboard(app: Flask, device: SimServices) -> None:
    owner, other = app.test_client(), app.test_client()
    set_password(owner, "temporary")
    assert set_password(owner, None) == 200
    assert device.library.settings.get(security.PASSWORD_KEY) is None
    assert other.get("/api/media").status_code == 200
    set_password(owner, "again!")
    assert set_password(owner, "") == 200
    assert other.get("/api/media").status_code == 200


def test_only_a_logged_in_client_may_change_the_password(app: Flask) -> None:
    owner, stranger = app.test_client(), app.test_client()
    set_password(owner, "mine-only")
    assert set_password(stranger, None) == 401
    assert set_password(stranger, "takeover") == 401


@pytest.mark.parametrize("password", ["abc", "x" * 1025])
def test_too_short_or_long_passwords_are_refused(app: Flask, password: str) -> None:
    response = app.test_client().post("/api/settings/password", json={"password": password}, headers=CSRF)
    assert response.status_code == 422
    assert "characters" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("body", [{"password": 5}, {"password": ["a"]}, {}])
def test_malformed_password_changes_are_400(app: Flask, body: object) -> None:
    response = app.test_client().post("/api/settings/password", json=body, headers=CSRF)
    assert response.status_code == (400 if body else 200)


def test_password_survives_a_restart_and_so_do_sessions(app: Flask, device: SimServices) -> None:
    client = app.test_client()
    set_password(client, "persisted")
    again = create_app(device)  # a new process would read the same settings
    cookie = client.get_cookie("loop_session")
    assert cookie is not None
    other = again.test_client()
    other.set_cookie("loop_session", cookie.value)
    assert other.get("/api/media").status_code == 200
    assert again.test_client().get("/api/media").status_code == 401


def test_repeated_wrong_passwords_are_throttled(app: Flask) -> None:
    owner, attacker = app.test_client(), app.test_client()
    set_password(owner, "long enough")
    statuses = [
        attacker.post("/api/login", json={"password": f"guess{i}"}, headers=CSRF).status_code
        for i in range(12)
    ]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    blocked = attacker.post("/api/login", json={"password": "long enough"}, headers=CSRF)
    assert blocked.status_code == 429
    assert "wait" in blocked.get_json()["error"]["message"]


def test_throttle_forgets_old_failures() -> None:
    now = [0.0]
    throttle = security.LoginThrottle(max_failures=2, window_s=60, clock=lambda: now[0])
    throttle.failed()
    throttle.failed()
    with pytest.raises(Exception, match="wait a minute"):
        throttle.check()
    now[0] = 61.0
    throttle.check()


# --- cross-site requests -----------------------------------------------------------------------


STATE_CHANGING = [
    ("post", "/api/media"),
    ("patch", "/api/media/abc"),
    ("delete", "/api/media/abc"),
    ("put", "/api/playlist"),
    ("post", "/api/player"),
    ("post", "/api/login"),
    ("post", "/api/logout"),
    ("post", "/api/settings/password"),
]


@pytest.mark.parametrize(("method", "path"), STATE_CHANGING)
def test_state_changes_without_the_header_are_refused(
    app: Flask, device: SimServices, method: str, path: str
) -> None:
    add_solid_item(device.library, "keep", [(1, 2, 3)])
    before = device.library.items()
    response = getattr(app.test_client(), method)(path, json={"password": None, "action": "pause", "ids": []})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "cross_site_request"
    assert "X-Loop-Request" in response.get_json()["error"]["message"]
    assert device.library.items() == before


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://localhost.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_cross_origin_requests_are_refused_even_with_the_header(app: Flask, headers: dict[str, str]) -> None:
    response = app.test_client().post("/api/player", json={"action": "pause"}, headers={**CSRF, **headers})
    assert response.status_code == 403
    assert response.get_json()["error"]["message"] == "Requests from other web sites are not accepted."


def test_same_origin_browser_requests_are_accepted(app: Flask) -> None:
    headers = {**CSRF, "Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    assert app.test_client().post("/api/player", json={"action": "pause"}, headers=headers).status_code == 200


def test_reads_do_not_need_the_header(app: Flask) -> None:
    assert app.test_client().get("/api/media").status_code == 200


def test_api_answers_grant_no_cors(app: Flask) -> None:
    response = app.test_client().options("/api/media", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_local_api_token_passes_the_password_but_not_the_cross_site_check(device: SimServices) -> None:
    token = "t" * 32
    app = create_app(device, {"LOOP_API_TOKEN": token})
    owner, cli = app.test_client(), app.test_client()
    set_password(owner, "locked down")
    bearer = {"Authorization": f"Bearer {token}"}
    assert cli.get("/api/media", headers=bearer).status_code == 200
    assert cli.get("/api/media", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert cli.post("/api/player", json={"action": "pause"}, headers=bearer).status_code == 403
    assert cli.post("/api/player", json={"action": "pause"}, headers={**bearer, **CSRF}).status_code == 200


def test_short_api_tokens_are_ignored(device: SimServices) -> None:
    app = create_app(device, {"LOOP_API_TOKEN": "short"})
    client = app.test_client()
    set_password(client, "locked down")
    assert app.test_client().get("/api/media", headers={"Authorization": "Bearer short"}).status_code == 401
