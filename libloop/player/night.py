"""The night schedule: the panel sleeps between two local wall-clock times.

The schedule is pure arithmetic on local times; the wall clock is injected so tests can
walk through a day (and over midnight) without waiting. The player asks ``is_night(now)``
each turn and how long until the next boundary, so it wakes exactly when the night ends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["NightSchedule", "parse_hhmm"]


def parse_hhmm(text: str) -> dt.time:
    """Parse ``"HH:MM"`` (24-hour) into a ``datetime.time``.

    Raises:
        ValueError: the text is not a valid 24-hour time.
    """
    try:
        hours, minutes = text.strip().split(":")
        return dt.time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{text!r} is not a 24-hour time; write it as HH:MM, e.g. 22:30.") from None


def _local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


@dataclass(frozen=True)
class NightSchedule:
    """Sleep from ``start`` until ``end`` every day, in local time.

    ``start`` later than ``end`` means the night spans midnight (22:00–07:00, the usual
    case); ``start == end`` means no night at all. ``now`` returns the current local time
    and is only used when a caller does not pass one.
    """

    start: dt.time
    end: dt.time
    now: Callable[[], dt.datetime] = field(default=_local_now, compare=False, repr=False)

    @classmethod
    def parse(cls, start: str, end: str, now: Callable[[], dt.datetime] | None = None) -> NightSchedule:
        """Build a schedule from two ``"HH:MM"`` strings."""
        return cls(parse_hhmm(start), parse_hhmm(end), now or _local_now)

    def _minutes(self, t: dt.time) -> float:
        return t.hour * 60 + t.minute + t.second / 60 + t.microsecond / 60e6

    def is_night(self, when: dt.datetime | None = None) -> bool:
        """True while the panel should sleep."""
        when = when or self.now()
        m = self._minutes(when.time())
        s, e = self._minutes(self.start), self._minutes(self.end)
        if s == e:
            return False
        if s < e:
            return s <= m < e
        return m >= s or m < e

    def seconds_until_change(self, when: dt.datetime | None = None) -> float:
        """Seconds from ``when`` until the schedule next flips between day and night.

        Returns ``inf`` when the schedule never changes (start equals end).
        """
        when = when or self.now()
        if self.start == self.end:
            return float("inf")
        boundary = self.end if self.is_night(when) else self.start
        candidate = when.replace(
            hour=boundary.hour,
            minute=boundary.minute,
            second=boundary.second,
            microsecond=boundary.microsecond,
        )
        if candidate <= when:
            candidate += dt.timedelta(days=1)
        return (candidate - when).total_seconds()

    def to_dict(self) -> dict[str, str]:
        """The schedule as ``{"start": "HH:MM", "end": "HH:MM"}`` for the status document."""
        return {"start": self.start.strftime("%H:%M"), "end": self.end.strftime("%H:%M")}
