"""How calls end on a real Asterisk: long prompts, and the caller left when the agent hangs up.

pbxsim behaves as Asterisk does here (the reference transcript shows a caller still Up in
async AGI after Queue() returned): these would strand callers in silence if the service
relied on the simulated citizens to hang up, or on prompts being short.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pbxsim import AgentSpec, CitizenScript
from tests.callpath_fixtures import rig


async def test_a_prompt_longer_than_the_ami_action_timeout_plays_to_its_end(
        tmp_path: Path) -> None:
    # Every prompt plays 100 simulated seconds (10 s here): longer than the 2 s AMI action
    # timeout, and than a GET DATA's 3 s of input time on top of it. A greeting read by a
    # text-to-speech voice runs that long (the default Mandarin one about 60 s).
    async with rig(tmp_path, speed=10.0, sim_kw={"default_prompt_s": 100.0},
                   max_attempts=1) as r:
        agent = await r.add_agent(1010, "hotline_general", talk_s=1.0)
        call = await r.sim.place_call(CitizenScript(keys=[]))
        outcome = await asyncio.wait_for(call.done, 90)
        await r.settle()
        case = await r.service.store.get_by_call("default", call.ivr_uniqueid)
        assert case is not None
        # The menu ran to its end (nothing pressed: no input, then a person), rather than
        # failing on a timed-out prompt.
        assert case.ivr_path.count("greeting:no-input") == 1, case.ivr_path
        assert outcome.answered_by == agent and str(case.outcome) == "answered"


async def test_the_service_ends_the_call_when_the_agent_hangs_up(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        agent = await r.add_agent(1011, "water", talk_s=2.0)
        # A citizen who stays on the line after the agent hangs up (as real callers often
        # do for a moment): Queue() returns into async AGI with the caller still there.
        call = await r.sim.place_call(CitizenScript(keys=[("1", 0.3)],
                                                    hangup_after_talk_s=None))
        outcome = await asyncio.wait_for(call.done, 30)
        await r.settle()
        assert outcome.answered_by == agent and not outcome.hung_up_by_citizen
        case = await r.service.store.get_by_call("default", call.ivr_uniqueid)
        assert case is not None and str(case.outcome) == "answered"


async def test_a_caller_whose_queue_times_out_is_offered_the_default_group(
        tmp_path: Path) -> None:
    """Nobody in the topic's queue answers within ``ivr.queue_timeout_s``. app_queue then
    records the wait as abandoned (QueueCallerAbandon, as for a hang-up), yet the caller is
    on the line and Queue() returns 0: the caller gets the default group, not a hang-up."""
    async with rig(tmp_path, queue_timeout_s=10) as r:
        # Water's agent is logged in and free, but away from the desk: the phone rings out.
        away = "Local/1013@agents/n"
        r.sim.add_agent(AgentSpec(interface=away, name="agent1013", answers=False))
        await r.service.link.action("QueueAdd", {"Queue": "water", "Interface": away,
                                                 "MemberName": "agent1013"})
        general = await r.add_agent(1012, "hotline_general", talk_s=1.0)
        call = await r.sim.place_call(CitizenScript(keys=[("1", 0.3)], patience_s=120.0))
        outcome = await asyncio.wait_for(call.done, 40)
        await r.settle()
        assert outcome.answered_by == general and outcome.queue == "hotline_general"
        case = await r.service.store.get_by_call("default", call.ivr_uniqueid)
        assert case is not None and str(case.outcome) == "answered"
        assert case.ivr_path[-3:] == ("queue:water", "overflow:general",
                                      "queue:hotline_general"), case.ivr_path
