"""The case lifecycle: every allowed and every refused transition, on SQLite and PostgreSQL."""

# Fixtures are imported from tests.cases_fixtures, and pytest injects them by parameter name:
# that is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from cases import (
    Action,
    CaseNotFound,
    CaseStatus,
    CaseStore,
    ConcurrentUpdate,
    EventKind,
    InvalidTransition,
    UnknownDepartment,
)
from cases.lifecycle import RULES, allowed_actions
from tests.cases_fixtures import (  # noqa: F401
    Backend,
    FakeClock,
    backend,
    call_start,
    clocked,
    pg_url,
)

S, A = CaseStatus, Action
Clocked = tuple[CaseStore, FakeClock]

# The specification, written out independently of cases.lifecycle.RULES: (state, action) ->
# resulting state. Every pair not listed must be refused.
ALLOWED: dict[tuple[CaseStatus, Action], CaseStatus] = {
    (S.ACCEPTED, A.DISPATCH): S.DISPATCHED,
    (S.ACCEPTED, A.TRANSFER): S.TRANSFERRED,
    (S.ACCEPTED, A.CLOSE): S.CLOSED,
    (S.ACCEPTED, A.MERGE): S.MERGED,
    (S.DISPATCHED, A.REASSIGN): S.DISPATCHED,
    (S.DISPATCHED, A.START): S.PROCESSING,
    (S.DISPATCHED, A.RETURN): S.RETURNED,
    (S.DISPATCHED, A.MERGE): S.MERGED,
    (S.TRANSFERRED, A.REASSIGN): S.DISPATCHED,
    (S.TRANSFERRED, A.START): S.PROCESSING,
    (S.TRANSFERRED, A.RETURN): S.RETURNED,
    (S.TRANSFERRED, A.MERGE): S.MERGED,
    (S.PROCESSING, A.REASSIGN): S.DISPATCHED,
    (S.PROCESSING, A.RETURN): S.RETURNED,
    (S.PROCESSING, A.REPLY): S.REPLIED,
    (S.PROCESSING, A.MERGE): S.MERGED,
    (S.RETURNED, A.DISPATCH): S.DISPATCHED,
    (S.RETURNED, A.TRANSFER): S.TRANSFERRED,
    (S.RETURNED, A.MERGE): S.MERGED,
    (S.REPLIED, A.REVISIT): S.REVISITED,  # satisfied; unsatisfied reopens (tested below)
    (S.REPLIED, A.CLOSE): S.CLOSED,
    (S.REPLIED, A.MERGE): S.MERGED,
    (S.REVISITED, A.CLOSE): S.CLOSED,
    (S.REVISITED, A.REOPEN): S.PROCESSING,
    (S.REVISITED, A.MERGE): S.MERGED,
    (S.CLOSED, A.REOPEN): S.ACCEPTED,  # closed on the call, never with a department
}

# How to bring a fresh case into each state.
PATHS: dict[CaseStatus, list[tuple[Action, dict[str, Any]]]] = {
    S.ACCEPTED: [],
    S.DISPATCHED: [(A.DISPATCH, {"department": "housing"})],
    S.TRANSFERRED: [(A.TRANSFER, {"department": "housing"})],
    S.PROCESSING: [(A.DISPATCH, {"department": "housing"}), (A.START, {})],
    S.RETURNED: [(A.DISPATCH, {"department": "housing"}), (A.RETURN, {"reason": "not ours"})],
    S.REPLIED: [(A.DISPATCH, {"department": "housing"}), (A.START, {}),
                (A.REPLY, {"reason": "fixed the pipe"})],
    S.REVISITED: [(A.DISPATCH, {"department": "housing"}), (A.START, {}),
                  (A.REPLY, {"reason": "fixed"}), (A.REVISIT, {"satisfaction": 5})],
    S.CLOSED: [(A.CLOSE, {"reason": "answered on the call"})],
    S.MERGED: [(A.MERGE, {"master": "MASTER"})],
}

