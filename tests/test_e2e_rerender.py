"""Re-rendering a library of 50 items on the running device: progress, and no dropped frame.

`loop sim` runs as a subprocess, as on a Pi: the player on its own thread with the real
clock, the re-render in a child process at lower priority. The library (animations with
10 frames a second and stills, their originals kept) is made before the device starts; then
the rotation changes through the API and the test follows the progress until every item is
landscape, while the player keeps playing the old files fitted on the fly and each new file
from its item's next turn.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from libloop.index import Library
from libloop.media.frames import open_frames
from loopapp.config import load_config
from loopapp.device import import_file, import_options
from tests.e2e_helpers import DeviceProcess, http

ITEMS = 50


def moving_square_gif(k: int) -> bytes:
    """An 8-frame animation at 100 ms a frame: a square moves across a coloured ground."""
    frames = []
    for f in range(8):
        image = Image.new("RGB", (320, 240), ((37 * k) % 256, (91 * k) % 256, 160))
        image.paste((255, 255, 255), (10 + 30 * f, 60, 60 + 30 * f, 110))
        frames.append(image)
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def still_jpeg(k: int) -> bytes:
    """A phone-sized photo (1600x1200) with detail all over, so decoding and scaling it costs."""
    rng = np.random.default_rng(k)
    pixels = rng.integers(0, 256, (1200, 1600, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=85)
    return out.getvalue()


def player_stats(url: str) -> dict[str, int]:
    stats: dict[str, int] = http("GET", f"{url}/api/player").json()["stats"]
    return stats


def test_re_rendering_50_items_reports_progress_and_drops_no_frame(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = load_config(None, data_dir=data)
    options = import_options(config)
    with Library(data) as library:
        for k in range(ITEMS):
            still = k % 5 == 4
            path = tmp_path / (f"still{k}.jpg" if still else f"anim{k}.gif")
            path.write_bytes(still_jpeg(k) if still else moving_square_gif(k))
            import_file(library, path, options)
        assert len(library.items()) == ITEMS
        library.settings.set("device.still_seconds", 1.0)  # stills change every second too
    device = DeviceProcess(data)
    try:
        url = device.url
        deadline = time.monotonic() + 30
        while player_stats(url)["frames_shown"] < 20:  # playing on the real clock
            assert time.monotonic() < deadline, "the device did not start playing"
            time.sleep(0.1)
        before = player_stats(url)
        started = time.monotonic()
        answer = http(
            "PATCH",
            f"{url}/api/settings",
            json.dumps({"rotation": 90}).encode(),
            {"Content-Type": "application/json"},
        )
        assert answer.status == 200, answer.body
        assert answer.json()["rerender"]["total"] == ITEMS
        seen: list[int] = []
        deadline = time.monotonic() + 600
        while True:
            progress = http("GET", f"{url}/api/settings").json()["rerender"]
            seen.append(progress["done"])
            assert progress["total"] == ITEMS and not progress["failed"], progress
            if not progress["running"]:
                break
            assert time.monotonic() < deadline, f"the re-render did not finish: {progress}"
            time.sleep(0.25)
        took = time.monotonic() - started
        after = player_stats(url)
        print(
            f"re-render of {ITEMS} items: {took:.1f} s, progress seen {sorted(set(seen))[:5]}...{seen[-1]}; "
            f"frames shown meanwhile {after['frames_shown'] - before['frames_shown']}, "
            f"dropped {after['frames_dropped'] - before['frames_dropped']}"
        )
        assert seen[-1] == ITEMS
        assert seen == sorted(seen) and len(set(seen)) > 3  # it counts up, visibly
        assert after["frames_shown"] > before["frames_shown"] + 10  # playback went on meanwhile
        assert after["frames_dropped"] == before["frames_dropped"]
        items = http("GET", f"{url}/api/media").json()["items"]
        assert all(i["render"]["width"] == 320 and i["rerender"] is None for i in items)
    finally:
        code, err = device.stop()
    assert code == 0, err
    with Library(data) as library:
        for item in library.items():
            with open_frames(library.frame_path(item)) as ff:
                assert (ff.width, ff.height) == (320, 240)
        assert len([p for p in library.frames_dir.iterdir() if p.is_file()]) == ITEMS
        assert library.fsck().ok
