"""The player: plays the library on the display with drift-free timing, sending only what changed.

``Player`` is the controller (thread, controls, evict guarantee); ``schedule`` holds the pure
deadline and drop arithmetic, ``stats`` the figures ``GET /api/player`` reports, ``screens``
the empty and error screens, ``night`` the night schedule.
"""

from __future__ import annotations

from libloop.player.night import NightSchedule
from libloop.player.player import Player, PlayerStatus, evict_and_delete
from libloop.player.stats import StatsSnapshot

__all__ = ["NightSchedule", "Player", "PlayerStatus", "StatsSnapshot", "evict_and_delete"]
