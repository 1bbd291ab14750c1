"""The previous design's player, loaded from git history, as a baseline measured in the same run.

Before issue 14 the player was one module (``libloop/player/player.py`` at
:data:`PREVIOUS_REVISION`): it queried SQLite for the library generation and called
``madvise`` on every frame, and refreshed the whole panel at a loop start every few seconds.
The benchmark loads that file from the repository's history into a module of its own (it
imports only modules that still exist with the same interfaces) so the old and the new loop
run side by side, on the same machine, in the same run. Outside a git checkout there is no
baseline and the rows say so.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

#: ``main`` just before the player was split (the design the issue measured).
PREVIOUS_REVISION = "30ea047"
ROOT = Path(__file__).resolve().parent.parent


def load_previous_player() -> tuple[type[Any] | None, str]:
    """``(Player class, "")`` of the previous design, or ``(None, why not)``."""
    try:
        source = subprocess.run(
            ["git", "show", f"{PREVIOUS_REVISION}:libloop/player/player.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"the previous player could not be read from git ({exc})"
    name = "bench._previous_player_module"
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the code runs
    try:
        exec(compile(source, f"<{PREVIOUS_REVISION}:libloop/player/player.py>", "exec"), module.__dict__)
    except Exception as exc:
        del sys.modules[name]
        return None, f"the previous player no longer runs against today's modules ({exc})"
    player: type[Any] = module.Player
    return player, ""
