"""A database outage loses no case: writes wait in the local journal and are replayed.

The outage is real: PostgreSQL is reached through a TCP forwarder that is cut (connections
aborted, new ones refused) and restored, while pbxsim's callers go through the service.
"""

# ruff: noqa: F811  (fixtures imported by name)

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from cases import CallStart, CaseStore
from ivr.case_journal import CaseJournal, CaseWrite, JournalInUse
from ivr.case_recorder import CaseRecorder
from ivr.service import HotlineService
from pbxsim import AgentSpec, CitizenScript, PbxSim, SimConfig
from tests.callpath_fixtures import QUEUES, service_config
from tests.cases_fixtures import SECRET, TcpProxy, pg_proxy, pg_url  # noqa: F401

OUTAGE_S = 10.0


def _via_proxy(pg_url: str, proxy: TcpProxy) -> str:
    return make_url(pg_url).set(host="127.0.0.1", port=proxy.port).render_as_string(
        hide_password=False)


async def _service(tmp_path: Path, sim: PbxSim, db_url: str, node: str) -> HotlineService:
    cfg = service_config(tmp_path, sim.ami_port, db_url=db_url)
    cfg = cfg.model_copy(update={
        "service": cfg.service.model_copy(update={"node": node})})
    service = HotlineService(cfg)
    await service.start()
    await service.link.wait_up(timeout=10)
    return service


async def _agent(sim: PbxSim, service: HotlineService, ext: int, queue: str) -> str:
    interface = f"Local/{ext}@agents/n"
    sim.add_agent(AgentSpec(interface=interface, name=f"agent{ext}", answer_delay_s=0.3,
                            talk_time_s=2.0))
    await service.link.action("QueueAdd", {"Queue": queue, "Interface": interface,
                                           "MemberName": f"agent{ext}"})
    return f"agent{ext}"


async def test_ten_second_outage_calls_routed_and_every_case_written_after(
        tmp_path: Path, pg_proxy: TcpProxy, pg_url: str) -> None:
    node = f"journal-{uuid.uuid4().hex[:8]}"   # the shared database: keep runs apart
    sim = PbxSim(SimConfig(host="127.0.0.1", port=0, speed=10.0, queues=QUEUES))
    await sim.start()
    service = await _service(tmp_path, sim, _via_proxy(pg_url, pg_proxy), node)
    try:
        agent = await _agent(sim, service, 1101, "water")
        await pg_proxy.stop()                          # the database goes away
        calls = [await sim.place_call(CitizenScript(caller_num=f"1380000{i:04d}",
                                                    keys=[("1", 0.2)]))
                 for i in range(3)]
        outcomes = await asyncio.wait_for(asyncio.gather(*(c.done for c in calls)), 60)
        # Routed and answered while nothing could be written.
        assert [o.answered_by for o in outcomes] == [agent] * 3
        assert service.recorder.journal is not None and service.recorder.journal.unapplied
        await asyncio.sleep(OUTAGE_S)
        await pg_proxy.start()                         # back, same port
        async with asyncio.timeout(60):
            await service.recorder.drain()
        for call in calls:
            case = await service.store.get_by_call(node, call.ivr_uniqueid)
            assert case is not None, call.ivr_uniqueid
            assert case.topic == "water" and case.agent == agent
            assert case.outcome == "answered" and case.ended_at is not None
        assert service.recorder.journal.unapplied == 0
        assert service.recorder.lost == 0
    finally:
        await service.stop()
        await sim.stop()


