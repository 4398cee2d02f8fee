"""Test helpers for pbxsim: a raw AMI client and a tiny AudioSocket server (no test cases here).

The client parses the wire independently of pbxsim (with tests/reference.parse_message), so the
tests check bytes as a real AMI client would see them.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import itertools
import math
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.reference import parse_message

Msg = list[tuple[str, str]]


def get(msg: Msg, key: str, default: str | None = None) -> str | None:
    low = key.lower()
    for k, v in msg:
        if k.lower() == low:
            return v
    return default


def is_response(msg: Msg) -> bool:
    """A reply to an action (OriginateResponse events also carry a Response key)."""
    return bool(msg) and msg[0][0] == "Response"


def kind(msg: Msg) -> str:
    """'Response:Success' or 'Event:Name' of a message."""
    return f"{msg[0][0]}:{msg[0][1]}" if msg else ""


class AmiClient:
    """Line-exact AMI client: every message received is kept in arrival order."""

    _ids = itertools.count(1)

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 banner: bytes) -> None:
        self.reader, self.writer, self.banner = reader, writer, banner
        self.messages: list[Msg] = []
        self.raw: list[bytes] = []
        self.closed = asyncio.Event()
        self._arrived = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, port: int, login: bool = False) -> AmiClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        banner = await asyncio.wait_for(reader.readline(), 5)
        client = cls(reader, writer, banner)
        if login:
            reply = await client.action("Login", Username="hotline", Secret="s3cret")
            assert get(reply, "Message") == "Authentication accepted", reply
        return client

    async def _read(self) -> None:
        buf = b""
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                buf += data
                while b"\r\n\r\n" in buf:
                    raw, buf = buf.split(b"\r\n\r\n", 1)
                    self.raw.append(raw + b"\r\n\r\n")
                    self.messages.append(parse_message(raw + b"\r\n"))
                    self._arrived.set()
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            self._arrived.set()

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    def send(self, fields: list[tuple[str, str]]) -> None:
        self.writer.write(("".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n").encode())

    def send_action(self, name: str, **kw: str) -> str:
        action_id = kw.pop("ActionID", f"t-{next(self._ids)}")
        self.send([("Action", name), ("ActionID", action_id), *kw.items()])
        return action_id

    async def action(self, name: str, timeout: float = 5.0, **kw: str) -> Msg:
        action_id = self.send_action(name, **kw)
        return await self.response(action_id, timeout)

    async def wait_for(self, pred: Callable[[Msg], bool], timeout: float = 5.0,
                       start: int = 0) -> Msg:
        """The first message (from index ``start``) matching ``pred``."""
        async def scan() -> Msg:
            i = start
            while True:
                while i < len(self.messages):
                    if pred(self.messages[i]):
                        return self.messages[i]
                    i += 1
                if self.closed.is_set():
                    raise ConnectionError("AMI connection closed while waiting")
                self._arrived.clear()
                await self._arrived.wait()
        return await asyncio.wait_for(scan(), timeout)

    async def wait_event(self, event: str, timeout: float = 5.0, start: int = 0,
                         **fields: str) -> Msg:
        def match(m: Msg) -> bool:
            return get(m, "Event") == event and all(get(m, k) == v for k, v in fields.items())
        return await self.wait_for(match, timeout, start)

    async def response(self, action_id: str, timeout: float = 5.0) -> Msg:
        return await self.wait_for(
            lambda m: is_response(m) and get(m, "ActionID") == action_id, timeout)

    async def event_list(self, name: str, timeout: float = 5.0, **kw: str) -> list[Msg]:
        """Send a list action; the response, its events and the ...Complete event."""
        action_id = self.send_action(name, **kw)
        first = await self.response(action_id, timeout)
        out = [first]
        if get(first, "EventList") != "start":
            return out
        await self.wait_for(lambda m: get(m, "ActionID") == action_id
                            and get(m, "EventList") == "Complete", timeout)
        out += [m for m in self.messages if get(m, "ActionID") == action_id
                and get(m, "Event") is not None]
        return out

    def events(self, name: str) -> list[Msg]:
        return [m for m in self.messages if get(m, "Event") == name]

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


@dataclass
class AudioSocketSession:
    uuid: bytes = b""
    frames: list[tuple[int, bytes]] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def audio(self) -> list[bytes]:
        return [p for k, p in self.frames if k == 0x10]

    def speech(self) -> bytes:
        """Received audio without the leading and trailing silence."""
        frames = self.audio()
        voiced = [i for i, f in enumerate(frames) if any(f)]
        if not voiced:
            return b""
        return b"".join(frames[voiced[0]:voiced[-1] + 1])

    def dtmf(self) -> str:
        return "".join(p.decode() for k, p in self.frames if k == 0x03)


class AudioSocketServer:
    """Accepts AudioSocket connections from pbxsim and records what arrives.

    ``echo``: send each received audio frame back (a server that keeps media flowing);
    ``quiet_after_speech``: stop echoing once speech was followed by this many silent frames
    (pbxsim then gives up after 2 s without media, as Asterisk does);
    ``hangup_after_frames``: send a 0x00 hangup frame after that many audio frames.
    """

    def __init__(self, echo: bool = True, quiet_after_speech: int | None = 10,
                 hangup_after_frames: int | None = None) -> None:
        self.echo = echo
        self.quiet_after_speech = quiet_after_speech
        self.hangup_after_frames = hangup_after_frames
        self.sessions: list[AudioSocketSession] = []
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = AudioSocketSession()
        self.sessions.append(session)
        heard_speech, quiet = False, 0
        try:
            while True:
                header = await reader.readexactly(3)
                length = int.from_bytes(header[1:3], "big")
                payload = await reader.readexactly(length) if length else b""
                session.frames.append((header[0], payload))
                if header[0] == 0x01:
                    session.uuid = payload
                    continue
                if header[0] != 0x10:
                    continue
                if any(payload):
                    heard_speech, quiet = True, 0
                elif heard_speech:
                    quiet += 1
                n = len(session.audio())
                if self.hangup_after_frames is not None and n >= self.hangup_after_frames:
                    writer.write(b"\x00\x00\x00")
                    await writer.drain()
                    break
                keep_talking = not (self.quiet_after_speech is not None and heard_speech
                                    and quiet >= self.quiet_after_speech)
                if self.echo and keep_talking:
                    writer.write(header + payload)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            session.ended.set()
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def write_wav(path: Path, seconds: float, rate: int = 16000, channels: int = 2) -> None:
    """A 440 Hz tone standing in for a citizen's sentence."""
    n = int(seconds * rate)
    samples = array.array("h", (int(8000 * math.sin(2 * math.pi * 440 * i / rate))
                                for i in range(n) for _ in range(channels)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
