"""The device under storage faults: `loop sim --headless` as a subprocess, real faults, every answer recorded.

Each case breaks the data directory the way SD cards break (full, read-only, I/O errors, a
damaged database, frame files truncated, replaced or deleted under the player) and checks what a
person would: the device starts, keeps answering, never with a 5xx but a deliberate 503 (the
storage refuses) or 507 (the disk is full), always in the JSON error shape; it never dies and
never logs a traceback; it stops cleanly. ``pytest -s tests/test_faults.py`` prints the table
of every answer.
"""

from __future__ import annotations

import http.client as http_client
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from libloop.media.codec_zstd import ZstdWriter
from tests.e2e_helpers import DeviceProcess, http, multipart, solid_gif, wait_until
from tests.fault_helpers import (
    Answers,
    SmallDisk,
    check_answer,
    consistent,
    frames_of,
    inject,
    make_library,
    mount_problem,
    stop_cleanly,
    strace_problem,
    wait_for_play,
)

pytestmark = pytest.mark.e2e

ANSWERS = Answers()
MOUNT = mount_problem()
STRACE = strace_problem()
needs_mount = pytest.mark.skipif(MOUNT is not None, reason=MOUNT or "")
needs_strace = pytest.mark.skipif(STRACE is not None, reason=STRACE or "")


@pytest.fixture(scope="module", autouse=True)
def table() -> Iterator[None]:
    yield
    print(ANSWERS.table())


def no_upload_reserve(tmp_path: Path) -> Path:
    """A config that accepts uploads down to the last byte (the disks here are small)."""
    config = tmp_path / "loop.toml"
    config.write_text("[storage]\nreserve_mb = 0\n")
    return config


def get(case: str, device: DeviceProcess, path: str) -> dict[str, object]:
    result = ANSWERS.http(case, f"GET {path}", http("GET", f"{device.url}{path}"))
    try:
        body: dict[str, object] = result.json()
    except ValueError:
        body = {}
    return body


def call(
    case: str, device: DeviceProcess, method: str, path: str, body: dict[str, object] | None = None
) -> int:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    return ANSWERS.http(case, f"{method} {path}", http(method, f"{device.url}{path}", data, headers)).status


def upload(case: str, device: DeviceProcess, data: bytes, name: str = "new.gif") -> int:
    body, content_type = multipart([(name, data)])
    result = http("POST", f"{device.url}/api/media?wait=true", body, {"Content-Type": content_type})
    return ANSWERS.http(case, f"POST /api/media ({len(data)} B)", result).status


def health_text(device: DeviceProcess) -> str:
    return json.dumps(http("GET", f"{device.url}/api/health").json())


def fault_about(device: DeviceProcess, item_id: str) -> str | None:
    """The health report's fault about an item, if there is one yet."""
    faults = http("GET", f"{device.url}/api/health").json()["faults"]
    return next((f["message"] for f in faults if item_id in f["message"]), None)


def wait_for_fault(case: str, device: DeviceProcess, item_id: str) -> None:
    wait_until(lambda: fault_about(device, item_id) is not None, 30, "the fault in /api/health")
    ANSWERS.note(case, "GET /api/health: faults", "200", str(fault_about(device, item_id))[:110])


def panel_is_red(device: DeviceProcess) -> bool:
    png = http("GET", f"{device.url}/api/display.png").body
    glass = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return bool((glass[:, :, 0] > glass[:, :, 2]).mean() > 0.5)


# --- the database -----------------------------------------------------------------------------


def _header(db: Path) -> None:
    raw = bytearray(db.read_bytes())
    raw[0:16] = b"\xff" * 16
    db.write_bytes(bytes(raw))


def _truncated(db: Path) -> None:
    db.write_bytes(db.read_bytes()[:1500])


def _garbage(db: Path) -> None:
    db.write_bytes(os.urandom(db.stat().st_size))


