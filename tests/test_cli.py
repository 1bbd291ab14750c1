"""The `loop` command as a person uses it: exit codes, one-sentence errors, what it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from libloop.index.items import ID_PATTERN
from loopapp.cli import build_parser, ids_as_operands, main
from tests.e2e_helpers import solid_gif

SUBCOMMANDS = [
    "sim",
    "run",
    "import",
    "ls",
    "rm",
    "export",
    "fsck",
    "doctor",
    "install-service",
    "health",
    "password",
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def gif(tmp_path: Path) -> Path:
    path = tmp_path / "Red Blue.gif"
    path.write_bytes(solid_gif([(255, 0, 0), (0, 0, 255)], size=(40, 30)))
    return path


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help_and_takes_data(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "--data" in capsys.readouterr().out


def test_import_ls_export_rm_round_trip(
    data: Path, gif: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "import", str(gif), "--data", str(data))
    assert code == 0, err
    item_id = out.split()[0]
    assert "Red Blue" in out and "2 frames" in out
    assert "100 %" in err  # the progress bar reached the end
    assert gif.exists()  # the CLI never consumes the person's file

    code, out, _ = run(capsys, "ls", "--data", str(data))
    assert code == 0 and out.splitlines()[0].startswith(f"{item_id}  Red Blue")

    code, out, _ = run(capsys, "ls", "--json", "--data", str(data))
    (item,) = json.loads(out)["items"]
    assert item["id"] == item_id and item["kind"] == "gif" and item["frames"] == 2

    frames_dir = tmp_path / "frames"
    code, out, err = run(capsys, "export", item_id, str(frames_dir), "--data", str(data))
    assert code == 0, err
    pngs = sorted(frames_dir.glob("*.png"))
    assert len(pngs) == 2
    first = np.asarray(Image.open(pngs[0]).convert("RGB"))
    # Exactly what the panel shows: the GIF letterboxed on black, red in the middle.
    assert tuple(first[first.shape[0] // 2, first.shape[1] // 2]) == (255, 0, 0)

    code, out, err = run(capsys, "rm", item_id, "--data", str(data))
    assert code == 0, err
    code, out, _ = run(capsys, "ls", "--data", str(data))
    assert out == ""


def test_importing_the_same_file_twice_keeps_one_item(
    data: Path, gif: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "import", str(gif), "--data", str(data))
    code, out, _ = run(capsys, "import", str(gif), "--data", str(data))
    assert code == 0 and "already in the library" in out
    _, out, _ = run(capsys, "ls", "--data", str(data))
    assert len(out.splitlines()) == 1


def test_bad_input_is_one_sentence_and_adds_nothing(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n")
    code, out, err = run(capsys, "import", str(fake), "--data", str(data))
    assert code == 1
    assert "notes.mp4" in err and "Traceback" not in err
    _, out, _ = run(capsys, "ls", "--data", str(data))
    assert out == ""
    assert not any(p.is_file() for p in (data / "frames").rglob("*"))


def test_unknown_id_is_a_clear_error(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "rm", "nope", "--data", str(data))
    assert code == 1
    assert err.count("\n") == 1 and "nope" in err


def test_fsck_on_a_healthy_library(data: Path, gif: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "import", str(gif), "--data", str(data))
    code, out, err = run(capsys, "fsck", "--data", str(data))
    assert code == 0, err
    assert "consistent" in out


def test_fsck_finds_and_repairs_a_missing_frame_file(
    data: Path, gif: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "import", str(gif), "--data", str(data))
    for frame_file in (data / "frames").glob("*.loop"):
        frame_file.unlink()
    code, _, err = run(capsys, "fsck", "--data", str(data))
    assert code == 1 and "--repair" in err
    code, _, err = run(capsys, "fsck", "--repair", "--data", str(data))
    assert code == 0, err
    assert run(capsys, "fsck", "--data", str(data))[0] == 0


def test_install_service_dry_run_names_this_interpreter(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "install-service", "--dry-run", "--user", "pi", "--data", str(data))
    assert code == 0
    assert f"ExecStart={sys.executable} -m loopapp run" in out
    assert "Type=notify" in out and "WatchdogSec=" in out


def test_health_without_a_running_device_is_one_sentence_and_fails(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "health", "--data", str(data))
    assert (code, out) == (1, "")
    assert err == (f"loop health: No LOOP device is running on {data}; start it with loop sim or loop run.\n")
    assert not data.exists()  # asking created nothing
    code, out, err = run(capsys, "health", "--json", "--data", str(data))  # scripts still get JSON
    assert code == 1 and err.count("\n") == 1 and "No LOOP device is running" in err
    report = json.loads(out)
    assert report["state"] == "not running" and "disk_free_mb" in report["resources"]


def test_health_of_a_device_that_does_not_answer(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    data.mkdir()
    (data / "device.json").write_text(json.dumps({"pid": os.getpid(), "url": url, "token": ""}))
    code, out, err = run(capsys, "health", "--data", str(data))
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and "does not answer" in err and url in err


def test_health_summary_names_every_component_and_the_faults() -> None:
    from loopapp.health_text import format_health

    def component(name: str, alive: bool, **extra: object) -> dict[str, object]:
        return {"name": name, "essential": True, "state": "running" if alive else "failed",
                "alive": alive, "restarts": 0, "recent_failures": 0, "detail": "", **extra}  # fmt: skip

    report = {
        "state": "degraded",
        "uptime_s": 3725.0,
        "components": [
            component("player", True, detail="playing"),
            component("display", False, detail="SPI write timed out", restarts=1, recent_failures=2),
            component("wifi", True, essential=False),
        ],
        "resources": {
            "level": "warning",
            "cpu_percent": 12.0,
            "memory_percent": 40.2,
            "memory_available_mb": 300,
            "process_rss_mb": 61,
            "disk_free_mb": 420,
            "disk_total_mb": 29000,
            "temperature_c": 61.4,
            "problems": ["disk low"],
        },
        "player": {
            "state": "playing",
            "current_name": "cat",
            "stats": {"fps": 12.5, "frames_shown": 1, "frames_dropped": 0},
        },
        "wifi": {"connected": True, "ssid": "home", "signal_percent": 70, "ip": "10.0.0.5"},
        "faults": [{"time_iso": "2026-01-02T03:04:05Z", "component": "display", "message": "SPI hung"}],
        "faults_total": 1,
    }
    text = format_health(report, Path("/data"))
    lines = text.splitlines()
    assert lines[0] == "LOOP on /data: degraded, up 1 hour 2 minutes"
    assert any(line.split()[:2] == ["player", "ok"] for line in lines)
    display = next(line for line in lines if line.strip().startswith("display"))
    assert "FAILED" in display and "SPI write timed out" in display
    assert "1 restart;" in display and "2 failures lately" in display
    assert "not essential" in next(line for line in lines if line.strip().startswith("wifi"))
    assert "disk 420 MB free of 29000 MB" in text and "problem: disk low" in text
    assert "Player: playing 'cat', 12.5 frames a second, 1 frame shown, 0 dropped" in lines
    assert "Wi-Fi: connected to home (70 % signal), 10.0.0.5" in lines
    assert "  2026-01-02T03:04:05Z display: SPI hung" in lines


def test_health_summary_says_where_the_player_runs_and_how_it_is_scheduled() -> None:
    from loopapp.health_text import format_health

    fifo = {"isolation": {"mode": "process", "pid": 42, "scheduling": {"policy": "fifo", "priority": 10}}}
    assert "Playback: own process (pid 42), real-time (SCHED_FIFO 10)" in format_health(fifo, Path("/d"))
    refused = {
        "isolation": {
            "mode": "process",
            "pid": 42,
            "scheduling": {"policy": "other", "reason": "SCHED_FIFO not permitted"},
            "web_nice": 5,
        }
    }
    text = format_health(refused, Path("/d"))
    assert "ordinary scheduling: SCHED_FIFO not permitted; the web app runs 5 nice steps lower" in text


def test_bad_config_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "loop.toml"
    config.write_text("[display]\nrotation = 45\n")
    code, _, err = run(capsys, "ls", "--config", str(config), "--data", str(tmp_path))
    assert code == 1 and "rotation" in err and err.count("\n") == 1


def test_console_script_runs(data: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "loopapp", "ls", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_import_of_a_path_that_is_not_a_file(
    make: str, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "thing.gif"
    if make == "directory":
        path.mkdir()
    code, _, err = run(capsys, "import", str(path), "--data", str(data))
    assert code == 1 and str(path) in err and err.count("\n") == 1 and "Traceback" not in err


def test_install_service_defaults_to_the_service_user_s_data_dir(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pwd

    monkeypatch.delenv("LOOP_DATA", raising=False)
    user = "nobody"  # any existing ordinary user (the service refuses root)
    code, out, _ = run(capsys, "install-service", "--dry-run", "--user", user)
    home = pwd.getpwnam(user).pw_dir
    assert code == 0 and f"--data {home}/.local/share/loop" in out


def _add_with_id(data: Path, item_id: str, seed: int) -> None:
    """An item with a chosen id, as a library made by an earlier version may hold."""
    from libloop.index import Library
    from tests.index_writer import make_frame_file

    with Library(data) as library:
        staged = library.staging_path()
        library.add(staged, make_frame_file(staged, seed), item_id=item_id)


def test_ids_starting_with_a_dash_are_ids_not_options(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_with_id(data, "-abc", 1)
    _add_with_id(data, "-x_9", 2)
    _add_with_id(data, "--q", 3)
    frames_dir = tmp_path / "frames"
    code, out, err = run(capsys, "export", "-abc", str(frames_dir), "--data", str(data))
    assert (code, err) == (0, "") and "-abc" in out
    assert len(list(frames_dir.glob("*.png"))) == 2
    code, _, err = run(capsys, "export", "--data", str(data), "-x_9", str(tmp_path / "other"))
    assert (code, err) == (0, "")
    code, out, err = run(capsys, "rm", "-abc", "--data", str(data))
    assert (code, err) == (0, "") and "-abc" in out
    code, _, err = run(capsys, "rm", "--data", str(data), "--", "-x_9")  # the POSIX way still works
    assert (code, err) == (0, "")
    result = subprocess.run(  # the console script, reading sys.argv
        [sys.executable, "-m", "loopapp", "rm", "--q", f"--data={data}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert run(capsys, "ls", "--data", str(data))[1] == ""


@given(item_id=st.from_regex(ID_PATTERN, fullmatch=True), data_first=st.booleans())
def test_any_id_reaches_the_command_as_it_was_typed(item_id: str, data_first: bool) -> None:
    data = ["--data", "/tmp/loop-data"]
    if ids_as_operands(["rm", item_id]) == ["rm", item_id] and item_id.startswith("-"):
        # One of rm's own options (-h, -v, --data, or an abbreviation like --verb):
        # only `--` makes it an id, as with every POSIX command.
        argv = ["rm", *data, "--", item_id]
    else:
        argv = ["rm", *data, item_id] if data_first else ["rm", item_id, *data]
    args = build_parser().parse_args(ids_as_operands(argv))
    assert args.id == item_id and args.data == Path("/tmp/loop-data")
    export = build_parser().parse_args(ids_as_operands(["export", *argv[1:], "out"]))
    assert export.id == item_id and export.dir == Path("out")


@pytest.mark.parametrize("target", ["file", "below a file"])
def test_export_onto_a_file_is_one_sentence_and_writes_nothing(
    target: str, data: Path, gif: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, "import", str(gif), "--data", str(data))
    item_id = out.split()[0]
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me\n")
    dest = existing if target == "file" else existing / "frames"
    code, out, err = run(capsys, "export", item_id, str(dest), "--data", str(data))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and str(dest) in err and "Traceback" not in err
    assert existing.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["data", "notes.txt", gif.name])


def _export_in_a_child(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run export_frames in a fresh interpreter, under a file-size limit or as user nobody.

    ``args``: the frame file, the output directory, then ``fsize=BYTES`` or ``nobody``.
    """
    script = (
        "import os, pwd, resource, signal, sys\n"
        "from pathlib import Path\n"
        "from PIL import Image\n"
        "from libloop.errors import ExportError\n"
        "from libloop.media.export import export_frames\n"
        "Image.init()  # the PNG writer is loaded before the child gives up its rights\n"
        "how = sys.argv[3]\n"
        "if how.startswith('fsize='):\n"
        "    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG\n"
        "    limit = int(how.removeprefix('fsize='))\n"
        "    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))\n"
        "elif how == 'nobody' and os.getuid() == 0:  # root ignores file modes\n"
        "    user = pwd.getpwnam('nobody')\n"
        "    os.setgroups([])\n"
        "    os.setgid(user.pw_gid)\n"
        "    os.setuid(user.pw_uid)\n"
        "try:\n"
        "    export_frames(Path(sys.argv[1]), Path(sys.argv[2]))\n"
        "except ExportError as exc:\n"
        "    sys.exit(str(exc))\n"
    )
    root = Path(__file__).resolve().parent.parent
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )


