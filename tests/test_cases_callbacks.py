"""Callbacks owed (回拨): which calls the centre owes a call back, in due order, and settling
them (reached, no answer, given up), under concurrency, on SQLite and PostgreSQL."""

# Fixtures are imported from tests.cases_fixtures, and pytest injects them by parameter name:
# that is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from cases import (
    CallbackResult,
    CaseNotFound,
    CaseStore,
    ConcurrentUpdate,
    EventKind,
    Outcome,
)
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