@pytest.mark.parametrize(
    ("how", "damage"), [("header bytes", _header), ("truncated", _truncated), ("garbage", _garbage)]
)
def test_a_damaged_database_is_set_aside_and_the_library_rebuilt_at_start_up(
    tmp_path: Path, how: str, damage: object
) -> None:
    case = f"database: {how}"
    data = tmp_path / "data"
    items = make_library(data)
    damage(data / "library.db")  # type: ignore[operator]
    device = DeviceProcess(data)
    try:
        listed = get(case, device, "/api/media")
        assert [i["id"] for i in listed["items"]] == [i.id for i in items]  # type: ignore[index, union-attr]
        assert [i["name"] for i in listed["items"]] == [i.name for i in items]  # type: ignore[index, union-attr]
        wait_for_play(device)
        health = get(case, device, "/api/health")
        assert health["storage"]["library"]["state"] == "rebuilt"  # type: ignore[index]
        assert "damaged" in health_text(device)
        assert list((data / "quarantine").glob("*/library.db")), "the damaged database is kept"
        consistent(device, data)
    finally:
        stop_cleanly(device)


@needs_strace
def test_an_unreadable_database_starts_a_degraded_device_that_says_what_to_run(tmp_path: Path) -> None:
    case = "database: EIO on reads"
    data = tmp_path / "data"
    make_library(data)
    wrapper = inject([data / "library.db"], ["pread64"], "EIO")
    device = DeviceProcess(data, wrapper=wrapper, timeout=120)
    try:
        health = get(case, device, "/api/health")
        assert health["state"] == "degraded"
        assert "loop fsck --repair" in health["storage"]["library"]["fix"]  # type: ignore[index]
        assert call(case, device, "GET", "/api/media") == 503
        wait_until(
            lambda: (
                "library cannot be opened" in str(http("GET", f"{device.url}/api/player").json().get("error"))
            ),
            20,
            "the player to say why it plays nothing",
        )
        assert get(case, device, "/api/player")["state"] == "empty"
        wait_until(lambda: panel_is_red(device), 20, "the error screen")
        ANSWERS.note(case, "the panel", "-", "the red error screen with the reason")
        assert call(case, device, "DELETE", "/api/media/abc") == 503
        assert upload(case, device, solid_gif([(9, 9, 9)])) == 503
    finally:
        stop_cleanly(device)


# --- frame files changed under the player -----------------------------------------------------


def _play_first_for_long(case: str, device: DeviceProcess, item_id: str) -> None:
    assert call(case, device, "PATCH", f"/api/media/{item_id}", {"min_seconds": 600}) == 200
    assert call(case, device, "POST", "/api/player", {"action": "show", "id": item_id}) == 200
    wait_until(lambda: http("GET", f"{device.url}/api/player").json()["current"] == item_id, 10, "the item")


def _truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(1024)  # into the frames: a v2 file of four flat frames holds ~4 KiB of them


def _replace(path: Path) -> None:
    tmp = path.with_name("replacement.partial")
    with ZstdWriter(tmp, 240, 320) as writer:
        for f in frames_of((250, 250, 250), 2):
            writer.add_frame(f, 60)
        writer.commit()
    os.replace(tmp, path)


@pytest.mark.parametrize(
    ("how", "change"), [("truncated", _truncate), ("deleted", Path.unlink), ("replaced", _replace)]
)
def test_a_frame_file_changed_while_it_plays_is_a_fault_for_that_item(
    tmp_path: Path, how: str, change: object
) -> None:
    case = f"frame file {how} while playing"
    data = tmp_path / "data"
    first, *others = make_library(data)
    device = DeviceProcess(data)
    try:
        wait_for_play(device)
        _play_first_for_long(case, device, first.id)
        change(data / "frames" / first.file_name)  # type: ignore[operator]
        if how == "replaced":  # the open file plays on; the next turn plays the new content
            assert call(case, device, "POST", "/api/player", {"action": "next"}) == 200
            assert call(case, device, "POST", "/api/player", {"action": "show", "id": first.id}) == 200
            wait_for_play(device)
            assert get(case, device, "/api/player")["current"] == first.id
            assert call(case, device, "GET", f"/api/media/{first.id}/preview.gif") == 200
        else:
            if how == "deleted":  # the open file lives on until the turn ends
                assert call(case, device, "POST", "/api/player", {"action": "next"}) == 200
                assert call(case, device, "POST", "/api/player", {"action": "show", "id": first.id}) in (
                    200,
                    404,
                )
            wait_until(
                lambda: http("GET", f"{device.url}/api/player").json()["current"] in {o.id for o in others},
                20,
                "the player to move on",
            )
            wait_for_fault(case, device, first.id)
            assert call(case, device, "GET", f"/api/media/{first.id}/preview.gif") == 409
            wait_for_play(device)
    finally:
        stop_cleanly(device)


