"""`loop token create/ls/rm` as a person uses it, and the running device seeing the change at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopapp.cli import build_parser, main
from loopapp.config import ConfigError, load_config
from tests.webapp_fixtures import SimServices
from webapp import create_app, security


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def device(data: Path) -> Iterator[SimServices]:
    svc = SimServices(data)
    try:
        yield svc
    finally:
        svc.close()


@pytest.mark.parametrize("action", ["create", "ls", "rm"])
def test_every_token_action_has_help_and_takes_data(action: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["token", action, "--help"])
    assert exit_info.value.code == 0
    assert "--data" in capsys.readouterr().out


def test_create_prints_the_token_once_and_ls_never_does(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "token", "create", "backup-script", "--data", str(data))
    assert code == 0
    secret = out.strip()
    assert secret.startswith("loop_") and "\n" not in secret  # TOKEN=$(loop token create NAME) works
    assert "only time" in err
    code, out, _ = run(capsys, "token", "ls", "--data", str(data))
    assert code == 0
    assert out.startswith("backup-script  created ") and "last used never" in out
    assert secret not in out
    code, out, _ = run(capsys, "token", "--data", str(data), "ls", "--json")
    assert code == 0
    (token,) = json.loads(out)["tokens"]
    assert token["name"] == "backup-script" and token["last_used"] is None
    assert secret not in out


def test_rm_revokes_and_unknown_names_are_one_sentence(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "token", "create", "a", "--data", str(data))
    code, out, err = run(capsys, "token", "rm", "nope", "--data", str(data))
    assert code == 1 and out == ""
    assert err == "loop token: There is no API token named 'nope'; `loop token ls` lists them.\n"
    code, out, _ = run(capsys, "token", "rm", "a", "--data", str(data))
    assert code == 0 and out == "revoked a\n"
    code, out, _ = run(capsys, "token", "ls", "--data", str(data))
    assert "no API tokens" in out


@pytest.mark.parametrize("name", ["two words", ".dot-first", "x" * 65, "slash/y", "ünïcode"])
def test_bad_names_are_refused_in_one_sentence(
    name: str, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "token", "create", name, "--data", str(data))
    assert code == 1 and out == ""
    assert err.startswith("loop token: A token name is") and err.count("\n") == 1


def test_a_duplicate_name_is_refused(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "token", "create", "dup", "--data", str(data))
    code, _, err = run(capsys, "token", "create", "dup", "--data", str(data))
    assert code == 1 and "already exists" in err


def test_the_running_device_sees_a_token_created_and_revoked_at_once(
    device: SimServices, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(device, {"TESTING": True})
    security.set_password(device.library, "locked down")
    client = app.test_client()
    code, out, _ = run(capsys, "token", "create", "cron", "--data", str(data))
    assert code == 0
    bearer = {"Authorization": f"Bearer {out.strip()}"}
    assert client.get("/api/media", headers=bearer).status_code == 200
    _, listing, _ = run(capsys, "token", "ls", "--data", str(data))
    assert "last used never" not in listing
    run(capsys, "token", "rm", "cron", "--data", str(data))
    assert client.get("/api/media", headers=bearer).status_code == 401


def test_web_hosts_in_the_config(tmp_path: Path) -> None:
    path = tmp_path / "loop.toml"
    path.write_text('[web]\nhosts = ["frame.example.net", "loop.lan."]\n')
    assert load_config(path).web.hosts == ("frame.example.net", "loop.lan.")
    for bad in ['hosts = "frame.example.net"', "hosts = [1]", 'hosts = ["evil example"]', 'hosts = ["a/b"]']:
        path.write_text(f"[web]\n{bad}\n")
        with pytest.raises(ConfigError, match=r"web\.hosts"):
            load_config(path)
