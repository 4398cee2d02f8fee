"""Editing a case by number (the console's form): the version check holds under concurrency,
on SQLite and PostgreSQL."""

# Fixtures are imported from tests.cases_fixtures, and pytest injects them by parameter name:
# that is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from cases import (
    CaseClosed,
    CaseIntake,
    CaseNotFound,
    CaseStore,
    ConcurrentUpdate,
    EventKind,
    InvalidTransition,
    UnknownDepartment,
)
from tests.cases_fixtures import (  # noqa: F401
    Backend,
    FakeClock,
    backend,
    call_start,
    clocked,
    pg_url,
    store,
)

Clocked = tuple[CaseStore, FakeClock]


async def test_concurrent_edits_of_one_version_do_not_both_pass(store: CaseStore) -> None:
    for i in range(5):
        case = await store.open_call_case(call_start(f"e.{i}"))
        results = await asyncio.gather(
            store.edit_case(case.number, {"description": "first"}, actor="web:a",
                            expected_version=case.version),
            store.edit_case(case.number, {"description": "second"}, actor="web:b",
                            expected_version=case.version),
            return_exceptions=True)
        refused = [r for r in results if isinstance(r, ConcurrentUpdate)]
        saved = [r for r in results if not isinstance(r, BaseException)]
        assert len(refused) == 1 and len(saved) == 1, results
        final = await store.get(case.number)
        assert final is not None and final.description == saved[0].description
        changes = [e for e in await store.timeline(case.number) if e.kind == EventKind.CHANGED]
        assert len(changes) == 1   # the refused edit left nothing on the record


async def test_a_field_changed_by_someone_else_is_not_overwritten(store: CaseStore) -> None:
    """Two editors with the case on screen: each saves only what they changed, with the
    value they saw. Edits of different fields both land; the second edit of one field is
    refused, naming it, and the first editor's text stays."""
    case = await store.open_call_case(call_start("e.base"))
    seen = {"description": case.description, "district": case.district, "urgency": "normal"}
    await store.edit_case(case.number, {"description": "notes of the supervisor"}, actor="web:sup",
                          base={"description": seen["description"]})
    # The call path writes meanwhile too: that refuses nothing.
    await store.update_call_case("node-a", "e.base", queue="water", topic="water")
    v = await store.edit_case(case.number, {"district": "黄浦区", "urgency": "urgent"},
                              actor="web:op", base=seen)
    assert (v.district, str(v.urgency), v.description) == ("黄浦区", "urgent",
                                                           "notes of the supervisor")
    with pytest.raises(ConcurrentUpdate, match="description of case .* was changed meanwhile "
                                               "\\(to 'notes of the supervisor'\\)"):
        await store.edit_case(case.number, {"description": "notes of the operator"},
                              actor="web:op", base=seen)
    after = await store.get(case.number)
    assert after is not None and after.description == "notes of the supervisor"
    assert after.version == v.version               # the refused edit wrote nothing
    # Saving what the other editor already wrote is no conflict; nor is a form's "" for
    # a field the row holds as NULL.
    same = await store.edit_case(case.number, {"description": "notes of the supervisor"},
                                 actor="web:op", base={"description": ""})
    assert same.description == "notes of the supervisor"
    c2 = await store.open_call_case(call_start("e.base2"))
    assert c2.topic is None
    t = await store.edit_case(c2.number, {"topic": "water"}, actor="web:op",
                              base={"topic": ""})
    assert t.topic == "water"


async def test_edit_case_by_number(store: CaseStore) -> None:
    case = await store.open_call_case(call_start("e.1"))
    v = await store.edit_case(case.number, {"urgency": "urgent", "district": "黄浦区"},
                              actor="web:a")
    assert (str(v.urgency), v.district, v.version) == ("urgent", "黄浦区", case.version + 1)
    with pytest.raises(CaseNotFound):
        await store.edit_case("20990101000001", {"district": "x"}, actor="web:a")
    with pytest.raises(ValueError, match="unknown case field"):
        await store.edit_case(case.number, {"colour": "red"}, actor="web:a")


