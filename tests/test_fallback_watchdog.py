"""A caller the IVR watchdog queued while no service drove the call (AMI down, or the
service restarting), against pbxsim's res_agi semantics: after AsyncAGIEnd Asterisk still
takes AGI commands on the channel ("Added AGI command to queue") and never runs them.

The call must not leave a session waiting for ever on such a command, and its case must get
the call's real outcome when it ends."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dialplan.common import default_queue
from dialplan.extensions import CONTEXT, FALLBACK_VARIABLE
from ivr.service import HotlineService
from pbxsim import AgentSpec, CitizenScript
from tests.test_fallback import Rig, _watchdog_after, rig
from tests.test_pbxsim_support import AmiClient


async def _in_the_ivr_until_the_watchdog(r: Rig, *, restart: bool) -> tuple[str, str]:
    """A caller who never presses a key; the service loses the call (AMI outage, or the
    service stops) until the watchdog has queued it. (channel, uniqueid)"""
    call = await r.sim.place_call(CitizenScript(context=CONTEXT, exten="12345", dnid="12345",
                                                patience_s=90.0))
    channel = call.ivr_channel
    await r.watcher.wait_event("AsyncAGIStart", timeout=10, Channel=channel)
    if restart:
        await r.service.stop()
    else:
        r.sim.ami_outage(True)          # (every AMI client's, the watcher's too)
    async with asyncio.timeout(30):
        while r.sim.channel_variable(channel, FALLBACK_VARIABLE) != "watchdog":
            await asyncio.sleep(0.05)
    return channel, call.ivr_uniqueid


async def _an_agent_answers(r: Rig, channel: str) -> None:
    watcher = await AmiClient.connect(r.sim.ami_port, login=True)
    try:
        await watcher.action("QueueAdd", Queue=default_queue(r.config),
                             Interface="Local/1201@agents/n", MemberName="agent1201")
        r.sim.add_agent(AgentSpec(interface="Local/1201@agents/n", name="agent1201",
                                  answer_delay_s=0.5, talk_time_s=2.0))
        await watcher.wait_event("AgentConnect", timeout=30, Channel=channel)
    finally:
        await watcher.close()


async def test_after_an_ami_outage_the_session_follows_the_watchdogs_queue(
        tmp_path: Path) -> None:
    async with rig(tmp_path, configure=_watchdog_after(20)) as r:
        channel, uniqueid = await _in_the_ivr_until_the_watchdog(r, restart=False)
        r.sim.ami_outage(False)
        await r.service.link.wait_up(timeout=10)
        await _an_agent_answers(r, channel)
        await r.settle(60)           # no session left waiting on a command that never runs
        case = await r.service.store.get_by_call(r.config.service.node, uniqueid)
        assert case is not None
        assert str(case.outcome) == "answered" and case.agent == "agent1201", case
        assert case.ivr_path[-1] == "dialplan", case.ivr_path


async def test_a_restarted_service_takes_up_a_call_the_watchdog_queued(
        tmp_path: Path) -> None:
    async with rig(tmp_path, configure=_watchdog_after(20)) as r:
        channel, uniqueid = await _in_the_ivr_until_the_watchdog(r, restart=True)
        second = HotlineService(r.config)
        await second.start()
        try:
            await second.link.wait_up(timeout=10)
            assert second.calls.resumed == 1
            await _an_agent_answers(r, channel)
            async with asyncio.timeout(60):
                while second.calls.sessions:
                    await asyncio.sleep(0.05)
            await second.recorder.drain()
            case = await second.store.get_by_call(r.config.service.node, uniqueid)
        finally:
            await second.stop()
        assert case is not None
        assert str(case.outcome) == "answered" and case.agent == "agent1201", case
        assert case.ivr_path[-1] == "dialplan", case.ivr_path