@needs_strace
def test_an_io_error_reading_a_frame_file_is_a_fault_for_that_item(tmp_path: Path) -> None:
    case = "frame file: EIO on reads"
    data = tmp_path / "data"
    first, *others = make_library(data)
    path = data / "frames" / first.file_name
    device = DeviceProcess(data, wrapper=inject([path], ["preadv", "preadv2"], "EIO", when="4+"), timeout=120)
    try:
        wait_for_fault(case, device, first.id)
        wait_for_play(device)
        assert get(case, device, "/api/player")["current"] in {o.id for o in others}
        assert call(case, device, "GET", f"/api/media/{first.id}/preview.gif") == 409
    finally:
        stop_cleanly(device)


# --- a full disk --------------------------------------------------------------------------------


@needs_mount
def test_a_full_disk_at_start_up_plays_and_refuses_changes_with_507(tmp_path: Path) -> None:
    case = "disk full at start-up"
    with SmallDisk(tmp_path / "disk", 8) as disk:
        data = disk.root / "data"
        items = make_library(data)
        disk.fill()
        device = DeviceProcess(data)
        try:
            assert len(get(case, device, "/api/media")["items"]) == len(items)  # type: ignore[arg-type]
            wait_for_play(device)
            health = health_text(device)
            assert "full" in health and "device.json could not be written" in health
            assert call(case, device, "DELETE", f"/api/media/{items[0].id}") == 507
            assert call(case, device, "PATCH", f"/api/media/{items[0].id}", {"name": "x"}) == 507
            assert upload(case, device, solid_gif([(9, 9, 9)])) == 507
            assert call(case, device, "GET", f"/api/media/{items[1].id}/preview.gif") == 200
            assert call(case, device, "GET", "/api/display.png") == 200
            consistent(device, data)
        finally:
            stop_cleanly(device)


@needs_mount
def test_a_full_disk_gives_up_the_reserve_so_media_can_be_deleted(tmp_path: Path) -> None:
    case = "disk full, with the reserve"
    with SmallDisk(tmp_path / "disk", 48) as disk:
        data = disk.root / "data"
        items = make_library(data)
        first = DeviceProcess(data)
        stop_cleanly(first)
        assert (data / ".reserve").exists(), "a device with room keeps a reserve"
        disk.fill()
        device = DeviceProcess(data)
        try:
            wait_for_play(device)
            assert "reserve" in health_text(device)
            assert call(case, device, "DELETE", f"/api/media/{items[0].id}") == 200
            assert not (data / "frames" / items[0].file_name).exists()
            ANSWERS.note(case, "free space after the delete", "-", f"{disk.free() // 1024} KB")
            consistent(device, data)
        finally:
            stop_cleanly(device)


