"""Fault injection: AMI connections dropped mid-call; calls go on as they do in Asterisk."""

from __future__ import annotations

import asyncio
from urllib.parse import unquote

from pbxsim import CitizenScript, PbxSim, SimConfig
from tests.test_pbxsim_support import AmiClient, get


async def test_drop_mid_call_reconnect_resume_parked_channel() -> None:
    sim = PbxSim(SimConfig(port=0, speed=10.0))
    await sim.start()
    try:
        first = await AmiClient.connect(sim.ami_port, login=True)
        watcher = await AmiClient.connect(sim.ami_port, login=True)
        call = await sim.place_call(CitizenScript(caller_num="13700137000", caller_name="王女士",
                                                  keys=[("3", 2.0)]))
        await first.wait_event("AsyncAGIStart", timeout=10, Channel=call.ivr_channel)
        first.send_action("AGI", Channel=call.ivr_channel, Command="GET DATA hotline/menu 5000 1",
                          CommandID="before-cut")
        await first.wait_event("AGIExecStart", timeout=10, Channel=call.ivr_channel)
        assert sim.drop_ami_connections() == 2
        await asyncio.wait_for(first.closed.wait(), 5)
        await asyncio.wait_for(watcher.closed.wait(), 5)
        assert sim.ami_client_count == 0

        again = await AmiClient.connect(sim.ami_port, login=True)
        rows = await again.event_list("CoreShowChannels")
        listed = {get(m, "Channel"): m for m in rows if get(m, "Event") == "CoreShowChannel"}
        parked = listed[call.ivr_channel]
        assert (get(parked, "Application"), get(parked, "ApplicationData")) == ("AGI", "agi:async")
        assert get(parked, "CallerIDName") == "王女士"
        assert call.phone_channel in listed
        # the command that ran during the cut completes; its result reaches the new session
        exec_ev = await again.wait_event("AsyncAGIExec", timeout=10, CommandId="before-cut")
        assert unquote(get(exec_ev, "Result") or "") == "200 result=3\n"
        # and new commands work on the same parked channel
        again.send_action("AGI", Channel=call.ivr_channel, Command="GET VARIABLE CALLERID(name)",
                          CommandID="after-cut")
        ev = await again.wait_event("AsyncAGIExec", timeout=10, CommandId="after-cut")
        assert unquote(get(ev, "Result") or "") == "200 result=1 (王女士)\n"
        reply = await again.action("Getvar", Channel=call.ivr_channel, Variable="CALLERID(num)")
        assert get(reply, "Value") == "13700137000"
        assert not call.done.done()
        again.send_action("AGI", Channel=call.ivr_channel, Command="HANGUP", CommandID="bye")
        outcome = await asyncio.wait_for(call.done, 10)
        assert not outcome.hung_up_by_citizen
        await again.close()
    finally:
        await sim.stop()


async def test_client_disconnect_never_ends_calls_and_every_client_gets_events() -> None:
    sim = PbxSim(SimConfig(port=0, speed=20.0))
    await sim.start()
    try:
        a = await AmiClient.connect(sim.ami_port, login=True)
        b = await AmiClient.connect(sim.ami_port, login=True)
        call = await sim.place_call(CitizenScript())
        for client in (a, b):
            await client.wait_event("AsyncAGIStart", timeout=10, Channel=call.ivr_channel)
        await a.close()
        b.send_action("AGI", Channel=call.ivr_channel, Command="NOOP", CommandID="n1")
        await b.wait_event("AsyncAGIExec", timeout=10, CommandId="n1")
        assert call.ivr_channel in sim.channel_names()
        # a client that vanishes without Logoff in the middle of an action
        c = await AmiClient.connect(sim.ami_port, login=True)
        c.send_raw(b"Action: CoreShowChannels\r\nActionID: half")
        c.writer.transport.abort()
        await asyncio.sleep(0.1)
        assert call.ivr_channel in sim.channel_names()
        await b.close()
    finally:
        await sim.stop()


async def test_stop_cancels_everything_with_calls_in_flight() -> None:
    sim = PbxSim(SimConfig(port=0, speed=20.0))
    await sim.start()
    ami = await AmiClient.connect(sim.ami_port, login=True)
    calls = [await sim.place_call(CitizenScript(context="queue_housing")) for _ in range(3)]
    await ami.wait_event("QueueCallerJoin", timeout=10)
    await sim.stop()
    assert len(sim.core.tasks) == 0
    await asyncio.wait_for(ami.closed.wait(), 5)
    assert all(c.done.done() for c in calls)
