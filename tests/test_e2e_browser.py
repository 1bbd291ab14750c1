"""End to end in a real headless Chromium: the dashboard against the simulated device.

The app is served by the production server (cheroot, ``webapp.server.WebServer``) on
127.0.0.1 and a free port; the player runs on its own thread with the real clock, as on the
device. Screenshots go to ``artifacts/screenshots/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.webapp_fixtures import SimServices, gif_bytes
from webapp import create_app
from webapp.server import WebServer

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"
    ),
]

RED, BLUE, NAVY = (255, 0, 0), (0, 0, 255), (0, 0, 128)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll ``condition`` until it is truthy (the server and player run on their own threads)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def is_blue(pixel: Any) -> bool:
    """Either frame of the blue animation (RGB565 rounds the navy a little)."""
    return bool(pixel[0] < 16 and pixel[1] < 16 and pixel[2] > 100)


def frames_beyond(device: SimServices, count: int) -> bool:
    return int(device.player.status().stats.frames_shown) > count


def panel_center(device: SimServices) -> tuple[int, int, int]:
    pixel: Any = device.wiring.snapshot().getpixel((120, 160))
    return (int(pixel[0]), int(pixel[1]), int(pixel[2]))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[SimServices, str]]:
    device = SimServices(tmp_path / "data", threaded=True)
    server = WebServer(create_app(device), "127.0.0.1", 0)
    server.start()
    try:
        yield device, server.url
    finally:
        server.stop()
        device.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def live_view_center(page: Any) -> list[int]:
    """The centre pixel of the live view <img>, read back through a canvas in the page."""
    pixel: list[int] = page.evaluate(
        """() => {
            const img = document.getElementById("live");
            if (!img.complete || !img.naturalWidth) return [-1, -1, -1];
            const c = document.createElement("canvas");
            c.width = img.naturalWidth; c.height = img.naturalHeight;
            const ctx = c.getContext("2d");
            ctx.drawImage(img, 0, 0);
            const d = ctx.getImageData(c.width / 2, c.height / 2, 1, 1).data;
            return [d[0], d[1], d[2]];
        }"""
    )
    return pixel


def upload_gif(page: Any, name: str, *colors: tuple[int, int, int]) -> None:
    page.set_input_files(
        "#file-input", files=[{"name": name, "mimeType": "image/gif", "buffer": gif_bytes(list(colors))}]
    )


def card_names(page: Any) -> list[str]:
    names: list[str] = page.eval_on_selector_all("#grid .card .name", "els => els.map(e => e.textContent)")
    return names


def test_upload_show_reorder_delete_on_a_phone(served: tuple[SimServices, str], browser: Any) -> None:
    device, url = served
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, has_touch=True)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("#empty:not([hidden])")
    shot(page, "phone-1-empty")

    # Upload a red GIF: it appears in the grid (after the server confirmed) and on the panel.
    upload_gif(page, "red square.gif", RED)
    page.wait_for_selector("#grid .card >> text=red square")
    wait_for(lambda: panel_center(device) == RED, "the panel to show the red GIF")
    # The live view is JPEG (MJPEG): the colour comes through within the codec's rounding.
    wait_for(
        lambda: all(abs(a - b) <= 8 for a, b in zip(live_view_center(page), RED, strict=True)),
        "the live view to show the red GIF",
    )
    page.wait_for_function("() => document.querySelector('#grid .card .preview').naturalWidth > 0")
    shot(page, "phone-2-uploaded")

    upload_gif(page, "blue square.gif", BLUE, NAVY)  # animated: frames keep coming
    page.wait_for_selector("#grid .card >> text=blue square")
    assert card_names(page) == ["red square", "blue square"]

    # Reorder by dragging the blue card's handle onto the red card.
    page.locator("#grid").scroll_into_view_if_needed()
    handle = page.locator("#grid .card").nth(1).locator(".handle").bounding_box()
    target = page.locator("#grid .card").nth(0).bounding_box()
    assert handle is not None and target is not None
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(target["x"] + 10, target["y"] + 10, steps=8)
    page.mouse.up()
    wait_for(
        lambda: [i.name for i in device.library.items()] == ["blue square", "red square"], "the new order"
    )
    page.wait_for_function("() => document.querySelector('#grid .card .name').textContent === 'blue square'")
    assert card_names(page) == ["blue square", "red square"]
    shot(page, "phone-3-reordered")

    # Show the red one now, then delete it: the panel must stop showing it.
    page.locator("#grid .card", has_text="red square").locator("button.show").click()
    wait_for(lambda: panel_center(device) == RED, "the panel to show the red item")
    page.locator("#grid .card", has_text="red square").locator("button.delete").click()
    page.wait_for_selector("#confirm-dialog[open]")
    shot(page, "phone-4-confirm-delete")
    page.click("#confirm-ok")
    page.wait_for_function(
        "() => ![...document.querySelectorAll('#grid .card .name')].some(e => e.textContent === 'red square')"
    )
    assert panel_center(device) != RED  # the DELETE had returned before the card went
    shown = device.player.status().stats.frames_shown
    for _ in range(5):
        wait_for(partial(frames_beyond, device, shown), "another frame")
        shown = device.player.status().stats.frames_shown
        assert is_blue(panel_center(device))
    wait_for(lambda: is_blue(live_view_center(page)), "the live view to show the blue item")
    assert [i.name for i in device.library.items()] == ["blue square"]
    shot(page, "phone-5-deleted")
    assert errors == []


def test_errors_are_shown_in_words(served: tuple[SimServices, str], browser: Any) -> None:
    device, url = served
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(url)
    page.set_input_files(
        "#file-input",
        files=[{"name": "notes.gif", "mimeType": "image/gif", "buffer": b"just some text\n" * 40}],
    )
    page.wait_for_selector(".job.failed")
    message = page.text_content(".job.failed .job-state") or ""
    assert len(message) > 20 and message.endswith(".")
    assert device.library.items() == []
    shot(page, "phone-6-import-error")


def test_laptop_layout_and_player_controls(served: tuple[SimServices, str], browser: Any) -> None:
    device, url = served
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(url)
    upload_gif(page, "green.gif", (0, 255, 0))
    page.wait_for_selector("#grid .card >> text=green")
    page.click("#pause-btn")
    wait_for(lambda: device.player.status().state == "paused", "the player to pause")
    page.wait_for_selector("#pause-btn[data-action=resume]")
    page.click("#sleep-btn")
    wait_for(lambda: device.player.status().state == "sleeping", "the panel to sleep")
    page.wait_for_selector("#sleep-btn[data-action=wake]")
    page.click("#sleep-btn")
    wait_for(lambda: device.player.status().state != "sleeping", "the panel to wake")
    page.locator("#brightness").fill("40")
    wait_for(lambda: device.wiring.panel.backlight == 40, "the backlight to dim")
    # Rename and disable through the card; the card changes once the server has answered.
    page.click("#grid .card .name")
    page.wait_for_selector("#rename-dialog[open]")
    page.fill("#rename-input", "Meadow")
    page.click("#rename-dialog button[value=ok]")
    page.wait_for_selector("#grid .card .name >> text=Meadow")
    assert [i.name for i in device.library.items()] == ["Meadow"]
    page.click("#grid .card .toggle input")
    page.wait_for_selector("#grid .card.disabled")
    assert device.library.items()[0].enabled is False
    page.click("summary >> text=Device health")
    page.wait_for_selector("#health-pill.good")
    shot(page, "laptop-1-dashboard")


def test_password_login_in_the_browser(served: tuple[SimServices, str], browser: Any) -> None:
    _device, url = served
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(url)
    page.click("summary >> text=Password")
    page.fill("#new-password", "open sesame")
    page.click("#password-form button[type=submit]")
    page.wait_for_selector("#clear-password:not([hidden])")
    other = browser.new_context().new_page()
    other.set_viewport_size({"width": 390, "height": 844})
    other.goto(url)
    other.wait_for_selector("#login-dialog[open]")
    shot(other, "phone-7-login")
    other.fill("#login-password", "wrong one")
    other.click("#login-form button[type=submit]")
    other.wait_for_selector("#login-error:not([hidden])")
    other.fill("#login-password", "open sesame")
    other.click("#login-form button[type=submit]")
    other.wait_for_selector("#login-dialog", state="hidden")
    other.wait_for_selector("#health-pill.good")


def http_status(url: str, headers: dict[str, str]) -> int:
    """The status of a plain GET from outside the browser (a script, or a stolen cookie)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_tokens_are_made_and_revoked_in_the_dashboard_and_logout_ends_the_session(
    served: tuple[SimServices, str], browser: Any
) -> None:
    from webapp import security

    device, url = served
    security.set_password(device.library, "open sesame")
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("#login-dialog[open]")
    page.fill("#login-password", "open sesame")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-dialog", state="hidden")

    # Make a token: its secret is shown once, and a script can use it at once.
    page.click("summary >> text=API tokens")
    page.wait_for_selector("#tokens-empty:not([hidden])")
    page.fill("#token-name", "phone-shortcut")
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("#token-secret:not([hidden])")
    secret = page.text_content("#token-secret-value") or ""
    assert secret.startswith("loop_")
    page.wait_for_selector("#token-list .token[data-name='phone-shortcut']")
    assert "last used never" in (page.text_content("#token-list .token .meta") or "")
    shot(page, "phone-8-tokens")
    bearer = {"Authorization": f"Bearer {secret}"}
    assert http_status(f"{url}/api/media", bearer) == 200
    assert [token.name for token in device.library.tokens.list()] == ["phone-shortcut"]

    # Revoke it: the row goes once the device has revoked it, and the token stops working.
    page.click("#token-list .token[data-name='phone-shortcut'] button")
    page.wait_for_selector("#token-list .token", state="detached")
    page.wait_for_selector("#tokens-empty:not([hidden])")
    assert device.library.tokens.list() == []
    assert http_status(f"{url}/api/media", bearer) == 401

    # Log out: a copy of the session cookie taken before is useless afterwards.
    (cookie,) = [c for c in context.cookies() if c["name"] == "loop_session"]
    stolen = {"Cookie": f"loop_session={cookie['value']}"}
    assert http_status(f"{url}/api/media", stolen) == 200
    page.click("summary >> text=Password")
    page.click("#logout")
    page.wait_for_selector("#login-dialog[open]")
    assert http_status(f"{url}/api/media", stolen) == 401
    assert errors == []
    context.close()
