"""CaseStore behaviour, each test on SQLite and on PostgreSQL."""

# Fixtures are imported from tests.cases_fixtures, and pytest injects them by parameter name:
# that is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cases import (
    CallerNumberUnreadable,
    CallStart,
    CaseNotFound,
    CaseStatus,
    CaseStore,
    CaseStoreUnavailable,
    CaseType,
    EventKind,
    Outcome,
    SecretKeyMismatch,
)
from cases.errors import CaseStoreNotOpen
from tests.cases_fixtures import Backend, backend, pg_url, store  # noqa: F401

# Noon in Shanghai: far from midnight, so the number's date cannot flake.
T0 = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)
DAY = date(2026, 3, 10)
NUMBER = "13800138000"


def call(call_id: str, number: str | None = NUMBER, at: datetime = T0) -> CallStart:
    return CallStart(node="node-a", call_id=call_id, channel=f"PJSIP/trunk-{call_id}",
                     caller_number=number, caller_name="张三", dnid="12345", locale="zh-CN",
                     started_at=at)


async def test_open_call_case_creates_accepted_case(store: CaseStore) -> None:
    v = await store.open_call_case(call("1700000000.1"))
    assert v.number == "20260310000001"
    assert v.status is CaseStatus.ACCEPTED
    assert (v.node, v.call_id, v.channel) == ("node-a", "1700000000.1", "PJSIP/trunk-1700000000.1")
    assert v.caller_masked == "138****8000"
    assert (v.caller_name, v.dnid, v.locale) == ("张三", "12345", "zh-CN")
    assert v.created_at == T0 and v.created_at.tzinfo is not None
    assert v.outcome is None and v.ivr_path == () and v.urgency == "normal"
    assert NUMBER not in repr(v)  # a logged view does not leak the number
    assert await store.get(v.number) == v
    assert await store.get_by_call("node-a", "1700000000.1") == v
    assert await store.get("20260310000002") is None
    assert await store.get_by_call("node-b", "1700000000.1") is None
    [created] = await store.timeline(v.number)
    assert created.kind == EventKind.CREATED and NUMBER not in str(created.detail)


async def test_a_caller_id_too_long_for_its_column_still_opens_the_case(
        store: CaseStore) -> None:
    """Caller ID comes from the network (a trunk may send a 200-character name): the call
    gets its case with the text cut to fit, never no case at all."""
    v = await store.open_call_case(CallStart(
        node="node-a", call_id="1700000000.9", channel="PJSIP/" + "t" * 200,
        caller_number="1" * 80, caller_name="김" * 200, dnid="9" * 80, started_at=T0))
    assert v.caller_name == "김" * 128 and v.dnid == "9" * 64
    assert v.channel is not None and len(v.channel) == 128


async def test_open_call_case_is_idempotent(store: CaseStore) -> None:
    first = await store.open_call_case(call("1700000000.7"))
    await store.update_call_case("node-a", "1700000000.7", topic="water")
    # The AMI link dropped and came back: the same call is announced again, even concurrently.
    again = await asyncio.gather(*(
        store.open_call_case(call("1700000000.7", at=T0 + timedelta(seconds=30)))
        for _ in range(20)
    ))
    assert {v.number for v in again} == {first.number}
    assert all(v.topic == "water" and v.created_at == T0 for v in again)  # unchanged
    assert await store.count() == 1
    assert [e.kind for e in await store.timeline(first.number)] == ["created", "changed"]
    # The same Uniqueid on another Asterisk node is another call.
    other = await store.open_call_case(CallStart(node="node-b", call_id="1700000000.7",
                                                 started_at=T0))
    # Duplicates that lost a race rolled their number back: the sequence has no gap.
    assert other.number == "20260310000002"