async def test_writes_left_at_stop_are_replayed_by_the_next_start(
        tmp_path: Path, pg_proxy: TcpProxy, pg_url: str) -> None:
    node = f"journal-{uuid.uuid4().hex[:8]}"
    sim = PbxSim(SimConfig(host="127.0.0.1", port=0, speed=10.0, queues=QUEUES))
    await sim.start()
    url = _via_proxy(pg_url, pg_proxy)
    first = await _service(tmp_path, sim, url, node)
    try:
        agent = await _agent(sim, first, 1102, "water")
        await pg_proxy.stop()
        call = await sim.place_call(CitizenScript(keys=[("1", 0.2)]))
        outcome = await asyncio.wait_for(call.done, 60)
        assert outcome.answered_by == agent
        async with asyncio.timeout(10):
            while first.calls.sessions:
                await asyncio.sleep(0.05)
    finally:
        await first.stop()                     # database still down: writes stay on disk
    journal = tmp_path / "cases.journal"
    assert call.ivr_uniqueid in journal.read_text()
    await pg_proxy.start()
    second = await _service(tmp_path, sim, url, node)
    try:
        assert second.recorder.replayed >= 2   # the open, the updates, the finish
        async with asyncio.timeout(60):
            await second.recorder.drain()
        case = await second.store.get_by_call(node, call.ivr_uniqueid)
        assert case is not None and case.topic == "water" and case.outcome == "answered"
        assert second.recorder.journal is not None and second.recorder.journal.unapplied == 0
    finally:
        await second.stop()
        await sim.stop()


async def test_journal_survives_a_torn_last_line_and_keeps_its_order(tmp_path: Path) -> None:
    """A crash can cut the last line short; the writes before it are replayed in order,
    and the replay reaches a real store."""
    path = tmp_path / "j"
    started = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    start = CallStart(node="n", call_id="c1", caller_number="01012345678", started_at=started)
    lines = [
        {"n": 1, "w": CaseWrite("open", "n", "c1", start.model_dump(mode="json")).to_json()},
        {"n": 2, "w": CaseWrite("update", "n", "c1", {"topic": "water"}).to_json()},
        {"n": 3, "w": CaseWrite("update", "n", "c1", {"queue": "water"}).to_json()},
        {"ok": 3},
        {"n": 4, "w": CaseWrite("finish", "n", "c1", {
            "outcome": "abandoned", "ended_at": started.isoformat(), "wait_s": 4.0,
            "talk_s": None}).to_json()},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"n": 5, "w": {"ki')
    store = CaseStore(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", secret_key=SECRET)
    await store.open()
    recorder = CaseRecorder(store, journal=CaseJournal(path))
    recorder.start()
    try:
        assert recorder.replayed == 3          # 1, 2 and 4; 3 was applied, 5 is torn
        await recorder.drain()
        case = await store.get_by_call("n", "c1")
        assert case is not None and case.topic == "water" and case.queue is None
        assert case.outcome == "abandoned" and case.created_at == started
    finally:
        await recorder.stop()
        await store.close()
    # Everything applied: a fresh start has nothing to replay.
    again = CaseJournal(path)
    assert again.open() == []
    await again.close()


async def test_a_second_process_cannot_share_a_journal(tmp_path: Path) -> None:
    first = CaseJournal(tmp_path / "j")
    first.open()
    try:
        with pytest.raises(JournalInUse, match="in use by another hotline process"):
            CaseJournal(tmp_path / "j").open()
    finally:
        await first.close()


async def test_updates_waiting_together_land_in_one_write(tmp_path: Path) -> None:
    """When the database falls behind, a call's waiting updates are merged, not queued."""
    store = CaseStore(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", secret_key=SECRET)
    await store.open()
    recorder = CaseRecorder(store, journal=CaseJournal(tmp_path / "j"))
    recorder.start()
    try:
        opened = asyncio.create_task(recorder.open(CallStart(node="n", call_id="c2"),
                                                   wait_s=5))
        await asyncio.sleep(0)      # the open is queued first, as a session does
        recorder.update("n", "c2", topic="water", ivr_path=["greeting:key:1"])
        recorder.update("n", "c2", queue="water")
        recorder.update("n", "c2", agent="agent1", wait_s=3.5)
        recorder.update("n", "other", topic="x")        # another call is not merged in
        assert recorder.merged == 2
        assert (await opened) is not None
        await recorder.drain()
        case = await store.get_by_call("n", "c2")
        assert case is not None
        assert (case.topic, case.queue, case.agent, case.wait_s) == (
            "water", "water", "agent1", 3.5)
        assert list(case.ivr_path) == ["greeting:key:1"]
        assert recorder.journal is not None
        assert recorder.journal.unapplied == 0   # the merged writes' entries too
    finally:
        await recorder.stop()
        await store.close()
