"""A call from ring to case, end to end: pbxsim over TCP AMI, the service, a SQLite store."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from ivr.ami.link import LinkState
from ivr.service import HotlineService
from pbxsim import CitizenScript
from tests.callpath_fixtures import rig, service_config


async def test_key_routes_to_topic_queue_and_case_follows_the_call(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        agent = await r.add_agent(1001, "water", talk_s=6.0)
        call = await r.sim.place_call(CitizenScript(caller_num="13800138000",
                                                    caller_name="李先生", keys=[("1", 0.3)]))
        outcome = await asyncio.wait_for(call.done, 30)
        await r.settle()
        assert outcome.answered_by == agent and outcome.queue == "water"
        case = await r.service.store.get_by_call("default", call.ivr_uniqueid)
        assert case is not None
        assert (case.topic, case.queue, case.agent, str(case.outcome)) == (
            "water", "water", agent, "answered")
        assert case.caller_masked == "138****8000" and case.caller_name == "李先生"
        assert case.wait_s is not None and case.talk_s is not None and case.talk_s >= 5
        assert "greeting:key:1" in case.ivr_path and "route:water" in case.ivr_path
        assert case.ended_at is not None and case.answered_at is not None
        # The case number reached the channel, for the agent's screen and the CDR.
        assert r.sim.channel_variable(call.ivr_channel, "HOTLINE_CASE") == case.number


async def test_no_input_goes_to_the_default_group(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        agent = await r.add_agent(1002, "hotline_general")
        call = await r.sim.place_call(CitizenScript(keys=[]))
        outcome = await asyncio.wait_for(call.done, 40)
        await r.settle()
        assert outcome.answered_by == agent and outcome.queue == "hotline_general"
        case = await r.service.store.get_by_call("default", call.ivr_uniqueid)
        assert case is not None and case.topic is None
        assert case.ivr_path.count("greeting:no-input") == r.config.ivr.max_attempts


async def test_zero_reaches_a_person_and_unknown_key_is_retried(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.add_agent(1003, "hotline_general")
        call = await r.sim.place_call(CitizenScript(keys=[("9", 0.2), ("0", 0.2)]))
        outcome = await asyncio.wait_for(call.done, 40)
        await r.settle()
        case = await r.service.store.get_by_call("default", call.ivr_uniqueid)
        assert outcome.queue == "hotline_general"
        assert case is not None and list(case.ivr_path[:2]) == ["greeting:key:9",
                                                                 "greeting:key:0"]


async def test_abandoned_call_gets_a_case_with_a_callback_task(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        call = await r.sim.place_call(CitizenScript(keys=[("2", 0.2)], patience_s=5.0))
        outcome = await asyncio.wait_for(call.done, 40)
        await r.settle()
        assert outcome.abandoned and outcome.answered_by is None
        case = await r.service.store.get_by_call("default", call.ivr_uniqueid)
        assert case is not None and str(case.outcome) == "abandoned"
        assert case.queue == "energy" and case.wait_s is not None and case.wait_s >= 4
        kinds = [e.kind for e in await r.service.store.timeline(case.number)]
        assert "callback_task" in kinds


async def test_ami_cut_mid_call_reconnects_resumes_and_keeps_one_case(tmp_path: Path) -> None:
    async with rig(tmp_path, speed=2.0) as r:
        agent = await r.add_agent(1004, "housing", talk_s=4.0)
        # The citizen presses late: the cut lands while GET DATA is running.
        call = await r.sim.place_call(CitizenScript(keys=[("3", 2.5)]))
        async with asyncio.timeout(10):
            while not r.service.calls.sessions:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        before = r.service.link.connects
        r.sim.drop_ami_connections()
        outcome = await asyncio.wait_for(call.done, 60)
        await r.settle()
        assert r.service.link.connects > before
        assert outcome.answered_by == agent
        cases = await r.service.store.list_cases()
        mine = [c for c in cases if c.call_id == call.ivr_uniqueid]
        assert len(mine) == 1 and mine[0].topic == "housing" and mine[0].agent == agent
        assert await r.service.store.count() == 1


async def test_ami_cut_while_queued_still_completes_the_case(tmp_path: Path) -> None:
    async with rig(tmp_path, speed=2.0) as r:
        call = await r.sim.place_call(CitizenScript(keys=[("4", 0.2)], patience_s=60))
        async with asyncio.timeout(20):
            while not any(s.state.queue_joined for s in r.service.calls.sessions.values()):
                await asyncio.sleep(0.02)
        r.sim.drop_ami_connections()
        await asyncio.sleep(0.5)
        agent = await r.add_agent(1005, "transport", talk_s=2.0)   # after the link is back
        outcome = await asyncio.wait_for(call.done, 60)
        await r.settle()
        assert outcome.answered_by == agent
        case = await r.service.store.get_by_call("default", call.ivr_uniqueid)
        assert case is not None and str(case.outcome) == "answered" and case.agent == agent
        assert await r.service.store.count() == 1


async def test_service_restart_resumes_a_parked_call(tmp_path: Path) -> None:
    async with rig(tmp_path, speed=1.0) as r:
        agent = await r.add_agent(1006, "water", talk_s=2.0)
        # The key lands in the first service's prompt, which dies with it; re-prompted by
        # the resumed service, the caller presses again.
        call = await r.sim.place_call(CitizenScript(keys=[("1", 3.0), ("1", 0.5)]))
        async with asyncio.timeout(10):
            while not r.service.calls.sessions:
                await asyncio.sleep(0.02)
        await r.service.stop()               # the service dies; the call stays parked
        second = HotlineService(r.config)
        await second.start()
        try:
            outcome = await asyncio.wait_for(call.done, 60)
            async with asyncio.timeout(20):
                while second.calls.sessions:
                    await asyncio.sleep(0.05)
            await second.recorder.drain()
            assert second.calls.resumed == 1
            assert outcome.answered_by == agent
            case = await second.store.get_by_call("default", call.ivr_uniqueid)
            assert case is not None and case.topic == "water"
            assert await second.store.count() == 1
        finally:
            await second.stop()


async def test_case_store_down_the_caller_is_still_queued(tmp_path: Path) -> None:
    # Nothing listens on port 9: every case write fails fast.
    async with rig(tmp_path, db_url="postgresql+asyncpg://nobody@127.0.0.1:9/none") as r:
        agent = await r.add_agent(1007, "water", talk_s=2.0)
        call = await r.sim.place_call(CitizenScript(keys=[("1", 0.2)]))
        outcome = await asyncio.wait_for(call.done, 40)
        assert outcome.answered_by == agent and outcome.queue == "water"


async def test_wrong_secret_one_log_line_retries_never_logs_secret(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    from pbxsim import PbxSim, SimConfig
    sim = PbxSim(SimConfig(port=0, secret="right", auth_failure_delay_s=0.05))
    await sim.start()
    cfg = service_config(tmp_path, sim.ami_port, secret="Wr0ngSecret!")
    service = HotlineService(cfg)
    await service.start()
    try:
        await asyncio.sleep(2.0)
        assert service.link.state is LinkState.AUTH_FAILED
        attempts = sim.login_attempts
        assert attempts >= 3                      # it keeps retrying, with backoff
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING
                    and r.name.startswith("hotline")]
        assert len(warnings) == 1 and "Authentication failed" in warnings[0].getMessage()
        assert all("Wr0ngSecret!" not in r.getMessage() for r in caplog.records)
    finally:
        await service.stop()
        await sim.stop()


async def test_two_callers_one_agent_are_served_in_turn(tmp_path: Path) -> None:
    async with rig(tmp_path, speed=4.0) as r:
        agent = await r.add_agent(1008, "energy", talk_s=3.0)
        first = await r.sim.place_call(CitizenScript(keys=[("2", 0.2)]))
        second = await r.sim.place_call(CitizenScript(keys=[("2", 0.4)], patience_s=120))
        a, b = await asyncio.wait_for(asyncio.gather(first.done, second.done), 60)
        await r.settle()
        assert a.answered_by == agent and b.answered_by == agent
        assert b.wait_s >= 2.0            # the second waited for the first call to end
        case = await r.service.store.get_by_call("default", second.ivr_uniqueid)
        assert case is not None and str(case.outcome) == "answered"
