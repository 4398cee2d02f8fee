"""Repeat callers: same number, same topic, within N days -> linked, higher priority."""

# Fixtures are imported from tests.cases_fixtures, and pytest injects them by parameter name:
# that is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

from datetime import timedelta

from cases import Action, CasesConfig, CaseStore, EventKind
from tests.cases_fixtures import (  # noqa: F401
    Backend,
    FakeClock,
    backend,
    call_start,
    clocked,
    pg_url,
)

Clocked = tuple[CaseStore, FakeClock]
NUMBER = "13800138000"


async def call(store: CaseStore, call_id: str, topic: str | None, number: str | None = NUMBER,
               days: float = 0, clock: FakeClock | None = None) -> str:
    assert clock is not None
    at = clock.now + timedelta(days=days)
    v = await store.open_call_case(call_start(call_id, number=number, at=at))
    if topic is not None:
        await store.update_call_case("node-a", call_id, topic=topic)
    return v.number


async def test_repeat_calls_link_and_raise_priority(clocked: Clocked) -> None:
    store, clock = clocked
    first = await call(store, "1", "water", days=-6, clock=clock)
    await call(store, "x1", "noise", days=-5, clock=clock)            # another topic
    await call(store, "x2", "water", number="13900139000", days=-5, clock=clock)  # another caller
    await call(store, "x3", "water", number=None, days=-5, clock=clock)  # anonymous
    second = await call(store, "2", "water", number="138 0013-8000", days=-1, clock=clock)

    v = await store.get(second)
    assert v is not None
    assert (v.related_to, v.repeat_count, v.priority, v.is_repeat) == (first, 1, 1, True)
    linked = (await store.timeline(second))[-1]
    assert linked.kind == EventKind.LINKED
    assert linked.detail == {"related_to": first, "repeat_count": 1, "topic": "water"}
    for n in (first, *[c.number for c in await store.find_cases(topics=["noise"])]):
        other = await store.get(n)
        assert other is not None and other.related_to is None and other.priority == 0

    third = await call(store, "3", "water", clock=clock)
    v = await store.get(third)
    assert v is not None and (v.related_to, v.repeat_count, v.priority) == (second, 2, 2)

    # Re-classified to a topic without history: unlinked again.
    v = await store.update_call_case("node-a", "3", topic="heating")
    assert (v.related_to, v.repeat_count, v.priority) == (None, 0, 0)
    assert (await store.timeline(third))[-1].detail["related_to"] is None


async def test_window_is_configurable(backend: Backend) -> None:
    clock = FakeClock()
    async with backend.store(clock=clock, config=CasesConfig(repeat_window_days=2)) as store:
        await call(store, "1", "water", days=-3, clock=clock)
        n = await call(store, "2", "water", clock=clock)
        assert (await store.get(n)).related_to is None  # type: ignore[union-attr]
        assert await store.repeat_of(NUMBER, "water") is not None  # itself, now in the window


async def test_repeat_of_for_the_router(clocked: Clocked) -> None:
    store, clock = clocked
    assert await store.repeat_of(NUMBER, "water") is None
    old = await call(store, "1", "water", days=-10, clock=clock)
    first = await call(store, "2", "water", days=-3, clock=clock)
    found = await store.repeat_of("138-0013-8000", "water")
    assert found is not None and found.number == first
    assert await store.repeat_of(NUMBER, "noise") is None
    assert (await store.repeat_of(NUMBER, "water", at=clock.now - timedelta(days=9))
            ).number == old  # type: ignore[union-attr]

    # The earlier case was merged as a duplicate: point at the case being worked on.
    master = await call(store, "m", None, number=None, days=-4, clock=clock)
    await store.transition(first, Action.MERGE, actor="a", master=master)
    assert (await store.repeat_of(NUMBER, "water")).number == master  # type: ignore[union-attr]
    new = await call(store, "3", "water", clock=clock)
    v = await store.get(new)
    assert v is not None and v.related_to == master and v.repeat_count == 1