@needs_mount
def test_enospc_at_each_stage_of_an_import_and_of_the_index(tmp_path: Path) -> None:
    """Uploads with the disk filled to leave 0, 12, 24 ... KB free: each fails at another write."""
    case = "ENOSPC during an import"
    gif = solid_gif([(200, 40, 40)], size=(64, 48))
    with SmallDisk(tmp_path / "disk", 48) as disk:
        data = disk.root / "data"
        make_library(data, count=1)
        device = DeviceProcess(data, "--config", str(no_upload_reserve(tmp_path)))
        try:
            wait_for_play(device)
            outcomes: dict[str, list[int]] = {}
            for kb in range(0, 336, 12):
                free = disk.leave_free(kb * 1024)
                body, content_type = multipart([("red.gif", gif)])
                result = http(
                    "POST", f"{device.url}/api/media?wait=true", body, {"Content-Type": content_type}
                )
                ANSWERS.http(case, f"upload with {free // 1024} KB free", result)
                assert result.status in (201, 507), result.body
                code = "imported" if result.status == 201 else result.json()["error"]["code"]
                outcomes.setdefault(code, []).append(free // 1024)
                wait_until(lambda: not list((data / "frames" / ".tmp").iterdir()), 10, "frames/.tmp emptied")
                assert list((data / "incoming").iterdir()) == [], "an upload was left behind"
                disk.leave_free(8 << 20)
                consistent(device, data)
                if result.status == 201:
                    item_id = result.json()["jobs"][0]["item"]["id"]
                    assert call(case, device, "DELETE", f"/api/media/{item_id}") == 200
            ANSWERS.note(case, "summary (KB free)", "-", "; ".join(f"{k}: {v}" for k, v in outcomes.items()))
            assert "imported" in outcomes and len(outcomes) >= 2
            wait_for_play(device)
        finally:
            stop_cleanly(device)


@needs_strace
@pytest.mark.parametrize(
    ("error", "status", "n"),
    [("ENOSPC", 507, 1), ("ENOSPC", 507, 2), ("ENOSPC", 507, 3), ("EROFS", 503, 1), ("EIO", 503, 1)],
)
def test_a_refused_write_of_the_index_is_answered_and_loses_nothing(
    tmp_path: Path, error: str, status: int, n: int
) -> None:
    """Each thread's n-th write to the index's journal fails (strace counts per thread)."""
    case = f"index write {n} fails ({error})"
    data = tmp_path / "data"
    items = make_library(data, count=2)
    wrapper = inject([data / "library.db-wal"], ["pwrite64"], error, when=str(n))
    device = DeviceProcess(data, wrapper=wrapper, timeout=120)
    try:
        wait_for_play(device)
        answers = []
        for k in range(24):
            body = json.dumps({"name": f"name {k}"}).encode()
            result = http(
                "PATCH", f"{device.url}/api/media/{items[0].id}", body, {"Content-Type": "application/json"}
            )
            check_answer("PATCH", result)
            assert result.status in (200, status), result.body
            answers.append(result.status)
            if result.status != 200 and status not in [int(r.status) for r in ANSWERS.rows if r.case == case]:
                ANSWERS.http(case, f"PATCH /api/media/{{id}} (rename {k})", result)
        ANSWERS.note(
            case, "24 renames", "-", f"{answers.count(200)} acknowledged, {answers.count(status)} refused"
        )
        assert status in answers, "the fault was injected"
        first_refusal = answers.index(status)
        assert 200 in answers[first_refusal:], "changes work again after a refused write"
        last = max(k for k, a in enumerate(answers) if a == 200)
        assert http("GET", f"{device.url}/api/media").json()["items"][0]["name"] == f"name {last}"
        wait_for_play(device)
    finally:
        stop_cleanly(device)


# --- a read-only data directory ------------------------------------------------------------------


@needs_mount
def test_a_read_only_data_directory_at_start_up_plays_and_refuses_changes(tmp_path: Path) -> None:
    case = "data dir read-only"
    with SmallDisk(tmp_path / "disk", 16) as disk:
        data = disk.root / "data"
        items = make_library(data)
        disk.remount(read_only=True)
        device = DeviceProcess(data, "--config", str(no_upload_reserve(tmp_path)))
        try:
            assert len(get(case, device, "/api/media")["items"]) == len(items)  # type: ignore[arg-type]
            wait_for_play(device)
            assert "read-only" in health_text(device)
            assert call(case, device, "DELETE", f"/api/media/{items[0].id}") == 503
            assert call(case, device, "PUT", "/api/playlist", {"ids": [i.id for i in reversed(items)]}) == 503
            assert upload(case, device, solid_gif([(9, 9, 9)])) == 503
            assert call(case, device, "GET", f"/api/media/{items[1].id}/preview.gif") == 200
        finally:
            stop_cleanly(device)
            disk.remount(read_only=False)


# --- $TMPDIR full during an upload (bodies stream to DATA/incoming, never to $TMPDIR) ---


@needs_mount
def test_a_full_tmpdir_during_an_upload_does_not_matter(tmp_path: Path) -> None:
    case = "$TMPDIR full during an upload"
    with SmallDisk(tmp_path / "tmp", 1) as tmpdir:
        tmpdir.fill()
        device = DeviceProcess(tmp_path / "data", env={"TMPDIR": str(tmpdir.root)})
        try:
            status = upload(case, device, solid_gif([(1, 2, 3)] * 2, size=(800, 800)) + os.urandom(2 << 20))
            assert status in (201, 415, 422, 507)
        finally:
            stop_cleanly(device)


# --- the bus and the network ------------------------------------------------------------------


def test_the_pi5_spi_dma_timeout_plays_on_slower_and_says_so(tmp_path: Path) -> None:
    """raspberrypi/linux 5696, 5865, 6020: every transfer over 64 bytes ends in ETIMEDOUT."""
    case = "SPI: transfers over 64 bytes time out (Pi 5)"
    data = tmp_path / "data"
    make_library(data)
    device = DeviceProcess(data, "--fault", "pi5-dma-timeout")
    try:
        first = wait_for_play(device)
        wait_until(
            lambda: http("GET", f"{device.url}/api/player").json()["stats"]["spi_degraded"] is True,
            20,
            "the bus to fall back to short transfers",
        )
        shown = int(http("GET", f"{device.url}/api/player").json()["stats"]["frames_shown"])
        wait_until(
            lambda: int(http("GET", f"{device.url}/api/player").json()["stats"]["frames_shown"]) > shown + 5,
            20,
            "frames to keep coming",
        )
        player = get(case, device, "/api/player")
        stats = player["stats"]
        assert isinstance(stats, dict) and stats["spi_degraded"] is True and player["state"] == "playing"
        health = get(case, device, "/api/health")
        assert health["state"] == "degraded"
        display = next(c for c in health["components"] if c["name"] == "display")  # type: ignore[attr-defined]
        assert "degraded" in str(display["detail"])
        ANSWERS.note(
            case, "the panel", "-", f"plays on: {stats['frames_shown']} frames, {display['detail']}"[:110]
        )
        assert first["state"] == "playing"
    finally:
        stop_cleanly(device)


def _nested(depth: int) -> bytes:
    return b'{"password": ' + b"[" * depth + b"]" * depth + b"}"


def test_deeply_nested_json_on_any_route_is_a_400_before_and_after_login(tmp_path: Path) -> None:
    case = "JSON nested 100,000 deep"
    data = tmp_path / "data"
    items = make_library(data)
    device = DeviceProcess(data)

    def send(method: str, path: str) -> None:
        headers = {"Content-Type": "application/json"}
        result = ANSWERS.http(
            case, f"{method} {path}", http(method, f"{device.url}{path}", _nested(100_000), headers)
        )
        assert result.status == 400, result.body[:200]
        assert result.json()["error"]["code"]

    try:
        for method, path in (
            ("PATCH", f"/api/media/{items[0].id}"),
            ("POST", "/api/player"),
            ("PUT", "/api/playlist"),
            ("PATCH", "/api/settings"),
        ):
            send(method, path)
        wait_for_play(device)  # still playing, still answering
        body = json.dumps({"password": "long enough"}).encode()
        headers = {"Content-Type": "application/json"}
        assert http("POST", f"{device.url}/api/settings/password", body, headers).status == 200
        send("POST", "/api/login")  # before authentication
    finally:
        stop_cleanly(device)


def _login_from(device: DeviceProcess, source: str, password: str) -> int:
    """POST /api/login from the loopback address ``source`` (127.0.0.0/8 all reach this host)."""
    port = int(device.url.rsplit(":", 1)[1])
    conn = http_client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request(
            "POST", "/api/login", json.dumps({"password": password}), {"Content-Type": "application/json"}
        )
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_a_stranger_guessing_passwords_never_locks_the_owner_out(tmp_path: Path) -> None:
    case = "login: a stranger guessing"
    data = tmp_path / "data"
    make_library(data)
    device = DeviceProcess(data)
    try:
        body = json.dumps({"password": "the owner's"}).encode()
        assert (
            http(
                "POST", f"{device.url}/api/settings/password", body, {"Content-Type": "application/json"}
            ).status
            == 200
        )
        stranger = [_login_from(device, "127.0.0.2", f"guess {i}") for i in range(40)]
        owner = [_login_from(device, "127.0.0.1", "the owner's") for _ in range(5)]
        ANSWERS.note(
            case,
            "40 wrong passwords from 127.0.0.2, then the owner 5 times from 127.0.0.1",
            "-",
            f"stranger: {stranger.count(401)}x 401, {stranger.count(429)}x 429; owner: {owner}",
        )
        assert set(stranger) <= {401, 429} and 429 in stranger
        assert owner == [200] * 5
    finally:
        stop_cleanly(device)
