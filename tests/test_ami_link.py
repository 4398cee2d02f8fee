"""AMI link liveness: unanswered pings reconnect, actions time out, garbage is skipped.

The peer here is a deliberately broken AMI server (it stops answering, or sends junk), which
no real Asterisk can be made to do on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging

import pytest

from ivr.ami.errors import AmiActionError, AmiTimeout
from ivr.ami.link import AmiLink
from ivr.config import AmiConfig


async def read_action(r: asyncio.StreamReader) -> dict[str, str]:
    """The next action the link sent, as its fields."""
    raw = await r.readuntil(b"\r\n\r\n")
    return dict(line.split(": ", 1) for line in raw.decode().split("\r\n") if ": " in line)


class MuteAfterLogin:
    """Accepts any login, then answers nothing on the first connection (a hung Asterisk);
    later connections answer pings normally."""

    def __init__(self, junk: bytes = b"") -> None:
        self.connections = 0
        self.junk = junk
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        mute = self.connections == 1
        w.write(b"Asterisk Call Manager/13.0.0\r\n")
        try:
            while True:
                fields = await read_action(r)
                aid = fields.get("ActionID", "")
                if fields.get("Action") == "Login":
                    w.write(self.junk)
                    w.write(f"Response: Success\r\nActionID: {aid}\r\n"
                            "Message: Authentication accepted\r\n\r\n".encode())
                elif not mute:
                    w.write(f"Response: Success\r\nActionID: {aid}\r\nPing: Pong\r\n"
                            "Timestamp: 1795600971.527910\r\n\r\n".encode())
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(Exception):
                w.close()


def cfg(port: int, **kw: float) -> AmiConfig:
    base: dict[str, object] = {
        "host": "127.0.0.1", "port": port, "username": "hotline", "secret": "s",
        "action_timeout_s": 0.3, "ping_interval_s": 0.2, "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.2, "heartbeat_interval_s": 5.0}
    base.update(kw)
    return AmiConfig(**base)  # type: ignore[arg-type]


async def test_unanswered_ping_forces_reconnect(caplog: pytest.LogCaptureFixture) -> None:
    server = MuteAfterLogin()
    await server.start()
    link = AmiLink(cfg(server.port))
    link.start()
    try:
        async with asyncio.timeout(10):
            while link.connects < 2:
                await asyncio.sleep(0.05)
        assert server.connections >= 2
        assert any("ping unanswered" in r.getMessage() for r in caplog.records)
        pong = await link.action("Ping")
        assert pong.fields["ping"] == "Pong"
    finally:
        await link.stop()
        await server.stop()


async def test_action_times_out_instead_of_hanging() -> None:
    server = MuteAfterLogin()
    await server.start()
    link = AmiLink(cfg(server.port, ping_interval_s=600.0))
    link.start()
    try:
        await link.wait_up(5)
        with pytest.raises(AmiTimeout):
            await link.action("QueueStatus", timeout=0.2)
    finally:
        await link.stop()
        await server.stop()


async def test_malformed_frames_are_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ivr.ami.codec")
    junk = (b"this is not AMI\r\n\r\n"
            b"Event: Hangup\r\nno colon here\r\nUniqueid: 1.1\r\n\r\n"
            b"\xff\xfe\r\n\r\n")
    server = MuteAfterLogin(junk)
    server.connections = 1  # answer pings: this test is about parsing
    await server.start()
    link = AmiLink(cfg(server.port, ping_interval_s=600.0))
    seen = []
    link.add_listener(seen.append)
    link.start()
    try:
        await link.wait_up(5)
        assert (await link.action("Ping")).success
        assert [e.name for e in seen] == ["Hangup"]
        assert any("malformed" in r.getMessage() or "neither" in r.getMessage()
                   for r in caplog.records)
    finally:
        await link.stop()
        await server.stop()


# As app_manager words them (recorded in ../shared/asterisk-reference): the channel leaves
# async AGI (hangs up) just as the command is queued, and the AGI action is then refused.
_AGI_END = ("Event: AsyncAGIEnd\r\nPrivilege: agi,all\r\nChannel: {ch}\r\nChannelState: 6\r\n"
            "ChannelStateDesc: Up\r\nCallerIDNum: 13700137000\r\nCallerIDName: x\r\n"
            "ConnectedLineNum: 13700137000\r\nConnectedLineName: x\r\nLanguage: en\r\n"
            "AccountCode: \r\nContext: ivr\r\nExten: s\r\nPriority: 3\r\n"
            "Uniqueid: 1795601869.6\r\nLinkedid: 1795601869.5\r\n\r\n")


async def test_a_command_refused_after_the_channel_left_leaves_no_stray_error(
        caplog: pytest.LogCaptureFixture) -> None:
    """The command's result can no longer come and the action fails: the caller gets the
    refusal, and asyncio logs no 'Future exception was never retrieved' for the result."""
    channel = "Local/s@ivr-00000002;2"

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"Asterisk Call Manager/13.0.0\r\n")
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                fields = await read_action(r)
                aid = fields.get("ActionID", "")
                if fields.get("Action") == "AGI":
                    w.write(_AGI_END.format(ch=channel).encode())
                    w.write(f"Response: Error\r\nActionID: {aid}\r\nMessage: Channel does "
                            f"not exist: {channel}\r\n\r\n".encode())
                else:
                    w.write(f"Response: Success\r\nActionID: {aid}\r\n\r\n".encode())

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    link = AmiLink(cfg(server.sockets[0].getsockname()[1], ping_interval_s=600.0))
    link.start()
    try:
        await link.wait_up(5)
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            with pytest.raises(AmiActionError, match="Channel does not exist"):
                await link.agi(channel, "STREAM FILE beep \"\"", timeout=2.0)
            gc.collect()
        assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text
    finally:
        await link.stop()
        server.close()
