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

from libloop import childlog
from libloop.errors import LoopError
from loopapp.config import SIM_FAULTS, Config, default_sim_data_dir, load_config

log = logging.getLogger("loop")

Handler = Callable[[argparse.Namespace, Config], int]


def _common(
    data_default: str = "$LOOP_DATA or ~/.local/share/loop", argument_default: Any = None
) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, argument_default=argument_default)
    common.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help=f"the data directory (default: {data_default})",
    )
    common.add_argument(
        "--config", type=Path, metavar="FILE", help="a TOML config file (see loopapp/config.py)"
    )
    common.add_argument("-v", "--verbose", action="store_true", help="log more detail to standard error")
    return common


#: The options of `_common` (with -h): those followed by a value, and the flags.
_VALUE_OPTIONS = ("--data", "--config")
_FLAG_OPTIONS = ("-h", "--help", "-v", "--verbose")
#: Subcommands whose operands are item ids.
_ID_COMMANDS = ("rm", "export")


def _option_named(word: str) -> str | None:
    """The option ``word`` names (exactly or by an unambiguous ``--`` prefix, as argparse allows)."""
    name = word.split("=", 1)[0] if word.startswith("--") else word
    if name in _VALUE_OPTIONS or name in _FLAG_OPTIONS:
        return name
    if name.startswith("--") and len(name) > 2:
        matches = [o for o in (*_VALUE_OPTIONS, *_FLAG_OPTIONS) if o.startswith(name)]
        if len(matches) == 1:
            return matches[0]
    return None


def ids_as_operands(argv: list[str]) -> list[str]:
    """Let ``loop rm -abc`` and ``loop export -abc DIR`` name an item whose id starts with ``-``.

    Ids made by earlier versions start with ``-`` about once in 64, and argparse takes such a
    word for an unknown option. For the commands that take item ids, every word that is not
    one of their options is an operand: it is moved after a ``--``, where argparse reads it as
    one. Ids made now never start with ``-`` (``libloop.index.items.make_item_id``).
    """
    if len(argv) < 2 or argv[0] not in _ID_COMMANDS or "--" in argv:
        return argv
    options: list[str] = []
    operands: list[str] = []
    words = iter(argv[1:])
    for word in words:
        option = _option_named(word)
        if option is None:
            operands.append(word)
            continue
        options.append(word)
        if option in _VALUE_OPTIONS and "=" not in word:
            value = next(words, None)  # its value, whatever it looks like
            if value is not None:
                options.append(value)
    if not any(word.startswith("-") for word in operands):
        return argv
    return [argv[0], *options, "--", *operands]


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="loop",
        description="LOOP plays your GIFs, pictures and videos on an ILI9341 panel, in a loop.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str, help: str, handler: str, parent: argparse.ArgumentParser = common
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[parent], help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    sim_common = _common("$LOOP_DATA or ~/.local/share/loop-sim")
    p = add(
        "sim", "run the whole device on a simulated panel, with the dashboard on localhost", "sim", sim_common
    )
    p.epilog = (
        "The simulator keeps its own library (~/.local/share/loop-sim), apart from a real device's "
        "(~/.local/share/loop). Other commands reach it with the same --data or $LOOP_DATA, "
        "e.g. loop ls --data ~/.local/share/loop-sim."
    )
    p.add_argument("--headless", action="store_true", help="no window (SDL's dummy video driver)")
    p.add_argument("--host", default="127.0.0.1", help="address the dashboard listens on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="dashboard port (default from config, 8080; 0 picks a free one)")
    p.add_argument("--screenshot", type=Path, metavar="PNG", help="save the panel to this PNG on exit")
    p.add_argument(
        "--fault",
        action="append",
        choices=SIM_FAULTS,
        help="a fault drill on the simulated bus from start-up (repeatable; also [sim] faults)",
    )

    add("run", "run the device on a Raspberry Pi with the real SPI panel and GPIO lines", "run")

    p = add("import", "convert media files into the library, with a progress bar", "import_")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument(
        "--fit", choices=["contain", "cover", "stretch"], help="how to fit the panel (default contain)"
    )
    p.add_argument("--no-dither", action="store_true", help="do not dither colours to RGB565")

    p = add("ls", "list the library in play order, one item a line with its id first", "ls")
    p.add_argument("--json", action="store_true", help="print the items as JSON")

    id_help = "the item's id, as `loop ls` shows it first on its line (one that starts with - works too)"
    p = add("rm", "delete an item from the library", "rm")
    p.add_argument("id", metavar="ID", help=id_help)

    p = add("export", "write an item's display-ready frames as PNG files with their durations", "export")
    p.add_argument("id", metavar="ID", help=id_help)
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

    p = add(
        "settings",
        "show or change the live settings: rotation, fit, dither, background, still_seconds, shuffle, night",
        "settings",
    )
    p.epilog = (
        "loop settings: every setting; loop settings KEY: one; loop settings KEY VALUE: change it "
        "(through the running device when there is one, so it applies at once). Values: rotation "
        "0/90/180/270, fit contain/cover/stretch, dither and shuffle on/off, background #rrggbb, "
        "still_seconds a number, night off or '22:00-07:00 [mon-fri|sat,sun|daily] [20%]' "
        "(0% puts the panel to sleep, more dims it)."
    )
    p.add_argument("key", nargs="?", metavar="KEY", help="the setting to show or change")
    p.add_argument("value", nargs="?", metavar="VALUE", help="its new value")
    p.add_argument("--json", action="store_true", help="print the settings as JSON")

    p = add("password", "set or clear the dashboard password", "password")
    p.add_argument("--clear", action="store_true", help="remove the password (dashboard open on the network)")
    _add_token_command(add("token", "API tokens for scripts: create, list or revoke them", "token"))
    return parser


def _add_token_command(p: argparse.ArgumentParser) -> None:
    """``loop token create NAME`` / ``loop token ls [--json]`` / ``loop token rm NAME``."""
    # The common options again, after the action; SUPPRESS keeps `loop token --data D ls` working.
    common = _common(argument_default=argparse.SUPPRESS)
    actions = p.add_subparsers(dest="token_action", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create",
        parents=[common],
        help="make a token and print it (only this once)",
        description="Make an API token for scripts and print it; only its hash is kept, so "
        "copy it now. Scripts send it as 'Authorization: Bearer <token>'.",
    )
    create.add_argument("name", metavar="NAME", help="1-64 letters, digits, '.', '-' or '_'")
    listing = actions.add_parser(
        "ls", parents=[common], help="list the tokens: name, created, last used (never the secret)"
    )
    listing.add_argument("--json", action="store_true", help="print the tokens as JSON")
    remove = actions.add_parser("rm", parents=[common], help="revoke a token: it stops working at once")
    remove.add_argument("name", metavar="NAME")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(ids_as_operands(list(sys.argv[1:] if argv is None else argv)))
    level = (
        logging.DEBUG if args.verbose else logging.INFO if args.command in ("sim", "run") else logging.WARNING
    )
    logging.basicConfig(level=level, format=childlog.FORMAT, stream=sys.stderr)
    childlog.remember(level)  # the player, import and upgrade processes log the same way
    try:
        config = config_for(args)
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


def config_for(args: argparse.Namespace) -> Config:
    """The config of one command: ``--config`` and ``--data``; ``loop sim`` has its own data default."""
    fallback = default_sim_data_dir() if args.command == "sim" else None
    return load_config(args.config, data_dir=args.data, fallback_data_dir=fallback)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    raise SystemExit(main())