# Arguments that make each action valid apart from the state.
ARGS: dict[Action, dict[str, Any]] = {
    A.DISPATCH: {"department": "water-co"},
    A.TRANSFER: {"department": "water-co"},
    A.REASSIGN: {"department": "water-co"},
    A.START: {},
    A.RETURN: {"reason": "belongs to the district"},
    A.REPLY: {"reason": "repaired on 11 March"},
    A.REVISIT: {"satisfaction": 4},
    A.CLOSE: {"reason": "done"},
    A.REOPEN: {"reason": "caller says it leaks again"},
    A.MERGE: {"master": "MASTER"},
}


async def new_case(store: CaseStore, tag: str) -> str:
    return (await store.open_call_case(call_start(tag, number=None))).number


async def drive(store: CaseStore, number: str, state: CaseStatus, master: str) -> None:
    for action, kw in PATHS[state]:
        args: dict[str, Any] = {k: master if v == "MASTER" else v for k, v in kw.items()}
        await store.transition(number, action, actor="setup", **args)


def test_specification_matches_rules() -> None:
    """The table above and the module's rules agree (a cheap check before the slow one)."""
    for state, action in itertools.product(S, A):
        allowed = action in allowed_actions(state)
        assert allowed == ((state, action) in ALLOWED), (state, action)
    assert set(RULES) == set(A)


async def test_every_transition_allowed_or_refused(clocked: Clocked) -> None:
    store, _ = clocked
    master = await new_case(store, "master")
    for state in S:
        # Refusals change nothing, so one case per state serves them all; each allowed
        # transition gets a fresh case of its own.
        probe = await new_case(store, f"probe-{state}")
        await drive(store, probe, state, master)
        before = await store.get(probe)
        assert before is not None and before.status == state
        events_before = len(await store.timeline(probe))
        for action in A:
            kw: dict[str, Any] = {k: master if v == "MASTER" else v
                                  for k, v in ARGS[action].items()}
            if (state, action) in ALLOWED:
                await check_allowed(store, state, action, kw, master)
                continue
            with pytest.raises(InvalidTransition) as err:
                await store.transition(probe, action, actor="agent-7", **kw)
            e = err.value
            assert (e.number, e.state, e.action) == (probe, state.value, action.value)
            assert e.allowed == tuple(a.value for a in A if (state, a) in ALLOWED)
            assert state.value in str(e) and action.value in str(e)
            for a in e.allowed:
                assert a in str(e)
            if not e.allowed:
                assert "final" in str(e)
        # Nothing half-applied by any refusal.
        assert await store.get(probe) == before
        assert len(await store.timeline(probe)) == events_before


async def check_allowed(store: CaseStore, state: CaseStatus, action: Action,
                        kw: dict[str, Any], master: str) -> None:
    number = await new_case(store, f"{state}-{action}")
    await drive(store, number, state, master)
    before = await store.get(number)
    assert before is not None
    after = await store.transition(number, action, actor="agent-7", **kw)
    assert after.status == ALLOWED[state, action], (state, action)
    assert after.version > before.version
    last = (await store.timeline(number))[-1]
    assert last.kind == EventKind.TRANSITION and last.actor == "agent-7"
    assert last.detail["action"] == action.value
    assert (last.detail["from"], last.detail["to"]) == (state.value, after.status)
    assert last.detail["reason"] == kw.get("reason")


