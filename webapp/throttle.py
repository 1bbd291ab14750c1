"""Slowing password guessing without locking the owner out.

``LoginThrottle`` counts wrong passwords per client address in a sliding window. An address
that failed ``per_address`` times within ``window_s`` seconds gets 429 (with ``Retry-After``)
until its oldest failure leaves the window. Across all addresses, a ceiling of
``global_max`` failures in the window guards against a guesser that keeps changing address:
while it is exceeded, every address with a failure of its own in the window is refused until
that failure leaves the window. An address with no recent failure always gets its attempt,
so a stranger guessing from one address (or many) never stops the owner from logging in
from theirs.

The device is not behind a proxy, so the address is the TCP peer (``request.remote_addr``).
Memory is bounded: at most ``max_addresses`` addresses are remembered (the one whose last
failure is oldest is forgotten first), each with at most ``per_address`` timestamps.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class LoginThrottle:
    """Per-address sliding-window login throttle with a global ceiling (see the module docstring).

    Args:
        per_address: failures an address may have within the window.
        global_max: failures from all addresses together within the window before addresses
            with failures of their own are refused.
        window_s: the window's length, in seconds.
        max_addresses: how many addresses are remembered at most.
        clock: a monotonic clock in seconds (injected by tests).
    """

    def __init__(
        self,
        per_address: int = 10,
        global_max: int = 100,
        window_s: float = 60.0,
        *,
        max_addresses: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_address < 1 or global_max < 1 or window_s <= 0 or max_addresses < 1:
            raise ValueError("the throttle's limits and window must be positive")
        self._per_address = per_address
        self._global_max = global_max
        self._window = window_s
        self._max_addresses = max_addresses
        self._clock = clock
        self._lock = threading.Lock()
        # address -> its failure times, oldest first; least recently failing address first.
        self._by_address: OrderedDict[str, deque[float]] = OrderedDict()
        self._all: deque[float] = deque(maxlen=global_max)

    def retry_after(self, address: str) -> float | None:
        """Seconds ``address`` must wait before its next attempt, or None when it may try now."""
        with self._lock:
            now = self._clock()
            failures = self._prune(address, now)
            if not failures:
                return None
            if len(failures) >= self._per_address:
                return self._window - (now - failures[0])
            if self._global_exceeded(now):
                return self._window - (now - failures[-1])
            return None

    def failed(self, address: str) -> None:
        """Record a wrong password from ``address``."""
        with self._lock:
            now = self._clock()
            failures = self._prune(address, now)
            if failures is None:
                failures = deque(maxlen=self._per_address)
                self._by_address[address] = failures
                while len(self._by_address) > self._max_addresses:
                    self._by_address.popitem(last=False)
            failures.append(now)
            self._by_address.move_to_end(address)
            self._all.append(now)

    def succeeded(self, address: str) -> None:
        """Forget the failures of ``address`` (it knew the password after all)."""
        with self._lock:
            self._by_address.pop(address, None)

    def failures(self, address: str) -> int:
        """How many failures of ``address`` are in the window."""
        with self._lock:
            found = self._prune(address, self._clock())
            return len(found) if found else 0

    def _prune(self, address: str, now: float) -> deque[float] | None:
        failures = self._by_address.get(address)
        if failures is None:
            return None
        while failures and now - failures[0] >= self._window:
            failures.popleft()
        if not failures:
            del self._by_address[address]
            return None
        return failures

    def _global_exceeded(self, now: float) -> bool:
        while self._all and now - self._all[0] >= self._window:
            self._all.popleft()
        return len(self._all) >= self._global_max


def retry_after_header(seconds: float) -> str:
    """The ``Retry-After`` value for a wait of ``seconds`` (whole seconds, at least 1)."""
    return str(max(1, math.ceil(seconds)))


__all__ = ["LoginThrottle", "retry_after_header"]
