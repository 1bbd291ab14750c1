"""Developer sessions: `nox -s tests`, `lint`, `types`, `bench`, `sim`; `hil`, `crash` and `soak` on demand."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "types", "tests"]
nox.options.default_venv_backend = "venv"

PYTHON = "3.11"
DEV_EXTRAS = ".[dev,sim,video,pi]"


def _install(session: nox.Session, extras: str = DEV_EXTRAS) -> None:
    session.install("-e", extras)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check over the whole tree."""
    session.install("ruff==0.17.6")  # pinned: a new release may change the formatting
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def types(session: nox.Session) -> None:
    """mypy --strict over the packages."""
    _install(session)
    session.run("mypy")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite; extra arguments go to pytest."""
    _install(session)
    env = {"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    if os.environ.get("CI"):
        env["HYPOTHESIS_PROFILE"] = "ci"
    session.run("pytest", *session.posargs, env=env)


@nox.session
def bench(session: nox.Session) -> None:
    """Measure the quality bars and regenerate bench/REPORT.md."""
    _install(session, ".[dev,sim,video,bench]")
    session.run("python", "-m", "bench.run", *session.posargs, env={"SDL_VIDEODRIVER": "dummy"})


@nox.session(default=False)
def sim(session: nox.Session) -> None:
    """Run the whole device against the simulated panel; pass --headless to skip the window."""
    _install(session, ".[sim,video]")
    session.run("loop", "sim", *session.posargs)


@nox.session(default=False)
def hil(session: nox.Session) -> None:
    """The hardware conformance suite on a Raspberry Pi (skips with a reason elsewhere)."""
    _install(session, ".[dev,pi]")
    session.run(
        "pytest",
        "hil",
        "-m",
        "hil",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env={"LOOP_RIG": os.environ.get("LOOP_RIG", "pi")},
    )


@nox.session(default=False)
def crash(session: nox.Session) -> None:
    """Crash-injection soak of the index: at least 200 SIGKILLs plus the syscall sweep."""
    _install(session)
    session.run(
        "pytest",
        "tests/test_index_crash.py",
        "-m",
        "slow",
        "-s",  # the kill figures are printed
        *session.posargs,
        env={"LOOP_CRASH_KILLS": os.environ.get("LOOP_CRASH_KILLS", "200")},
    )


@nox.session(default=False)
def soak(session: nox.Session) -> None:
    """The whole device for an hour under polling, uploads, deletes and reorders (`-- --minutes N`).

    Samples memory, file descriptors, threads and dropped frames every minute and writes the
    figures to bench/soak.md, which bench/REPORT.md includes.
    """
    _install(session, ".[dev,sim,video]")
    session.run("python", "-m", "bench.soak", *session.posargs, env={"SDL_VIDEODRIVER": "dummy"})
