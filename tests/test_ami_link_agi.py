"""The AMI link's async AGI bookkeeping and list snapshots against what a real Asterisk does
and pbxsim cannot be made to do on demand: AsyncAGIExec events are broadcast to every AMI
session (another service's commands, a previous run's), res_agi queues commands on a channel
that left async AGI without ever running them, and events follow a list in the same read."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from ivr.ami.errors import AgiLeft
from ivr.ami.events import AmiEvent, QueueCallerJoin
from ivr.ami.link import AmiLink
from tests.test_ami_link import _AGI_END, cfg, read_action

Serve = Callable[[dict[str, str], asyncio.StreamWriter], Awaitable[None]]

CHANNEL = "Local/s@ivr-00000002;2"


def _exec(channel: str, command_id: str, result: str) -> bytes:
    return (f"Event: AsyncAGIExec\r\nPrivilege: agi,all\r\nChannel: {channel}\r\n"
            f"Uniqueid: 1795601869.6\r\nCommandID: {command_id}\r\n"
            f"Result: {result}\r\n\r\n").encode()


@contextlib.asynccontextmanager
async def _peer(answer: Serve) -> AsyncIterator[AmiLink]:
    """A fake Asterisk: logs in anything, hands every other action to ``answer``."""
    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"Asterisk Call Manager/13.0.0\r\n")
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                fields = await read_action(r)
                if fields.get("Action") in ("Login", "Ping", "Events"):
                    w.write(f"Response: Success\r\nActionID: {fields.get('ActionID', '')}"
                            "\r\n\r\n".encode())
                else:
                    await answer(fields, w)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    link = AmiLink(cfg(server.sockets[0].getsockname()[1], ping_interval_s=600.0,
                       action_timeout_s=2.0))
    link.start()
    try:
        await link.wait_up(5)
        yield link
    finally:
        await link.stop()
        server.close()


async def test_a_result_for_another_channel_with_our_command_id_is_not_ours() -> None:
    """Two services on one Asterisk (or this one's previous run) both count CommandIDs:
    an AsyncAGIExec is taken only for the command and the channel it was sent on."""
    async def answer(fields: dict[str, str], w: asyncio.StreamWriter) -> None:
        aid, cid = fields.get("ActionID", ""), fields.get("CommandID", "")
        w.write(f"Response: Success\r\nActionID: {aid}\r\nMessage: Added AGI command to "
                "queue\r\n\r\n".encode())
        w.write(_exec("PJSIP/other-00000009", cid, "200%20result%3D-1%0A"))
        w.write(_exec(fields["Channel"], cid, "200%20result%3D0%0A"))

    async with _peer(answer) as link:
        res = await link.agi(CHANNEL, "GET DATA beep 1000 1", timeout=2.0)
        assert res.result == "0"


async def test_a_command_for_a_channel_out_of_async_agi_fails_at_once() -> None:
    """After AsyncAGIEnd, res_agi still answers 'Added AGI command to queue' and never runs
    the command: the link must not send it and wait for ever."""
    sent: list[str] = []

    async def answer(fields: dict[str, str], w: asyncio.StreamWriter) -> None:
        aid = fields.get("ActionID", "")
        sent.append(fields.get("Command", ""))
        w.write(f"Response: Success\r\nActionID: {aid}\r\nMessage: Added AGI command to "
                "queue\r\n\r\n".encode())
        if fields.get("Command") == "NOOP":
            w.write(_AGI_END.format(ch=CHANNEL).encode())     # the watchdog's jump

    async with _peer(answer) as link:
        with pytest.raises(AgiLeft):
            await link.agi(CHANNEL, "NOOP", timeout=None)
        with pytest.raises(AgiLeft):
            await link.agi(CHANNEL, "STREAM FILE beep \"\"", timeout=None)
        assert sent == ["NOOP"]


_QUEUE_STATUS = ("Response: Success\r\nActionID: {aid}\r\nEventList: start\r\n"
                 "Message: Queue status will follow\r\n\r\n"
                 "Event: QueueEntry\r\nActionID: {aid}\r\nQueue: water\r\nPosition: 1\r\n"
                 "Channel: {ch}\r\nUniqueid: 1.1\r\nCallerIDNum: 1\r\nCallerIDName: x\r\n"
                 "Wait: 3\r\nPriority: 0\r\n\r\n"
                 "Event: QueueStatusComplete\r\nActionID: {aid}\r\nEventList: Complete\r\n"
                 "ListItems: 1\r\n\r\n"
                 # In the same read: the caller leaves right after the snapshot.
                 "Event: QueueCallerLeave\r\nQueue: water\r\nChannel: {ch}\r\n"
                 "Uniqueid: 1.1\r\nCount: 0\r\nPosition: 1\r\n\r\n")


async def test_a_list_is_handed_over_before_the_events_that_follow_it() -> None:
    order: list[str] = []

    async def answer(fields: dict[str, str], w: asyncio.StreamWriter) -> None:
        w.write(_QUEUE_STATUS.format(aid=fields.get("ActionID", ""), ch=CHANNEL).encode())

    def on_event(ev: AmiEvent) -> None:
        order.append(ev.name)

    async with _peer(answer) as link:
        link.add_listener(on_event, ["QueueCallerLeave", "QueueCallerJoin"])
        res = await link.action("QueueStatus", on_list=lambda evs: order.append(
            f"list of {len(evs)}"))
        await asyncio.sleep(0.05)
        assert len(res.events) == 1
        # The snapshot first, then the newer event: applied in this order, the caller who
        # left is not brought back by the older snapshot.
        assert order == ["list of 1", "QueueCallerLeave"]
        assert not isinstance(res.events[0], QueueCallerJoin)
