"""Who may call the API and from where: password, sessions, tokens, Host, cross-site, hostile input."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from werkzeug.test import EnvironBuilder, run_wsgi_app

from libloop.clock import FakeClock
from tests.webapp_fixtures import SimServices, add_solid_item, app, device
from webapp import create_app, security
from webapp.jsonbody import MAX_JSON_DEPTH, JsonBodyError, nesting_depth, parse_json
from webapp.origin import HostPolicy, cross_origin_refusal, split_host
from webapp.throttle import LoginThrottle

__all__ = ["app", "device"]

FIXTURE_OK = [HealthCheck.function_scoped_fixture]


def set_password(client: FlaskClient, password: str | None) -> int:
    return client.post("/api/settings/password", json={"password": password}).status_code


def client_at(app: Flask, address: str) -> FlaskClient:
    """A client whose requests come from ``address`` (what the login throttle counts by)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def is_json_error(response: Any, status: int) -> bool:
    body = response.get_json(silent=True)
    return (
        response.status_code == status
        and isinstance(body, dict)
        and isinstance(body.get("error", {}).get("code"), str)
        and isinstance(body["error"].get("message"), str)
    )


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
    response = client.post("/api/settings/password", data=body, content_type="application/json")
    assert response.status_code == 200
    login = app.test_client().post("/api/login", data=body, content_type="application/json")
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
    for path in (
        "/api/media",
        "/api/player",
        "/api/health",
        "/api/display.png",
        "/api/jobs/x",
        "/api/tokens",
    ):
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
    wrong = other.post("/api/login", json={"password": "battery"})
    assert wrong.status_code == 401
    assert wrong.get_json()["error"]["code"] == "wrong_password"
    ok = other.post("/api/login", json={"password": "correct horse"})
    assert ok.get_json() == {"password_set": True, "logged_in": True}
    assert other.get("/api/media").status_code == 200
    out = other.post("/api/logout")
    assert out.get_json() == {"password_set": True, "logged_in": False}
    assert other.get("/api/media").status_code == 401


def test_session_cookie_is_httponly_and_samesite_strict(app: Flask) -> None:
    client = app.test_client()
    set_password(client, "secret1")
    response = client.post("/api/login", json={"password": "secret1"})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie


def test_a_cookie_replayed_after_logout_is_refused(app: Flask, device: SimServices) -> None:
    owner, browser = app.test_client(), app.test_client()
    set_password(owner, "long enough")
    browser.post("/api/login", json={"password": "long enough"})
    cookie = browser.get_cookie("loop_session")
    assert cookie is not None
    live = device.library.sessions.count()
    assert browser.post("/api/logout").status_code == 200
    assert device.library.sessions.count() == live - 1
    replay = app.test_client()
    replay.set_cookie("loop_session", cookie.value)
    response = replay.get("/api/media")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "login_required"
    assert replay.get("/api/session").get_json()["logged_in"] is False
    assert owner.get("/api/media").status_code == 200  # other logins are untouched


def test_changing_the_password_ends_other_sessions(app: Flask) -> None:
    a, b = app.test_client(), app.test_client()
    set_password(a, "first-pass")
    b.post("/api/login", json={"password": "first-pass"})
    assert b.get("/api/media").status_code == 200
    set_password(a, "second-pass")
    assert a.get("/api/media").status_code == 200
    assert b.get("/api/media").status_code == 401


def test_a_password_set_from_the_cli_ends_every_session(app: Flask, device: SimServices) -> None:
    browser = app.test_client()
    set_password(browser, "from the web")
    assert browser.get("/api/media").status_code == 200
    security.set_password(device.library, "from the cli")  # what `loop password` does
    assert device.library.sessions.count() == 0
    assert browser.get("/api/media").status_code == 401


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
    response = app.test_client().post("/api/settings/password", json={"password": password})
    assert response.status_code == 422
    assert "characters" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("body", [{"password": 5}, {"password": ["a"]}, {}])
def test_malformed_password_changes_are_400(app: Flask, body: object) -> None:
    response = app.test_client().post("/api/settings/password", json=body)
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


# --- login throttle -----------------------------------------------------------------------------


