#!/usr/bin/env python3
"""One-command set-up for LOOP: `python3 dev.py sim` runs the device in simulation,
`python3 dev.py test` runs the test suite.

Needs only Python 3.11+ and git. It creates `.venv/` (standard library `venv`), installs
nox into it, and hands over to the nox session of the same name, which installs
everything else. Any further arguments are passed through to the session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
# `test` is what CI runs: style, types and the test suite.
SESSIONS = {
    "sim": ["sim"],
    "test": ["lint", "types", "tests"],
    "tests": ["tests"],
    "lint": ["lint"],
    "types": ["types"],
    "bench": ["bench"],
    "hil": ["hil"],
    "crash": ["crash"],
}


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs before anything is installed
        print("LOOP needs Python 3.11 or newer; run this with python3.11 or later.", file=sys.stderr)
        return 2
    if not argv or argv[0] not in SESSIONS:
        print(f"usage: python3 dev.py {{{'|'.join(SESSIONS)}}} [ARGS...]", file=sys.stderr)
        return 2
    python = VENV / "bin" / "python"
    if not python.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    probe = subprocess.run([python, "-c", "import nox"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "-q", "nox>=2024.4.15"], check=True)
    cmd = [str(python), "-m", "nox", "-s", *SESSIONS[argv[0]]]
    if not os.environ.get("CI"):
        cmd.append("--reuse-existing-virtualenvs")
    if len(argv) > 1:
        cmd += ["--", *argv[1:]]
    return subprocess.run(cmd, cwd=ROOT).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
