"""Live routing through pbxsim: callers overflow to another able group when theirs is
saturated; static routing keeps them waiting. Same scenario, both strategies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pbxsim import CallOutcome, CitizenScript
from tests.callpath_fixtures import Rig, rig


async def second_water_caller(r: Rig, water_agent: str) -> tuple[CallOutcome, str]:
    """A first water caller keeps ``water_agent`` busy; how a second one fares (its outcome
    and uniqueid), once both calls are over."""
    first = await r.sim.place_call(CitizenScript(keys=[("1", 0.2)]))
    async with asyncio.timeout(20):     # the water agent is on the first call
        while not any(s.state.agent == water_agent for s in r.service.calls.sessions.values()):
            await asyncio.sleep(0.02)
    second = await r.sim.place_call(CitizenScript(keys=[("1", 0.2)], patience_s=300))
    out = await asyncio.wait_for(second.done, 60)
    first.hangup()
    await asyncio.wait_for(first.done, 30)
    await r.settle()
    return out, second.ivr_uniqueid


async def scenario(tmp_path: Path, strategy: str) -> tuple[str | None, str | None, float]:
    async with rig(tmp_path, speed=4.0) as r:
        r.service.router.strategy = strategy
        water = await r.add_agent(1501, "water", talk_s=30.0)
        general = await r.add_agent(1502, "hotline_general", talk_s=2.0)
        out, uniqueid = await second_water_caller(r, water)
        case = await r.service.store.get_by_call("default", uniqueid)
        assert case is not None and case.topic == "water"
        assert general
        return out.queue, out.answered_by, out.wait_s


@pytest.mark.parametrize("strategy", ["expected_wait", "static"])
async def test_saturated_primary_group_overflows_only_with_expected_wait(
        tmp_path: Path, strategy: str) -> None:
    queue, agent, wait = await scenario(tmp_path, strategy)
    if strategy == "expected_wait":
        assert (queue, agent) == ("hotline_general", "agent1502")
        assert wait < 10
    else:
        assert (queue, agent) == ("water", "agent1501")
        assert wait > 20     # waited for the water agent to finish the first call


async def test_rebalancer_parks_a_helper_membership_when_its_help_is_not_needed(
        tmp_path: Path) -> None:
    """agent1601 is primary in water and a less proficient helper in energy (penalty 2);
    with energy's own agent idle, its help costs more than it saves: the membership is
    parked out of every caller's window, in pbxsim's queue state too."""
    async with rig(tmp_path, speed=4.0) as r:
        await r.add_agent(1601, "water", talk_s=5.0)
        await r.service.link.action("QueueAdd", {"Queue": "energy",
                                                 "Interface": "Local/1601@agents/n",
                                                 "Penalty": "2", "MemberName": "agent1601"})
        await r.add_agent(1602, "energy", talk_s=5.0)
        await r.service.queue_feed.resync()
        changed = await r.service.rebalancer.rebalance()
        assert changed >= 1
        energy = r.sim.queue_snapshot()["energy"]
        helper = next(m for m in energy.members if m.name == "agent1601")
        assert helper.penalty >= 1000
        own = next(m for m in energy.members if m.name == "agent1602")
        assert own.penalty == 0


async def test_a_caller_without_a_window_is_not_given_a_parked_helper(tmp_path: Path) -> None:
    """A caller routed without a penalty window (static routing here, like the default group
    or an overflow) must not reach a membership the rebalancer parked: app_queue, given no
    QUEUE_MAX_PENALTY, would ring it once every nearer member is busy."""
    async with rig(tmp_path, speed=4.0) as r:
        r.service.router.strategy = "static"
        await r.service.rebalancer.stop()     # the parking below stays as it is
        await r.add_agent(1701, "water", talk_s=30.0)
        await r.add_agent(1702, "energy", talk_s=2.0)
        await r.service.link.action("QueuePenalty", {"Interface": "Local/1702@agents/n",
                                                     "Penalty": "1002", "Queue": "energy"})
        await r.service.link.action("QueueAdd", {"Queue": "water",
                                                 "Interface": "Local/1702@agents/n",
                                                 "Penalty": "1002", "MemberName": "agent1702"})
        out, _ = await second_water_caller(r, "agent1701")
        # The parked helper stayed free; the caller waited for the water agent.
        assert (out.queue, out.answered_by) == ("water", "agent1701")
