"""The night schedule: the panel sleeps, or dims, between two local wall-clock times.

A night begins at ``start`` on each of its ``days`` (the evenings, Monday = 0) and ends at the
next ``end``: the same day when ``end`` is later than ``start``, else the day after
(22:00-07:00, the usual case). ``brightness`` 0 puts the panel to sleep, anything else dims
the backlight to that level.

Times are local, in a ``zoneinfo`` time zone, so daylight-saving changes are handled as
people expect: a boundary at a wall time that the spring change skips (02:30 in Berlin on
the last Sunday of March) happens at the moment the clock jumps over it, and one at a wall
time the autumn change repeats happens the first time the clock shows it, once. In general a
boundary at wall time ``T`` on date ``D`` is the earliest instant whose local wall clock
reads ``D T`` or later.

The wall clock is injected (``now``), so tests walk through weeks and DST changes without
waiting; the player asks ``is_night()`` each turn and ``seconds_until_change()`` for how long
it may sleep.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["ALL_DAYS", "DAY_NAMES", "NightSchedule", "local_zone", "parse_hhmm"]

UTC = dt.UTC
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAYS = frozenset(range(7))


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


def local_zone() -> dt.tzinfo:
    """This machine's time zone with its DST rules: ``$TZ``, else ``/etc/localtime``, else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    localtime = Path("/etc/localtime")
    try:
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            return ZoneInfo(target.split("zoneinfo/", 1)[1])
        with open(localtime, "rb") as fh:
            return ZoneInfo.from_file(fh, key="localtime")
    except (OSError, ValueError, ZoneInfoNotFoundError):
        return UTC


def _utc_now() -> dt.datetime:
    return dt.datetime.now(UTC)


def _boundary(day: dt.date, at: dt.time, tz: dt.tzinfo) -> dt.datetime:
    """The earliest instant (UTC) whose wall clock in ``tz`` reads ``day at`` or later."""
    wall = dt.datetime.combine(day, at)
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first  # the wall time exists; fold=0 is the first of two when it repeats
    # Skipped by a DST change: the clock jumps over it, between these two readings.
    lo = int(wall.replace(tzinfo=tz, fold=1).astimezone(UTC).timestamp())
    hi = int(first.timestamp())
    if lo > hi:
        lo, hi = hi, lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if dt.datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return dt.datetime.fromtimestamp(hi, UTC)


@dataclass(frozen=True)
class NightSchedule:
    """Sleep (``brightness`` 0) or dim from ``start`` to ``end`` on the evenings of ``days``.

    ``start == end`` means no night at all. ``now`` returns the current time (aware; a naive
    value is taken as wall time in ``tz``) and is only used when a caller passes none.
    """

    start: dt.time
    end: dt.time
    now: Callable[[], dt.datetime] = field(default=_utc_now, compare=False, repr=False)
    days: frozenset[int] = ALL_DAYS
    brightness: int = 0
    tz: dt.tzinfo = field(default_factory=local_zone, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.brightness <= 100:
            raise ValueError(f"night brightness must be 0..100, not {self.brightness}")
        object.__setattr__(self, "days", frozenset(self.days))

    @classmethod
    def parse(
        cls,
        start: str,
        end: str,
        now: Callable[[], dt.datetime] | None = None,
        *,
        days: Iterable[str] = DAY_NAMES,
        brightness: int = 0,
        tz: dt.tzinfo | None = None,
    ) -> NightSchedule:
        """Build a schedule from ``"HH:MM"`` strings and day names (``"mon"`` …)."""
        return cls(
            parse_hhmm(start),
            parse_hhmm(end),
            now or _utc_now,
            days=frozenset(DAY_NAMES.index(d) for d in days),
            brightness=brightness,
            tz=tz or local_zone(),
        )

    @property
    def dims(self) -> bool:
        """True when the night dims the backlight rather than putting the panel to sleep."""
        return self.brightness > 0

    def _instant(self, when: dt.datetime | None) -> dt.datetime:
        when = when if when is not None else self.now()
        if when.tzinfo is None:
            when = when.replace(tzinfo=self.tz)
        return when.astimezone(UTC)

    def _nights(self, first: dt.date, last: dt.date) -> Iterable[tuple[dt.datetime, dt.datetime]]:
        """The nights beginning on the evenings from ``first`` to ``last``, as UTC intervals."""
        if self.start == self.end:
            return
        overnight = self.end <= self.start
        day = first
        while day <= last:
            if day.weekday() in self.days:
                end_day = day + dt.timedelta(days=1) if overnight else day
                yield _boundary(day, self.start, self.tz), _boundary(end_day, self.end, self.tz)
            day += dt.timedelta(days=1)

    def is_night(self, when: dt.datetime | None = None) -> bool:
        """True while the schedule says night (sleep or dim)."""
        t = self._instant(when)
        local = t.astimezone(self.tz).date()
        span = dt.timedelta(days=2)
        return any(a <= t < b for a, b in self._nights(local - span, local))

    def next_change(self, when: dt.datetime | None = None) -> dt.datetime | None:
        """The next instant (UTC) after ``when`` at which night begins or ends; None if never."""
        t = self._instant(when)
        local = t.astimezone(self.tz).date()
        night = self.is_night(t)
        edges = sorted(
            {
                e
                for pair in self._nights(local - dt.timedelta(days=2), local + dt.timedelta(days=8))
                for e in pair
            }
        )
        for edge in edges:
            if edge > t and self.is_night(edge) != night:
                return edge
        return None

    def seconds_until_change(self, when: dt.datetime | None = None) -> float:
        """Seconds from ``when`` until the schedule next flips; ``inf`` when it never does."""
        t = self._instant(when)
        edge = self.next_change(t)
        return float("inf") if edge is None else (edge - t).total_seconds()

    def to_dict(self) -> dict[str, object]:
        """``{"start", "end", "days", "brightness"}`` for the status document."""
        return {
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
            "days": [DAY_NAMES[d] for d in sorted(self.days)],
            "brightness": self.brightness,
        }
