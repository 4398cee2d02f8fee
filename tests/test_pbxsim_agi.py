"""Async AGI over AMI against pbxsim: commands, results, barge-in, hangups, AudioSocket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from pbxsim import CitizenScript, PbxSim, SimConfig
from tests.test_pbxsim_support import AmiClient, AudioSocketServer, Msg, get, write_wav

SPEED = 20.0


@pytest.fixture
async def sim() -> AsyncIterator[PbxSim]:
    s = PbxSim(SimConfig(port=0, speed=SPEED, default_prompt_s=1.0))
    await s.start()
    yield s
    await s.stop()


class Agi:
    """Drives one parked channel like the service does: AGI action, then its AsyncAGIExec."""

    def __init__(self, ami: AmiClient, channel: str) -> None:
        self.ami, self.channel, self.n = ami, channel, 0

    def queue(self, command: str) -> str:
        self.n += 1
        cid = f"c-{self.n}"
        self.ami.send_action("AGI", Channel=self.channel, Command=command, CommandID=cid)
        return cid

    async def result(self, cid: str, timeout: float = 10) -> str:
        ev = await self.ami.wait_event("AsyncAGIExec", timeout=timeout, CommandId=cid)
        return unquote(get(ev, "Result") or "")

    async def run(self, command: str, timeout: float = 10) -> str:
        return await self.result(self.queue(command), timeout)


async def parked(sim: PbxSim, script: CitizenScript) -> tuple[AmiClient, Agi, Msg]:
    ami = await AmiClient.connect(sim.ami_port, login=True)
    call = await sim.place_call(script)
    start = await ami.wait_event("AsyncAGIStart", timeout=10, Channel=call.ivr_channel)
    return ami, Agi(ami, call.ivr_channel), start


async def test_env_carries_caller_and_dnid(sim: PbxSim) -> None:
    ami, agi, start = await parked(sim, CitizenScript(caller_num="13900139000",
                                                      caller_name="李先生", dnid="12345"))
    env = dict(line.split(": ", 1) for line in unquote(get(start, "Env") or "").splitlines()
               if ": " in line)
    assert env["agi_callerid"] == "13900139000" and env["agi_calleridname"] == "李先生"
    assert env["agi_dnid"] == "12345" and env["agi_channel"] == agi.channel
    assert env["agi_context"] == "ivr" and env["agi_priority"] == "3"
    assert env["agi_uniqueid"] == get(start, "Uniqueid")
    assert "%E6%9D%8E" in (get(start, "Env") or "")  # UTF-8, URL-encoded
    await ami.close()


async def test_get_data_barge_in_and_timeout(sim: PbxSim) -> None:
    ami, agi, _ = await parked(sim, CitizenScript(keys=[("2", 0.3), ("45#", 0.2)]))
    # the key comes 0.3 s into a 1 s prompt: the prompt stops, result is the digit
    assert await agi.run("GET DATA hotline/welcome 3000 1") == "200 result=2\n"
    assert await agi.run("GET DATA hotline/welcome 3000 5") == "200 result=45\n"
    assert await agi.run("GET DATA hotline/welcome 500 1") == "200 result= (timeout)\n"
    begin = ami.events("DTMFBegin")
    assert [get(e, "Digit") for e in begin] == ["2", "4", "5", "#"]
    assert all(get(e, "Direction") == "Received" and get(e, "Channel") == agi.channel
               for e in begin)
    await ami.close()


async def test_exec_events_and_results(sim: PbxSim) -> None:
    ami, agi, _ = await parked(sim, CitizenScript(keys=[("7", 0.2)]))
    assert await agi.run("SET VARIABLE HOTLINE_TOPIC water") == "200 result=1\n"
    assert await agi.run("GET VARIABLE HOTLINE_TOPIC") == "200 result=1 (water)\n"
    assert await agi.run("GET VARIABLE NOT_SET_ANYWHERE") == "200 result=0\n"
    assert await agi.run('get variable "CALLERID(num)"') == "200 result=1 (13800138000)\n"
    streamed = await agi.run("STREAM FILE hotline/menu 0123456789")  # '7' 0.3 s into it
    assert streamed.startswith("200 result=55 endpos=")
    assert 2000 <= int(streamed.split("endpos=")[1]) < 8000
    assert await agi.run('SAY DIGITS 12 ""') == "200 result=0\n"
    assert await agi.run("EXEC Playback hotline/thanks") == "200 result=0\n"
    assert await agi.run("EXEC NoSuchApp x") == "200 result=-2\n"
    assert await agi.run("FLY TO MOON") == "510 Invalid or unknown command\n"
    assert (await agi.run("GET DATA")).startswith("520-Invalid command syntax.")
    ends = {get(e, "Command"): e for e in ami.events("AGIExecEnd")}
    assert get(ends["FLY TO MOON"], "ResultCode") == "510"
    assert get(ends["EXEC NoSuchApp x"], "Result") == "Unknown Result"
    assert get(ends["EXEC Playback hotline/thanks"], "Result") == "Success"
    assert get(ends["GET DATA"], "ResultCode") == "520"
    starts = {get(e, "CommandId") for e in ami.events("AGIExecStart")}
    assert starts == {get(e, "CommandId") for e in ami.events("AGIExecEnd")}
    assert all((get(e, "CommandId") or "").isdigit() for e in ami.events("AGIExecStart"))
    varset = [e for e in ami.events("VarSet") if get(e, "Variable") == "HOTLINE_TOPIC"]
    assert get(varset[0], "Value") == "water"
    await ami.close()


async def test_commands_run_in_order(sim: PbxSim) -> None:
    ami, agi, _ = await parked(sim, CitizenScript())
    ids = [agi.queue(f"SET VARIABLE V{i} {i}") for i in range(5)]
    await agi.result(ids[-1])
    order = [get(e, "CommandId") for e in ami.events("AsyncAGIExec")]
    assert order == ids
    await ami.close()


async def test_hangup_during_agi_drops_pending_commands(sim: PbxSim) -> None:
    ami, agi, _ = await parked(sim, CitizenScript(hangup_after_s=3.0))
    running = agi.queue("GET DATA hotline/long 20000 4")
    pending = agi.queue("SET VARIABLE NEVER 1")
    assert await agi.result(running) == "200 result=-1\n"
    await ami.wait_event("AsyncAGIEnd", Channel=agi.channel)
    await ami.wait_event("Hangup", Channel=agi.channel)
    await asyncio.sleep(0.1)
    assert not [e for e in ami.events("AsyncAGIExec") if get(e, "CommandId") == pending]
    order = [get(m, "Event") for m in ami.messages if get(m, "Event") in (
        "AsyncAGIExec", "AsyncAGIEnd", "Hangup") and get(m, "Channel") == agi.channel]
    assert order == ["AsyncAGIExec", "AsyncAGIEnd", "Hangup"]
    await ami.close()


async def test_agi_action_errors(sim: PbxSim) -> None:
    ami, agi, _ = await parked(sim, CitizenScript())
    reply = await ami.action("AGI", Channel="Local/nope-00000099;2", Command="NOOP")
    assert get(reply, "Message") == "Channel Local/nope-00000099;2 does not exist."
    phone = agi.channel[:-1] + "1"
    reply = await ami.action("AGI", Channel=phone, Command="NOOP")
    assert get(reply, "Message") == f"Failed to add AGI command to channel {phone} queue"
    reply = await ami.action("AGI", Channel=agi.channel)
    assert get(reply, "Message") == "Both, Channel and Command are *required*"
    await ami.close()


async def test_hangup_command_and_asyncagi_break(sim: PbxSim) -> None:
    ami, agi, _ = await parked(sim, CitizenScript())
    assert await agi.run("ASYNCAGI BREAK") == "200 result=0\n"
    end = await ami.wait_event("AsyncAGIEnd", Channel=agi.channel)
    assert end
    # the dialplan goes on after AGI(): ivr's next priority is Hangup()
    hangup = await ami.wait_event("Hangup", Channel=agi.channel)
    assert get(hangup, "Cause") == "16"
    ami2, agi2, _ = await parked(sim, CitizenScript(caller_num="13700137000"))
    assert await agi2.run("HANGUP") == "200 result=1\n"
    await ami2.wait_event("AsyncAGIEnd", Channel=agi2.channel)
    await ami2.wait_event("Hangup", Channel=agi2.channel)
    await ami.close()
    await ami2.close()


async def test_audiosocket_streams_speech_dtmf_and_ends_on_hangup_frame(
        sim: PbxSim, tmp_path: Path) -> None:
    wav = tmp_path / "speech.wav"
    write_wav(wav, 1.0)  # 16 kHz stereo: pbxsim resamples to 8 kHz mono
    server = AudioSocketServer(echo=True, quiet_after_speech=None, hangup_after_frames=150)
    await server.start()
    try:
        ami, agi, _ = await parked(sim, CitizenScript(speech_wav=wav, speech_delay_s=0.2,
                                                      keys_during_speech=[("5", 2.0)]))
        uuid = "1eba5d59-6aed-41ee-b240-e4602ab7b536"
        result = await agi.run(f"EXEC AudioSocket {uuid},127.0.0.1:{server.port}", timeout=20)
        assert result == "200 result=0\n"  # the server's 0x00 frame ends the session cleanly
        session = server.sessions[0]
        assert session.uuid.hex() == uuid.replace("-", "")
        assert {len(f) for f in session.audio()} == {320}
        assert abs(len(session.speech()) - 16000) <= 640  # ~1 s of 8 kHz 16-bit audio
        assert session.dtmf() == "5"
        assert agi.channel in sim.channel_names()  # the call goes on
        await ami.close()
    finally:
        await server.stop()


async def test_audiosocket_consumes_the_keys_it_forwards(sim: PbxSim) -> None:
    """app_audiosocket ast_read()s every frame and frees it once forwarded: a key heard over
    AudioSocket (0x03) is not read again by the next command, even one queued right behind
    (res_agi runs queued commands back to back, reading no frame in between)."""
    server = AudioSocketServer(echo=True, quiet_after_speech=None, hangup_after_frames=100)
    await server.start()
    try:
        ami, agi, _ = await parked(sim, CitizenScript(keys_during_speech=[("7", 0.5)]))
        uuid = "00000000-0000-4000-8000-000000000007"
        listen = agi.queue(f"EXEC AudioSocket {uuid},127.0.0.1:{server.port}")
        after = agi.queue("STREAM FILE hotline/emergency 0123456789*#")
        assert await agi.result(listen, timeout=20) == "200 result=0\n"
        assert server.sessions[0].dtmf() == "7"
        assert await agi.result(after) == "200 result=0 endpos=8000\n"  # played out, no key
        await ami.close()
    finally:
        await server.stop()


async def test_a_key_dropped_between_commands_is_pressed_again_while_listening(
        sim: PbxSim) -> None:
    """A key that lands after its prompt ended, while async AGI waits for the next command,
    is read and dropped (res_agi's async_agi_read_frame). A caller who notices presses it
    again into the next AudioSocket session, once: the session hears it once."""
    server = AudioSocketServer(echo=True, quiet_after_speech=None, hangup_after_frames=100)
    await server.start()
    try:
        ami, agi, _ = await parked(sim, CitizenScript(keys=[("4", 1.2)],
                                                      repeat_dropped_keys_after_s=0.3))
        assert await agi.run("STREAM FILE hotline/welcome 0123456789*#") == \
            "200 result=0 endpos=8000\n"
        await ami.wait_event("DTMFEnd", timeout=10, Channel=agi.channel)
        uuid = "00000000-0000-4000-8000-000000000004"
        assert await agi.run(f"EXEC AudioSocket {uuid},127.0.0.1:{server.port}",
                             timeout=20) == "200 result=0\n"
        assert server.sessions[0].dtmf() == "4"
        await ami.close()
    finally:
        await server.stop()


async def test_audiosocket_gives_up_without_media_from_the_server(sim: PbxSim) -> None:
    server = AudioSocketServer(echo=False)
    await server.start()
    try:
        ami, agi, _ = await parked(sim, CitizenScript())
        uuid = "00000000-0000-4000-8000-000000000001"
        assert await agi.run(f"EXEC AudioSocket {uuid},127.0.0.1:{server.port}") == \
            "200 result=-1\n"
        frames = len(server.sessions[0].audio())
        assert 60 <= frames <= 140  # ~2 s of 20 ms frames before giving up
        assert await agi.run(f"EXEC AudioSocket not-a-uuid,127.0.0.1:{server.port}") == \
            "200 result=-1\n"
        await ami.close()
    finally:
        await server.stop()
