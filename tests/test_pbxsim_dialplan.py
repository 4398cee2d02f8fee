"""The dialplan subset: parsing, patterns, expressions, and the fail-open guard of ivr_guarded."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from pbxsim import DEFAULT_DIALPLAN, CitizenScript, PbxSim, SimClock, SimConfig
from pbxsim.dialplan import Dialplan, pattern_matches
from pbxsim.expr import evaluate, split_args, substitute
from tests.reference import reference_dir
from tests.test_pbxsim_support import AmiClient, get


def test_reference_dialplan_parses_like_asterisk() -> None:
    plan = Dialplan.parse((reference_dir() / "etc" / "extensions.conf").read_text())
    assert list(plan.contexts) == ["ivr", "citizen", "agents", "citizen_impatient",
                                   "queue_housing", "ivr_guarded", "citizen_waits"]
    guarded = plan.find_extension("ivr_guarded", "s")
    assert guarded is not None
    assert [(s.priority, s.app) for s in guarded.steps.values()] == [
        (1, "Answer"), (2, "GotoIf"), (3, "AGI"), (4, "Hangup"), (5, "Queue"), (6, "Hangup")]
    assert guarded.labels == {"fallback": 5}
    assert plan.find_extension("agents", "1001") is plan.find_extension("agents", "1099")
    assert plan.find_extension("agents", "2001") is None
    assert plan.resolve_priority("ivr_guarded", "s", "fallback") == 5
    assert Dialplan.parse(DEFAULT_DIALPLAN).contexts.keys() >= {"ivr", "ivr_guarded"}


@pytest.mark.parametrize("pattern,exten,ok", [
    ("_10XX", "1001", True), ("_10XX", "100", False), ("_NXX", "199", False),
    ("_NXX", "299", True), ("_Z.", "10", True), ("_Z.", "1", False), ("_1!", "1", True),
    ("_[13-5]0", "40", True), ("_[13-5]0", "20", False), ("s", "s", True),
])
def test_patterns(pattern: str, exten: str, ok: bool) -> None:
    assert pattern_matches(pattern, exten) is ok


def test_expressions_and_substitution() -> None:
    assert evaluate("1795601869 - 01795601868 > 15") == "0"
    assert evaluate("1795601869 - 01 > 15") == "1"
    assert evaluate("2 + 3 * 4") == "14" and evaluate("(2 + 3) * 4") == "20"
    assert evaluate("7 / 2") == "3.5" and evaluate("7 % 2") == "1"
    assert evaluate('"abc" = "abc"') == "1" and evaluate("abc != abd") == "1"
    assert evaluate("0 | 5") == "5" and evaluate("1 & 0") == "0"
    assert evaluate("1 ? yes :: no") == "yes" and evaluate("!1") == "0"
    values = {"EPOCH": "100", "GLOBAL(HB)": "90", "X": "abcdef"}
    text = "$[${EPOCH} - 0${GLOBAL(HB)} > 15]?fallback"
    assert substitute(text, lambda n: values.get(n, "")) == "0?fallback"
    assert substitute("${X:1:3}/${X:-2}", lambda n: values.get(n, "")) == "bcd/ef"
    assert split_args("water,,,,30") == ["water", "", "", "", "30"]
    assert split_args('a,"b,c",IF($[1]?x:y)') == ["a", '"b,c"', "IF($[1]?x:y)"]


async def guarded_call(sim: PbxSim) -> tuple[AmiClient, str]:
    ami = await AmiClient.connect(sim.ami_port, login=True)
    call = await sim.place_call(CitizenScript(context="ivr_guarded", patience_s=2.0))
    await ami.wait_for(lambda m: get(m, "Event") == "Newexten"
                       and get(m, "Application") == "GotoIf", timeout=10)
    return ami, call.ivr_channel


async def test_guard_fresh_heartbeat_parks_in_agi_stale_takes_the_dialplan_queue() -> None:
    plan = DEFAULT_DIALPLAN.replace("Queue(housing,,,,20)", "Queue(water,,,,20)")
    sim = PbxSim(SimConfig(port=0, speed=20.0, dialplan=plan))
    await sim.start()
    try:
        sim.globals["HOTLINE_HEARTBEAT"] = str(int(sim.clock.now()))
        ami, chan = await guarded_call(sim)
        await ami.wait_event("AsyncAGIStart", Channel=chan, timeout=10)
        goto = next(m for m in ami.events("Newexten") if get(m, "Application") == "GotoIf")
        assert get(goto, "AppData") == "0?fallback"
        reply = await ami.action("Hangup", Channel=chan)
        assert get(reply, "Message") == "Channel Hungup"
        await ami.close()

        sim.globals["HOTLINE_HEARTBEAT"] = str(int(sim.clock.now()) - 16)  # stale: fail open
        ami, chan = await guarded_call(sim)
        join = await ami.wait_event("QueueCallerJoin", Channel=chan, timeout=10)
        assert get(join, "Queue") == "water"  # the queue named by the dialplan text
        goto = next(m for m in ami.events("Newexten") if get(m, "Application") == "GotoIf")
        assert get(goto, "AppData") == "1?fallback"
        assert not ami.events("AsyncAGIStart")
        await ami.close()
    finally:
        await sim.stop()


async def test_clock_scales_time() -> None:
    clock = SimClock(speed=50.0, start_epoch=1_000_000.0)
    t0 = clock.now()
    await clock.sleep(5.0)  # 0.1 s of real time
    assert 1_000_000.0 <= t0 < clock.now()
    assert clock.now() - t0 >= 4.5
    assert clock.to_real(5.0) == pytest.approx(0.1)


async def test_python_m_pbxsim_runs_until_sigterm(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pbxsim", "--host", "127.0.0.1", "--port", "0", "--speed", "5",
        "--queues", str(reference_dir() / "etc" / "queues.conf"),
        stderr=asyncio.subprocess.PIPE, env=env)
    try:
        assert proc.stderr is not None
        port = 0
        async with asyncio.timeout(15):
            while not port:
                line = (await proc.stderr.readline()).decode()
                assert line, "pbxsim exited early"
                if "AMI listening on" in line:
                    port = int(line.rsplit(":", 1)[1])
        ami = await AmiClient.connect(port, login=True)
        assert get(await ami.action("Ping"), "Ping") == "Pong"
        await ami.close()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_absolute_timeout_goes_to_the_t_extension_or_hangs_up() -> None:
    """TIMEOUT(absolute), as __ast_pbx_run handles it: the running application is
    interrupted and the channel goes to its context's T extension, or is hung up without
    one; 0 clears it."""
    plan = """
