"""The `loop` subcommands. Each takes the parsed arguments and the config, returns an exit status,
and raises LoopError (printed as one sentence by cli.main) when something goes wrong."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import getpass
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from libloop.errors import LoopError
from libloop.wording import plural
from loopapp.config import Config, default_data_dir
from loopapp.progress import ProgressBar

if TYPE_CHECKING:
    from libloop.sweep import SweepResult


@contextlib.contextmanager
def _library(config: Config) -> Iterator[object]:
    from libloop.index import Library

    with Library(config.data_dir) as library:
        yield library


def sim(args: argparse.Namespace, config: Config) -> int:
    from loopapp.runner import run_device

    if args.fault:
        faults = tuple(dict.fromkeys((*config.sim.faults, *args.fault)))
        config = dataclasses.replace(config, sim=dataclasses.replace(config.sim, faults=faults))
    return run_device(
        config,
        simulated=True,
        headless=args.headless,
        host=args.host,
        port=args.port,
        screenshot=args.screenshot,
    )


def run(args: argparse.Namespace, config: Config) -> int:
    from loopapp.runner import run_device

    return run_device(config, simulated=False)


def import_(args: argparse.Namespace, config: Config) -> int:
    from libloop.index import Library
    from loopapp.device import import_file, import_options

    with contextlib.suppress(OSError):
        # Stay out of the way of a device playing on this machine: nice 10, not 10 more each
        # time the command runs in the same process.
        os.setpriority(os.PRIO_PROCESS, 0, max(10, os.getpriority(os.PRIO_PROCESS, 0)))
    for path in args.files:
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise LoopError(f"{path} {what}; give the path of a picture, GIF or video file.")
        if not os.access(path, os.R_OK):
            raise LoopError(f"{path} cannot be read by this user; check its permissions.")
    failures = 0
    with Library(config.data_dir) as library:
        from libloop.settings import SettingsStore
        from loopapp.config import device_settings

        live = SettingsStore(library, device_settings(config)).current()  # as the dashboard set them
        options = import_options(
            config, fit=args.fit, dither=False if args.no_dither else None, settings=live
        )
        for path in args.files:
            with ProgressBar(path.name) as bar:
                try:
                    done = import_file(library, path, options, progress=bar)
                except LoopError as exc:
                    bar.close()
                    print(f"loop import: {path}: {exc}", file=sys.stderr)
                    failures += 1
                    continue
            item = done.item
            if not done.existing and (args.fit or args.no_dither):
                # The item's own settings, so a later re-render (a new rotation) keeps them.
                from libloop.index.store import UNSET

                item = library.update(
                    item.id, fit=args.fit or UNSET, dither=False if args.no_dither else UNSET
                )
            note = " (already in the library)" if done.existing else ""
            print(f"{item.id}  {item.name}  {item.kind}, {plural(item.frames, 'frame')}{note}")
            if done.warning:
                print(f"loop import: note: {done.warning}", file=sys.stderr)
    if failures:
        raise LoopError(
            f"{failures} of {plural(len(args.files), 'file')} could not be imported; see the messages above."
        )
    return 0


def ls(args: argparse.Namespace, config: Config) -> int:
    from libloop.index import Library

    with Library(config.data_dir) as library:
        items = library.items()
    if args.json:
        json.dump({"items": [item.to_dict() for item in items]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for item in items:
        state = "" if item.enabled else "  (disabled)"
        seconds = item.duration_ms / 1000
        print(f"{item.id}  {item.name}  {item.kind}  {plural(item.frames, 'frame')}  {seconds:.1f} s{state}")
    return 0


def rm(args: argparse.Namespace, config: Config) -> int:
    from loopapp.device import delete_via_running_device

    if delete_via_running_device(config, args.id):
        print(f"deleted {args.id}")
        return 0
    from libloop.index import Library

    with Library(config.data_dir) as library:
        item = library.delete(args.id)
    print(f"deleted {item.id}  {item.name}")
    return 0


def export(args: argparse.Namespace, config: Config) -> int:
    from libloop.index import Library
    from libloop.media.export import export_frames

    with Library(config.data_dir) as library:
        item = library.get(args.id)
        paths = export_frames(library.frame_path(item), args.dir)
    print(f"wrote {plural(len(paths), 'frame')} of {item.id} to {args.dir}")
    return 0


def fsck(args: argparse.Namespace, config: Config) -> int:
    from libloop.errors import LibraryDamaged
    from libloop.index import Library
    from libloop.index.fsck import INTEGRITY
    from libloop.index.rebuild import open_or_repair, repair_damaged

    problems = []
    if args.repair:
        # A damaged database is set aside and the library rebuilt from the frame files first.
        library, rebuilt = open_or_repair(config.data_dir)
        problems += rebuilt.problems if rebuilt is not None else []
    else:
        try:
            library = Library(config.data_dir).open()
        except LibraryDamaged as exc:
            print(f"problem: {exc}")
            raise LoopError(
                "The library database is damaged; run `loop fsck --repair` to set it aside and "
                "rebuild the library from the frame files."
            ) from None
    with library:
        report = library.fsck(repair=args.repair)
    integrity = [p for p in report.problems if p.kind == INTEGRITY]
    if args.repair and not problems and integrity:
        problems += repair_damaged(config.data_dir, integrity[0].message.rstrip(".")).problems
        with Library(config.data_dir) as library:
            report = library.fsck(repair=True)
    problems += report.problems
    for problem in problems:
        mark = "repaired" if problem.repaired else "problem"
        print(f"{mark}: {problem.message}")
    if all(p.repaired for p in problems):
        print("library is consistent" if not problems else "library repaired")
        return 0
    hint = "" if args.repair else "; run `loop fsck --repair` to fix them"
    raise LoopError(f"The library has {plural(sum(not p.repaired for p in problems), 'problem')}{hint}.")


def doctor(args: argparse.Namespace, config: Config) -> int:
    from loopapp.device import running_health
    from loopapp.doctor import format_checks, report, run_checks

    w = config.wiring
    health = running_health(config)
    display = (health or {}).get("display") or {}
    checks = run_checks(
        spi_bus=w.spi_bus, spi_device=w.spi_device, gpio_chip=w.gpio_chip, data_dir=config.data_dir,
        speed_hz=w.speed_hz, backlight_gpio=w.backlight, backlight_pwm=w.backlight_pwm,
        device_spi=display.get("spi") if isinstance(display, dict) else None, mqtt=config.mqtt,
    )  # fmt: skip
    result = _spi_sweep(config, running=health is not None) if args.spi_sweep else None
    if args.json:
        body = report(checks, speed_hz=w.speed_hz, sweep=result.to_dict() if result else None)
        json.dump(body, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_checks(checks))
        if result is not None:
            print(result.summary())
    bad = [c for c in checks if not c.ok]
    if bad:
        where = "in the report" if args.json else "above"
        raise LoopError(f"{plural(len(bad), 'problem')} found; each is listed {where} with its fix.")
    if result is not None and result.fastest is None:
        raise LoopError(result.summary())
    return 0


def _spi_sweep(config: Config, *, running: bool) -> SweepResult:
    """Run the SPI clock sweep on the panel; the device must not be running."""
    if running:
        raise LoopError(
            "The sweep needs the panel to itself; stop the running device first "
            "(sudo systemctl stop loop.service) and run it again."
        )
    from loopapp.doctor_pi import print_step, spi_sweep
    from loopapp.hardware import pi_hardware

    print("Sweeping the SPI clock: writing test patterns and reading them back over MISO...", file=sys.stderr)
    return spi_sweep(pi_hardware(config), config, progress=print_step)


def install_service(args: argparse.Namespace, config: Config) -> int:
    from loopapp.service import install_service as install
    from loopapp.service import render_unit

    user = args.user or os.environ.get("SUDO_USER") or getpass.getuser()
    data_dir = config.data_dir
    if args.data is None and data_dir == default_data_dir():
        data_dir = default_data_dir_of(user)  # under sudo: the service user's, not root's
    if args.dry_run:
        print(render_unit(data_dir=data_dir, user=user, config=args.config))
        return 0
    path = install(data_dir=data_dir, user=user, config=args.config)
    print(f"installed and started {path}")
    return 0


def default_data_dir_of(user: str) -> Path:
    """``~user/.local/share/loop`` (the default data directory of another user)."""
    import pwd

    try:
        home = Path(pwd.getpwnam(user).pw_dir)
    except KeyError:
        raise LoopError(f"There is no user named {user!r}; pass an existing one with --user.") from None
    return home / ".local" / "share" / "loop"


def health(args: argparse.Namespace, config: Config) -> int:
    from loopapp.device import health_report

    report = health_report(config)
    if args.json:  # also when no device runs: this machine's resources, for scripts
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    if report.get("state") == "not running":
        raise LoopError(
            f"No LOOP device is running on {config.data_dir}; start it with loop sim or loop run."
        )
    if report.get("state") == "not answering":
        raise LoopError(
            f"The LOOP device on {config.data_dir} does not answer at {report.get('url')}; "
            "it may be stuck or still starting (systemd restarts a stuck one)."
        )
    if not args.json:
        from loopapp.health_text import format_health

        print(format_health(report, config.data_dir))
    return 0


def password(args: argparse.Namespace, config: Config) -> int:
    from libloop.index import Library
    from webapp.security import set_password

    with Library(config.data_dir) as library:
        if args.clear:
            set_password(library, None)
            print("dashboard password removed: anyone on the network can use the dashboard")
            return 0
        first = getpass.getpass("New dashboard password: ")
        second = getpass.getpass("Again: ")
        if first != second:
            raise LoopError("The two passwords differ; nothing was changed.")
        set_password(library, first)
    print("dashboard password set")
    return 0


def settings(args: argparse.Namespace, config: Config) -> int:
    """``loop settings [KEY [VALUE]] [--json]``: through the running device, else the index."""
    from libloop.errors import InvalidSetting
    from libloop.settings import KEYS, SettingsStore, parse_text
    from libloop.settings.schema import format_value
    from loopapp.config import device_settings
    from loopapp.device import settings_via_running_device

    if args.key is not None and args.key not in KEYS:
        raise InvalidSetting(f"There is no setting called {args.key!r}; the settings are {', '.join(KEYS)}.")
    with _library(config) as library:
        store = SettingsStore(library, device_settings(config))  # type: ignore[arg-type]
        current = store.current()
        changes = None
        if args.value is not None:
            changes = {args.key: parse_text(args.key, args.value, current)}
        body = settings_via_running_device(config, changes)
        note = ""
        if body is None:
            if changes is not None:
                current = store.patch(changes)
                if any(k in changes for k in ("rotation", "fit", "dither", "background")):
                    note = "the library is re-rendered when the device next starts"
            body = current.to_dict()
    if args.json:
        json.dump(body if args.key is None else {args.key: body[args.key]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for key in KEYS if args.key is None else (args.key,):
        print(f"{key} = {format_value(key, body[key])}")
    progress = body.get("rerender") or {}
    if progress.get("running"):
        print(f"re-rendering: {progress.get('done', 0)} of {progress.get('total', 0)} items done")
    for item in progress.get("needs_upload", []) if args.key is None else []:
        print(
            f"note: {item['name']} ({item['id']}) was imported before originals were kept; re-upload it to re-render it"
        )
    if note:
        print(f"note: {note}")
    return 0


def token(args: argparse.Namespace, config: Config) -> int:
    from loopapp.tokens import run_token_command

    return run_token_command(args, config)


__all__ = [
    "doctor",
    "export",
    "fsck",
    "health",
    "import_",
    "install_service",
    "ls",
    "password",
    "rm",
    "run",
    "settings",
    "sim",
    "token",
]
