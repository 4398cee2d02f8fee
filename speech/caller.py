"""A simulated Asterisk AudioSocket client: the caller side, for tests and the benchmark.

It connects like ``EXEC AudioSocket <uuid>,<host>:<port>``: a UUID frame, then 20 ms slin
frames paced at ``speed`` times real time, and reads what the server sends back (media,
hangup) into counters, like Asterisk would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid as uuidlib
from dataclasses import dataclass, field

from ivr.aio import cancel_and_wait
from speech.audiosocket import (
    FRAME_BYTES,
    AudioFrame,
    DtmfFrame,
    FrameParser,
    HangupFrame,
    UuidFrame,
    encode,
)


@dataclass(slots=True)
class Received:
    audio_frames: int = 0
    hangup: bool = False
    first_media_after_s: float | None = None
    max_gap_s: float = 0.0      # longest wait between two media frames from the server


@dataclass(slots=True)
class SimulatedCaller:
    host: str
    port: int
    uuid: uuidlib.UUID = field(default_factory=uuidlib.uuid4)
    received: Received = field(default_factory=Received)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _listen: asyncio.Task[None] | None = None
    _t0: float = 0.0

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._t0 = time.monotonic()
        self._writer.write(encode(UuidFrame(self.uuid)))
        await self._writer.drain()
        self._listen = asyncio.get_running_loop().create_task(self._read_back())

    async def send_audio(self, pcm: bytes, speed: float = 1.0) -> None:
        """Stream ``pcm`` as 20 ms frames at ``speed`` x real time (0: as fast as possible).

        Stops early, like Asterisk, once the server has hung up.
        """
        assert self._writer is not None
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n, i in enumerate(range(0, len(pcm), FRAME_BYTES), start=1):
            if self._listen is not None and self._listen.done():
                return
            self._writer.write(encode(AudioFrame(pcm[i : i + FRAME_BYTES])))
            await self._writer.drain()
            if speed > 0:
                await asyncio.sleep(max(0.0, start + n * 0.02 / speed - loop.time()))

    async def send_dtmf(self, digit: str) -> None:
        assert self._writer is not None
        self._writer.write(encode(DtmfFrame(digit)))
        await self._writer.drain()

    async def hangup(self) -> None:
        if self._writer is not None and not self._writer.is_closing():
            with contextlib.suppress(ConnectionError):
                self._writer.write(encode(HangupFrame()))
                await self._writer.drain()

    async def wait_hangup(self, timeout: float) -> bool:
        """True if the server hung up (hangup frame or close) within ``timeout``."""
        assert self._listen is not None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._listen)
        return self._listen.done()

    async def close(self) -> None:
        if self._listen is not None:
            await cancel_and_wait(self._listen)
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()

    async def _read_back(self) -> None:
        assert self._reader is not None
        parser = FrameParser(name="simulated-caller")
        last = self._t0
        try:
            while True:
                data = await self._reader.read(4096)
                if not data:
                    return
                for frame in parser.feed(data):
                    now = time.monotonic()
                    if isinstance(frame, AudioFrame):
                        r = self.received
                        r.audio_frames += 1
                        if r.first_media_after_s is None:
                            r.first_media_after_s = now - self._t0
                        r.max_gap_s = max(r.max_gap_s, now - last)
                        last = now
                    elif isinstance(frame, HangupFrame):
                        self.received.hangup = True
                        return
        except ConnectionError:
            return