def test_repeated_wrong_passwords_are_throttled(app: Flask) -> None:
    owner, attacker = app.test_client(), client_at(app, "192.0.2.66")
    set_password(owner, "long enough")
    statuses = [attacker.post("/api/login", json={"password": f"guess{i}"}).status_code for i in range(12)]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    blocked = attacker.post("/api/login", json={"password": "long enough"})
    assert blocked.status_code == 429
    assert "wait" in blocked.get_json()["error"]["message"]
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60


def test_a_stranger_guessing_never_locks_the_owner_out(app: Flask) -> None:
    """Issue 13: with one global counter the owner got in 2 times out of 25 over 75 s."""
    clock = FakeClock(0.0)
    app.extensions["loop.login_throttle"] = LoginThrottle(clock=clock.monotonic)
    set_password(app.test_client(), "the owner's")
    attacker, owner = client_at(app, "192.0.2.66"), client_at(app, "192.168.1.20")
    owner_in = 0
    attacker_statuses: list[int] = []
    for second in range(75):
        attacker_statuses.append(
            attacker.post("/api/login", json={"password": f"guess {second}"}).status_code
        )
        if second % 3 == 0:
            response = owner.post("/api/login", json={"password": "the owner's"})
            owner_in += response.status_code == 200
            assert owner.get("/api/media").status_code == 200
            owner.post("/api/logout")
        clock.advance(1.0)
    assert owner_in == 25
    assert attacker_statuses.count(401) <= 20  # ten a minute at most
    assert 429 in attacker_statuses


def test_many_guessing_addresses_are_slowed_but_the_owner_gets_in(app: Flask) -> None:
    clock = FakeClock(0.0)
    throttle = LoginThrottle(per_address=3, global_max=6, clock=clock.monotonic)
    app.extensions["loop.login_throttle"] = throttle
    set_password(app.test_client(), "the owner's")
    guessers = [client_at(app, f"198.51.100.{n}") for n in range(4)]
    for client in guessers:
        client.post("/api/login", json={"password": "nope"})
        client.post("/api/login", json={"password": "nope again"})
    # Eight failures from four addresses: over the global ceiling, each of them waits...
    for client in guessers:
        response = client.post("/api/login", json={"password": "third try"})
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
    # ...while an address that has not failed is let in.
    owner = client_at(app, "192.168.1.20")
    assert owner.post("/api/login", json={"password": "the owner's"}).status_code == 200
    clock.advance(61.0)
    assert guessers[0].post("/api/login", json={"password": "the owner's"}).status_code == 200


def test_throttle_forgets_old_failures() -> None:
    clock = FakeClock(0.0)
    throttle = LoginThrottle(per_address=2, window_s=60, clock=clock.monotonic)
    throttle.failed("a")
    clock.advance(10)
    throttle.failed("a")
    assert throttle.retry_after("a") == pytest.approx(50.0)
    clock.advance(50)
    assert throttle.retry_after("a") is None
    assert throttle.failures("a") == 1


def test_a_success_clears_an_address_and_memory_is_bounded() -> None:
    clock = FakeClock(0.0)
    throttle = LoginThrottle(per_address=2, max_addresses=3, clock=clock.monotonic)
    throttle.failed("a")
    throttle.succeeded("a")
    assert throttle.failures("a") == 0
    for n in range(10):
        throttle.failed(f"10.0.0.{n}")
    assert [throttle.failures(f"10.0.0.{n}") for n in range(10)] == [0] * 7 + [1] * 3


