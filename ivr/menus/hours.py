"""Opening hours: weekly ranges in the centre's time zone, holidays and make-up workdays.

A range is written the way a centre posts it on its door: ``"mon-fri 08:30-18:00"``,
``"sat,sun 09:00-12:00"``, ``"mon-sun 00:00-24:00"``. A holiday closes the whole day; a
make-up workday (调休: a weekend day worked instead of a holiday) is open with Monday's hours.
No ranges at all means always open (12345 and Seoul 120 answer around the clock).
``next_open`` gives the first open moment at or after a time (when a callback owed at night
falls due).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(?P<days>[a-z,\-]+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*"
                    r"(?P<end>\d{1,2}:\d{2})\s*$")


@dataclass(frozen=True, slots=True)
class WeeklyRange:
    days: frozenset[int]          # 0 = Monday
    start_min: int                # minutes after midnight, inclusive
    end_min: int                  # exclusive; 1440 = midnight at the end of the day

    def covers(self, weekday: int, minute: int) -> bool:
        return weekday in self.days and self.start_min <= minute < self.end_min


def _minutes(text: str, *, end: bool) -> int:
    h, m = (int(x) for x in text.split(":"))
    if m >= 60 or h > 24 or (h == 24 and (m or not end)):
        raise ValueError(f"{text!r} is not a time of day (00:00 to 24:00)")
    return h * 60 + m


def _days(text: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        first, sep, last = part.partition("-")
        if first not in DAYS or (sep and last not in DAYS):
            raise ValueError(f"{part!r}: days are {', '.join(DAYS)} (ranges like mon-fri)")
        a, b = DAYS.index(first), DAYS.index(last if sep else first)
        # "sat-mon" wraps around the week end.
        out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
    return frozenset(out)


def parse_range(text: str) -> WeeklyRange:
    """One ``"<days> HH:MM-HH:MM"`` entry; ValueError says what is wrong with it."""
    m = _RANGE.match(text.lower())
    if m is None:
        raise ValueError(f"{text!r} must look like 'mon-fri 08:30-18:00'")
    start = _minutes(m.group("start"), end=False)
    end = _minutes(m.group("end"), end=True)
    if end <= start:
        raise ValueError(f"{text!r}: the end must be after the start (a night shift is "
                         "two ranges, e.g. 'mon 20:00-24:00' and 'tue 00:00-08:00')")
    return WeeklyRange(_days(m.group("days")), start, end)


@dataclass(frozen=True, slots=True)
class OpeningHours:
    ranges: tuple[WeeklyRange, ...]
    holidays: frozenset[date]
    workdays: frozenset[date]
    zone: ZoneInfo

    @classmethod
    def of(cls, ranges: Iterable[str], holidays: Iterable[date], workdays: Iterable[date],
           timezone: str) -> OpeningHours:
        return cls(tuple(parse_range(r) for r in ranges), frozenset(holidays),
                   frozenset(workdays), ZoneInfo(timezone))

    @property
    def always_open(self) -> bool:
        return not self.ranges and not self.holidays

    def is_open(self, at: datetime) -> bool:
        """``at`` must be timezone-aware; it is read in the centre's zone."""
        if at.tzinfo is None:
            raise ValueError("opening hours need an aware time")
        local = at.astimezone(self.zone)
        day = local.date()
        if day in self.holidays:
            return False
        if not self.ranges:
            return True
        weekday = 0 if day in self.workdays else local.weekday()
        minute = local.hour * 60 + local.minute
        return any(r.covers(weekday, minute) for r in self.ranges)

    def next_open(self, at: datetime) -> datetime:
        """The first open moment at or after ``at`` (aware): ``at`` itself when open, else
        the start of the next open range, as an aware time in ``at``'s zone.

        The search walks day by day in the centre's zone. A weekday with a range is open
        every week unless a holiday (or a make-up workday, which has Monday's hours) closes
        it, so 7 × (1 + holidays + workdays) days always reach an open day. On a day the
        clocks change, a range that starts in the skipped hour opens when the clocks resume,
        and one that starts in the repeated hour opens at its first passage not before ``at``.
        """
        if self.is_open(at):
            return at
        after = at.astimezone(UTC)
        first = at.astimezone(self.zone).date()
        for offset in range(7 * (1 + len(self.holidays) + len(self.workdays)) + 1):
            day = first + timedelta(days=offset)
            if day in self.holidays:
                continue
            weekday = 0 if day in self.workdays else day.weekday()
            starts = sorted({r.start_min for r in self.ranges if weekday in r.days}
                            if self.ranges else {0})
            for start in starts:
                for fold in (0, 1):     # a wall time passed twice (clocks back): both
                    local = datetime.combine(day, time_of(start), self.zone).replace(
                        fold=fold)
                    # In UTC: aware times of one zone compare by their wall clock.
                    moment = local.astimezone(UTC)
                    if moment.astimezone(self.zone).time() != local.time():
                        moment = self._resumed(local)   # skipped (clocks forward)
                    if moment >= after and self.is_open(moment):
                        return moment.astimezone(at.tzinfo)
        raise ValueError(f"no open moment found after {at.isoformat()}")  # pragma: no cover

    def _resumed(self, skipped: datetime) -> datetime:
        """The moment the clocks resume after jumping over the wall time ``skipped``: the
        zone's offset changes between ``skipped`` read with the offset after the jump and
        with the one before (an hour apart or so, on whole minutes)."""
        t = skipped.replace(fold=1).astimezone(UTC)
        end = skipped.replace(fold=0).astimezone(UTC)
        before = t.astimezone(self.zone).utcoffset()
        while t < end and t.astimezone(self.zone).utcoffset() == before:
            t += timedelta(minutes=1)
        return t


def calling_hours(ranges: Iterable[str], holidays: Iterable[date], workdays: Iterable[date],
                  timezone: str) -> Callable[[datetime], datetime] | None:
    """The ``next_open`` of these hours, for ``cases.CaseStore(calling_hours=...)``; None
    when they are always open (due times then stay as they are)."""
    hours = OpeningHours.of(ranges, holidays, workdays, timezone)
    return None if hours.always_open else hours.next_open


def time_of(minute: int) -> time:
    return time(0, 0) if minute >= 1440 else time(minute // 60, minute % 60)
