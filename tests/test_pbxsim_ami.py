"""pbxsim's AMI server: login, framing robustness, error messages, variables, originate."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections.abc import AsyncIterator

import pytest

from pbxsim import PbxSim, SimConfig
from tests.test_pbxsim_support import AmiClient, get, is_response

UNKNOWN = "Invalid/unknown command: {}. Use Action: ListCommands to show available commands."


@pytest.fixture
async def sim() -> AsyncIterator[PbxSim]:
    s = PbxSim(SimConfig(port=0, speed=20.0, auth_failure_delay_s=1.0))
    await s.start()
    yield s
    await s.stop()


async def test_banner_login_and_boot_events(sim: PbxSim) -> None:
    ami = await AmiClient.connect(sim.ami_port)
    assert ami.banner == b"Asterisk Call Manager/13.0.0\r\n"
    reply = await ami.action("Login", Username="hotline", Secret="s3cret", ActionID="l-1")
    assert reply == [("Response", "Success"), ("ActionID", "l-1"),
                     ("Message", "Authentication accepted")]
    booted = await ami.wait_event("FullyBooted")
    auth = await ami.wait_event("SuccessfulAuth")
    assert ami.messages.index(reply) < ami.messages.index(booted) < ami.messages.index(auth)
    assert get(auth, "AccountID") == "hotline" and get(auth, "UsingPassword") == "0"
    pong = await ami.action("Ping", ActionID="p-1")
    assert [k for k, _ in pong] == ["Response", "ActionID", "Ping", "Timestamp"]
    assert get(pong, "Ping") == "Pong"
    bye = await ami.action("Logoff", ActionID="x")
    assert bye == [("Response", "Goodbye"), ("ActionID", "x"),
                   ("Message", "Thanks for all the fish.")]
    await asyncio.wait_for(ami.closed.wait(), 2)
    assert sim.login_attempts == 1


async def test_failed_login_is_delayed_then_dropped(sim: PbxSim) -> None:
    ami = await AmiClient.connect(sim.ami_port)
    ami.send_action("Login", Username="hotline", Secret="wrong", ActionID="bad")
    await asyncio.sleep(0.01)
    assert not ami.messages  # Asterisk waits before answering a failed login
    reply = await ami.response("bad")
    assert reply == [("Response", "Error"), ("ActionID", "bad"),
                     ("Message", "Authentication failed")]
    await asyncio.wait_for(ami.closed.wait(), 2)


async def test_actions_before_login_and_unknown_actions(sim: PbxSim) -> None:
    ami = await AmiClient.connect(sim.ami_port)
    reply = await ami.action("Ping", ActionID="early")
    assert get(reply, "Message") == "Permission denied"
    ami.send([("Action", "Login"), ("Username", "hotline"), ("Secret", "s3cret")])
    await ami.wait_event("FullyBooted")
    reply = await ami.action("NoSuchAction", ActionID="e-1")
    assert reply == [("Response", "Error"), ("ActionID", "e-1"),
                     ("Message", UNKNOWN.format("NoSuchAction"))]
    bad = await ami.wait_event("RequestBadFormat")
    assert get(bad, "RequestType") == "Action: NoSuchAction"
    ami.send([("ActionID", "no-action"), ("Foo", "bar")])
    reply = await ami.response("no-action")
    assert get(reply, "Message") == "Missing action in request"
    await ami.close()


async def test_keys_and_action_names_are_case_insensitive(sim: PbxSim) -> None:
    ami = await AmiClient.connect(sim.ami_port, login=True)
    ami.send_raw(b"action: PING\r\nactionid: lower\r\n\r\n")
    reply = await ami.response("lower")
    assert get(reply, "Ping") == "Pong"
    ami.send_raw(b"ACTION: setvar\nVARIABLE: GLOBAL(HOTLINE_HEARTBEAT)\nvalue: 42\n"
                 b"ActionID: lf\n\n")  # bare LF line ends are accepted too
    assert get(await ami.response("lf"), "Message") == "Variable Set"
    assert sim.globals["HOTLINE_HEARTBEAT"] == "42"
    await ami.close()


async def test_garbage_never_crashes_the_server(sim: PbxSim) -> None:
    rng = random.Random(7)
    for _ in range(5):
        junk = await AmiClient.connect(sim.ami_port)
        junk.send_raw(bytes(rng.randrange(256) for _ in range(4000)))
        junk.send_raw(b"Action: Login\r\nUsername: \xff\xfe\r\nNoColonHere\r\n\r\n")
        junk.send_raw(b"Action: Ping\r\nActionID: " + b"x" * 20000 + b"\r\n")  # never ended
        await asyncio.sleep(0.02)
        await junk.close()
    ami = await AmiClient.connect(sim.ami_port, login=True)
    ami.send_raw(os.urandom(64).replace(b"\n", b"") + b"\r\n\r\n")
    reply = await ami.action("Ping", ActionID="still-alive")
    assert get(reply, "Ping") == "Pong"
    await ami.close()


async def test_variables_globals_and_channels(sim: PbxSim) -> None:
    ami = await AmiClient.connect(sim.ami_port, login=True)
    reply = await ami.action("Setvar", Variable="GLOBAL(HOTLINE_HEARTBEAT)", Value="1795601868")
    assert get(reply, "Message") == "Variable Set"
    varset = await ami.wait_event("VarSet", Variable="HOTLINE_HEARTBEAT")
    assert (get(varset, "Channel"), get(varset, "Uniqueid")) == ("none", "none")
    reply = await ami.action("Getvar", Variable="GLOBAL(HOTLINE_HEARTBEAT)", ActionID="g")
    assert reply == [("Response", "Success"), ("ActionID", "g"),
                     ("Variable", "GLOBAL(HOTLINE_HEARTBEAT)"), ("Value", "1795601868")]
    reply = await ami.action("Getvar", Channel="Local/none-00000000;1", Variable="X")
    assert get(reply, "Message") == "No such channel"
    reply = await ami.action("Setvar", Value="1")
    assert get(reply, "Message") == "No variable specified"
    await ami.close()


async def test_error_messages_of_channel_and_queue_actions(sim: PbxSim) -> None:
    ami = await AmiClient.connect(sim.ami_port, login=True)
    cases: list[tuple[str, dict[str, str], str]] = [
        ("Redirect", {"Channel": "Local/nonexistent-0000;2", "Context": "ivr", "Exten": "s",
                      "Priority": "1"}, "Channel does not exist: Local/nonexistent-0000;2"),
        ("Hangup", {"Channel": "Local/gone-00000000;1"}, "No such channel"),
        ("QueueAdd", {"Queue": "nosuchqueue", "Interface": "Local/1003@agents/n"},
         "Unable to add interface to queue: No such queue"),
        ("QueueRemove", {"Queue": "water", "Interface": "Local/1009@agents/n"},
         "Unable to remove interface: Not there"),
        ("QueuePause", {"Interface": "Local/1009@agents/n", "Paused": "true"},
         "Interface not found"),
        ("QueuePenalty", {"Interface": "Local/1009@agents/n", "Penalty": "1"},
         "Invalid interface, queuename or penalty"),
        ("Originate", {"Exten": "s"}, "Channel not specified"),
    ]
    for action, fields, message in cases:
        reply = await ami.action(action, 5.0, **fields)
        assert (get(reply, "Response"), get(reply, "Message")) == ("Error", message), action
    assert get(await ami.action("QueueAdd", Queue="water", Interface="Local/1001@agents/n"),
               "Message") == "Added interface to queue"
    assert get(await ami.action("QueueAdd", Queue="water", Interface="Local/1001@agents/n"),
               "Message") == "Unable to add interface: Already there"
    reply = await ami.action("Command", Command="core show nothing")
    assert (get(reply, "Output") or "").startswith("No such command")
    await ami.close()


async def test_originate_missing_extension_and_success(sim: PbxSim) -> None:
    ami = await AmiClient.connect(sim.ami_port, login=True)
    reply = await ami.action("Originate", ActionID="o-2", Channel="Local/nosuch@nowhere",
                             Context="citizen", Exten="s", Priority="1", Async="true")
    assert get(reply, "Message") == "Originate successfully queued"
    fail = await ami.wait_for(lambda m: not is_response(m) and get(m, "ActionID") == "o-2")
    assert [(k, v) for k, v in fail if k in ("Event", "Response", "Reason", "Uniqueid")] == [
        ("Event", "OriginateResponse"), ("Response", "Failure"), ("Reason", "0"),
        ("Uniqueid", "<unknown>")]
    reply = await ami.action("Originate", ActionID="o-3", Channel="Local/s@citizen_waits/n",
                             Application="Wait", Data="1", CallerID='"张三" <13500135000>',
                             Async="false", timeout=10)
    assert get(reply, "Message") == "Originate successfully queued"
    assert any(get(m, "Event") == "Newchannel" and "citizen_waits" in (get(m, "Channel") or "")
               for m in ami.messages)
    await ami.close()


async def test_events_off_silences_a_session(sim: PbxSim) -> None:
    quiet = await AmiClient.connect(sim.ami_port)
    quiet.send([("Action", "Login"), ("Username", "hotline"), ("Secret", "s3cret"),
                ("Events", "off"), ("ActionID", "q")])
    await quiet.response("q")
    loud = await AmiClient.connect(sim.ami_port, login=True)
    await loud.action("Setvar", Variable="GLOBAL(X)", Value="1")
    await loud.wait_event("VarSet", Variable="X")
    await asyncio.sleep(0.05)
    assert not [m for m in quiet.messages if get(m, "Event") == "VarSet"]
    await quiet.close()
    await loud.close()


async def test_md5_challenge_login(sim: PbxSim) -> None:
    ami = await AmiClient.connect(sim.ami_port)
    reply = await ami.action("Challenge", AuthType="MD5", ActionID="c")
    challenge = get(reply, "Challenge") or ""
    assert challenge.isdigit()
    key = hashlib.md5((challenge + "s3cret").encode()).hexdigest()
    reply = await ami.action("Login", AuthType="MD5", Username="hotline", Key=key)
    assert get(reply, "Message") == "Authentication accepted"
    await ami.close()