class ThrottleMachine(RuleBasedStateMachine):
    """The throttle against a model: failure times per address, a sliding window, a ceiling."""

    PER_ADDRESS, GLOBAL_MAX, WINDOW = 3, 7, 60.0
    ATTACKERS = tuple(f"203.0.113.{n}" for n in range(5))
    OWNER = "192.168.1.20"

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(0.0)
        self.throttle = LoginThrottle(
            per_address=self.PER_ADDRESS,
            global_max=self.GLOBAL_MAX,
            window_s=self.WINDOW,
            clock=self.clock.monotonic,
        )
        self.model: dict[str, list[float]] = {}
        self.all: list[float] = []

    def recent(self, times: list[float]) -> list[float]:
        now = self.clock.monotonic()
        return [t for t in times if now - t < self.WINDOW]

    def model_refuses(self, address: str) -> bool:
        mine = self.recent(self.model.get(address, []))
        if not mine:
            return False
        return len(mine) >= self.PER_ADDRESS or len(self.recent(self.all)) >= self.GLOBAL_MAX

    @rule(address=st.sampled_from(ATTACKERS))
    def attacker_guesses(self, address: str) -> None:
        refused = self.throttle.retry_after(address) is not None
        assert refused == self.model_refuses(address)
        if not refused:  # the password was checked, and was wrong
            self.throttle.failed(address)
            now = self.clock.monotonic()
            self.model.setdefault(address, []).append(now)
            self.all.append(now)

    @rule(seconds=st.floats(min_value=0.0, max_value=30.0))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def owner_logs_in(self) -> None:
        assert self.throttle.retry_after(self.OWNER) is None
        self.throttle.succeeded(self.OWNER)

    @invariant()
    def no_address_exceeds_its_limit_in_a_window(self) -> None:
        for times in self.model.values():
            assert len(self.recent(times)) <= self.PER_ADDRESS

    @invariant()
    def the_owner_is_never_refused(self) -> None:
        assert self.throttle.retry_after(self.OWNER) is None


TestThrottleMachine = ThrottleMachine.TestCase
TestThrottleMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


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
    ("post", "/api/tokens"),
    ("delete", "/api/tokens/abc"),
]


@pytest.mark.parametrize(("method", "path"), STATE_CHANGING)
def test_scripts_need_no_extra_header(app: Flask, method: str, path: str) -> None:
    response = getattr(app.test_client(), method)(path, json={"action": "pause", "ids": [], "name": "x"})
    assert response.status_code != 403
    assert response.status_code < 500


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://localhost.evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
        {"Sec-Fetch-Site": "cross-site", "X-Loop-Request": "1"},
    ],
)
def test_cross_site_browser_requests_are_refused(
    app: Flask, device: SimServices, headers: dict[str, str]
) -> None:
    add_solid_item(device.library, "keep", [(1, 2, 3)])
    before = device.library.items()
    for method, path in STATE_CHANGING:
        response = getattr(app.test_client(), method)(
            path, json={"password": None, "action": "pause", "ids": [], "name": "x"}, headers=headers
        )
        assert is_json_error(response, 403), (method, path)
        assert response.get_json()["error"] == {
            "code": "cross_site_request",
            "message": "Requests from other web sites are not accepted.",
        }
    assert device.library.items() == before
    assert device.library.tokens.list() == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "http://localhost"},
        {"Origin": "HTTP://LOCALHOST"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://evil.example"},  # Sec-Fetch-Site wins
        {"Sec-Fetch-Site": "none"},
        {"X-Loop-Request": "1"},  # the old header is accepted and ignored
        {},
    ],
)
def test_same_origin_and_non_browser_requests_are_accepted(app: Flask, headers: dict[str, str]) -> None:
    assert app.test_client().post("/api/player", json={"action": "pause"}, headers=headers).status_code == 200


