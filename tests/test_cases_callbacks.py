"""Callbacks owed (回拨): which calls the centre owes a call back, in due order, and settling
them (reached, no answer, given up), under concurrency, on SQLite and PostgreSQL."""

# Fixtures are imported from tests.cases_fixtures, and pytest injects them by parameter name:
# that is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cases import (
    CallbackResult,
    CaseNotFound,
    CaseStore,
    ConcurrentUpdate,
    EventKind,
    Outcome,
)
from ivr.menus.hours import OpeningHours
from tests.cases_fixtures import (  # noqa: F401
    Backend,
    FakeClock,
    backend,
    call_start,
    clocked,
    pg_url,
)

Clocked = tuple[CaseStore, FakeClock]
HALF_HOUR = timedelta(minutes=30)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def sh(day: int, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    """A time in March 2026, Shanghai (the fake clock's zone and month)."""
    return datetime(2026, 3, day, hour, minute, second, micro, tzinfo=SHANGHAI)


@pytest.fixture
async def nightly(backend: Backend) -> AsyncIterator[Clocked]:
    """A store that calls citizens back from 09:00 to 20:00 (Shanghai), on a fake clock."""
    clock = FakeClock(sh(10, 10))
    hours = OpeningHours.of(["mon-sun 09:00-20:00"], [], [], "Asia/Shanghai")
    s = backend.store(clock=clock, calling_hours=hours.next_open)
    await s.open()
    try:
        yield s, clock
    finally:
        await s.close()


async def ended(store: CaseStore, call_id: str, outcome: Outcome, at: datetime, *,
                number: str | None = "13800138000", topic: str | None = None) -> str:
    case = await store.open_call_case(call_start(call_id, number, at - timedelta(minutes=2)))
    if topic is not None:
        await store.update_call_case("node-a", call_id, topic=topic, queue=topic)
    await store.finish_call("node-a", call_id, outcome, at, wait_s=60)
    return case.number


async def test_lists_exactly_the_owed_callbacks_in_due_order(clocked: Clocked) -> None:
    store, clock = clocked
    t0 = clock.now - timedelta(minutes=35)
    # Hung up in another order than they were due; only abandoned calls and asked callbacks
    # (queue key, after-hours message) are owed a call.
    late = await ended(store, "late", Outcome.ABANDONED, t0 + timedelta(minutes=20),
                       topic="water")
    first = await ended(store, "first", Outcome.CALLBACK, t0, number="anonymous")
    await ended(store, "answered", Outcome.ANSWERED, t0 + timedelta(minutes=5))
    await ended(store, "self", Outcome.SELF_SERVICE, t0 + timedelta(minutes=6))
    await store.open_call_case(call_start("still-talking"))
    middle = await ended(store, "middle", Outcome.ABANDONED, t0 + timedelta(minutes=10),
                         number="02161234567")

    owed = await store.callbacks_owed()
    assert [c.number for c in owed] == [first, middle, late]
    assert [c.due for c in owed] == [t0 + HALF_HOUR, t0 + timedelta(minutes=40),
                                     t0 + timedelta(minutes=50)]
    assert [c.caller_masked for c in owed] == ["", "021****4567", "138****8000"]
    assert [c.reason for c in owed] == ["callback", "abandoned", "abandoned"]
    assert [c.attempts for c in owed] == [0, 0, 0]
    assert {c.state for c in owed} == {"open"}
    assert (owed[2].topic, owed[2].queue) == ("water", "water")
    assert owed[2].created_at == t0 + timedelta(minutes=18)
    # Due 30 min after each hang-up: 5 min ago, in 5 and in 15 min from the clock's now.
    assert [c.overdue for c in owed] == [True, False, False]
    counts = await store.callback_counts()
    assert (counts.owed, counts.overdue) == (3, 1)
    assert await store.callback_counts(clock.now + timedelta(hours=1)) == type(counts)(3, 3)
    # Pages of the same order.
    pages = [await store.callbacks_owed(limit=2, offset=o) for o in (0, 2, 4)]
    assert [[c.number for c in p] for p in pages] == [[first, middle], [late], []]
    with pytest.raises(ValueError, match="limit"):
        await store.callbacks_owed(limit=0)


async def test_settling_closes_the_callback_on_the_record(clocked: Clocked) -> None:
    store, clock = clocked
    a = await ended(store, "a", Outcome.ABANDONED, clock.now - timedelta(minutes=40))
    b = await ended(store, "b", Outcome.ABANDONED, clock.now - timedelta(minutes=35))
    case_before = await store.get(a)

    done = await store.settle_callback(a, "reached", actor="web:op1", note="问题已解答",
                                       seen_attempts=0)
    assert (done.state, done.settled_by, done.attempts, done.overdue) == (
        "reached", "web:op1", 0, False)
    gave_up = await store.settle_callback(b, CallbackResult.GIVEN_UP, actor="web:op2")
    assert gave_up.state == "given_up"
    assert await store.callbacks_owed() == []
    assert (await store.callback_counts()).owed == 0
    again = await store.callback(a)
    assert again is not None and again.state == "reached" and again.settled_by == "web:op1"
    assert again.due == done.due == clock.now - timedelta(minutes=10)

    [event] = [e for e in await store.timeline(a) if e.kind == EventKind.CALLBACK_DONE]
    assert (event.actor, event.detail["result"], event.detail["note"]) == (
        "web:op1", "reached", "问题已解答")
    assert event.at == clock.now
    # The case's own fields are untouched: an open case form saves on its version.
    assert await store.get(a) == case_before


async def test_no_answer_is_an_attempt_that_moves_the_due_time(clocked: Clocked) -> None:
    store, clock = clocked
    a = await ended(store, "a", Outcome.ABANDONED, clock.now - timedelta(minutes=50))
    b = await ended(store, "b", Outcome.ABANDONED, clock.now - timedelta(minutes=45))
    assert [c.number for c in await store.callbacks_owed()] == [a, b]

    tried = await store.settle_callback(a, "no_answer", actor="web:op1", seen_attempts=0)
    assert (tried.state, tried.attempts, tried.due) == ("open", 1, clock.now + HALF_HOUR)
    # Due again half an hour after the attempt: now behind b, and no longer overdue.
    owed = await store.callbacks_owed()
    assert [(c.number, c.attempts, c.overdue) for c in owed] == [(b, 0, True), (a, 1, False)]
    assert owed[1].due == clock.now + HALF_HOUR
    assert (await store.callback_counts()).overdue == 1

    clock.advance(minutes=31)
    tried = await store.settle_callback(a, "no_answer", actor="web:op2", seen_attempts=1)
    assert tried.attempts == 2
    owed = await store.callbacks_owed()
    assert [(c.number, c.attempts) for c in owed] == [(b, 0), (a, 2)]
    assert owed[1].due == clock.now + HALF_HOUR
    done = await store.settle_callback(a, "given_up", actor="web:op2", seen_attempts=2,
                                       note="three tries")
    assert (done.state, done.attempts) == ("given_up", 2)
    attempts = [e for e in await store.timeline(a) if e.kind == EventKind.CALLBACK_ATTEMPT]
    assert [(e.actor, e.detail["attempt"]) for e in attempts] == [("web:op1", 1), ("web:op2", 2)]
    assert [c.number for c in await store.callbacks_owed()] == [b]


@pytest.mark.parametrize(("first", "second"), [("reached", "reached"),
                                               ("reached", "no_answer"),
                                               ("no_answer", "no_answer"),
                                               ("given_up", "no_answer")])
async def test_two_operators_settling_one_callback_one_is_refused(
        clocked: Clocked, backend: Backend, first: str, second: str) -> None:
    store, clock = clocked
    async with backend.store(clock=clock) as other:    # another process, its own engine
        for i, (x, y) in enumerate([(store, store), (store, other)]):
            n = await ended(store, f"race.{i}", Outcome.ABANDONED, clock.now)
            results = await asyncio.gather(
                x.settle_callback(n, first, actor="web:op1", seen_attempts=0),
                y.settle_callback(n, second, actor="web:op2", seen_attempts=0),
                return_exceptions=True)
            refused = [r for r in results if isinstance(r, BaseException)]
            assert len(refused) == 1 and isinstance(refused[0], ConcurrentUpdate), results
            assert "already settled" in str(refused[0]) or "changed meanwhile" in str(refused[0])
            kinds = [e.kind for e in await store.timeline(n)]
            written = (kinds.count(EventKind.CALLBACK_ATTEMPT)
                       + kinds.count(EventKind.CALLBACK_DONE))
            assert written == 1     # the refused settle left nothing on the record


async def test_the_same_request_again_writes_nothing_twice(clocked: Clocked) -> None:
    store, clock = clocked
    n = await ended(store, "retry", Outcome.ABANDONED, clock.now)
    one = await store.settle_callback(n, "no_answer", actor="web:op1", seen_attempts=0)
    assert await store.settle_callback(n, "no_answer", actor="web:op1",
                                       seen_attempts=0) == one
    done = await store.settle_callback(n, "reached", actor="web:op1", seen_attempts=1)
    assert await store.settle_callback(n, "reached", actor="web:op1", seen_attempts=1) == done
    with pytest.raises(ConcurrentUpdate, match="already settled: reached by web:op1"):
        await store.settle_callback(n, "given_up", actor="web:op1")
    with pytest.raises(ConcurrentUpdate, match="already settled"):
        await store.settle_callback(n, "reached", actor="web:op2")
    kinds = [e.kind for e in await store.timeline(n)]
    assert (kinds.count(EventKind.CALLBACK_ATTEMPT), kinds.count(EventKind.CALLBACK_DONE)) \
        == (1, 1)


async def test_refused_settles_change_nothing(clocked: Clocked) -> None:
    store, clock = clocked
    n = await ended(store, "bad", Outcome.ABANDONED, clock.now)
    answered = await ended(store, "ok", Outcome.ANSWERED, clock.now)
    before = await store.timeline(n)
    with pytest.raises(CaseNotFound, match="no case"):
        await store.settle_callback("20990101000001", "reached", actor="web:a")
    with pytest.raises(CaseNotFound, match="owes no callback"):
        await store.settle_callback(answered, "reached", actor="web:a")
    assert await store.callback(answered) is None
    for kw, match in [({"result": "maybe"}, "maybe"),
                      ({"note": "x" * 501}, "at most 500"),
                      ({"note": "a\x00b"}, "NUL"),
                      ({"actor": " "}, "actor"),
                      ({"seen_attempts": -1}, "seen_attempts")]:
        args = {"result": "reached", "actor": "web:a", **kw}
        with pytest.raises(ValueError, match=match):
            await store.settle_callback(n, **args)  # type: ignore[arg-type]
    with pytest.raises(ConcurrentUpdate, match="you saw 2"):
        await store.settle_callback(n, "reached", actor="web:a", seen_attempts=2)
    assert await store.timeline(n) == before
    assert [c.number for c in await store.callbacks_owed()] == [n]


async def test_a_caller_who_gets_through_is_not_called_back(clocked: Clocked) -> None:
    store, clock = clocked
    t0 = clock.now - timedelta(minutes=50)
    gave_up = await ended(store, "gave-up", Outcome.ABANDONED, t0)
    asked = await ended(store, "asked", Outcome.CALLBACK, t0 + timedelta(minutes=1))
    await store.settle_callback(asked, "no_answer", actor="web:op1")
    other = await ended(store, "other", Outcome.ABANDONED, t0 + timedelta(minutes=2),
                        number="02161234567")
    withheld = await ended(store, "withheld", Outcome.ABANDONED, t0 + timedelta(minutes=3),
                           number="anonymous")
    # The IVR answering the need, or another number getting through, settles nothing.
    await ended(store, "self", Outcome.SELF_SERVICE, t0 + timedelta(minutes=4))
    await ended(store, "stranger", Outcome.ANSWERED, t0 + timedelta(minutes=5),
                number="13900139000")
    await ended(store, "anon-served", Outcome.ANSWERED, t0 + timedelta(minutes=6),
                number="anonymous")
    assert [c.number for c in await store.callbacks_owed()] == [gave_up, other, withheld, asked]

    served = await ended(store, "served", Outcome.ANSWERED, t0 + timedelta(minutes=10))
    assert [c.number for c in await store.callbacks_owed()] == [other, withheld]
    for number, attempts in ((gave_up, 0), (asked, 1)):
        cb = await store.callback(number)
        assert cb is not None
        assert (cb.state, cb.settled_by, cb.attempts) == ("reached", "system", attempts)
        [done] = [e for e in await store.timeline(number) if e.kind == EventKind.CALLBACK_DONE]
        assert done.detail["by_case"] == served
        assert served in done.detail["note"]
    # An operator who had the list open is told, not allowed to record a second result.
    with pytest.raises(ConcurrentUpdate, match="already settled: reached by system"):
        await store.settle_callback(gave_up, "no_answer", actor="web:op2", seen_attempts=0)
    # A later call of the same citizen finds nothing left to settle.
    await ended(store, "again", Outcome.ANSWERED, t0 + timedelta(minutes=20))
    assert len([e for e in await store.timeline(gave_up)
                if e.kind == EventKind.CALLBACK_DONE]) == 1


async def overdue_agrees(store: CaseStore, at: datetime) -> list[bool]:
    """Each owed callback's ``overdue`` at ``at``, checked against the count."""
    flags = [c.overdue for c in await store.callbacks_owed(now=at)]
    counts = await store.callback_counts(at)
    assert (counts.owed, counts.overdue) == (len(flags), sum(flags)), at
    return flags


async def test_a_callback_owed_at_night_is_due_when_the_calling_hours_open(
        nightly: Clocked) -> None:
    store, clock = nightly
    clock.now = sh(10, 23, 1)
    n = await ended(store, "night", Outcome.ABANDONED, sh(10, 23))
    [cb] = await store.callbacks_owed()
    # Not 23:30, overdue all night: 09:00 the next morning, when the centre calls citizens.
    assert cb.due == sh(11, 9) and cb.due.utcoffset() == timedelta(0)
    [task] = [e for e in await store.timeline(n) if e.kind == EventKind.CALLBACK_TASK]
    assert datetime.fromisoformat(task.detail["due"]) == sh(11, 9)
    for at, overdue in ((sh(10, 23, 45), False), (sh(11, 8, 59), False), (sh(11, 9), False),
                        (sh(11, 9, 0, 0, 1), True), (sh(11, 9, 1), True)):
        assert await overdue_agrees(store, at) == [overdue], at
        cb = await store.callback(n, at)
        assert cb is not None and cb.overdue is overdue


async def test_an_attempt_late_in_the_day_is_due_next_morning(nightly: Clocked) -> None:
    store, clock = nightly
    n = await ended(store, "day", Outcome.ABANDONED, sh(10, 19, 10))
    clock.now = sh(10, 19, 50)
    tried = await store.settle_callback(n, "no_answer", actor="web:op1", seen_attempts=0)
    # Not 20:20, after the calling hours: the next morning.
    assert (tried.attempts, tried.due, tried.overdue) == (1, sh(11, 9), False)
    [attempt] = [e for e in await store.timeline(n) if e.kind == EventKind.CALLBACK_ATTEMPT]
    assert datetime.fromisoformat(attempt.detail["due"]) == sh(11, 9)
    assert await overdue_agrees(store, sh(10, 23)) == [False]
    assert await overdue_agrees(store, sh(11, 9, 1)) == [True]
    # Settled in the morning, the result records the due the attempt set.
    clock.now = sh(11, 9, 30)
    done = await store.settle_callback(n, "reached", actor="web:op1", seen_attempts=1)
    assert done.due == sh(11, 9)


async def test_counts_agree_with_the_list_across_the_night(nightly: Clocked) -> None:
    store, clock = nightly
    clock.now = sh(10, 23, 30)
    morning = await ended(store, "morning", Outcome.ABANDONED, sh(10, 10))      # due 10:30
    inside = await ended(store, "inside", Outcome.CALLBACK, sh(10, 19, 20))    # due 19:50
    edge = await ended(store, "edge", Outcome.ABANDONED, sh(10, 19, 30))       # due 20:00
    late = await ended(store, "late", Outcome.ABANDONED, sh(10, 19, 45))       # due 20:15
    night = await ended(store, "night", Outcome.ABANDONED, sh(10, 23))
    owed = await store.callbacks_owed()
    assert [c.number for c in owed] == [morning, inside, edge, late, night]
    # 20:00 is past the calling hours (09:00-20:00 ends before 20:00): the next morning.
    assert [c.due for c in owed] == [sh(10, 10, 30), sh(10, 19, 50), sh(11, 9), sh(11, 9),
                                     sh(11, 9)]
    assert await overdue_agrees(store, sh(10, 19, 55)) == [True, True, False, False, False]
    assert await overdue_agrees(store, sh(10, 23, 30)) == [True, True, False, False, False]
    assert await overdue_agrees(store, sh(11, 8, 59, 59)) == [True, True, False, False, False]
    assert await overdue_agrees(store, sh(11, 9, 0, 1)) == [True] * 5
    assert await overdue_agrees(store, sh(10, 10, 30)) == [False] * 5
    assert await overdue_agrees(store, sh(10, 10, 30, 0, 1)) == [True, False, False, False,
                                                                 False]
    # Days later (the boundary is looked for further back than a day): all of them.
    assert await overdue_agrees(store, sh(14, 12)) == [True] * 5


async def test_without_calling_hours_a_night_callback_is_due_at_night(
        clocked: Clocked) -> None:
    store, clock = clocked
    clock.now = sh(10, 23, 1)
    await ended(store, "night", Outcome.ABANDONED, sh(10, 23))
    [cb] = await store.callbacks_owed()
    assert cb.due == sh(10, 23, 30)
    assert await overdue_agrees(store, sh(10, 23, 30)) == [False]
    assert await overdue_agrees(store, sh(10, 23, 30, 0, 1)) == [True]


async def test_a_callback_owed_before_holidays_is_due_after_them(backend: Backend) -> None:
    clock = FakeClock(sh(10, 23, 1))
    hours = OpeningHours.of(["mon-sun 09:00-20:00"], [sh(d, 0).date() for d in (11, 12, 13)],
                            [], "Asia/Shanghai")
    store = backend.store(clock=clock, calling_hours=hours.next_open)
    await store.open()
    try:
        await ended(store, "eve", Outcome.ABANDONED, sh(10, 23))
        await ended(store, "eve-2", Outcome.ABANDONED, sh(10, 23, 10))
        assert [c.due for c in await store.callbacks_owed()] == [sh(14, 9)] * 2
        # Four nights and three closed days without an overdue callback, then both.
        assert await overdue_agrees(store, sh(14, 8, 59)) == [False, False]
        assert await overdue_agrees(store, sh(14, 9, 0, 0, 1)) == [True, True]
    finally:
        await store.close()
