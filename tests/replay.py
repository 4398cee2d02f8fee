"""A TCP server that plays a recorded Asterisk session back to a client.

It walks the transcript: RECV blocks are written as recorded; at each SEND block it reads the
client's next action, checks it is the same action, and from then on substitutes the
recorded ActionID/CommandID with the client's own in what it plays back. "connection closed
by Asterisk" notes close the socket; the next connection resumes after them. So the adapter
under test talks to byte-exact real-Asterisk output, only the ids being its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from tests.reference import Block, load_transcript, parse_message


def _read_fields(data: bytes) -> dict[str, str]:
    return {k.lower(): v for k, v in parse_message(data)}


@dataclass
class ReplayServer:
    transcript: str
    blocks: list[Block] = field(init=False)
    mismatches: list[str] = field(default_factory=list)
    received: list[dict[str, str]] = field(default_factory=list)
    port: int = 0
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.blocks = load_transcript(self.transcript)
        self._cursor = 0
        self._ids: dict[bytes, bytes] = {}
        self._server: asyncio.base_events.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for w in self._writers:
            with contextlib.suppress(Exception):
                w.close()
        for t in self._handlers:
            t.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def _sub(self, data: bytes) -> bytes:
        for recorded, ours in self._ids.items():
            data = data.replace(b": " + recorded + b"\r\n", b": " + ours + b"\r\n")
        return data

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        # A new connection starts at the next banner: skip what the recording client wrote
        # on the socket Asterisk had already closed.
        while self._cursor < len(self.blocks) and self.blocks[self._cursor].kind == "SEND":
            self._cursor += 1
        try:
            while self._cursor < len(self.blocks):
                block = self.blocks[self._cursor]
                self._cursor += 1
                if block.kind == "RECV":
                    writer.write(self._sub(block.data))
                    await writer.drain()
                elif block.kind == "NOTE":
                    if block.data.startswith(b"connection closed"):
                        writer.close()
                        return
                else:
                    raw = await reader.readuntil(b"\r\n\r\n")
                    got = _read_fields(raw)
                    self.received.append(got)
                    want = _read_fields(block.data)
                    if got.get("action", "").lower() != want.get("action", "").lower():
                        self.mismatches.append(
                            f"expected Action {want.get('action')!r}, got {got.get('action')!r}")
                    for key in ("actionid", "commandid"):
                        if key in want and key in got:
                            self._ids[want[key].encode()] = got[key].encode()
            self.finished.set()
            await reader.read()   # hold the connection until the client leaves
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def sent_actions(self) -> list[tuple[str, dict[str, str]]]:
        """The recorded client's actions after its successful login, in order, keys as
        recorded (without Action and ActionID)."""
        out: list[tuple[str, dict[str, str]]] = []
        logged_in = False
        for b in self.blocks:
            if b.kind != "SEND":
                continue
            pairs = parse_message(b.data)
            name = pairs[0][1]
            f = {k: v for k, v in pairs[1:] if k.lower() != "actionid"}
            if name.lower() == "login":
                logged_in = f.get("Secret") != "wrong"
                continue
            if logged_in:
                out.append((name, f))
        return out