async def test_an_action_refused_takes_the_field_changes_back(clocked: Clocked) -> None:
    store, _ = clocked
    case = await store.open_call_case(call_start("e.2"))
    before = await store.timeline(case.number)
    for action, department, error in [("dispatch", "no-such-dept", UnknownDepartment),
                                      ("reply", None, InvalidTransition),
                                      ("transfer", None, ValueError)]:
        with pytest.raises(error):
            await store.edit_case(case.number, {"urgency": "critical", "description": "x"},
                                  actor="web:a", action=action, department=department)
        assert await store.get(case.number) == case
        assert await store.timeline(case.number) == before
    done = await store.edit_case(case.number, {"urgency": "urgent"}, actor="web:a",
                                 action="dispatch", department="housing")
    assert (str(done.urgency), str(done.status)) == ("urgent", "dispatched")
    # The dispatch's deadline is the urgent one (the field was set first).
    assert done.deadline is not None and done.deadline - done.deadline_from <= timedelta(days=1)


async def test_closed_and_merged_cases_keep_their_fields(clocked: Clocked) -> None:
    store, _ = clocked
    closed = await store.open_call_case(call_start("c.1"))
    merged = await store.open_call_case(call_start("c.2"))
    await store.edit_case(closed.number, {"description": "done"}, actor="web:a", action="close")
    await store.transition(merged.number, "merge", actor="web:a", master=closed.number)
    for number in (closed.number, merged.number):
        seen = await store.get(number)
        with pytest.raises(CaseClosed, match="reopen"):
            await store.edit_case(number, {"description": "rewritten"}, actor="web:b")
        assert await store.get(number) == seen
    # Reopened (重办), it is handled again and edited like any open case.
    await store.transition(closed.number, "reopen", actor="web:a", reason="caller unhappy")
    v = await store.edit_case(closed.number, {"description": "second try"}, actor="web:b")
    assert v.description == "second try"


async def test_text_a_database_would_refuse_is_refused_on_both(clocked: Clocked) -> None:
    """NUL (PostgreSQL refuses it in text and JSON, SQLite keeps it) and lone surrogates (not
    Unicode): a ValueError naming the field, the same on both backends, nothing written."""
    store, _ = clocked
    case = await store.open_call_case(call_start("t.1"))
    for text in ("a\x00b", "\ud83d road"):
        with pytest.raises(ValueError, match="description"):
            await store.edit_case(case.number, {"description": text}, actor="web:a")
        with pytest.raises(ValueError, match="reason"):
            await store.transition(case.number, "close", actor="web:a", reason=text)
        with pytest.raises(ValueError, match="department"):
            await store.transition(case.number, "dispatch", actor="web:a", department=text)
        with pytest.raises(ValueError, match="reason"):
            await store.reveal_number(case.number, actor="web:a", reason=text)
        with pytest.raises(ValueError, match="address"):
            await store.open_case(CaseIntake(channel="web", submission_id="s.1", address=text))
    assert await store.get(case.number) == case
    assert await store.count() == 1 and await store.audit_log() == []


async def test_an_actor_must_fit_its_column(store: CaseStore) -> None:
    """PostgreSQL refuses an actor longer than its column, SQLite would keep it: both refuse
    it up front; the longest a web user's actor can be ("web:" + 60) is recorded whole."""
    case = await store.open_call_case(call_start("a.1"))
    longest = "web:" + "a" * 60
    v = await store.edit_case(case.number, {"district": "x"}, actor=longest)
    await store.reveal_number(case.number, actor=longest, reason="callback")
    assert (await store.timeline(case.number))[-1].actor == longest
    assert (await store.audit_log())[0].actor == longest
    with pytest.raises(ValueError, match="at most 64"):
        await store.edit_case(case.number, {"district": "y"}, actor=longest + "b")
    with pytest.raises(ValueError, match="at most 64"):
        await store.reveal_number(case.number, actor=longest + "b", reason="callback")
    assert await store.get(case.number) == v
