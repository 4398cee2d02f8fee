"""pbxsim's app_queue: member choice, pause, wrap-up, ring timeout, abandon, queue timeout.

Calls enter ``Queue(${QNAME},,,,${QTIMEOUT})`` straight from the dialplan; agents are simulated
phones (AgentSpec). Everything runs at high simulated speed; assertions are about who answered,
event order and simulated-time values, never wall-clock durations.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pbxsim import AgentSpec, CallOutcome, CitizenScript, PbxSim, QueueConfig, SimConfig
from tests.test_pbxsim_support import AmiClient, get

SPEED = 25.0
DIALPLAN = """
[inq]
exten => s,1,Answer()
 same => n,Queue(${QNAME},${QOPTS},,,${QTIMEOUT})
 same => n,Set(AFTER=${QUEUESTATUS})
 same => n,Wait(0.5)
 same => n,Hangup()
[agents]
exten => _10XX,1,Answer()
 same => n,Wait(3)
 same => n,Hangup()
"""


def queues(**over: object) -> dict[str, QueueConfig]:
    base: dict[str, object] = {"strategy": "leastrecent", "timeout": 15, "retry": 1,
                               "wrapuptime": 0, "ringinuse": False}
    options = {**base, **over}
    return {name: QueueConfig(**options) for name in ("water", "housing")}  # type: ignore[arg-type]


@pytest.fixture
async def sim() -> AsyncIterator[PbxSim]:
    s = PbxSim(SimConfig(port=0, speed=SPEED, dialplan=DIALPLAN, queues=queues()))
    await s.start()
    yield s
    await s.stop()


async def make_sim(**queue_options: object) -> PbxSim:
    s = PbxSim(SimConfig(port=0, speed=SPEED, dialplan=DIALPLAN, queues=queues(**queue_options)))
    await s.start()
    return s


def agent(sim: PbxSim, ext: int, queue: str = "water", penalty: int = 0, talk: float = 3.0,
          answer: float = 0.5, answers: bool = True) -> str:
    iface = f"Local/{ext}@agents/n"
    sim.add_agent(AgentSpec(interface=iface, name=f"agent{ext}", answer_delay_s=answer,
                            talk_time_s=talk, answers=answers))
    sim.queue_add(queue, iface, penalty=penalty, member_name=f"agent{ext}")
    return f"agent{ext}"


def caller(queue: str = "water", timeout: str = "", patience: float = 120.0,
           **variables: str) -> CitizenScript:
    return CitizenScript(context="inq", patience_s=patience, hangup_after_talk_s=None,
                         variables={"QNAME": queue, "QTIMEOUT": timeout, "QOPTS": "",
                                    **variables})


async def done(sim: PbxSim, script: CitizenScript, timeout: float = 20.0) -> CallOutcome:
    call = await sim.place_call(script)
    return await asyncio.wait_for(call.done, timeout)


async def test_lowest_penalty_answers(sim: PbxSim) -> None:
    agent(sim, 1001, penalty=2)
    best = agent(sim, 1002, penalty=0)
    agent(sim, 1003, penalty=1)
    out = await done(sim, caller())
    assert out.answered_by == best and out.queue == "water" and not out.abandoned
    assert out.talk_s >= 2.5


async def test_busy_best_member_falls_back_to_next_penalty(sim: PbxSim) -> None:
    best = agent(sim, 1001, penalty=0, talk=6.0)
    second = agent(sim, 1002, penalty=1)
    first = await sim.place_call(caller())
    ami = await AmiClient.connect(sim.ami_port, login=True)
    await ami.wait_event("AgentConnect", timeout=10, MemberName=best)
    out2 = await done(sim, caller())
    out1 = await asyncio.wait_for(first.done, 20)
    assert (out1.answered_by, out2.answered_by) == (best, second)
    await ami.close()


async def test_paused_member_is_skipped_until_unpaused(sim: PbxSim) -> None:
    name = agent(sim, 1001)
    ami = await AmiClient.connect(sim.ami_port, login=True)
    reply = await ami.action("QueuePause", Queue="water", Interface="Local/1001@agents/n",
                             Paused="true", Reason="lunch")
    assert get(reply, "Message") == "Interface paused successfully"
    call = await sim.place_call(caller())
    await ami.wait_event("QueueCallerJoin", timeout=10, Queue="water")
    await sim.clock.sleep(3)
    snap = sim.queue_snapshot()["water"]
    assert [c.position for c in snap.callers] == [1] and snap.members[0].paused
    assert not ami.events("AgentCalled")
    reply = await ami.action("QueuePause", Queue="water", Interface="Local/1001@agents/n",
                             Paused="false")
    assert get(reply, "Message") == "Interface unpaused successfully"
    out = await asyncio.wait_for(call.done, 20)
    assert out.answered_by == name and out.wait_s >= 3
    await ami.close()


async def test_leastrecent_alternates_between_equal_members(sim: PbxSim) -> None:
    a = agent(sim, 1001, talk=1.0)
    b = agent(sim, 1002, talk=1.0)
    answered = []
    for _ in range(4):
        out = await done(sim, caller())
        answered.append(out.answered_by)
        await sim.clock.sleep(1.2)  # the next call arrives after both agents hung up
    assert answered == [a, b, a, b]
    members = {m.name: m for m in sim.queue_snapshot()["water"].members}
    assert members[a].calls_taken == members[b].calls_taken == 2


async def test_ring_timeout_rings_again_after_retry_then_queue_timeout() -> None:
    sim = await make_sim(timeout=2, retry=1)
    try:
        agent(sim, 1001, answers=False)
        ami = await AmiClient.connect(sim.ami_port, login=True)
        out = await done(sim, caller(timeout="7"))
        assert out.answered_by is None and not out.abandoned
        assert sim.channel_variable(out.ivr_channel, "AFTER") == "TIMEOUT"
        names = [get(m, "Event") for m in ami.messages if get(m, "Event") in (
            "QueueCallerJoin", "AgentCalled", "AgentRingNoAnswer", "QueueCallerLeave")]
        assert names[0] == "QueueCallerJoin" and names[-1] == "QueueCallerLeave"
        rings = ami.events("AgentRingNoAnswer")
        assert len(rings) >= 2 and len(ami.events("AgentCalled")) == len(rings)
        assert all(1900 <= int(get(r, "RingTime") or 0) <= 2600 for r in rings[:-1])
        assert names[1:-1] == ["AgentCalled", "AgentRingNoAnswer"] * len(rings)
        # app_queue's record_abandoned runs on a timeout too: an Abandon just before the
        # Leave, though the caller is still on the line (Queue() returns 0).
        order = [get(m, "Event") for m in ami.messages if get(m, "Event") in (
            "QueueCallerAbandon", "QueueCallerLeave")]
        assert order == ["QueueCallerAbandon", "QueueCallerLeave"]
        assert sim.channel_variable(out.ivr_channel, "ABANDONED") == "TRUE"
        await ami.close()
    finally:
        await sim.stop()


async def test_wrapup_keeps_the_agent_free_after_a_call() -> None:
    sim = await make_sim(wrapuptime=4)
    try:
        name = agent(sim, 1001, talk=1.0)
        ami = await AmiClient.connect(sim.ami_port, login=True)
        first = await done(sim, caller())
        assert first.answered_by == name
        second = await done(sim, caller())
        assert second.answered_by == name
        # the second caller waited for the end of the 4 s wrap-up (less what elapsed since)
        assert second.wait_s >= 2.5
        connects = ami.events("AgentConnect")
        assert [int(get(c, "HoldTime") or 0) >= 2 for c in connects] == [False, True]
        await ami.close()
    finally:
        await sim.stop()


async def test_wrapup_lets_another_member_take_the_next_call() -> None:
    sim = await make_sim(wrapuptime=10)
    try:
        a = agent(sim, 1001, talk=1.0)
        b = agent(sim, 1002, talk=1.0, penalty=1)
        outs = [await done(sim, caller()) for _ in range(2)]
        assert [o.answered_by for o in outs] == [a, b]
        assert outs[1].wait_s < 2
    finally:
        await sim.stop()


async def test_caller_abandons_after_patience(sim: PbxSim) -> None:
    ami = await AmiClient.connect(sim.ami_port, login=True)
    out = await done(sim, caller(patience=3.0))
    assert out.abandoned and out.answered_by is None and out.hangup_cause == 16
    assert out.hung_up_by_citizen and 2.5 <= out.wait_s <= 4.5
    abandon = await ami.wait_event("QueueCallerAbandon", Queue="water")
    assert get(abandon, "Position") == get(abandon, "OriginalPosition") == "1"
    assert int(get(abandon, "HoldTime") or 0) in (2, 3, 4)
    order = [get(m, "Event") for m in ami.messages if get(m, "Event") in (
        "QueueCallerJoin", "QueueCallerAbandon", "QueueCallerLeave")]
    assert order == ["QueueCallerJoin", "QueueCallerAbandon", "QueueCallerLeave"]
    summary = await ami.event_list("QueueStatus", Queue="water")
    params = next(m for m in summary if get(m, "Event") == "QueueParams")
    assert get(params, "Abandoned") == "1" and get(params, "Calls") == "0"
    await ami.close()


async def test_queue_timeout_continues_the_dialplan(sim: PbxSim) -> None:
    ami = await AmiClient.connect(sim.ami_port, login=True)
    out = await done(sim, caller(timeout="3"))
    assert out.answered_by is None and not out.abandoned and not out.hung_up_by_citizen
    assert sim.channel_variable(out.ivr_channel, "AFTER") == "TIMEOUT"
    leave = await ami.wait_event("QueueCallerLeave", Queue="water")
    assert get(leave, "Count") == "0"
    # app_queue records a timeout as abandoned too (its stats and the event), though the
    # caller stays on the line and the dialplan goes on.
    assert len(ami.events("QueueCallerAbandon")) == 1
    summary = await ami.event_list("QueueStatus", Queue="water")
    params = next(m for m in summary if get(m, "Event") == "QueueParams")
    assert get(params, "Abandoned") == "1"
    await ami.close()


async def test_member_of_two_queues_serves_one_call_at_a_time(sim: PbxSim) -> None:
    shared = "Local/1001@agents/n"
    sim.add_agent(AgentSpec(interface=shared, name="agent1001", answer_delay_s=0.5,
                            talk_time_s=3.0))
    sim.queue_add("water", shared, member_name="agent1001")
    sim.queue_add("housing", shared, member_name="agent1001")
    ami = await AmiClient.connect(sim.ami_port, login=True)
    c1 = await sim.place_call(caller("water"))
    await ami.wait_event("AgentConnect", timeout=10, Queue="water")
    c2 = await sim.place_call(caller("housing"))
    o1, o2 = await asyncio.wait_for(asyncio.gather(c1.done, c2.done), 30)
    assert o1.answered_by == o2.answered_by == "agent1001"
    assert o2.wait_s >= 1.5  # housing had to wait for the water call to end
    seq = [get(m, "Event") for m in ami.messages if get(m, "Event") in (
        "AgentConnect", "AgentComplete")]
    assert seq == ["AgentConnect", "AgentComplete", "AgentConnect", "AgentComplete"]
    await ami.close()


async def test_max_penalty_channel_variable_limits_members(sim: PbxSim) -> None:
    low = agent(sim, 1001, penalty=0, talk=5.0)
    agent(sim, 1002, penalty=3)
    busy = await sim.place_call(caller())
    ami = await AmiClient.connect(sim.ami_port, login=True)
    await ami.wait_event("AgentConnect", timeout=10, MemberName=low)
    # the penalty-3 member is free, but this caller may only reach penalty <= 1
    out = await done(sim, caller(QUEUE_MAX_PENALTY="1"))
    assert out.answered_by == low and out.wait_s >= 2
    await asyncio.wait_for(busy.done, 20)
    await ami.close()


async def test_callers_are_served_first_in_first_out(sim: PbxSim) -> None:
    name = agent(sim, 1001, talk=1.0)
    ami = await AmiClient.connect(sim.ami_port, login=True)
    await ami.action("QueuePause", Queue="water", Interface="Local/1001@agents/n", Paused="1")
    calls = []
    for _ in range(3):
        calls.append(await sim.place_call(caller()))
        await ami.wait_event("QueueCallerJoin", start=len(ami.messages) - 1, timeout=10)
    joins = ami.events("QueueCallerJoin")
    assert [get(j, "Position") for j in joins] == ["1", "2", "3"]
    entries = await ami.event_list("QueueStatus", Queue="water")
    assert [get(e, "Position") for e in entries if get(e, "Event") == "QueueEntry"] == [
        "1", "2", "3"]
    await ami.action("QueuePause", Queue="water", Interface="Local/1001@agents/n", Paused="0")
    outs = await asyncio.wait_for(asyncio.gather(*(c.done for c in calls)), 40)
    assert all(o.answered_by == name for o in outs)
    connected = [get(m, "Channel") for m in ami.events("AgentConnect")]
    assert connected == [c.ivr_channel for c in calls]
    await ami.close()


async def test_join_empty_no_refuses_callers() -> None:
    sim = await make_sim(joinempty="no")
    try:
        out = await done(sim, caller())
        assert out.queue is None and out.answered_by is None
        assert sim.channel_variable(out.ivr_channel, "AFTER") == "JOINEMPTY"
    finally:
        await sim.stop()


async def test_ringinuse_yes_rings_a_busy_agent_whose_phone_answers_busy() -> None:
    sim = await make_sim(ringinuse=True)
    try:
        shared = agent(sim, 1001, talk=6.0)
        sim.queue_add("housing", "Local/1001@agents/n", member_name=shared)
        helper = agent(sim, 1002, queue="housing", penalty=5)
        ami = await AmiClient.connect(sim.ami_port, login=True)
        first = await sim.place_call(caller("water"))
        await ami.wait_event("AgentConnect", timeout=10, MemberName=shared)
        out = await done(sim, caller("housing"))
        assert out.answered_by == helper
        busy = await ami.wait_event("AgentRingNoAnswer", Queue="housing")
        assert get(busy, "MemberName") == shared
        ends = [get(m, "DialStatus") for m in ami.events("DialEnd")
                if get(m, "DestChannel") == get(busy, "DestChannel")]
        assert ends == ["BUSY"]
        await asyncio.wait_for(first.done, 20)
        await ami.close()
    finally:
        await sim.stop()


async def test_custom_device_state_set_over_ami_is_the_member_status(sim: PbxSim) -> None:
    iface = "Local/1001@agents/n"
    sim.add_agent(AgentSpec(interface=iface, name="agent1001", answer_delay_s=0.2,
                            talk_time_s=1.0))
    sim.queue_add("water", iface, member_name="agent1001", state_interface="Custom:agent1001")
    ami = await AmiClient.connect(sim.ami_port, login=True)
    await ami.action("Setvar", Variable="DEVICE_STATE(Custom:agent1001)", Value="INUSE")
    status = await ami.wait_event("QueueMemberStatus", MemberName="agent1001")
    assert get(status, "Status") == "2"
    call = await sim.place_call(caller())
    await ami.wait_event("QueueCallerJoin", timeout=10)
    await sim.clock.sleep(2.5)
    assert not ami.events("AgentCalled")  # in use and ringinuse=no: not rung
    reply = await ami.action("Getvar", Variable="DEVICE_STATE(Custom:agent1001)")
    assert get(reply, "Value") == "INUSE"
    await ami.action("Setvar", Variable="DEVICE_STATE(Custom:agent1001)", Value="NOT_INUSE")
    out = await asyncio.wait_for(call.done, 20)
    assert out.answered_by == "agent1001"
    await ami.close()


async def test_option_c_continues_the_dialplan_after_the_agent_hangs_up(sim: PbxSim) -> None:
    name = agent(sim, 1001, talk=1.0)
    out = await done(sim, caller(QOPTS="c"))
    assert out.answered_by == name and not out.hung_up_by_citizen
    assert sim.channel_variable(out.ivr_channel, "AFTER") == "CONTINUE"
    out = await done(sim, caller())  # without c the caller is hung up at once
    assert sim.channel_variable(out.ivr_channel, "AFTER") is None


async def test_ringinuse_yes_single_agent_serves_both_callers_in_turn() -> None:
    sim = await make_sim(ringinuse=True)
    try:
        name = agent(sim, 1001, talk=3.0)
        ami = await AmiClient.connect(sim.ami_port, login=True)
        first = await sim.place_call(caller())
        await ami.wait_event("AgentConnect", timeout=10)
        second = await sim.place_call(caller())
        a, b = await asyncio.wait_for(asyncio.gather(first.done, second.done), 30)
        assert a.answered_by == b.answered_by == name
        assert b.wait_s >= 2.0 and not b.abandoned
        assert ami.events("AgentRingNoAnswer")  # the busy phone was rung meanwhile
        assert sim.queue_snapshot()["water"].members[0].available
        await ami.close()
    finally:
        await sim.stop()


async def test_queue_prio_puts_a_caller_ahead_of_lower_priorities(sim: PbxSim) -> None:
    """app_queue's join_queue: a caller with a higher QUEUE_PRIO waits ahead of every caller
    of a lower one (and behind its equals); QueueEntry reports the priority."""
    a = agent(sim, 1001, talk=4.0)
    ami = await AmiClient.connect(sim.ami_port, login=True)
    first = await sim.place_call(caller())            # takes the only agent
    await ami.wait_event("AgentConnect", Queue="water")
    normal = await sim.place_call(caller())
    async with asyncio.timeout(10):
        while len(sim.queue_snapshot()["water"].callers) < 1:
            await asyncio.sleep(0.01)
    urgent = await sim.place_call(caller(QUEUE_PRIO="10"))
    joined = await ami.wait_event("QueueCallerJoin", Queue="water", Count="2")
    assert get(joined, "Position") == "1"              # ahead of the caller already waiting
    status = await ami.event_list("QueueStatus", Queue="water")
    entries = [(get(m, "Position"), get(m, "Priority")) for m in status
               if get(m, "Event") == "QueueEntry"]
    assert entries == [("1", "10"), ("2", "0")]
    outcomes = await asyncio.wait_for(asyncio.gather(first.done, normal.done, urgent.done), 30)
    assert all(o.answered_by == a for o in outcomes)
    assert outcomes[2].wait_s < outcomes[1].wait_s     # the urgent caller was served first
    await ami.close()
