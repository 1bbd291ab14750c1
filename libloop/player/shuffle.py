"""Shuffle in rounds: every enabled item once a round, in a fresh random order each round.

Pure bookkeeping, no I/O: the player tells ``sync`` the playlist whenever it changes, asks
``peek`` which item comes next and reports with ``started`` the item that actually began
(another one when the chosen one could not be opened, or one shown by hand). The promises:

- no item plays twice in a round, and a round ends only when every item that was in the
  playlist all through it has played;
- an item added mid-round joins the rest of that round at a random place; a deleted one
  leaves it; neither restarts the round;
- no item plays twice in a row when there is any other item to play (a new round never
  starts with the item that ended the last one).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence

__all__ = ["ShuffleRounds"]

#: Items remembered for ``previous``.
HISTORY = 100


class ShuffleRounds:
    """The shuffled order of the playlist, round after round (see the module docstring).

    Args:
        rng: the source of randomness (seeded in tests); default, a fresh ``random.Random``.
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._upcoming: list[str] = []  # the rest of this round, in the order it will play
        self._played: set[str] = set()  # played this round (and still in the playlist)
        self._last: str | None = None
        self._history: deque[str] = deque(maxlen=HISTORY)
        #: Counts rounds begun (0 before the first).
        self.round = 0

    def sync(self, ids: Sequence[str]) -> None:
        """The playlist is now ``ids``: drop what left it, slot new items into this round."""
        present = set(ids)
        self._upcoming = [i for i in self._upcoming if i in present]
        self._played &= present
        known = self._played | set(self._upcoming)
        for item_id in ids:
            if item_id not in known:
                self._upcoming.insert(self._rng.randint(0, len(self._upcoming)), item_id)
                known.add(item_id)

    def peek(self) -> str | None:
        """The item to play next (a new round begins when this one is over); None if none."""
        if not self._upcoming:
            self._new_round()
        return self._upcoming[0] if self._upcoming else None

    def started(self, item_id: str) -> None:
        """``item_id`` began playing: it has had its turn this round."""
        if item_id in self._upcoming:
            self._upcoming.remove(item_id)
        self._played.add(item_id)
        self._last = item_id
        if not self._history or self._history[-1] != item_id:
            self._history.append(item_id)

    def previous(self, present: Sequence[str]) -> str | None:
        """The item played before the current one that is still in ``present``, if any."""
        alive = set(present)
        earlier = list(self._history)[:-1]
        for item_id in reversed(earlier):
            if item_id in alive:
                return item_id
        return None

    @property
    def upcoming(self) -> list[str]:
        """The rest of this round, in play order (a copy)."""
        return list(self._upcoming)

    def _new_round(self) -> None:
        order = sorted(self._played)  # sorted first: the shuffle depends on the seed alone
        if not order:
            return
        self._rng.shuffle(order)
        if len(order) > 1 and order[0] == self._last:
            j = self._rng.randrange(1, len(order))
            order[0], order[j] = order[j], order[0]
        self._upcoming = order
        self._played = set()
        self.round += 1