async def test_full_path_and_timeline(clocked: Clocked) -> None:
    store, clock = clocked
    n = await new_case(store, "p")
    steps: list[tuple[Action, dict[str, Any]]] = [
        (A.DISPATCH, {"department": "310101", "reason": "district matter"}),
        (A.RETURN, {"reason": "a water-company pipe"}),
        (A.TRANSFER, {"department": "water-co"}),
        (A.REASSIGN, {"department": "310101001", "reason": "street-level repair"}),
        (A.START, {}),
        (A.REPLY, {"reason": "repaired"}),
        (A.REVISIT, {"satisfaction": 5}),
        (A.CLOSE, {}),
    ]
    for action, kw in steps:
        clock.advance(hours=1)
        await store.transition(n, action, actor="agent-1", **kw)
    v = await store.get(n)
    assert v is not None
    assert (v.status, v.department, v.satisfaction) == (S.CLOSED, "310101001", 5)
    assert v.closed_at == clock.now and v.replied_at is not None and v.reopen_count == 0
    transitions = [e for e in await store.timeline(n) if e.kind == EventKind.TRANSITION]
    assert [e.detail["to"] for e in transitions] == [
        "dispatched", "returned", "transferred", "dispatched", "processing", "replied",
        "revisited", "closed"]
    assert transitions[1].detail["department"] == "310101"  # who sent it back
    assert transitions[3].detail["previous_department"] == "water-co"
    assert [e.at for e in transitions] == sorted(e.at for e in transitions)


async def test_unsatisfied_callback_reopens(clocked: Clocked) -> None:
    store, clock = clocked
    n = await new_case(store, "u")
    await drive(store, n, S.REPLIED, "")
    clock.advance(days=1)
    v = await store.transition(n, A.REVISIT, actor="callback-team", satisfaction=2)
    assert (v.status, v.satisfaction, v.reopen_count) == (S.PROCESSING, 2, 1)
    assert v.department == "housing" and v.deadline_from == clock.now
    last = [e for e in await store.timeline(n) if e.kind == EventKind.TRANSITION][-1]
    assert last.detail["to"] == "processing" and last.detail["reopen_count"] == 1
    # Handled again, then a satisfied callback.
    await store.transition(n, A.REPLY, actor="housing", reason="replaced the pipe")
    v = await store.transition(n, A.REVISIT, actor="callback-team", satisfaction=3)
    assert (v.status, v.satisfaction, v.reopen_count) == (S.REVISITED, 3, 1)


async def test_reopen_after_close(clocked: Clocked) -> None:
    store, _ = clocked
    n = await new_case(store, "r")
    await drive(store, n, S.REVISITED, "")
    await store.transition(n, A.CLOSE, actor="a")
    v = await store.transition(n, A.REOPEN, actor="a", reason="leaks again")
    assert (v.status, v.department, v.reopen_count, v.closed_at) == (
        S.PROCESSING, "housing", 1, None)


async def test_merge(clocked: Clocked) -> None:
    store, _ = clocked
    master, dup, other = [await new_case(store, t) for t in ("m", "d", "o")]
    await store.transition(master, A.DISPATCH, actor="a", department="water-co")
    v = await store.transition(dup, A.MERGE, actor="a", master=master, reason="same burst main")
    assert (v.status, v.merged_into) == (S.MERGED, master) and v.closed_at is not None
    m = await store.get(master)
    assert m is not None and m.status == S.DISPATCHED and m.priority == 1
    merged_in = (await store.timeline(master))[-1]
    assert merged_in.kind == EventKind.MERGED_IN
    assert merged_in.detail == {"duplicate": dup, "reason": "same burst main"}
    # Merges do not chain, nor point at themselves or at nothing.
    with pytest.raises(ValueError, match=f"merged into {master}"):
        await store.transition(other, A.MERGE, actor="a", master=dup)
    with pytest.raises(ValueError, match="itself"):
        await store.transition(other, A.MERGE, actor="a", master=other)
    with pytest.raises(CaseNotFound):
        await store.transition(other, A.MERGE, actor="a", master="20990101000001")
    for action in A:  # merged is final
        with pytest.raises(InvalidTransition, match="final"):
            await store.transition(dup, action, actor="a", **ARGS[action] | (
                {"master": master} if action is A.MERGE else {}))


BAD_ARGUMENTS: list[tuple[Any, dict[str, Any], str]] = [
    (A.DISPATCH, {}, "needs a department"),
    (A.DISPATCH, {"department": "water-co", "satisfaction": 3}, "only for revisit"),
    (A.CLOSE, {"department": "water-co"}, "department is only for"),
    (A.CLOSE, {"master": "20260310000001"}, "only for merge"),
    (A.MERGE, {}, "needs the master"),
    ("fly", {}, "unknown action"),
]


