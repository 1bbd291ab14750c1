"""The device's child processes log as the device does (they are spawned without its setup)."""

from __future__ import annotations

import os
import subprocess
import sys

from libloop import childlog

CHILD = "from libloop import childlog; import logging; childlog.configure(); logging.getLogger('loop.x').info('hello')"


def run_child(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stderr


def test_a_child_logs_at_the_level_and_in_the_format_the_cli_chose() -> None:
    env = {k: v for k, v in os.environ.items() if k != childlog.ENV}
    assert run_child(env) == ""  # Python's default: information lines are not shown
    assert " INFO loop.x: hello" in run_child({**env, childlog.ENV: "INFO"})
    assert run_child({**env, childlog.ENV: "WARNING"}) == ""
    assert run_child({**env, childlog.ENV: "not a level"}) == ""