async def test_update_records_each_change_on_the_timeline(store: CaseStore) -> None:
    v = await store.open_call_case(call("u.1"))
    answered = datetime(2026, 3, 10, 12, 0, 20, tzinfo=ZoneInfo("Asia/Shanghai"))
    v = await store.update_call_case(
        "node-a", "u.1", ivr_path=["welcome", {"menu": "main", "key": "2"}], topic="water_supply",
        topic_confidence=0.82, case_type="complaint", queue="utilities", answered_at=answered,
        agent="agent-007", wait_s=20, transcript="停水三天了", description="小区停水",
        district="黄浦区", urgency="urgent",
    )
    assert v.ivr_path == ("welcome", {"menu": "main", "key": "2"})
    assert (v.topic, v.topic_confidence, v.case_type) == ("water_supply", 0.82, CaseType.COMPLAINT)
    assert (v.queue, v.agent, v.wait_s, v.urgency) == ("utilities", "agent-007", 20.0, "urgent")
    assert v.answered_at == answered and v.answered_at.utcoffset() == timedelta(0)
    assert (v.transcript, v.description, v.district) == ("停水三天了", "小区停水", "黄浦区")
    assert await store.get(v.number) == v

    events = await store.timeline(v.number)
    changed = [e for e in events if e.kind == EventKind.CHANGED]
    assert [e.detail["field"] for e in changed] == [
        "ivr_path", "topic", "topic_confidence", "case_type", "queue", "answered_at", "agent",
        "wait_s", "transcript", "description", "district", "urgency"]
    assert changed[0].detail["value"] == ["welcome", {"menu": "main", "key": "2"}]
    assert changed[3].detail["value"] == "complaint"
    assert all(e.actor == "ivr" for e in changed)
    assert [e.at for e in events] == sorted(e.at for e in events)

    # Same values again: nothing changes, nothing recorded. A real change by an agent is.
    await store.update_call_case("node-a", "u.1", topic="water_supply", queue="utilities")
    await store.update_call_case("node-a", "u.1", actor="agent-007", topic="water_quality")
    after = await store.timeline(v.number)
    assert len(after) == len(events) + 1
    assert (after[-1].actor, after[-1].detail) == ("agent-007",
                                                   {"field": "topic", "value": "water_quality"})


async def test_update_validates(store: CaseStore) -> None:
    await store.open_call_case(call("v.1"))
    with pytest.raises(ValueError, match="unknown case field.*colour"):
        await store.update_call_case("node-a", "v.1", colour="red")
    with pytest.raises(ValueError, match="unknown case field.*status"):
        await store.update_call_case("node-a", "v.1", status="closed")  # lifecycle's job
    with pytest.raises(ValueError):
        await store.update_call_case("node-a", "v.1", topic_confidence=1.5)
    with pytest.raises(ValueError):
        await store.update_call_case("node-a", "v.1", case_type="gossip")
    with pytest.raises(ValueError):
        await store.update_call_case("node-a", "v.1", answered_at=datetime(2026, 3, 10, 4, 1))
    with pytest.raises(CaseNotFound):
        await store.update_call_case("node-a", "no-such-call", topic="x")
    with pytest.raises(CaseNotFound):
        await store.timeline("20260310999999")
    assert len(await store.timeline("20260310000001")) == 1  # nothing half-applied


async def test_finish_answered(store: CaseStore) -> None:
    v = await store.open_call_case(call("f.1"))
    ended = T0 + timedelta(minutes=5)
    v = await store.finish_call("node-a", "f.1", "answered", ended, wait_s=12.5, talk_s=270)
    assert (v.outcome, v.ended_at, v.wait_s, v.talk_s) == (Outcome.ANSWERED, ended, 12.5, 270.0)
    assert v.status == CaseStatus.ACCEPTED  # the call ended, the case goes on
    kinds = [e.kind for e in await store.timeline(v.number)]
    assert kinds == ["created", "call_ended"]


async def test_finish_abandoned_creates_callback_task(store: CaseStore) -> None:
    v = await store.open_call_case(call("f.2"))
    ended = T0 + timedelta(seconds=95)
    v = await store.finish_call("node-a", "f.2", Outcome.ABANDONED, ended, wait_s=90)
    assert (v.outcome, v.wait_s, v.talk_s) == ("abandoned", 90.0, None)
    events = await store.timeline(v.number)
    assert [e.kind for e in events] == ["created", "call_ended", "callback_task"]
    task = events[-1].detail
    assert task["reason"] == "abandoned" and task["state"] == "open"
    assert datetime.fromisoformat(str(task["due"])) == ended + timedelta(minutes=30)
    # A replayed hang-up (second channel, AMI reconnect) changes nothing.
    again = await store.finish_call("node-a", "f.2", "answered", ended + timedelta(seconds=5))
    assert again == v
    assert len(await store.timeline(v.number)) == 3


