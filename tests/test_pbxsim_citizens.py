"""A whole citizen call through the default ``ivr`` context, driven like the service drives it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import unquote

from pbxsim import AgentSpec, CitizenScript, PbxSim, SimConfig
from tests.test_pbxsim_support import AmiClient, AudioSocketServer, get, write_wav


async def test_citizen_keys_speech_queue_agent_and_outcome(tmp_path: Path) -> None:
    wav = tmp_path / "complaint.wav"
    write_wav(wav, 1.5, rate=8000, channels=1)
    server = AudioSocketServer(echo=True, quiet_after_speech=5)
    await server.start()
    sim = PbxSim(SimConfig(port=0, speed=20.0))
    await sim.start()
    try:
        sim.add_agent(AgentSpec(interface="Local/1001@agents/n", name="agent1001",
                                answer_delay_s=1.0, talk_time_s=lambda: 8.0))
        sim.queue_add("water", "Local/1001@agents/n", member_name="agent1001")
        ami = await AmiClient.connect(sim.ami_port, login=True)
        call = await sim.place_call(CitizenScript(
            caller_num="13800138000", caller_name="李先生", dnid="12345", context="ivr",
            keys=[("2", 0.5)], speech_wav=wav, patience_s=120.0))
        start = await ami.wait_event("AsyncAGIStart", timeout=10)
        chan = get(start, "Channel") or ""
        assert chan == call.ivr_channel and get(start, "Uniqueid") == call.ivr_uniqueid

        async def agi(command: str, cid: str) -> str:
            ami.send_action("AGI", Channel=chan, Command=command, CommandID=cid)
            ev = await ami.wait_event("AsyncAGIExec", timeout=30, CommandId=cid)
            return unquote(get(ev, "Result") or "")

        assert await agi("GET DATA hotline/menu 5000 1", "menu") == "200 result=2\n"
        uuid = "8f0e6c3a-1b2d-4e5f-9a8b-7c6d5e4f3a2b"
        assert await agi(f"EXEC AudioSocket {uuid},127.0.0.1:{server.port}", "listen") == \
            "200 result=-1\n"
        assert abs(len(server.sessions[0].speech()) - 24000) <= 640  # 1.5 s of speech
        assert await agi("EXEC Queue water,,,,60", "queue") == "200 result=-1\n"
        outcome = await asyncio.wait_for(call.done, 30)
        assert outcome.answered_by == "agent1001" and outcome.queue == "water"
        assert not outcome.abandoned and outcome.keys_pressed == "2"
        assert outcome.speech_sessions == 1 and outcome.hung_up_by_citizen
        assert 7.0 <= outcome.talk_s <= 9.5 and 0.5 <= outcome.wait_s <= 3.0
        assert outcome.hangup_cause == 16
        assert (outcome.phone_channel, outcome.ivr_channel) == (call.phone_channel, chan)
        await ami.wait_event("AsyncAGIEnd", Channel=chan, timeout=10)
        assert chan not in sim.channel_names()
        snap = sim.queue_snapshot()["water"]
        assert snap.completed == 1 and snap.members[0].calls_taken == 1
        await ami.close()
    finally:
        await sim.stop()
        await server.stop()
