"""`loop settings [KEY [VALUE]]`: offline in the index, and through a running `loop sim`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from libloop.index import Library
from libloop.media.frames import open_frames
from loopapp.cli import main
from tests.e2e_helpers import DeviceProcess, http, solid_gif


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def loop(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loopapp", *argv], capture_output=True, text=True, timeout=60
    )


def test_settings_offline_show_change_and_refuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    code, out, _ = run(capsys, "settings", "--data", data)
    assert code == 0
    assert out.splitlines()[:7] == [
        "rotation = 0",
        "fit = contain",
        "dither = on",
        "background = #000000",
        "still_seconds = 10",
        "shuffle = off",
        "night = off",
    ]
    assert run(capsys, "settings", "shuffle", "on", "--data", data)[1] == "shuffle = on\n"
    code, out, _ = run(capsys, "settings", "night", "23:00-08:00 fri,sat 20%", "--data", data)
    assert out == "night = 23:00-08:00 fri,sat 20%\n"
    code, out, _ = run(capsys, "settings", "night", "22:00-6:30 mon-wed", "--data", data)
    assert out == "night = 22:00-06:30 mon,tue,wed 20%\n"  # the brightness stays as it was
    code, out, _ = run(capsys, "settings", "night", "--json", "--data", data)
    assert json.loads(out) == {
        "night": {"start": "22:00", "end": "06:30", "days": ["mon", "tue", "wed"], "brightness": 20}
    }
    code, out, _ = run(capsys, "settings", "rotation", "270", "--data", data)
    assert out.splitlines() == [
        "rotation = 270",
        "note: the library is re-rendered when the device next starts",
    ]
    assert run(capsys, "settings", "night", "off", "--data", data)[1] == "night = off\n"
    with Library(tmp_path / "data") as library:  # stored where the device reads it
        assert library.settings.get("device.rotation") == 270
        assert library.settings.get("device.shuffle") is True
    for argv, sentence in (
        (("rotation", "45"), "loop settings: rotation must be 0, 90, 180 or 270 (degrees), not 45.\n"),
        (
            ("still_seconds", "soon"),
            'loop settings: still_seconds must be a number of seconds from 0.5 to 86400, not "soon".\n',
        ),
        (("dither", "maybe"), 'loop settings: dither must be true or false, not "maybe".\n'),
        (("night", "late"), "loop settings: night must look like"),
        (("colour", "red"), "loop settings: There is no setting called 'colour'"),
    ):
        code, out, err = run(capsys, "settings", *argv, "--data", data)
        assert code == 1 and out == "" and err.startswith(sentence) and err.count("\n") == 1
    assert run(capsys, "settings", "rotation", "--data", data)[1] == "rotation = 270\n"  # unchanged


def png_size(url: str) -> tuple[int, int]:
    return Image.open(io.BytesIO(http("GET", f"{url}/api/display.png").body)).size


def wait_for_rerender(url: str, timeout: float = 120) -> dict[str, object]:
    """Poll the device (another process) until its background re-render has finished."""
    deadline = time.monotonic() + timeout
    while True:
        progress = http("GET", f"{url}/api/settings").json()["rerender"]
        if not progress["running"]:
            return dict(progress)
        assert time.monotonic() < deadline, f"the re-render did not finish: {progress}"
        time.sleep(0.2)


def test_settings_through_a_running_device_apply_at_once_and_survive_a_restart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    pictures = []
    for k, colour in enumerate([(255, 0, 0), (0, 200, 0)]):
        path = tmp_path / f"p{k}.gif"
        path.write_bytes(solid_gif([colour], size=(60, 40)))
        pictures.append(path)
    assert run(capsys, "import", *map(str, pictures), "--data", str(data))[0] == 0
    for path in pictures:
        assert path.exists()  # `loop import` keeps a copy; the person's file stays where it was
    device = DeviceProcess(data)
    try:
        assert png_size(device.url) == (240, 320)
        changed = loop("settings", "rotation", "90", "--data", str(data))
        assert changed.returncode == 0, changed.stderr
        assert changed.stdout.splitlines()[0] == "rotation = 90"
        assert png_size(device.url) == (320, 240)  # at once: the command returned after the turn
        progress = wait_for_rerender(device.url)
        assert progress["done"] == progress["total"] == 2, progress
        shown = loop("settings", "--data", str(data))
        assert "rotation = 90" in shown.stdout.splitlines()
    finally:
        code, err = device.stop()
    assert code == 0, err
    with Library(data) as library:
        for item in library.items():
            with open_frames(library.frame_path(item)) as ff:
                assert (ff.width, ff.height) == (320, 240)
    again = DeviceProcess(data)
    try:
        assert png_size(again.url) == (320, 240)
        assert http("GET", f"{again.url}/api/settings").json()["rotation"] == 90
        assert wait_for_rerender(again.url)["total"] == 0  # nothing left to do after the restart
    finally:
        code, err = again.stop()
    assert code == 0, err


def test_loop_import_fit_and_no_dither_are_the_items_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    picture = tmp_path / "wide.gif"
    picture.write_bytes(solid_gif([(0, 120, 255)], size=(90, 30)))
    assert run(capsys, "import", str(picture), "--fit", "cover", "--no-dither", "--data", str(data))[0] == 0
    with Library(data) as library:
        (item,) = library.items()
        assert (item.fit, item.dither) == ("cover", False)
        assert item.render is not None and (item.render["fit"], item.render["dither"]) == ("cover", False)
        assert item.original is not None  # a copy: the person's file stays
    assert picture.exists()