[watched]
exten => s,1,Answer()
 same => n,Set(TIMEOUT(absolute)=3)
 same => n,Wait(30)
exten => T,1,Set(TIMED_OUT=yes)
 same => n,Wait(30)
[unwatched]
exten => s,1,Answer()
 same => n,Set(TIMEOUT(absolute)=3)
 same => n,Wait(30)
[cleared]
exten => s,1,Answer()
 same => n,Set(TIMEOUT(absolute)=3)
 same => n,Set(TIMEOUT(absolute)=0)
 same => n,Wait(6)
 same => n,Set(WAITED=yes)
 same => n,Wait(30)
"""
    sim = PbxSim(SimConfig(port=0, speed=10.0, dialplan=plan))
    await sim.start()
    try:
        watched = await sim.place_call(CitizenScript(context="watched", exten="s",
                                                     hangup_after_s=20.0))
        unwatched = await sim.place_call(CitizenScript(context="unwatched", exten="s",
                                                       hangup_after_s=20.0))
        cleared = await sim.place_call(CitizenScript(context="cleared", exten="s",
                                                     hangup_after_s=20.0))
        outcome = await asyncio.wait_for(unwatched.done, 5)
        assert not outcome.hung_up_by_citizen         # Asterisk hung it up at 3 s
        await asyncio.sleep(0.5)                      # 5 simulated seconds past the timeout
        assert sim.channel_variable(watched.ivr_channel, "TIMED_OUT") == "yes"
        assert sim.channel_variable(cleared.ivr_channel, "WAITED") == "yes"
    finally:
        await sim.stop()
