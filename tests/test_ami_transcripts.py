"""The AMI adapter against byte-exact real-Asterisk sessions (../shared/asterisk-reference)."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from ivr.ami.agi_result import AgiResult
from ivr.ami.codec import FrameParser, parse_fields
from ivr.ami.events import (
    AgentEvent,
    AmiEvent,
    AsyncAgiStart,
    CoreShowChannel,
    OriginateResponse,
    QueueCallerAbandon,
    QueueCallerJoin,
    to_event,
)
from ivr.ami.link import AmiLink, LinkState
from ivr.ami.replies import ActionResult
from ivr.config import AmiConfig
from tests.ami_driver import replay_actions
from tests.reference import recv_stream
from tests.replay import ReplayServer

TRANSCRIPTS = ["call-through-ivr-and-queue.txt", "errors-and-abandoned-call.txt",
               "heartbeat-resume-redirect.txt"]


def ami_config(port: int, secret: str = "s3cret") -> AmiConfig:
    return AmiConfig(host="127.0.0.1", port=port, username="hotline", secret=secret,
                     action_timeout_s=5.0, ping_interval_s=600.0, reconnect_min_s=0.05,
                     reconnect_max_s=0.2, heartbeat_interval_s=5.0)


def parse_all(data: bytes, chunking: random.Random | None = None) -> list[AmiEvent]:
    parser = FrameParser()
    out = []
    i = 0
    while i < len(data):
        n = chunking.randint(1, 700) if chunking else len(data)
        for msg in parser.feed(data[i:i + n]):
            f = parse_fields(msg)
            if "event" in f:
                out.append(to_event(f))
        i += n
    return out


@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_any_chunking_of_a_real_stream_parses_the_same(name: str) -> None:
    data = recv_stream(name)
    whole = parse_all(data)
    assert len(whole) > 20
    for seed in range(5):
        assert parse_all(data, random.Random(seed)) == whole


def test_utf8_caller_name_and_abandon_hold_time() -> None:
    events = parse_all(recv_stream("errors-and-abandoned-call.txt"), random.Random(7))
    join = next(e for e in events if isinstance(e, QueueCallerJoin))
    assert join.ref.caller_name == "李先生" and join.queue == "housing"
    abandon = next(e for e in events if isinstance(e, QueueCallerAbandon))
    assert abandon.hold_time == 5 and abandon.queue == "housing"
    assert abandon.original_position == 1


def test_async_agi_start_env_is_url_decoded() -> None:
    events = parse_all(recv_stream("call-through-ivr-and-queue.txt"))
    start = next(e for e in events if isinstance(e, AsyncAgiStart))
    assert start.env["agi_channel"] == "Local/s@ivr-00000000;2"
    assert start.env["agi_callerid"] == "13800138000"
    assert start.env["agi_accountcode"] == ""
    hb = parse_all(recv_stream("heartbeat-resume-redirect.txt"))
    start2 = next(e for e in hb if isinstance(e, AsyncAgiStart))
    assert start2.env["agi_calleridname"] == "王女士"


def test_agent_connect_carries_queue_member_and_caller() -> None:
    events = parse_all(recv_stream("call-through-ivr-and-queue.txt"))
    connect = next(e for e in events if isinstance(e, AgentEvent) and e.name == "AgentConnect")
    assert (connect.queue, connect.member_name, connect.uniqueid) == (
        "water", "agent1001", "1795600972.1")
    complete = next(e for e in events if isinstance(e, AgentEvent) and e.name == "AgentComplete")
    assert complete.talk_time == 4 and complete.reason == "agent"


async def run_replay(name: str, secret: str = "s3cret") -> tuple[ReplayServer, AmiLink,
                                                                 list[object], list[AmiEvent]]:
    server = ReplayServer(name)
    await server.start()
    link = AmiLink(ami_config(server.port, secret))
    seen: list[AmiEvent] = []
    link.add_listener(seen.append)
    link.start()
    await link.wait_up(timeout=10)
    results = await replay_actions(link, server.sent_actions())
    await asyncio.wait_for(server.finished.wait(), 10)
    await link.stop()
    await server.stop()
    assert server.mismatches == []
    return server, link, results, seen


async def test_replay_call_through_ivr_and_queue() -> None:
    _, link, results, seen = await run_replay("call-through-ivr-and-queue.txt")
    agi = [r for r in results if isinstance(r, AgiResult)]
    # GET DATA, AudioSocket, SET VARIABLE, GET VARIABLE, SAY DIGITS, Queue: in order.
    assert [r.result for r in agi] == ["2", "-1", "1", "1", "0", "-1"]
    assert agi[3].data == "13800138000"
    summary = next(r for r in results if isinstance(r, ActionResult)
                   and r.message == "Queue summary will follow")
    assert summary.events[0].fields["available"] == "1"
    status = next(r for r in results if isinstance(r, ActionResult)
                  and r.message == "Queue status will follow")
    members = [e for e in status.events if e.name == "QueueMember"]
    assert {(m.fields["queue"], m.fields["name"], m.fields["paused"]) for m in members} == {
        ("water", "agent1001", "0"), ("housing", "agent1001", "0"), ("housing", "agent1002", "1")}
    names = [e.name for e in seen]
    order = [n for n in names if n in ("AsyncAGIStart", "QueueCallerJoin", "AgentCalled",
                                       "QueueCallerLeave", "AgentConnect", "AgentComplete")]
    assert order == ["AsyncAGIStart", "QueueCallerJoin", "AgentCalled", "QueueCallerLeave",
                     "AgentConnect", "AgentComplete"]
    command = next(r for r in results if isinstance(r, ActionResult)
                   and r.message == "Command output follows")
    assert command.success
    assert results[-1].fields["response"] == "Goodbye"  # type: ignore[union-attr]
    assert link.connects == 1


async def test_replay_errors_wrong_secret_then_exact_error_messages(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hotline")
    _, link, results, seen = await run_replay("errors-and-abandoned-call.txt",
                                              secret="wrong-secret-xyz")
    # The replay refused the first login and accepted the second, as Asterisk did.
    assert link.connects == 1
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.ERROR
    assert "Authentication failed" in refused[0].getMessage()
    assert all("wrong-secret-xyz" not in r.getMessage() for r in caplog.records)
    messages = [r.message for r in results if isinstance(r, ActionResult)]
    assert ("Invalid/unknown command: NoSuchAction. Use Action: ListCommands to show "
            "available commands.") in messages
    assert "Unable to add interface: Already there" in messages
    assert "Unable to add interface to queue: No such queue" in messages
    assert "Channel does not exist: Local/nonexistent-0000;2" in messages
    entry = [e for r in results if isinstance(r, ActionResult) for e in r.events
             if e.name == "QueueEntry"]
    assert entry and entry[0].fields["calleridname"] == "李先生"
    abandon = next(e for e in seen if isinstance(e, QueueCallerAbandon))
    assert abandon.hold_time == 5


async def test_replay_heartbeat_parked_channel_redirect_and_failed_originate() -> None:
    _, _, results, seen = await run_replay("heartbeat-resume-redirect.txt")
    getvar = next(r for r in results if isinstance(r, ActionResult)
                  and r.fields.get("variable") == "GLOBAL(HOTLINE_HEARTBEAT)")
    assert getvar.fields["value"].isdigit()
    channels = next(r for r in results if isinstance(r, ActionResult)
                    and r.message == "Channels will follow" and r.events)
    parked = [e for e in channels.events if isinstance(e, CoreShowChannel)
              and e.parked_in_async_agi]
    assert [(p.channel, p.ref.caller_name) for p in parked] == [
        ("Local/s@ivr_guarded-00000002;2", "王女士")]
    assert any(r.message == "Redirect successful" for r in results
               if isinstance(r, ActionResult))
    failures = [e for e in seen if isinstance(e, OriginateResponse) and e.response == "Failure"]
    assert len(failures) == 1 and failures[0].reason == 0
    assert any(e.name == "AsyncAGIEnd" for e in seen)


async def test_actions_fail_fast_when_link_is_down() -> None:
    link = AmiLink(ami_config(1))   # nothing listens on port 1
    link.start()
    await asyncio.sleep(0.1)
    from ivr.ami.errors import AmiNotConnected
    with pytest.raises(AmiNotConnected):
        await link.action("Ping")
    assert link.state in (LinkState.DOWN, LinkState.CONNECTING)
    await link.stop()