_FETCH_SITES = st.sampled_from([None, "", "same-origin", "none", "same-site", "cross-site", "Same-Origin"])
_ORIGINS = st.one_of(
    st.sampled_from([None, "", "null", "http://localhost", "http://localhost:80", "https://localhost"]),
    st.sampled_from(["http://evil.example", "http://localhost.evil.example", "http://[::1]", "http://[x"]),
    st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=30),
)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(
    method=st.sampled_from(["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]),
    fetch_site=_FETCH_SITES,
    origin=_ORIGINS,
)
def test_cross_site_decisions_follow_the_browser_headers(
    app: Flask, method: str, fetch_site: str | None, origin: str | None
) -> None:
    headers = {k: v for k, v in (("Sec-Fetch-Site", fetch_site), ("Origin", origin)) if v is not None}
    response = app.test_client().open(
        "/api/player", method=method, json={"action": "resume"}, headers=headers
    )
    if method in ("GET", "HEAD", "OPTIONS"):
        expected_refusal = False  # they change nothing
    elif fetch_site:
        expected_refusal = fetch_site not in ("same-origin", "none")
    elif origin:  # the Origin's host must be the one the request was sent to
        try:
            expected_refusal = urlsplit(origin.strip()).netloc.lower() != "localhost"
        except ValueError:
            expected_refusal = True
    else:
        expected_refusal = False  # neither header: a script, not a browser
    assert (response.status_code == 403) == expected_refusal, (response.status_code, headers)
    assert response.status_code < 500


def test_api_answers_grant_no_cors(app: Flask) -> None:
    response = app.test_client().options("/api/media", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_the_dashboard_no_longer_sends_the_custom_header() -> None:
    static = Path(__file__).resolve().parent.parent / "webapp" / "static"
    for script in ("api.js", "app.js"):
        assert "X-Loop-Request" not in (static / script).read_text(), script


# --- DNS rebinding: the Host header -------------------------------------------------------------


@pytest.fixture
def named_app(device: SimServices) -> Flask:
    """The app on a machine called ``loop`` with one extra name from the config."""
    return create_app(
        device, {"TESTING": True, "LOOP_HOSTNAME": "loop", "LOOP_ALLOWED_HOSTS": ["Frame.Example.NET"]}
    )


OUR_HOSTS = [
    "localhost",
    "localhost:8080",
    "LOCALHOST",
    "localhost.",
    "127.0.0.1",
    "127.0.0.1:8080",
    "192.168.1.20:80",
    "[::1]",
    "[::1]:8080",
    "[fe80::1ff:fe23:4567:890a]:8080",
    "loop",
    "loop.local",
    "loop.local:8080",
    "LOOP.LOCAL.",
    "frame.example.net",
    "frame.example.net:443",
]
FOREIGN_HOSTS = [
    "rebind.evil.example",
    "rebind.evil.example:8080",
    "localhost.evil.example",
    "loop.local.evil.example",
    "evilloop.local",
    "127.0.0.1.nip.io",
    "example.net",
    "[::1",
    "::1",
    "[127.0.0.1]",
    "127.0.0.1:0",
    "localhost:99999",
    "localhost:80:80",
    "localhost:http",
    "loop local",
    "loop\x00.local",
    "lóóp.local",
    "x" * 10_000,
]
PATHS = [("get", "/"), ("get", "/static/app.js"), ("get", "/api/media"), ("get", "/api/openapi.json"),
         ("get", "/api/nowhere"), ("post", "/api/login"), ("get", "/api/session")]  # fmt: skip


@pytest.mark.parametrize("host", OUR_HOSTS)
def test_the_device_answers_to_its_own_names(named_app: Flask, host: str) -> None:
    response = named_app.test_client().get("/api/media", headers={"Host": host})
    assert response.status_code == 200, host


@pytest.mark.parametrize("host", FOREIGN_HOSTS)
def test_any_other_host_is_421_on_every_path(named_app: Flask, host: str) -> None:
    for method, path in PATHS:
        response = getattr(named_app.test_client(), method)(
            path, headers={"Host": host}, json={"password": "x"}
        )
        assert is_json_error(response, 421), (host, path, response.status_code)
        assert response.get_json()["error"]["code"] == "misdirected_request"


def test_the_machines_own_hostname_is_the_default(device: SimServices) -> None:
    import socket

    name = socket.gethostname().split(".")[0]
    app = create_app(device, {"TESTING": True})
    client = app.test_client()
    assert client.get("/api/media", headers={"Host": f"{name}:8080"}).status_code == 200
    assert client.get("/api/media", headers={"Host": f"{name}.local:8080"}).status_code == 200
    assert client.get("/api/media", headers={"Host": "rebind.evil.example"}).status_code == 421


def test_a_request_without_a_host_header_is_answered(named_app: Flask) -> None:
    """HTTP/1.0 without Host: no browser sends that, so there is nothing to rebind."""
    environ = EnvironBuilder(path="/api/media").get_environ()
    del environ["HTTP_HOST"]
    environ["SERVER_PROTOCOL"] = "HTTP/1.0"
    body, status, _headers = run_wsgi_app(named_app.wsgi_app, environ, buffered=True)
    assert status.startswith("200")
    assert "items" in json.loads(b"".join(body))


def test_a_star_in_the_config_answers_to_any_name(device: SimServices) -> None:
    app = create_app(device, {"TESTING": True, "LOOP_ALLOWED_HOSTS": ["*"]})
    assert app.test_client().get("/api/media", headers={"Host": "anything.example"}).status_code == 200


_LABEL = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)
_DNS_NAMES = st.lists(_LABEL, min_size=1, max_size=4).map(".".join)
_PORTS = st.one_of(st.none(), st.integers(min_value=1, max_value=65535))


def is_dotted_quad(name: str) -> bool:
    parts = name.split(".")
    return len(parts) == 4 and all(
        p.isdigit() and int(p) <= 255 and (p == "0" or not p.startswith("0")) for p in parts
    )


def with_port(host: str, port: int | None) -> str:
    return host if port is None else f"{host}:{port}"


@settings(max_examples=200, deadline=None)
@given(name=_DNS_NAMES, port=_PORTS)
def test_host_policy_refuses_names_it_does_not_have(name: str, port: int | None) -> None:
    policy = HostPolicy("loop", ["frame.example.net"])
    ours = name in ("localhost", "loop", "loop.local", "frame.example.net") or is_dotted_quad(name)
    assert policy.allows(with_port(name, port)) == ours


@settings(max_examples=200, deadline=None)
@given(address=st.ip_addresses(), port=_PORTS)
def test_host_policy_accepts_every_ip_literal(address: Any, port: int | None) -> None:
    literal = f"[{address}]" if address.version == 6 else str(address)
    assert HostPolicy(None).allows(with_port(literal, port))
    if address.version == 6:
        assert not HostPolicy(None).allows(with_port(str(address), port))  # needs its brackets


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(host=st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), min_size=1, max_size=80))
def test_any_host_header_gets_an_answer_or_a_json_421(named_app: Flask, host: str) -> None:
    response = named_app.test_client().get("/api/media", headers={"Host": host})
    expected = 200 if HostPolicy("loop", ["frame.example.net"]).allows(host) else 421
    assert response.status_code == expected
    if expected == 421:
        assert is_json_error(response, 421)