def test_export_that_fails_part_way_leaves_nothing_behind(tmp_path: Path) -> None:
    from libloop.media.framefile import FrameFileWriter

    frame_file = tmp_path / "item.loop"
    rng = np.random.default_rng(7)
    with FrameFileWriter(frame_file, 240, 320) as writer:
        writer.add_frame(np.zeros((320, 240, 2), dtype=np.uint8), 100)  # a PNG of a few hundred bytes
        writer.add_frame(rng.integers(0, 256, (320, 240, 2), dtype=np.uint8), 100)  # ~200 KB
        writer.commit()
    dest = tmp_path / "new" / "frames"
    result = _export_in_a_child([str(frame_file), str(dest), "fsize=20000"])
    assert result.returncode == 1 and str(dest) in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["item.loop"]  # not even the directories


def test_export_into_a_directory_that_cannot_be_written() -> None:
    import tempfile

    from tests.index_writer import make_frame_file

    shared = Path(tempfile.mkdtemp(prefix="loop-export-"))  # the child may run as another user
    try:
        shared.chmod(0o755)
        frame_file = shared / "item.loop"
        make_frame_file(frame_file, 1)
        frame_file.chmod(0o644)
        locked = shared / "locked"
        locked.mkdir(mode=0o555)
        result = _export_in_a_child([str(frame_file), str(locked), "nobody"])
        assert result.returncode == 1 and "permission denied" in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
        assert list(locked.iterdir()) == []
    finally:
        import shutil

        shutil.rmtree(shared)


