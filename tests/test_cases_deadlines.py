"""Deadlines (working days, holidays, urgency), overdue cases and supervision leads."""

# Fixtures are imported from tests.cases_fixtures, and pytest injects them by parameter name:
# that is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from cases import (
    Action,
    CasesConfig,
    CaseStatus,
    CaseStore,
    DeadlineConfig,
    DeadlineRule,
    EventKind,
    SupervisionConfig,
    Urgency,
)
from tests.cases_fixtures import (  # noqa: F401
    DEPARTMENTS,
    Backend,
    FakeClock,
    backend,
    call_start,
    clocked,
    pg_url,
)

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
Clocked = tuple[CaseStore, FakeClock]


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


# -- pure calendar arithmetic ------------------------------------------------------------------

def test_working_days_skip_weekends() -> None:
    cal = DeadlineConfig()
    assert cal.add_working_days(sh(2026, 3, 10, 10), 2, SH) == sh(2026, 3, 12, 10)  # Tue -> Thu
    assert cal.add_working_days(sh(2026, 3, 13, 16), 1, SH) == sh(2026, 3, 16, 16)  # Fri -> Mon
    assert cal.add_working_days(sh(2026, 3, 12, 9), 5, SH) == sh(2026, 3, 19, 9)
    # From a weekend the clock starts at Monday 00:00: Monday is the first day.
    assert cal.add_working_days(sh(2026, 3, 14, 15), 1, SH) == sh(2026, 3, 17, 0)
    assert cal.add_working_days(sh(2026, 3, 15, 23, 59), 2, SH) == sh(2026, 3, 18, 0)
    assert cal.add_working_days(sh(2026, 3, 10, 10), 15, SH) == sh(2026, 3, 31, 10)


def test_holidays_and_make_up_days() -> None:
    # Labour Day 2026: 1-5 May off, Saturday 9 May worked instead (调休).
    cal = DeadlineConfig(holidays=frozenset(date(2026, 5, d) for d in range(1, 6)),
                         workdays=frozenset({date(2026, 5, 9)}))
    assert not cal.is_working_day(date(2026, 5, 4)) and cal.is_working_day(date(2026, 5, 9))
    assert cal.add_working_days(sh(2026, 4, 30, 10), 1, SH) == sh(2026, 5, 6, 10)
    assert cal.add_working_days(sh(2026, 4, 30, 10), 3, SH) == sh(2026, 5, 8, 10)
    assert cal.add_working_days(sh(2026, 4, 30, 10), 4, SH) == sh(2026, 5, 9, 10)  # Saturday
    assert cal.add_working_days(sh(2026, 5, 2, 10), 1, SH) == sh(2026, 5, 7, 0)


def test_time_of_day_kept_across_dst() -> None:
    cal = DeadlineConfig()
    start = datetime(2026, 3, 6, 9, 0, tzinfo=NY)  # Friday; clocks go forward on 8 March
    due = cal.add_working_days(start, 1, NY)
    assert due.astimezone(NY) == datetime(2026, 3, 9, 9, 0, tzinfo=NY)
    assert due - start == timedelta(days=3, hours=-1)


def test_rules_by_type_and_urgency() -> None:
    cal = DeadlineConfig()
    t = sh(2026, 3, 13, 16)  # Friday afternoon
    assert cal.deadline("consult", "normal", t, SH) == (sh(2026, 3, 17, 16).astimezone(UTC),
                                                        "consult: 2 working days")
    assert cal.deadline("help", "normal", t, SH)[0] == sh(2026, 3, 20, 16)
    assert cal.deadline("complaint", "normal", t, SH)[0] == sh(2026, 4, 3, 16)
    assert cal.deadline("report", "normal", t, SH)[0] == sh(2026, 4, 3, 16)
    assert cal.deadline("suggestion", "normal", t, SH)[0] == sh(2026, 4, 3, 16)
    assert cal.deadline(None, "normal", t, SH) == (sh(2026, 3, 20, 16).astimezone(UTC),
                                                   "untyped: 5 working days")
    assert cal.deadline("gossip", "whatever", t, SH)[1] == "untyped: 5 working days"
    # Urgency wins when sooner, and hours run through the weekend.
    assert cal.deadline("complaint", "urgent", t, SH) == (sh(2026, 3, 13, 18).astimezone(UTC),
                                                          "urgent: 2 h")
    assert cal.deadline("complaint", "critical", t, SH)[0] == sh(2026, 3, 13, 17)
    custom = DeadlineConfig(by_urgency={Urgency.URGENT: DeadlineRule(working_days=30)})
    assert custom.deadline("consult", "urgent", t, SH)[1] == "consult: 2 working days"


def test_config_validation() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        DeadlineRule(hours=2, working_days=1)
    with pytest.raises(ValidationError, match="exactly one"):
        DeadlineRule()
    with pytest.raises(ValidationError, match="both holiday and working day"):
        DeadlineConfig(holidays=frozenset({date(2026, 5, 9)}),
                       workdays=frozenset({date(2026, 5, 9)}))
    with pytest.raises(ValidationError):
        DeadlineConfig(weekend=frozenset(range(7)))
    # What a TOML table gives: strings for codes and dates.
    cfg = CasesConfig.model_validate({"deadlines": {
        "by_type": {"consult": {"working_days": 1}}, "holidays": ["2026-10-01"]}})
    assert cfg.deadlines.by_type["consult"].working_days == 1  # type: ignore[index]
    assert date(2026, 10, 1) in cfg.deadlines.holidays


# -- in the store ---------------------------------------------------------------------------------

