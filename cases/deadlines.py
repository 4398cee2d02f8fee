"""Handling deadlines (办理时限) per case type and urgency, counted in working days or hours.

A case's deadline is the earliest of the rule of its type (咨询 consult, 求助 help …) and, for
urgent cases, the rule of its urgency: an urgent complaint is due in hours, not in 15 working
days. Hour rules run around the clock (an emergency does not wait for Monday); working-day rules
skip weekends and holidays of the configured calendar, with make-up working days (调休: a
Saturday worked to bridge a holiday) counting as working days.

Counting working days: from a working day, N working days later at the same time of day; from a
weekend or holiday, the clock starts at midnight of the next working day, so a case accepted
on Saturday gets all of Monday as its first day. Times are the centre's local time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cases.codes import CaseType, Urgency


class DeadlineRule(BaseModel):
    """Exactly one of ``hours`` (wall clock) or ``working_days``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hours: float | None = Field(default=None, gt=0)
    working_days: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> DeadlineRule:
        if (self.hours is None) == (self.working_days is None):
            raise ValueError("a deadline rule has exactly one of hours or working_days")
        return self

    def describe(self) -> str:
        if self.hours is not None:
            return f"{self.hours:g} h"
        return f"{self.working_days} working day{'s' if self.working_days != 1 else ''}"


def _wd(n: int) -> DeadlineRule:
    return DeadlineRule(working_days=n)


def _default_by_type() -> dict[CaseType, DeadlineRule]:
    return {CaseType.CONSULT: _wd(2), CaseType.HELP: _wd(5), CaseType.COMPLAINT: _wd(15),
            CaseType.REPORT: _wd(15), CaseType.SUGGESTION: _wd(15)}


def _default_by_urgency() -> dict[Urgency, DeadlineRule]:
    return {Urgency.URGENT: DeadlineRule(hours=2), Urgency.CRITICAL: DeadlineRule(hours=1)}


class DeadlineConfig(BaseModel):
    """Deadline rules and the working calendar (e.g. ``[cases.deadlines]`` in the config)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    by_type: dict[CaseType, DeadlineRule] = Field(default_factory=_default_by_type)
    by_urgency: dict[Urgency, DeadlineRule] = Field(default_factory=_default_by_urgency)
    untyped: DeadlineRule = Field(default_factory=lambda: _wd(5))  # before the case is typed
    weekend: frozenset[int] = frozenset({5, 6})  # date.weekday(): Monday 0 … Sunday 6
    holidays: frozenset[date] = frozenset()      # public holidays (法定节假日)
    workdays: frozenset[date] = frozenset()      # make-up working days on a weekend (调休)

    @model_validator(mode="after")
    def _calendar_consistent(self) -> DeadlineConfig:
        both = self.holidays & self.workdays
        if both:
            raise ValueError("dates both holiday and working day: "
                             + ", ".join(sorted(d.isoformat() for d in both)))
        if not self.weekend <= set(range(7)) or len(self.weekend) == 7:
            raise ValueError("weekend: weekday numbers 0..6, not all seven")
        return self

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day not in self.holidays and day.weekday() not in self.weekend

    def next_working_day(self, day: date) -> date:
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def add_working_days(self, start: datetime, n: int, tz: ZoneInfo) -> datetime:
        """``n`` working days after ``start`` (aware), as an aware UTC datetime."""
        local = start.astimezone(tz)
        day, at = local.date(), local.time()
        if not self.is_working_day(day):
            day, at = self.next_working_day(day), time(0)
        for _ in range(n):
            day = self.next_working_day(day)
        # Built from wall-clock parts, so a DST change in between keeps the time of day.
        return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)

    def rules_for(self, case_type: str | None, urgency: str | None) -> list[tuple[str, DeadlineRule]]:
        """The rules that apply, each with a name for the timeline."""
        rules: list[tuple[str, DeadlineRule]] = []
        kind = _as(CaseType, case_type)
        if kind is not None and kind in self.by_type:
            rules.append((kind.value, self.by_type[kind]))
        else:
            rules.append(("untyped", self.untyped))
        level = _as(Urgency, urgency)
        if level is not None and level in self.by_urgency:
            rules.append((level.value, self.by_urgency[level]))
        return rules

    def deadline(self, case_type: str | None, urgency: str | None, start: datetime,
                 tz: ZoneInfo) -> tuple[datetime, str]:
        """The deadline counted from ``start`` and a description of the rule that set it."""
        best: tuple[datetime, str] | None = None
        for name, rule in self.rules_for(case_type, urgency):
            if rule.hours is not None:
                due = start.astimezone(UTC) + timedelta(hours=rule.hours)
            else:
                assert rule.working_days is not None
                due = self.add_working_days(start, rule.working_days, tz)
            if best is None or due < best[0]:
                best = (due, f"{name}: {rule.describe()}")
        assert best is not None  # rules_for always yields the type (or untyped) rule
        return best


E = TypeVar("E", CaseType, Urgency)


def _as(enum: type[E], value: str | None) -> E | None:
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        return None  # a code from a newer version: fall back to the general rule