async def test_finish_validates(store: CaseStore) -> None:
    await store.open_call_case(call("f.3"))
    with pytest.raises(ValueError):
        await store.finish_call("node-a", "f.3", "vanished", T0)
    with pytest.raises(ValueError):
        await store.finish_call("node-a", "f.3", "answered", datetime(2026, 3, 10))
    with pytest.raises(ValueError):
        await store.finish_call("node-a", "f.3", "answered", T0, wait_s=-1)
    with pytest.raises(CaseNotFound):
        await store.finish_call("node-a", "nope", "answered", T0)


async def test_caller_number_not_in_raw_rows(store: CaseStore, backend: Backend) -> None:
    v = await store.open_call_case(call("p.1"))
    await store.update_call_case("node-a", "p.1", topic="noise", transcript="楼上装修太吵")
    await store.finish_call("node-a", "p.1", "abandoned", T0 + timedelta(minutes=1))
    for table in ("cases", "case_events", "case_counters"):
        rows = await backend.raw(f"SELECT * FROM {table}")
        assert rows, table
        for row in rows:
            for value in row:
                text = value.hex() if isinstance(value, bytes) else str(value)
                assert NUMBER not in text, (table, row)
                if isinstance(value, bytes | memoryview):
                    assert NUMBER.encode() not in bytes(value), (table, row)
    [(enc, digest)] = await backend.raw(
        "SELECT caller_number_enc, caller_number_hash FROM cases")
    assert enc is not None and len(digest) == 64
    if backend.sqlite_path is not None:  # the whole file, as a copied disk would show it
        assert NUMBER.encode() not in backend.file_bytes()
    assert await store.reveal_number(v.number, actor="test", reason="check") == NUMBER


async def test_anonymous_caller(store: CaseStore) -> None:
    for i, n in enumerate((None, "", "anonymous", "<unknown>")):
        v = await store.open_call_case(call(f"a.{i}", number=n))
        assert v.caller_masked == ""
        assert await store.reveal_number(v.number, actor="test", reason="check") is None


async def test_history_for_number(store: CaseStore) -> None:
    now = datetime.now(UTC)
    old = await store.open_call_case(call("h.0", at=now - timedelta(days=200)))
    mine = [await store.open_call_case(call(f"h.{i}", number=num, at=now - timedelta(days=10 - i)))
            for i, num in enumerate(["13800138000", "138 0013 8000", "138-0013-8000"], start=1)]
    await store.open_call_case(call("h.9", number="13900139000", at=now))
    await store.open_call_case(call("h.10", number=None, at=now))
    hist = await store.history_for_number("13800138000", days=90)
    assert [v.number for v in hist] == [v.number for v in reversed(mine)]  # newest first
    assert all(v.caller_masked == "138****8000" for v in hist)
    assert old.number in [v.number for v in await store.history_for_number(NUMBER, days=365)]
    assert len(await store.history_for_number(NUMBER, days=90, limit=2)) == 2
    assert await store.history_for_number("10086") == []


async def test_list_and_count_by_centre_day(store: CaseStore) -> None:
    # 23:30 UTC on the 9th is already the 10th in Shanghai; 15:59 UTC on the 10th still is.
    at = [datetime(2026, 3, 9, 15, 30, tzinfo=UTC), datetime(2026, 3, 9, 16, 30, tzinfo=UTC),
          datetime(2026, 3, 10, 15, 59, tzinfo=UTC), datetime(2026, 3, 10, 16, 0, tzinfo=UTC)]
    made = [await store.open_call_case(call(f"d.{i}", at=t)) for i, t in enumerate(at)]
    assert [v.number for v in made] == ["20260309000001", "20260310000001",
                                       "20260310000002", "20260311000001"]
    assert [v.number for v in await store.list_cases(DAY)] == ["20260310000002",
                                                                "20260310000001"]
    assert await store.count(DAY) == 2 and await store.count() == 4
    assert [v.number for v in await store.list_cases(limit=2)] == ["20260311000001",
                                                                   "20260310000002"]
    assert [v.number for v in await store.list_cases(limit=2, offset=2)] == [
        "20260310000001", "20260309000001"]
    assert await store.list_cases(date(2026, 1, 1)) == []


