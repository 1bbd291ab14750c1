"""The README's curl one-liners, run with the real ``curl`` against the served app.

The commands are read from the README's "Scripts" section, so the README cannot drift from
what works. ``curl --resolve`` sends them to 127.0.0.1 while keeping ``Host: loop.local``,
the name the README uses (the app here runs as a machine called ``loop``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.webapp_fixtures import SimServices, gif_bytes
from webapp import create_app, security
from webapp.server import WebServer

README = Path(__file__).resolve().parent.parent / "README.md"
CURL = shutil.which("curl")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CURL is None, reason="the curl binary is not installed (apt-get install curl)"),
]


def readme_commands() -> list[str]:
    """Each shell line of the README's Scripts section, comments stripped."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Scripts\n", 1)[1].split("\n## ", 1)[0]
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL):
        for line in block.splitlines():
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            if command:
                lines.append(command)
    return lines


class Shell:
    """Runs README lines in bash: ``curl`` goes to the served app, ``loop`` is this checkout's CLI."""

    def __init__(self, port: int, data_dir: Path, cwd: Path) -> None:
        self.port = port
        self.cwd = cwd
        self.env = {
            **os.environ,
            "LOOP_DATA": str(data_dir),
            "PYTHON": sys.executable,
            "PYTHONPATH": str(README.parent),
            "CURL_BIN": str(CURL),
            "PORT": str(port),
        }
        self.prelude = (
            'curl() { "$CURL_BIN" --silent --show-error --fail-with-body '
            '--resolve "loop.local:$PORT:127.0.0.1" "$@"; }\n'
            'loop() { "$PYTHON" -m loopapp "$@"; }\n'
        )

    def run(self, command: str, **replace: str) -> subprocess.CompletedProcess[str]:
        command = command.replace("loop.local:8080", f"loop.local:{self.port}")
        for old, new in replace.items():
            command = command.replace(old, new)
        return subprocess.run(
            ["bash", "-c", self.prelude + command],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[SimServices, Shell]]:
    device = SimServices(tmp_path / "data", threaded=True)
    app = create_app(device, {"LOOP_HOSTNAME": "loop"})
    (tmp_path / "cat.gif").write_bytes(gif_bytes([(255, 0, 0), (0, 0, 255)]))
    with WebServer(app, "127.0.0.1", 0) as server:
        try:
            yield device, Shell(server.port, tmp_path / "data", tmp_path)
        finally:
            device.close()


def test_the_readme_one_liners_work(served: tuple[SimServices, Shell]) -> None:
    device, shell = served
    commands = readme_commands()
    upload, upload_wait, listing, show, delete = commands[:5]

    assert shell.run(upload).returncode == 0
    done = shell.run(upload_wait)
    assert done.returncode == 0, done.stderr
    assert '"status":"done"' in done.stdout.replace(" ", "")
    items = device.library.items()
    assert items
    item_id = items[-1].id
    listed = shell.run(listing)
    assert listed.returncode == 0 and item_id in listed.stdout

    shown = shell.run(show, ID=item_id)
    assert shown.returncode == 0, shown.stderr
    assert device.player.status().current == item_id
    deleted = shell.run(delete, ID=item_id)
    assert deleted.returncode == 0, deleted.stderr
    assert item_id not in [item.id for item in device.library.items()]

    # With a password: the token lines.
    security.set_password(device.library, "locked down")
    assert shell.run(listing).returncode != 0  # 401 without a token
    make, token_upload, token_list = commands[5:8]
    token = shell.run(f"{make}\necho $TOKEN")
    assert token.returncode == 0, token.stderr
    secret = token.stdout.strip()
    assert secret.startswith("loop_")
    shell.env["TOKEN"] = secret
    assert shell.run(token_upload).returncode == 0
    result = shell.run(token_list)
    assert result.returncode == 0 and '"items"' in result.stdout


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ('-H "Origin: http://evil.example"', "403"),
        ('-H "Sec-Fetch-Site: cross-site"', "403"),
        ('-H "Host: rebind.evil.example"', "421"),
        ("", "202"),
    ],
)
def test_curl_upload_is_refused_only_for_browser_and_rebinding_markers(
    served: tuple[SimServices, Shell], extra: str, status: str
) -> None:
    _device, shell = served
    result = shell.run(
        f'"$CURL_BIN" -s -o /dev/null -w "%{{http_code}}" {extra} -F file=@cat.gif http://127.0.0.1:$PORT/api/media'
    )
    assert result.stdout == status, result.stderr


def test_the_readme_settings_lines_work(served: tuple[SimServices, Shell]) -> None:
    device, shell = served
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Settings, live from the dashboard\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    commands = [re.sub(r"\s+#\s.*$", "", line).strip() for line in block.splitlines()]
    for command in filter(None, commands):
        result = shell.run(command)
        assert result.returncode == 0, (command, result.stderr)
    settings = device.settings.current()
    assert (settings.rotation, settings.fit, settings.shuffle, settings.night) == (90, "cover", True, None)
