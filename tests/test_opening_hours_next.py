"""``OpeningHours.next_open``: the first open moment at or after a time (when a callback owed
at night falls due), with holidays, make-up workdays and clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ivr.menus.hours import OpeningHours, calling_hours

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def at(zone: ZoneInfo, y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0,
       fold: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=zone, fold=fold)


def hours(*ranges: str, zone: str = "Asia/Shanghai", holidays: tuple[date, ...] = (),
          workdays: tuple[date, ...] = ()) -> OpeningHours:
    return OpeningHours.of(ranges, holidays, workdays, zone)


def test_an_open_moment_is_its_own_next_opening() -> None:
    h = hours("mon-fri 09:00-20:00")
    for t in (at(SHANGHAI, 2026, 3, 10, 9), at(SHANGHAI, 2026, 3, 10, 19, 59, 59),
              at(SHANGHAI, 2026, 3, 10, 12).astimezone(UTC)):
        assert h.next_open(t) is t


def test_a_closed_moment_waits_for_the_next_range_start() -> None:
    h = hours("mon-fri 09:00-12:00", "mon-fri 14:00-20:00", "sat 10:00-12:00")
    tue = at(SHANGHAI, 2026, 3, 10, 0)                      # Tuesday 10 March 2026
    assert h.next_open(tue.replace(hour=8, minute=59, second=59)) == tue.replace(hour=9)
    assert h.next_open(tue.replace(hour=12)) == tue.replace(hour=14)     # lunch break
    assert h.next_open(tue.replace(hour=20)) == tue.replace(day=11, hour=9)
    assert h.next_open(tue.replace(hour=23, minute=30)) == tue.replace(day=11, hour=9)
    # Friday night: Saturday morning, then Monday.
    assert h.next_open(tue.replace(day=13, hour=21)) == tue.replace(day=14, hour=10)
    assert h.next_open(tue.replace(day=14, hour=12)) == tue.replace(day=16, hour=9)
    # In the zone of the time asked about, the same moment.
    utc = h.next_open(tue.replace(hour=23).astimezone(UTC))
    assert utc.tzinfo is UTC and utc == tue.replace(day=11, hour=9)


def test_holidays_and_make_up_workdays() -> None:
    # 春节 2026: closed Mon 16 to Fri 20 Feb; Saturday 28 Feb is worked with Monday's hours.
    holidays = tuple(date(2026, 2, d) for d in range(16, 21))
    h = hours("mon 08:00-18:00", "tue-fri 09:00-18:00", holidays=holidays,
              workdays=(date(2026, 2, 28),))
    assert h.next_open(at(SHANGHAI, 2026, 2, 13, 19)) == at(SHANGHAI, 2026, 2, 23, 8)
    assert h.next_open(at(SHANGHAI, 2026, 2, 27, 19)) == at(SHANGHAI, 2026, 2, 28, 8)
    # Holidays alone (no ranges): open around the clock except on those days.
    only = hours(holidays=(date(2026, 10, 1), date(2026, 10, 2)))
    assert only.next_open(at(SHANGHAI, 2026, 10, 1, 12)) == at(SHANGHAI, 2026, 10, 3, 0)
    assert only.next_open(at(SHANGHAI, 2026, 9, 30, 23)) == at(SHANGHAI, 2026, 9, 30, 23)


def test_holidays_longer_than_two_weeks_are_searched_past() -> None:
    holidays = tuple(date(2026, 7, 1) + timedelta(days=i) for i in range(40))
    h = hours("mon-fri 09:00-17:00", holidays=holidays)
    assert h.next_open(at(SHANGHAI, 2026, 6, 30, 18)) == at(SHANGHAI, 2026, 8, 10, 9)


def test_always_open_hours_move_nothing() -> None:
    t = at(SHANGHAI, 2026, 3, 10, 3)
    assert hours().next_open(t) is t
    assert hours("mon-sun 00:00-24:00").next_open(t) is t
    assert calling_hours([], [], [], "Asia/Shanghai") is None
    moved = calling_hours(["mon-sun 09:00-20:00"], [], [], "Asia/Shanghai")
    assert moved is not None and moved(t) == t.replace(hour=9)


def test_berlin_spring_forward() -> None:
    # Sunday 29 March 2026: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
    h = hours("sun 02:30-04:00", "mon-sat 09:00-17:00", zone="Europe/Berlin")
    night = at(BERLIN, 2026, 3, 29, 1, 30)
    # 02:30 never happens that night: the range opens when the clocks resume, 03:00 CEST.
    opened = h.next_open(night).astimezone(UTC)
    assert opened == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert opened.astimezone(BERLIN).hour == 3 and h.is_open(opened)
    assert not h.is_open(opened - timedelta(microseconds=1))
    # After the range: Monday 09:00 CEST (07:00 UTC).
    assert h.next_open(at(BERLIN, 2026, 3, 29, 4)) == datetime(2026, 3, 30, 7, tzinfo=UTC)
    # A range that opens after the jump is a plain wall time that day.
    assert hours("sun 08:00-09:00", zone="Europe/Berlin").next_open(night) == datetime(
        2026, 3, 29, 6, tzinfo=UTC)
    # Asked in UTC, answered in UTC.
    assert h.next_open(night.astimezone(UTC)) == opened


def test_berlin_fall_back() -> None:
    # Sunday 25 October 2026: 03:00 CEST goes back to 02:00 CET (01:00 UTC); 02:xx twice.
    h = hours("sun 02:30-04:00", zone="Europe/Berlin")
    # Before the first 02:30: the first one (CEST, 00:30 UTC). (An ambiguous wall time
    # compares unequal to any other zone's: compared in UTC.)
    first = h.next_open(at(BERLIN, 2026, 10, 25, 1))
    assert first.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    # Between the two (02:10 CET, the second passage, is wall-clock closed): the second
    # 02:30, in CET (01:30 UTC), not the first one, which is already past.
    second = at(BERLIN, 2026, 10, 25, 2, 10, fold=1)
    assert second.astimezone(UTC) == datetime(2026, 10, 25, 1, 10, tzinfo=UTC)
    assert h.next_open(second).astimezone(UTC) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert h.next_open(second.astimezone(UTC)) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    # Hours of a whole week later are a week of wall clock (one hour more of UTC).
    after = h.next_open(at(BERLIN, 2026, 10, 25, 4).astimezone(UTC))
    assert after == datetime(2026, 11, 1, 1, 30, tzinfo=UTC)


def test_new_york_transitions_with_the_usual_calling_hours() -> None:
    h = hours("mon-sun 09:00-20:00", zone="America/New_York")
    # Saturday night before spring forward (8 March 2026): 09:00 EDT is 13:00 UTC.
    assert h.next_open(at(NEW_YORK, 2026, 3, 7, 23)) == datetime(2026, 3, 8, 13, tzinfo=UTC)
    # Saturday night before fall back (1 November 2026): 09:00 EST is 14:00 UTC.
    assert h.next_open(at(NEW_YORK, 2026, 10, 31, 23)) == datetime(2026, 11, 1, 14,
                                                                   tzinfo=UTC)


def test_shanghai_has_no_clock_changes() -> None:
    h = hours("mon-sun 09:00-20:00")
    for month in range(1, 13):
        t = at(SHANGHAI, 2026, month, 1, 23)
        assert h.next_open(t) == datetime(2026, month, 2, 1, tzinfo=UTC)


def test_next_open_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        hours("mon-fri 09:00-17:00").next_open(datetime(2026, 3, 10, 3))