async def test_deadline_at_creation_typing_and_dispatch(clocked: Clocked) -> None:
    store, clock = clocked
    v = await store.open_call_case(call_start("d.1"))
    created = clock.now
    assert v.deadline == sh(2026, 3, 17, 10) and v.deadline_from == created  # untyped, 5 days
    [ev] = await store.timeline(v.number)
    assert datetime.fromisoformat(str(ev.detail["deadline"])) == v.deadline

    clock.advance(minutes=3)
    v = await store.update_call_case("node-a", "d.1", actor="agent-7", case_type="consult")
    assert v.deadline == sh(2026, 3, 12, 10)  # still counted from the call
    last = (await store.timeline(v.number))[-1]
    assert (last.kind, last.actor, last.detail["rule"]) == (EventKind.DEADLINE_SET, "agent-7",
                                                            "consult: 2 working days")
    v = await store.update_call_case("node-a", "d.1", urgency="urgent")
    assert v.deadline == created + timedelta(hours=2)
    # An explicit deadline is taken as given.
    v = await store.update_call_case("node-a", "d.1", urgency="normal",
                                     deadline=sh(2026, 3, 20, 18))
    assert v.deadline == sh(2026, 3, 20, 18)
    n_events = len(await store.timeline(v.number))
    await store.update_call_case("node-a", "d.1", case_type="consult")  # unchanged: no event
    assert len(await store.timeline(v.number)) == n_events

    # Dispatch on Friday afternoon: the department gets its 2 working days from then.
    clock.now = sh(2026, 3, 13, 15).astimezone(UTC)
    v = await store.transition(v.number, Action.DISPATCH, actor="a", department="housing")
    assert (v.deadline, v.deadline_from) == (sh(2026, 3, 17, 15), clock.now)


async def test_overdue(clocked: Clocked) -> None:
    store, clock = clocked
    t0 = clock.now
    consult = await store.open_call_case(call_start("o.1"))
    await store.update_call_case("node-a", "o.1", case_type="consult")  # due Thu 12th 10:00
    urgent = await store.open_call_case(call_start("o.2", number=None))
    await store.update_call_case("node-a", "o.2", urgency="urgent")  # due 12:00 today
    done = await store.open_call_case(call_start("o.3", number=None))
    await store.update_call_case("node-a", "o.3", urgency="urgent")
    await store.transition(done.number, Action.CLOSE, actor="a")  # answered: never overdue

    assert await store.overdue(t0 + timedelta(hours=1)) == []
    assert [v.number for v in await store.overdue(t0 + timedelta(hours=3))] == [urgent.number]
    later = t0 + timedelta(days=3)
    assert [v.number for v in await store.overdue(later)] == [urgent.number, consult.number]
    clock.now = later
    assert [v.number for v in await store.overdue()] == [urgent.number, consult.number]

    # Replied cases are out of the handling clock; a reopened one is back in with a new one.
    await store.transition(consult.number, Action.DISPATCH, actor="a", department="housing")
    assert [v.number for v in await store.overdue()] == [urgent.number]
    await store.transition(consult.number, Action.START, actor="h")
    await store.transition(consult.number, Action.REPLY, actor="h")
    assert consult.number not in [v.number for v in await store.overdue(later + timedelta(days=30))]
    await store.transition(consult.number, Action.REVISIT, actor="cb", satisfaction=1)
    assert consult.number in [v.number for v in await store.overdue(later + timedelta(days=30))]


async def test_supervision_leads(backend: Backend) -> None:
    clock = FakeClock()
    config = CasesConfig(supervision=SupervisionConfig(repeat_complaints=3,
                                                       repeat_complaint_days=30))
    async with backend.store(clock=clock, config=config) as store:
        await store.load_departments(DEPARTMENTS)
        t0 = clock.now
        complaints = []
        for i, days_ago in enumerate((40, 25, 10, 1)):  # the first is outside the 30 days
            v = await store.open_call_case(call_start(f"c.{i}", at=t0 - timedelta(days=days_ago)))
            await store.update_call_case("node-a", f"c.{i}", case_type="complaint")
            complaints.append(v.number)
        for i in range(2):  # another caller: two complaints, below the threshold of three
            await store.open_call_case(call_start(f"x.{i}", number="13900139000"))
            await store.update_call_case("node-a", f"x.{i}", case_type="complaint")
        reopened = await store.open_call_case(call_start("r.1", number=None))
        await store.transition(reopened.number, Action.CLOSE, actor="a")
        await store.transition(reopened.number, Action.REOPEN, actor="a", reason="came back")

        leads = await store.supervision_leads(t0)
        overdue = [lead.number for lead in leads if lead.kind == "overdue"]
        # 15 working days: the complaints of 40 and 25 days ago are overdue, 10 days ago not.
        assert overdue == [complaints[0], complaints[1]]
        first = next(lead for lead in leads if lead.kind == "overdue")
        assert first.reason.startswith("overdue by ") and "with no department" in first.reason
        [reo] = [lead for lead in leads if lead.kind == "reopened"]
        assert reo.number == reopened.number and reo.reason == "reopened 1 time, now accepted"
        [rep] = [lead for lead in leads if lead.kind == "repeat_complaint"]
        assert rep.number == complaints[3] and rep.related == tuple(complaints[1:3])
        assert rep.reason == "3 complaints from the same caller within 30 days"
        assert [lead.kind for lead in leads] == ["overdue", "overdue", "reopened",
                                                 "repeat_complaint"]

        await store.transition(reopened.number, Action.CLOSE, actor="a")  # closed again
        assert "reopened" not in [lead.kind for lead in await store.supervision_leads(t0)]
        assert (await store.get(reopened.number)).status == CaseStatus.CLOSED  # type: ignore[union-attr]
