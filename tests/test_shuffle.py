"""Round-based shuffle: a stateful model test with adds and deletes mid-round."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from libloop.player.shuffle import ShuffleRounds


class ShuffleMachine(RuleBasedStateMachine):
    """Plays, adds and deletes in any order; checks the promises of ``libloop.player.shuffle``."""

    @initialize(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 6))
    def start(self, seed: int, n: int) -> None:
        self.shuffle = ShuffleRounds(random.Random(seed))
        self.ids = [f"i{k}" for k in range(n)]
        self.next_id = n
        self.shuffle.sync(self.ids)
        self.round = self.shuffle.round
        self.played_this_round: list[str] = []
        self.present_all_round = set(self.ids)  # in the playlist since the round began
        self.last: str | None = None

    @rule()
    def add(self) -> None:
        new = f"i{self.next_id}"
        self.next_id += 1
        self.ids.insert(len(self.ids) // 2, new)
        self.shuffle.sync(self.ids)

    @precondition(lambda self: bool(self.ids))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        victim = data.draw(st.sampled_from(self.ids))
        self.ids.remove(victim)
        self.present_all_round.discard(victim)
        self.shuffle.sync(self.ids)

    @rule()
    def play(self) -> None:
        chosen = self.shuffle.peek()
        if not self.ids:
            assert chosen is None
            return
        assert chosen in self.ids
        others = set(self.ids) - {self.last}
        if others:
            assert chosen != self.last, "the same item twice in a row with others to play"
        if self.shuffle.round != self.round:  # a new round began: the old one was complete
            missed = self.present_all_round - set(self.played_this_round)
            assert not missed, f"round {self.round} ended without {missed}"
            self.round = self.shuffle.round
            self.played_this_round = []
            self.present_all_round = set(self.ids)
        assert chosen not in self.played_this_round, f"{chosen} twice in round {self.round}"
        self.shuffle.started(chosen)
        self.played_this_round.append(chosen)
        self.last = chosen

    @invariant()
    def upcoming_are_present_and_unplayed(self) -> None:
        if not hasattr(self, "shuffle"):
            return
        upcoming = self.shuffle.upcoming
        assert len(upcoming) == len(set(upcoming))
        assert set(upcoming) <= set(self.ids)
        assert not set(upcoming) & set(self.played_this_round)


TestShuffleMachine = ShuffleMachine.TestCase
TestShuffleMachine.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


@given(st.integers(2, 12), st.integers(0, 2**32 - 1))
def test_each_round_is_a_permutation(n: int, seed: int) -> None:
    ids = [f"x{k}" for k in range(n)]
    shuffle = ShuffleRounds(random.Random(seed))
    shuffle.sync(ids)
    plays: list[str] = []
    for _ in range(5 * n):
        item = shuffle.peek()
        assert item is not None
        shuffle.started(item)
        plays.append(item)
    rounds = [plays[k : k + n] for k in range(0, len(plays), n)]
    assert all(sorted(r) == sorted(ids) for r in rounds)
    assert all(a != b for a, b in itertools.pairwise(plays))
    assert len({tuple(r) for r in rounds}) > 1 or n == 2  # the order changes between rounds


def test_an_item_shown_by_hand_does_not_come_again_this_round() -> None:
    shuffle = ShuffleRounds(random.Random(1))
    shuffle.sync(["a", "b", "c"])
    shuffle.started("c")  # shown by hand
    first, _ = shuffle.peek(), None
    assert first in ("a", "b")
    shuffle.started(first)  # type: ignore[arg-type]
    second = shuffle.peek()
    assert second in ("a", "b") and second != first
    assert shuffle.previous(["a", "b", "c"]) == "c"


def test_a_single_item_repeats() -> None:
    shuffle = ShuffleRounds(random.Random(3))
    shuffle.sync(["solo"])
    for _ in range(3):
        assert shuffle.peek() == "solo"
        shuffle.started("solo")
    shuffle.sync([])
    assert shuffle.peek() is None