def test_a_still_picture_is_one_frame_not_one_frames(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    still = tmp_path / "dot.png"
    Image.new("RGB", (20, 20), (0, 200, 0)).save(still)
    code, out, err = run(capsys, "import", str(still), "--data", str(data))
    assert code == 0, err
    assert "image, 1 frame" in out and "frames" not in out
    item_id = out.split()[0]
    _, out, _ = run(capsys, "ls", "--data", str(data))
    assert "  1 frame  " in out and "frames" not in out
    _, out, _ = run(capsys, "export", item_id, str(tmp_path / "out"), "--data", str(data))
    assert out == f"wrote 1 frame of {item_id} to {tmp_path / 'out'}\n"


def test_one_problem_is_one_problem(data: Path, gif: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "import", str(gif), "--data", str(data))
    for frame_file in (data / "frames").glob("*.loop"):
        frame_file.unlink()
    code, _, err = run(capsys, "fsck", "--data", str(data))
    assert code == 1 and "The library has 1 problem;" in err


@pytest.mark.parametrize("command", ["sim", "ls", "run"])
def test_the_simulator_keeps_its_own_data_directory(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopapp.cli import config_for

    monkeypatch.delenv("LOOP_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    expected = tmp_path / "share" / ("loop-sim" if command == "sim" else "loop")
    assert config_for(build_parser().parse_args([command])).data_dir == expected
    # --data wins, then a config file's data_dir, then $LOOP_DATA, for the simulator too.
    given_dir = config_for(build_parser().parse_args([command, "--data", str(tmp_path / "d")]))
    assert given_dir.data_dir == tmp_path / "d"
    config_file = tmp_path / "loop.toml"
    config_file.write_text(f'data_dir = "{tmp_path / "from-file"}"\n')
    from_file = config_for(build_parser().parse_args([command, "--config", str(config_file)]))
    assert from_file.data_dir == tmp_path / "from-file"
    monkeypatch.setenv("LOOP_DATA", str(tmp_path / "env"))
    assert config_for(build_parser().parse_args([command])).data_dir == tmp_path / "env"


def test_sim_help_says_where_its_data_is(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sim", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "~/.local/share/loop-sim" in out and "apart from a real device's" in out