@pytest.mark.parametrize(
    ("value", "parts"),
    [("a:1", ("a", 1)), ("[::1]:80", ("::1", 80)), ("[::1]", ("::1", None)), ("a", ("a", None)),
     ("a:", None), ("a:b", None), ("[::1]x", None), ("a:1:2", None), ("", None)],
)  # fmt: skip
def test_split_host(value: str, parts: tuple[str, int | None] | None) -> None:
    assert split_host(value) == parts


def test_cross_origin_refusal_is_pure() -> None:
    assert not cross_origin_refusal("POST", None, None, "localhost")
    assert not cross_origin_refusal("POST", None, "http://loop.local:8080", "loop.local:8080")
    assert cross_origin_refusal("POST", None, "http://loop.local:8080", "loop.local:9090")
    assert cross_origin_refusal("POST", None, "http://loop.local:8080", None)
    assert not cross_origin_refusal("get", "cross-site", "http://evil.example", "localhost")


# --- named API tokens ---------------------------------------------------------------------------


def test_named_tokens_let_scripts_in_and_stop_at_once_when_revoked(app: Flask, device: SimServices) -> None:
    set_password(app.test_client(), "locked down")
    token = device.library.tokens.create("backup-script")
    script = app.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    assert script.get("/api/media", headers=bearer).status_code == 200
    assert script.post("/api/player", json={"action": "pause"}, headers=bearer).status_code == 200
    assert script.get("/api/session", headers=bearer).get_json()["logged_in"] is True
    assert script.get("/api/media").status_code == 401
    device.library.tokens.revoke("backup-script")  # what `loop token rm` does, in another process
    refused = script.get("/api/media", headers=bearer)
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "invalid_token"


