"""Logging in the device's child processes (player, imports, re-render, frame file upgrade).

They are started with ``spawn``: a fresh interpreter without the parent's logging setup, so
their warnings would reach standard error bare and their information lines not at all. The
CLI records its level and format in the environment (``LOOP_LOG_LEVEL``), which a child
inherits; ``configure`` sets the child up the same way. A library user who configures logging
themselves and sets no such variable gets Python's defaults in the children, as before.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["ENV", "FORMAT", "configure", "remember"]

#: The environment variable that carries the level name to the children.
ENV = "LOOP_LOG_LEVEL"
#: One line a record, as the CLI writes them (journald adds its own time stamp on a Pi).
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def remember(level: int) -> None:
    """Let child processes started from now on log at ``level`` (the parent's)."""
    os.environ[ENV] = logging.getLevelName(level)


def configure() -> None:
    """In a child: log to standard error at the parent's level, if it said one."""
    name = os.environ.get(ENV, "")
    level = logging.getLevelName(name) if name else None
    if isinstance(level, int) and not logging.getLogger().handlers:
        logging.basicConfig(level=level, format=FORMAT, stream=sys.stderr)
