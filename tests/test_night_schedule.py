"""The night schedule over whole weeks and daylight-saving changes, on an injected clock.

The reference model walks the week minute by minute in UTC and reads the local wall clock at
each minute (zoneinfo's own conversion, nothing of the schedule's arithmetic): a boundary at
wall time ``T`` on date ``D`` is the first minute whose wall clock reads ``D T`` or later, and
it is night between a night's start and end. The schedule must agree at every transition and
at random minutes, and ``next_change`` must name exactly the minute the model flips.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from libloop.player.night import NightSchedule

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
MINUTE = dt.timedelta(minutes=1)

#: Weeks (their Mondays) to walk: Berlin's spring-forward and fall-back weeks of 2024 and 2025,
#: New York's of 2025, and a week with no change at all.
WEEKS = [dt.date(2024, 3, 25), dt.date(2024, 10, 21), dt.date(2025, 3, 24), dt.date(2025, 10, 20),
         dt.date(2025, 3, 3), dt.date(2025, 10, 27), dt.date(2024, 6, 3)]  # fmt: skip
ZONES = [BERLIN, ZoneInfo("America/New_York"), ZoneInfo("Australia/Lord_Howe")]


@dataclass
class Week:
    """Every minute of a week (with a day's margin either side) and its local wall clock."""

    tz: dt.tzinfo
    minutes: list[dt.datetime]  # UTC, one a minute
    walls: list[dt.datetime]  # naive local wall time of each

    @classmethod
    def around(cls, monday: dt.date, tz: dt.tzinfo) -> Week:
        t = dt.datetime.combine(monday - dt.timedelta(days=2), dt.time(0), tzinfo=tz).astimezone(UTC)
        minutes = [t + k * MINUTE for k in range(11 * 24 * 60)]
        return cls(tz, minutes, [m.astimezone(tz).replace(tzinfo=None) for m in minutes])

    def first_at_or_after(self, wall: dt.datetime) -> int:
        """Index of the first minute whose wall clock reads ``wall`` or later."""
        for k, w in enumerate(self.walls):
            if w >= wall:
                return k
        raise AssertionError(f"{wall} is outside the walked week")


def reference(week: Week, night: NightSchedule) -> list[bool]:
    """Night or not at every minute of the week, by the model in the module docstring."""
    state = [False] * len(week.minutes)
    first = week.walls[0].date()
    for offset in range(10):
        day = first + dt.timedelta(days=offset)
        if day.weekday() not in night.days or night.start == night.end:
            continue
        end_day = day + dt.timedelta(days=1) if night.end <= night.start else day
        a = week.first_at_or_after(dt.datetime.combine(day, night.start))
        b = week.first_at_or_after(dt.datetime.combine(end_day, night.end))
        for k in range(a, b):
            state[k] = True
    return state


times = st.builds(dt.time, st.integers(0, 23), st.integers(0, 59))
# Nights that start or end in the hours daylight saving moves come up often.
dst_times = st.builds(dt.time, st.sampled_from([1, 2, 3]), st.sampled_from([0, 15, 30, 45, 59]))
edges = st.one_of(times, dst_times)
day_sets = st.frozensets(st.integers(0, 6), min_size=1)


@settings(max_examples=40)
@given(
    start=edges,
    end=edges,
    days=day_sets,
    monday=st.sampled_from(WEEKS),
    zone=st.sampled_from(ZONES),
    samples=st.lists(st.integers(2 * 1440, 9 * 1440), min_size=20, max_size=40),
)
def test_transitions_happen_at_the_right_minutes_across_a_week(
    start: dt.time, end: dt.time, days: frozenset[int], monday: dt.date, zone: ZoneInfo, samples: list[int]
) -> None:
    week = Week.around(monday, zone)
    night = NightSchedule(start, end, days=days, tz=zone)
    model = reference(week, night)
    # The window where the model is complete: the walked week minus its margins.
    lo, hi = 2 * 1440, 9 * 1440
    flips = [k for k in range(lo, hi) if model[k] != model[k - 1]]
    for k in flips:
        assert night.is_night(week.minutes[k - 1]) == model[k - 1], (k, week.walls[k - 1])
        assert night.is_night(week.minutes[k]) == model[k], (k, week.walls[k])
        assert night.next_change(week.minutes[k - 1]) == week.minutes[k], (k, week.walls[k])
    for k in samples:
        assert night.is_night(week.minutes[k]) == model[k], (k, week.walls[k])
        later = bisect_right(flips, k)
        if later < len(flips):
            assert night.next_change(week.minutes[k]) == week.minutes[flips[later]]
            wait = night.seconds_until_change(week.minutes[k] + dt.timedelta(seconds=17))
            assert wait == (week.minutes[flips[later]] - week.minutes[k]).total_seconds() - 17


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A UTC instant."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_a_night_spanning_the_spring_change_is_an_hour_shorter() -> None:
    # Berlin, 31 March 2024: 02:00 CET becomes 03:00 CEST (01:00 UTC).
    night = NightSchedule.parse("22:00", "07:00", tz=BERLIN)
    assert not night.is_night(at(2024, 3, 30, 20, 59))  # 21:59 CET
    assert night.is_night(at(2024, 3, 30, 21, 0))  # 22:00 CET
    assert night.next_change(at(2024, 3, 30, 21, 0)) == at(2024, 3, 31, 5, 0)  # 07:00 CEST
    assert night.seconds_until_change(at(2024, 3, 30, 21, 0)) == 8 * 3600


def test_a_boundary_the_spring_change_skips_happens_as_the_clock_jumps() -> None:
    # 02:30 does not exist on 31 March 2024 in Berlin: the night ends at the jump, 03:00 CEST.
    night = NightSchedule.parse("01:00", "02:30", tz=BERLIN)
    assert night.is_night(at(2024, 3, 31, 0, 59))  # 01:59 CET
    assert not night.is_night(at(2024, 3, 31, 1, 0))  # 03:00 CEST
    assert night.next_change(at(2024, 3, 31, 0, 0)) == at(2024, 3, 31, 1, 0)


def test_a_boundary_the_autumn_change_repeats_happens_once() -> None:
    # 27 October 2024 in Berlin: 03:00 CEST becomes 02:00 CET, so 02:00-02:59 happens twice.
    night = NightSchedule.parse("22:00", "02:30", tz=BERLIN)
    assert night.is_night(at(2024, 10, 27, 0, 29))  # 02:29 CEST
    assert not night.is_night(at(2024, 10, 27, 0, 30))  # 02:30 CEST: the night ends
    assert not night.is_night(at(2024, 10, 27, 1, 0))  # 02:00 CET, the second time round
    assert not night.is_night(at(2024, 10, 27, 1, 45))  # 02:45 CET
    assert night.next_change(at(2024, 10, 27, 0, 30)) == at(2024, 10, 27, 21, 0)  # 22:00 CET


def test_a_night_spanning_the_autumn_change_is_an_hour_longer() -> None:
    night = NightSchedule.parse("22:00", "07:00", tz=BERLIN)
    begins = at(2024, 10, 26, 20, 0)  # 22:00 CEST
    assert night.is_night(begins) and not night.is_night(begins - MINUTE)
    assert night.seconds_until_change(begins) == 10 * 3600  # until 07:00 CET


def test_days_are_the_evenings_a_night_begins_on() -> None:
    # Friday and Saturday nights only: from Friday 23:00 to Saturday 09:00, and Saturday to Sunday.
    night = NightSchedule.parse("23:00", "09:00", days=["fri", "sat"], tz=UTC)
    friday = dt.datetime(2025, 6, 6, tzinfo=UTC)
    assert friday.weekday() == 4
    assert not night.is_night(friday.replace(hour=2))  # Thursday's night is not one
    assert night.is_night(friday.replace(hour=23))
    assert night.is_night(friday + dt.timedelta(hours=32))  # Saturday 08:00
    assert not night.is_night(friday + dt.timedelta(hours=33))  # Saturday 09:00
    assert night.is_night(friday + dt.timedelta(days=2, hours=8))  # Sunday 08:00
    assert not night.is_night(friday + dt.timedelta(days=2, hours=23))  # Sunday 23:00
    # From Sunday 09:00 the next change is Friday 23:00.
    assert night.next_change(friday + dt.timedelta(days=2, hours=9)) == friday + dt.timedelta(
        days=7, hours=23
    )


def test_dimming_and_the_status_shape() -> None:
    night = NightSchedule.parse("22:00", "06:30", days=["mon", "sun"], brightness=20, tz=UTC)
    assert night.dims
    assert night.to_dict() == {"start": "22:00", "end": "06:30", "days": ["mon", "sun"], "brightness": 20}
    assert not NightSchedule.parse("22:00", "06:30", tz=UTC).dims


def test_an_injected_clock_drives_it() -> None:
    wall = [at(2025, 1, 6, 21, 59)]
    night = NightSchedule.parse("22:00", "07:00", lambda: wall[0], tz=UTC)
    assert not night.is_night() and night.seconds_until_change() == 60
    wall[0] = at(2025, 1, 6, 22, 0)
    assert night.is_night() and night.seconds_until_change() == 9 * 3600