async def test_bad_arguments(clocked: Clocked) -> None:
    store, _ = clocked
    n = await new_case(store, "b")
    for action, kw, match in BAD_ARGUMENTS:
        with pytest.raises(ValueError, match=match):
            await store.transition(n, action, actor="a", **kw)


async def test_bad_arguments_in_later_states(clocked: Clocked) -> None:
    store, _ = clocked
    n = await new_case(store, "b2")
    with pytest.raises(ValueError, match="actor"):
        await store.transition(n, A.DISPATCH, actor=" ", department="water-co")
    with pytest.raises(UnknownDepartment, match="nowhere"):
        await store.transition(n, A.DISPATCH, actor="a", department="nowhere")
    with pytest.raises(UnknownDepartment, match="inactive"):
        await store.transition(n, A.DISPATCH, actor="a", department="old-office")
    await store.transition(n, A.DISPATCH, actor="a", department="water-co")
    with pytest.raises(ValueError, match="already with water-co"):
        await store.transition(n, A.REASSIGN, actor="a", department="water-co")
    with pytest.raises(ValueError, match="return needs a reason"):
        await store.transition(n, A.RETURN, actor="a", reason="  ")
    await store.transition(n, A.START, actor="a")
    await store.transition(n, A.REPLY, actor="a")
    with pytest.raises(ValueError, match="satisfaction score"):
        await store.transition(n, A.REVISIT, actor="a")
    for bad in (0, 6, True):
        with pytest.raises(ValueError, match="1..5"):
            await store.transition(n, A.REVISIT, actor="a", satisfaction=bad)
    with pytest.raises(ValueError, match="without a callback"):
        await store.transition(n, A.CLOSE, actor="a")
    with pytest.raises(CaseNotFound):
        await store.transition("20990101000001", A.CLOSE, actor="a")
    v = await store.get(n)
    assert v is not None and v.status == S.REPLIED  # none of the refusals changed anything


async def test_concurrent_transitions_one_wins(clocked: Clocked, backend: Backend) -> None:
    store, _ = clocked
    n = await new_case(store, "race")
    results = await asyncio.gather(
        *(store.transition(n, A.DISPATCH, actor=f"agent-{i}", department="housing")
          for i in range(20)), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, InvalidTransition) for r in results if isinstance(r, BaseException))
    kinds = [e.kind for e in await store.timeline(n)]
    assert kinds.count(EventKind.TRANSITION) == 1
    # Two processes (two engines): still one winner.
    async with backend.store() as other:
        n2 = await new_case(store, "race2")
        results = await asyncio.gather(
            *(s.transition(n2, A.CLOSE, actor="a") for s in (store, other) for _ in range(5)),
            return_exceptions=True)
        assert sum(not isinstance(r, BaseException) for r in results) == 1


async def test_crossed_merges_do_not_deadlock(clocked: Clocked) -> None:
    store, _ = clocked
    for round_ in range(3):
        a, b = await new_case(store, f"x{round_}"), await new_case(store, f"y{round_}")
        results = await asyncio.gather(store.transition(a, A.MERGE, actor="1", master=b),
                                       store.transition(b, A.MERGE, actor="2", master=a),
                                       return_exceptions=True)
        ok = [r for r in results if not isinstance(r, BaseException)]
        assert len(ok) == 1, results
        assert all(isinstance(r, InvalidTransition | ValueError)
                   for r in results if isinstance(r, BaseException))


async def test_expected_version(clocked: Clocked) -> None:
    store, _ = clocked
    n = await new_case(store, "v")
    seen = await store.get(n)
    assert seen is not None
    await store.transition(n, A.DISPATCH, actor="a", department="housing",
                           expected_version=seen.version)
    with pytest.raises(ConcurrentUpdate, match="reload"):
        await store.transition(n, A.START, actor="b", expected_version=seen.version)
