"""Counts and the hotspot warning (热点预警): the rule on synthetic counts, then on the store."""

# Fixtures are imported from tests.cases_fixtures, and pytest injects them by parameter name:
# that is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from cases import Action, CaseIntake, CaseStore
from cases.analysis import HotspotRule, detect_hotspots, poisson_tail
from tests.cases_fixtures import (  # noqa: F401
    Backend,
    FakeClock,
    backend,
    clocked,
    pg_url,
)

Clocked = tuple[CaseStore, FakeClock]


def test_poisson_tail() -> None:
    assert poisson_tail(0, 3.0) == 1.0
    assert math.isclose(poisson_tail(1, 1.0), 1 - math.exp(-1))
    # P(X >= 3 | 2) = 1 - e^-2 (1 + 2 + 2)
    assert math.isclose(poisson_tail(3, 2.0), 1 - math.exp(-2) * 5)
    far = poisson_tail(60, 2.0)  # far tail: tiny but not rounded to zero
    assert 0 < far < 1e-40
    assert poisson_tail(500, 450.0) < poisson_tail(480, 450.0) < 0.5


def test_hotspots_on_synthetic_counts() -> None:
    series = {
        ("water", "黄浦区"): [3, 4, 2, 3, 5, 3, 4, 15],            # a burst main: warn
        ("noise", "静安区"): [100, 110, 95, 105, 98, 102, 100, 130],  # busy, +30%: not news
        ("heating", "徐汇区"): [0, 0, 0, 0, 0, 0, 0, 3],            # too few to matter
        ("gas", "浦东新区"): [0, 0, 0, 0, 0, 0, 0, 6],              # from silence: warn
        ("road", "长宁区"): [3, 4, 2, 3, 5, 3, 4, 8],               # high but plausible
        ("parking", "虹口区"): [9],                                   # short: zeros before
    }
    warnings = detect_hotspots(series)
    # Most surprising first: 9 from silence, then the burst main, then 6 from silence.
    assert [(h.topic, h.district) for h in warnings] == [("parking", "虹口区"),
                                                         ("water", "黄浦区"),
                                                         ("gas", "浦东新区")]
    water = warnings[1]
    assert water.count == 15 and math.isclose(water.baseline, 24 / 7)
    assert water.p_value < 1e-4 and math.isclose(water.ratio, 15 / (24 / 7))
    assert warnings[2].baseline == 0 and warnings[2].ratio == math.inf
    # A looser rule lets the plausible rise through; a stricter minimum drops the small ones.
    loose = detect_hotspots(series, HotspotRule(alpha=0.05))
    assert ("road", "长宁区") in [(h.topic, h.district) for h in loose]
    strict = detect_hotspots(series, HotspotRule(min_count=10))
    assert [h.topic for h in strict] == ["water"]
    with pytest.raises(ValueError, match="expected 8"):
        detect_hotspots({("a", "b"): [1] * 9})


async def intake(store: CaseStore, i: int, at: datetime, topic: str, district: str) -> str:
    v = await store.open_case(CaseIntake(channel="web", submission_id=f"s{i}", topic=topic,
                                         district=district, submitted_at=at))
    return v.number


async def test_counts(clocked: Clocked) -> None:
    store, clock = clocked
    t0 = clock.now  # 10:00 in Shanghai
    made = []
    for i, (hours, topic, district) in enumerate([
            (0, "water", "黄浦区"), (0.5, "water", "黄浦区"), (1, "noise", "黄浦区"),
            (25, "water", "静安区"), (26, "noise", None)]):
        made.append(await intake(store, i, t0 + timedelta(hours=hours), topic, district or ""))
    await store.update_call_case("web", "s4", district=None)
    await store.transition(made[0], Action.DISPATCH, actor="a", department="water-co")
    await store.transition(made[1], Action.DISPATCH, actor="a", department="water-co")
    await store.transition(made[1], Action.START, actor="w")
    await store.transition(made[1], Action.REPLY, actor="w")
    await store.transition(made[1], Action.REVISIT, actor="cb", satisfaction=4)

    assert await store.counts("day") == {"2026-03-10": 3, "2026-03-11": 2}
    assert await store.counts("hour", until=t0 + timedelta(hours=24)) == {
        "2026-03-10 10:00": 2, "2026-03-10 11:00": 1}
    assert await store.counts("topic") == {"water": 3, "noise": 2}
    assert await store.counts("district") == {"黄浦区": 3, None: 1, "静安区": 1}
    assert await store.counts("department") == {None: 3, "water-co": 2}
    assert await store.counts("satisfaction") == {None: 4, "4": 1}
    assert await store.counts("topic", since=t0 + timedelta(hours=1)) == {"noise": 2, "water": 1}
    with pytest.raises(ValueError, match="cannot count by 'colour'"):
        await store.counts("colour")  # type: ignore[arg-type]


async def test_hotspots_in_the_store(clocked: Clocked) -> None:
    store, clock = clocked
    now, i = clock.now, 0
    for day in range(1, 8):  # a week of one or two water calls a day in 黄浦区
        for k in range(1 + day % 2):
            await intake(store, i, now - timedelta(days=day, hours=k + 1), "water", "黄浦区")
            i += 1
    for k in range(9):  # then nine within the last three hours
        await intake(store, i, now - timedelta(minutes=20 * k + 1), "water", "黄浦区")
        i += 1
    for k in range(2):  # and an ordinary day elsewhere
        await intake(store, i, now - timedelta(hours=k + 1), "noise", "静安区")
        i += 1

    [hot] = await store.hotspots()
    assert (hot.topic, hot.district, hot.count) == ("water", "黄浦区", 9)
    assert math.isclose(hot.baseline, 11 / 7)  # 2, 1, 2, 1, 2, 1, 2
    # A day earlier it was an ordinary week; with six-hour windows the burst stands out too.
    assert await store.hotspots(now - timedelta(days=1)) == []
    assert [h.topic for h in await store.hotspots(window=timedelta(hours=6))] == ["water"]
