"""The player: plays the library on the display with drift-free timing, sending only what changed.

``Player`` is the loop (``player``), made of small parts: ``schedule`` (the timeline: deadlines,
drops, catch-up), ``sending`` (the display, what the panel holds, the bans behind the delete
guarantee), ``refresh`` (the periodic refresh, a band at a time within its budget),
``library_sync`` (the playlist, told of changes), ``controls`` (the control queue and power),
``changes`` (the status counter other faces wait on), ``stats``, ``screens`` and ``night``.

``process.PlayerProcess`` runs a player in a process of its own (``host`` is that process's
side), with the panel published in a ``framebuffer.SharedFramebuffer``; a ``Player`` on a
thread of the caller's process remains the library's plain way to play.
"""

from __future__ import annotations

from libloop.player.night import NightSchedule
from libloop.player.player import Player, PlayerStatus, evict_and_delete
from libloop.player.stats import StatsSnapshot

__all__ = ["NightSchedule", "Player", "PlayerStatus", "StatsSnapshot", "evict_and_delete"]
