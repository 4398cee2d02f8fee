"""Masked views, audited reveals of the caller's number, the audit log."""

# Fixtures are imported from tests.cases_fixtures, and pytest injects them by parameter name:
# that is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

from datetime import timedelta

import pytest

from cases import CaseNotFound, CaseStore
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


async def test_views_are_masked(clocked: Clocked) -> None:
    store, _ = clocked
    v = await store.open_call_case(call_start("m.1"))
    await store.update_call_case("node-a", "m.1", topic="water")
    views = [v, await store.get(v.number), await store.get_by_call("node-a", "m.1"),
             *await store.list_cases(), *await store.find_cases(),
             *await store.history_for_number(NUMBER)]
    for view in views:
        assert view is not None and view.caller_masked == "138****8000"
        assert NUMBER not in view.model_dump_json() and NUMBER not in repr(view)
        assert not hasattr(view, "caller_number")


async def test_reveal_is_audited(clocked: Clocked, backend: Backend) -> None:
    store, clock = clocked
    a = await store.open_call_case(call_start("r.1"))
    b = await store.open_call_case(call_start("r.2", number=None))
    t0 = clock.now
    assert await store.reveal_number(a.number, actor="agent-7", reason="回拨 abandoned call") \
        == NUMBER
    clock.advance(minutes=5)
    assert await store.reveal_number(b.number, actor="sup-1", reason="identity check") is None
    clock.advance(minutes=5)
    assert await store.reveal_number(a.number, actor="sup-1", reason="retaliation report") \
        == NUMBER

    log = await store.audit_log()
    assert [(r.actor, r.case_number, r.reason) for r in log] == [
        ("sup-1", a.number, "retaliation report"), ("sup-1", b.number, "identity check"),
        ("agent-7", a.number, "回拨 abandoned call")]
    assert log[-1].at == t0 and log[-1].action == "reveal_number"
    assert [r.reason for r in await store.audit_log(case_number=a.number)] == [
        "retaliation report", "回拨 abandoned call"]
    assert [r.actor for r in await store.audit_log(actor="agent-7")] == ["agent-7"]
    window = await store.audit_log(since=t0 + timedelta(minutes=1),
                                   until=t0 + timedelta(minutes=6))
    assert [r.case_number for r in window] == [b.number]
    assert len(await store.audit_log(limit=1)) == 1
    # The audit trail itself holds no caller details.
    for row in await backend.raw("SELECT * FROM audit_log"):
        assert NUMBER not in " ".join(map(str, row))


async def test_reveal_needs_actor_and_reason(clocked: Clocked) -> None:
    store, _ = clocked
    v = await store.open_call_case(call_start("n.1"))
    for kw in ({"actor": "a", "reason": " "}, {"actor": "", "reason": "why"}):
        with pytest.raises(ValueError, match="actor|reason"):
            await store.reveal_number(v.number, **kw)
    with pytest.raises(CaseNotFound):
        await store.reveal_number("20990101000001", actor="a", reason="b")
    assert await store.audit_log() == []  # refused reveals showed nothing, logged nothing