def test_tokens_from_the_dashboard_are_shown_once_and_listed_without_secret(
    app: Flask, device: SimServices
) -> None:
    owner = app.test_client()
    set_password(owner, "locked down")
    made = owner.post("/api/tokens", json={"name": "phone-shortcut"})
    assert made.status_code == 201
    secret = made.get_json()["token"]
    assert secret.startswith("loop_") and len(secret) > 40
    assert made.get_json()["name"] == "phone-shortcut" and made.get_json()["last_used"] is None
    assert (
        app.test_client().get("/api/player", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    )
    listing = owner.get("/api/tokens")
    assert secret not in listing.get_data(as_text=True)
    (token,) = listing.get_json()["tokens"]
    assert token["name"] == "phone-shortcut"
    assert token["created"].endswith("+00:00") and token["last_used"] is not None
    assert owner.post("/api/tokens", json={"name": "phone-shortcut"}).status_code == 409
    assert owner.post("/api/tokens", json={"name": "no spaces"}).status_code == 422
    assert owner.post("/api/tokens", json={"name": 5}).status_code == 400
    assert owner.delete("/api/tokens/nope").status_code == 404
    revoked = owner.delete("/api/tokens/phone-shortcut")
    assert revoked.status_code == 200 and revoked.get_json() == {"tokens": []}
    assert (
        app.test_client().get("/api/player", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    )


def test_only_a_hash_of_a_token_is_stored(app: Flask, device: SimServices) -> None:
    secret = device.library.tokens.create("cron")
    raw = b"".join(p.read_bytes() for p in Path(device.library.db_path).parent.glob("library.db*"))
    assert secret.encode() not in raw
    with sqlite3.connect(device.library.db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM tokens WHERE hash = ?", (secret,)).fetchone()[0] == 0


def test_a_token_cannot_pass_the_cross_site_check(app: Flask, device: SimServices) -> None:
    set_password(app.test_client(), "locked down")
    bearer = {"Authorization": f"Bearer {device.library.tokens.create('x')}"}
    response = app.test_client().post(
        "/api/player", json={"action": "pause"}, headers={**bearer, "Sec-Fetch-Site": "cross-site"}
    )
    assert response.status_code == 403


def test_local_api_token_passes_the_password(device: SimServices) -> None:
    token = "t" * 32
    app = create_app(device, {"LOOP_API_TOKEN": token})
    owner, cli = app.test_client(), app.test_client()
    set_password(owner, "locked down")
    bearer = {"Authorization": f"Bearer {token}"}
    assert cli.get("/api/media", headers=bearer).status_code == 200
    assert cli.get("/api/media", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert cli.post("/api/player", json={"action": "pause"}, headers=bearer).status_code == 200
    assert (
        cli.post(
            "/api/player", json={"action": "pause"}, headers={**bearer, "Origin": "http://evil.example"}
        ).status_code
        == 403
    )


def test_short_api_tokens_are_ignored(device: SimServices) -> None:
    app = create_app(device, {"LOOP_API_TOKEN": "short"})
    client = app.test_client()
    set_password(client, "locked down")
    assert app.test_client().get("/api/media", headers={"Authorization": "Bearer short"}).status_code == 401


# --- hostile headers ----------------------------------------------------------------------------


HOSTILE_AUTHORIZATION = [
    "Bearer",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "bearer loop_" + "A" * 43,
    "Bearer " + "x" * 1_000_000,
    "Bearer loop_" + "\xff\xfe" * 50,
    "\x00\x01\x02",
    "Bearer a b c",
    " " * 5000,
]


@pytest.mark.parametrize("value", HOSTILE_AUTHORIZATION)
def test_hostile_authorization_headers_get_a_json_401(app: Flask, value: str) -> None:
    set_password(app.test_client(), "locked down")
    client = app.test_client()
    response = client.get("/api/media", headers={"Authorization": value})
    assert is_json_error(response, 401)
    assert client.get("/api/session", headers={"Authorization": value}).status_code == 200
    login = client.post("/api/login", json={"password": "locked down"}, headers={"Authorization": value})
    assert login.status_code == 200


@pytest.mark.parametrize(
    "cookie",
    [
        "loop_session=" + "a" * 1_000_000,
        "loop_session=.eJyrVkrOz0vLTM9NLVKyUkpKTVGqBQA.bad.sig",
        'loop_session="\\"\\x01;;;==',
        ";" * 10_000,
        "=" * 10_000,
        "; ".join(f"c{n}=v" for n in range(5_000)),
        "loop_session=\xff\xfe\x00",
    ],
)
def test_hostile_cookies_are_not_a_login(app: Flask, cookie: str) -> None:
    set_password(app.test_client(), "locked down")
    client = app.test_client()
    response = client.get("/api/media", headers={"Cookie": cookie})
    assert is_json_error(response, 401)
    assert client.get("/api/session", headers={"Cookie": cookie}).get_json()["logged_in"] is False


# --- JSON bodies: size and depth ------------------------------------------------------------------

JSON_ROUTES = [
    ("patch", "/api/media/abc"),
    ("put", "/api/playlist"),
    ("post", "/api/player"),
    ("post", "/api/login"),
    ("post", "/api/settings/password"),
    ("post", "/api/tokens"),
]


def nested_bodies() -> list[str]:
    bodies = []
    for depth in (33, 1_000, 100_000):
        bodies.append("[" * depth + "]" * depth)
        bodies.append('{"a":' * depth + "1" + "}" * depth)
        bodies.append('{"password": ' + "[" * depth + "]" * depth + "}")
    return bodies


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
def test_deeply_nested_json_is_a_400_on_every_route(app: Flask, method: str, path: str) -> None:
    """Issue 13: ~1,000 levels used to be a 500 and a RecursionError, even on login."""
    for body in nested_bodies():
        response = getattr(app.test_client(), method)(path, data=body, content_type="application/json")
        assert is_json_error(response, 400), (body[:40], response.get_data()[:200])
        assert response.get_json()["error"]["code"] == "json_too_deep"


def test_deep_json_on_login_is_refused_before_authentication(app: Flask) -> None:
    set_password(app.test_client(), "locked down")
    body = '{"password": ' + "[" * 1000 + "]" * 1000 + "}"
    stranger = app.test_client()
    response = stranger.post("/api/login", data=body, content_type="application/json")
    assert is_json_error(response, 400)
    assert stranger.post("/api/player", data=body, content_type="application/json").status_code == 401


def test_json_within_the_bounds_is_parsed(app: Flask) -> None:
    nested: Any = "pause"
    for _ in range(MAX_JSON_DEPTH - 2):
        nested = [nested]
    response = app.test_client().post("/api/player", json={"action": "pause", "ignored": nested})
    assert response.status_code == 200


@pytest.mark.parametrize("body", ['{"action": ' + "1" * 5000 + "}", '{"action": "\\ud800"', b"\xff\xfe{"])
def test_malformed_json_bodies_are_400(app: Flask, body: str | bytes) -> None:
    response = app.test_client().post("/api/player", data=body, content_type="application/json")
    assert is_json_error(response, 400)


def test_a_json_body_over_one_mib_is_413(app: Flask) -> None:
    body = '{"password": "' + "x" * (1 << 20) + '"}'
    response = app.test_client().post("/api/login", data=body, content_type="application/json")
    assert is_json_error(response, 413)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


_TRICKY_TEXT = st.text(st.sampled_from(list('[]{}"\\ab/\n\u00e9\U0001f600')), max_size=8)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TRICKY_TEXT, inner, max_size=3),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(value=_VALUES, ensure_ascii=st.booleans(), indent=st.sampled_from([None, 1]))
def test_nesting_depth_is_exact_and_ignores_brackets_in_strings(
    value: Any, ensure_ascii: bool, indent: int | None
) -> None:
    data = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent).encode()
    assert nesting_depth(data) == _depth(value)
    if _depth(value) <= MAX_JSON_DEPTH:
        assert parse_json(data) == json.loads(data)


_SOUP = st.text(st.sampled_from(list('[]{}"\\x,:1 ')), max_size=200).map(str.encode)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200) | _SOUP)
def test_nesting_depth_matches_the_parser_on_any_bytes(data: bytes) -> None:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        pass  # malformed: parse_json must say so below
    else:
        assert nesting_depth(data) == _depth(value)
    try:
        parsed = parse_json(data, max_depth=4)
    except JsonBodyError as error:
        assert error.code in ("malformed_json", "json_too_deep")
    else:
        assert _depth(parsed) <= 4
