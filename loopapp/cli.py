"""The `loop` command: one subcommand per job, each with --help and --data.

Exit status 0 on success; otherwise one clear sentence on standard error and a non-zero
status (1 for a failure the person can fix, 2 for a usage mistake, 130 when interrupted).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from libloop.errors import LoopError
from loopapp.config import Config, load_config

log = logging.getLogger("loop")

Handler = Callable[[argparse.Namespace, Config], int]


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="the data directory (default: $LOOP_DATA or ~/.local/share/loop)",
    )
    common.add_argument(
        "--config", type=Path, metavar="FILE", help="a TOML config file (see loopapp/config.py)"
    )
    common.add_argument("-v", "--verbose", action="store_true", help="log more detail to standard error")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="loop",
        description="LOOP plays your GIFs, pictures and videos on an ILI9341 panel, in a loop.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help: str, handler: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    p = add("sim", "run the whole device on a simulated panel, with the dashboard on localhost", "sim")
    p.add_argument("--headless", action="store_true", help="no window (SDL's dummy video driver)")
    p.add_argument("--host", default="127.0.0.1", help="address the dashboard listens on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="dashboard port (default from config, 8080; 0 picks a free one)")
    p.add_argument("--screenshot", type=Path, metavar="PNG", help="save the panel to this PNG on exit")

    add("run", "run the device on a Raspberry Pi with the real SPI panel and GPIO lines", "run")

    p = add("import", "convert media files into the library, with a progress bar", "import_")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument(
        "--fit", choices=["contain", "cover", "stretch"], help="how to fit the panel (default contain)"
    )
    p.add_argument("--no-dither", action="store_true", help="do not dither colours to RGB565")

    p = add("ls", "list the library in play order, one item a line with its id first", "ls")
    p.add_argument("--json", action="store_true", help="print the items as JSON")

    p = add("rm", "delete an item from the library", "rm")
    p.add_argument("id", metavar="ID")

    p = add("export", "write an item's display-ready frames as PNG files with their durations", "export")
    p.add_argument("id", metavar="ID")
    p.add_argument("dir", type=Path, metavar="DIR")

    p = add("fsck", "check the library; --repair fixes what it can and quarantines the rest", "fsck")
    p.add_argument("--repair", action="store_true")

    p = add(
        "doctor", "check SPI, GPIO, permissions and the service, and say how to fix each problem", "doctor"
    )
    p.add_argument("--json", action="store_true", help="print every finding, with its fix, as JSON")
    p.add_argument(
        "--spi-sweep",
        action="store_true",
        help="find the fastest SPI clock this module takes (MISO wired; stop the service first)",
    )

    p = add(
        "install-service", "write and enable the systemd unit for this Python environment", "install_service"
    )
    p.add_argument("--user", default=None, help="the user the service runs as (default: the invoking user)")
    p.add_argument("--dry-run", action="store_true", help="print the unit instead of installing it")

    p = add("health", "show the running device's health (components, resources, faults)", "health")
    p.add_argument("--json", action="store_true")

    p = add("password", "set or clear the dashboard password", "password")
    p.add_argument("--clear", action="store_true", help="remove the password (dashboard open on the network)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG
        if args.verbose
        else logging.INFO
        if args.command in ("sim", "run")
        else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load_config(args.config, data_dir=args.data)
        from loopapp import commands

        handler: Handler = getattr(commands, args.handler)
        return handler(args, config)
    except LoopError as exc:
        print(f"loop {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"loop {args.command}: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into something that stopped reading (e.g. `loop ls | head`).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    raise SystemExit(main())