async def test_reopen_keeps_data_and_key_matters(backend: Backend) -> None:
    async with backend.store() as s:
        first = await s.open_call_case(call("r.1"))
    async with backend.store(timezone="America/New_York") as s:
        assert await s.get(first.number) == first
        # Same instant, another centre: 03:00 UTC is 11:00 on the 10th in Shanghai but still
        # 23:00 on the 9th in New York.
        at = T0 - timedelta(hours=1)
        assert (await s.open_call_case(call("r.2", at=at))).number == "20260309000001"
    # A node started with another key is refused at once, naming the setting: its numbers
    # would be unreadable on every other node (and theirs on it).
    other = backend.store(secret_key="a-different-secret-key")
    with pytest.raises(SecretKeyMismatch, match=r"database\.secret_key"):
        await other.open()
    with pytest.raises(CaseStoreNotOpen):
        await other.count()
    assert issubclass(SecretKeyMismatch, CallerNumberUnreadable)
    async with backend.store() as s:           # the right key still reads everything
        assert await s.get(first.number) == first


async def test_the_first_key_is_the_databases(backend: Backend) -> None:
    """Two nodes with different keys on a new database: the second is refused, though no
    case holds a number yet (the first recorded its key's fingerprint)."""
    async with backend.store(secret_key="the-first-key") as s:
        await s.open_call_case(call("k.1", number=None))
    with pytest.raises(SecretKeyMismatch):
        await backend.store(secret_key="another-key-entirely").open()
    async with backend.store(secret_key="the-first-key") as s:
        assert await s.count() == 1


async def test_a_database_from_before_the_key_check_is_checked_against_its_data(
        backend: Backend) -> None:
    """No fingerprint yet (a database older than the check): the newest caller number
    decides, however many cases without one came after it; the key that reads it is then
    recorded."""
    async with backend.store() as s:
        await s.open_call_case(call("d.1"))
        await s.open_call_case(call("d.2", number=None))
    await backend.raw("DELETE FROM store_settings")
    with pytest.raises(SecretKeyMismatch):
        await backend.store(secret_key="a-different-secret-key").open()
    async with backend.store() as s:
        assert await s.count() == 2
    assert await backend.raw("SELECT name FROM store_settings") == [("caller_key",)]


async def test_bad_configuration_fails_early() -> None:
    with pytest.raises(ValueError, match="time zone"):
        CaseStore("sqlite+aiosqlite:///x.db", secret_key="s" * 16, timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="unsupported database URL"):
        CaseStore("mysql+aiomysql://u@h/db", secret_key="s" * 16)
    with pytest.raises(ValueError, match="schema"):
        CaseStore("sqlite+aiosqlite:///x.db", secret_key="s" * 16, schema="x")
    # Unavailable (the API's 503), as during an outage: a service whose database was down at
    # start keeps trying to open the store and serves its pages meanwhile.
    with pytest.raises(CaseStoreUnavailable, match="not open"):
        await CaseStore("sqlite+aiosqlite:///x.db", secret_key="s" * 16).count()


async def test_nodes_starting_together_share_one_schema(backend: Backend) -> None:
    stores = [backend.store() for _ in range(4)]
    try:
        await asyncio.gather(*(s.open() for s in stores))  # tables created once, no DDL race
        views = await asyncio.gather(*(s.open_call_case(call(f"n.{i}"))
                                       for i, s in enumerate(stores)))
        assert sorted(v.number for v in views) == [f"2026031000000{i}" for i in range(1, 5)]
    finally:
        for s in stores:
            await s.close()


async def test_in_memory_sqlite_for_other_components_tests() -> None:
    async with CaseStore("sqlite+aiosqlite://", secret_key="s" * 16) as s:
        views = await asyncio.gather(*(s.open_call_case(call(f"m.{i % 10}")) for i in range(40)))
        assert len({v.number for v in views}) == 10 and await s.count() == 10
