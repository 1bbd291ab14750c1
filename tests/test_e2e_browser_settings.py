"""Live settings in a real headless Chromium, on a phone-sized page.

The first test runs the whole device (`loop sim` as a subprocess, its import worker and
re-render in child processes, as on a Pi): the first visit asks for the orientation, choosing
landscape turns the panel at once, every item is re-rendered landscape with the progress on
the page, and a restart keeps it. The second drives the settings panel and an item's play
settings against the in-process simulated device. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from libloop.index import Library
from libloop.media.frames import open_frames
from loopapp.config import load_config
from loopapp.device import import_file, import_options
from tests.e2e_helpers import DeviceProcess, http, solid_gif
from tests.test_e2e_browser import ARGS, CHROMIUM, shot, wait_for
from tests.webapp_fixtures import SimServices, gif_bytes
from webapp import create_app
from webapp.server import WebServer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"
    ),
]

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "has_touch": True}


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def png_size(url: str) -> tuple[int, int]:
    return Image.open(io.BytesIO(http("GET", f"{url}/api/display.png").body)).size


def seed_library(data: Path, tmp: Path, count: int) -> None:
    """Import pictures and animations the way `loop import` does (their originals kept)."""
    config = load_config(None, data_dir=data)
    options = import_options(config)
    with Library(data) as library:
        for k in range(count):
            path = tmp / f"item{k}.gif"
            colours = [(40 * k % 256, 200, 255 - 30 * k % 256)] * (1 + k % 2) + [(250, 250, 250)] * (k % 2)
            path.write_bytes(solid_gif(colours, size=(80 + 8 * k, 60)))
            import_file(library, path, options)


def test_first_visit_asks_the_orientation_and_landscape_turns_and_re_renders_everything(
    tmp_path: Path, browser: Any
) -> None:
    data = tmp_path / "data"
    seed_library(data, tmp_path, 4)
    device = DeviceProcess(data)
    try:
        page = browser.new_page(**PHONE)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(device.url)
        page.wait_for_selector("#orientation-dialog[open]")
        shot(page, "settings-1-first-visit")
        assert png_size(device.url) == (240, 320)  # the documented default until answered
        page.click("#choose-landscape")
        # The form shows what the device answered: rotation 90, so the turn has been applied.
        page.wait_for_selector("#orientation-dialog", state="hidden")
        page.wait_for_function("() => document.querySelector('input[name=rotation][value=\"90\"]').checked")
        assert png_size(device.url) == (320, 240)
        page.wait_for_function("() => document.getElementById('live').naturalWidth === 320")
        # The re-render runs in the background; its progress reaches the page.
        page.click("summary >> text=Display settings")
        seen = []
        deadline = time.monotonic() + 120
        while True:
            progress = http("GET", f"{device.url}/api/settings").json()["rerender"]
            seen.append((progress["done"], progress["total"]))
            if not progress["running"]:
                break
            assert time.monotonic() < deadline, progress
            time.sleep(0.2)
        assert seen[-1] == (4, 4)
        assert [done for done, _ in seen] == sorted(done for done, _ in seen)  # never backwards
        items = http("GET", f"{device.url}/api/media").json()["items"]
        assert [(i["render"]["width"], i["render"]["height"]) for i in items] == [(320, 240)] * 4
        assert all(i["rerender"] is None for i in items)
        page.wait_for_selector("#rerender", state="hidden")
        shot(page, "settings-2-landscape")
        page.reload()
        # Once the form shows the settings, the page has decided whether to ask (it asks as it
        # draws them): the question is not asked again.
        page.wait_for_function("() => document.querySelector('input[name=rotation][value=\"90\"]').checked")
        assert page.locator("#orientation-dialog[open]").count() == 0  # asked once per device
        assert errors == []
    finally:
        code, err = device.stop()
    assert code == 0, err
    with Library(data) as library:
        for item in library.items():
            with open_frames(library.frame_path(item)) as ff:
                assert (ff.width, ff.height) == (320, 240)
    again = DeviceProcess(data)  # the restart keeps it
    try:
        assert png_size(again.url) == (320, 240)
        page = browser.new_page(**PHONE)
        page.goto(again.url)
        page.wait_for_selector("#grid .card")
        page.click("summary >> text=Display settings")
        page.wait_for_function("() => document.querySelector('input[name=rotation][value=\"90\"]').checked")
        assert page.locator("#orientation-dialog[open]").count() == 0
        assert http("GET", f"{again.url}/api/settings").json()["rerender"]["total"] == 0
    finally:
        code, err = again.stop()
    assert code == 0, err


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


def test_the_settings_panel_and_an_items_play_settings(served: tuple[SimServices, str], browser: Any) -> None:
    device, url = served
    page = browser.new_page(**PHONE)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.set_input_files(
        "#file-input",
        files=[
            {"name": "wide.gif", "mimeType": "image/gif", "buffer": gif_bytes([(0, 200, 0)], size=(96, 40))}
        ],
    )
    page.wait_for_selector("#grid .card >> text=wide")
    page.click("summary >> text=Display settings")

    page.select_option("select[name=fit]", "cover")
    wait_for(lambda: device.settings.current().fit == "cover", "the fit to be stored")
    page.check("input[name=shuffle]")
    wait_for(lambda: device.settings.current().shuffle, "shuffle to be on")
    page.fill("input[name=still_seconds]", "4")
    page.press("input[name=still_seconds]", "Tab")
    wait_for(lambda: device.settings.current().still_seconds == 4.0, "the still time to be stored")

    # The night schedule: on, from 23:00, Friday and Saturday only, dimmed to 20 %.
    page.check("input[name=night_on]")
    page.wait_for_selector("#night-fields:not([hidden])")
    page.fill("input[name=night_start]", "23:00")
    page.press("input[name=night_start]", "Tab")
    wait_for(
        lambda: (n := device.settings.current().night) is not None and n.start == "23:00", "the night start"
    )
    for day in ("mon", "tue", "wed", "thu", "sun"):
        page.uncheck(f"input[name=night_day][value={day}]", force=True)
    wait_for(
        lambda: (n := device.settings.current().night) is not None and n.days == ("fri", "sat"),
        "the night days",
    )
    page.locator("input[name=night_brightness]").fill("20")
    wait_for(
        lambda: (n := device.settings.current().night) is not None and n.brightness == 20, "the dim level"
    )
    assert page.text_content("#night-brightness-value") == "20%"
    shot(page, "settings-3-panel")

    # A bad value: the device's sentence in the banner, and the form shows the stored value.
    page.fill("input[name=still_seconds]", "0.1")
    page.press("input[name=still_seconds]", "Tab")
    page.wait_for_selector("#banner:not([hidden])")
    assert "still_seconds must be a number of seconds from 0.5 to 86400" in (
        page.text_content("#banner-text") or ""
    )
    page.wait_for_function("() => document.querySelector('input[name=still_seconds]').value === '4'")

    # An item's own play settings, from its menu.
    card = page.locator("#grid .card", has_text="wide")
    card.locator("button.more").click()
    page.wait_for_selector("#item-dialog[open]")
    page.select_option("#item-form select[name=fit]", "stretch")
    page.fill("#item-form input[name=seconds]", "7")
    shot(page, "settings-4-item-menu")
    page.click("#item-dialog button[value=ok]")
    (item,) = device.library.items()
    wait_for(lambda: device.library.get(item.id).seconds == 7.0, "the item's seconds")
    assert device.library.get(item.id).fit == "stretch"
    assert device.rerender.wait_idle(30)
    rendered = device.library.get(item.id)
    assert rendered.render is not None and rendered.render["fit"] == "stretch"
    page.wait_for_function("() => !document.querySelector('#grid .card .badge').textContent")
    assert json.loads(json.dumps(errors)) == []
