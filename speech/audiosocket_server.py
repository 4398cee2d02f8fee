"""AudioSocket TCP server: Asterisk connects here after ``EXEC AudioSocket <uuid>,<host>:<port>``.

The IVR registers the UUID first (``server.expect(uuid)``), then asks Asterisk to connect; a
connection whose first frame names a UUID nobody expects is refused (closed) and logged.

While a stream is open we keep sending media back: Asterisk's AudioSocket application gives up
on a call after about 2 s without media from our side, so silence is sent every 20 ms unless a
prompt was queued with ``play``. Closing the stream sends a hangup frame and closes the TCP
connection, which makes the AudioSocket application return so the dialplan/AGI continues.

Task ownership: the connection handler task (created by asyncio for each connection) reads the
socket for the life of the stream; each stream owns its sender task; the server tracks handler
tasks and cancels what is left on ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuidlib
from collections import deque
from collections.abc import AsyncIterator

from speech.audiosocket import (
    FRAME_BYTES,
    SILENCE_FRAME_PCM,
    AudioFrame,
    DtmfFrame,
    ErrorFrame,
    FrameParser,
    HangupFrame,
    UuidFrame,
    encode,
    encode_audio,
)

log = logging.getLogger(__name__)

FRAME_S = 0.02
HELLO_TIMEOUT_S = 5.0          # a connection must name its UUID this fast
READ_SIZE = 8192


class AudioStream:
    """One call's audio: frames from Asterisk in, silence or prompts out.

    Inbound frames wait in a bounded buffer (``max_buffer_s`` of audio) so a stream nobody is
    reading (the IVR busy elsewhere) cannot grow memory: the oldest audio is dropped first,
    DTMF and the end of the stream never are.
    """

    def __init__(self, uuid: uuidlib.UUID, server: AudioSocketServer,
                 max_buffer_s: float = 10.0) -> None:
        self.uuid = uuid
        self._server = server
        self._loop = asyncio.get_running_loop()
        self.connected: asyncio.Future[None] = self._loop.create_future()
        self._frames: deque[AudioFrame | DtmfFrame] = deque()
        self._audio_in_buffer = 0
        self._max_audio_frames = max(1, int(max_buffer_s / FRAME_S))
        self._wakeup = asyncio.Event()
        self._ended = False
        self.end_reason: str | None = None      # "hangup", "eof", "error", "closed", ...
        self.dropped_frames = 0
        self._writer: asyncio.StreamWriter | None = None
        self._sender: asyncio.Task[None] | None = None
        self._outbound: deque[bytes] = deque()  # queued prompt audio, 320-byte slices
        self._closing = False

    def __repr__(self) -> str:
        return f"AudioStream({self.uuid}, ended={self._ended})"

    # -- consumer side -------------------------------------------------------------------

    async def wait_connected(self, timeout: float | None) -> None:
        """Wait for Asterisk to connect; ``TimeoutError`` after ``timeout`` seconds."""
        await asyncio.wait_for(asyncio.shield(self.connected), timeout)

    @property
    def ended(self) -> bool:
        """True once the caller hung up or the connection closed, and all frames were read."""
        return self._ended and not self._frames

    def __aiter__(self) -> AsyncIterator[AudioFrame | DtmfFrame]:
        return self

    async def __anext__(self) -> AudioFrame | DtmfFrame:
        # Cancellation-safe: a frame is only taken once the wait is over.
        while not self._frames:
            if self._ended:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        frame = self._frames.popleft()
        if isinstance(frame, AudioFrame):
            self._audio_in_buffer -= 1
        return frame

    def play(self, pcm: bytes) -> None:
        """Queue 8 kHz slin audio to send instead of silence (a prompt)."""
        for i in range(0, len(pcm), FRAME_BYTES):
            chunk = pcm[i : i + FRAME_BYTES]
            self._outbound.append(chunk.ljust(FRAME_BYTES, b"\0"))

    def clear_playback(self) -> None:
        """Stop a prompt (barge-in)."""
        self._outbound.clear()

    async def close(self) -> None:
        """Hang up our side: hangup frame, TCP close, sender stopped. Idempotent."""
        if self._closing:
            return
        self._closing = True
        self._end("closed")          # a consumer still iterating stops after buffered frames
        self._server._forget(self)
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        writer = self._writer
        if writer is not None and not writer.is_closing():
            with contextlib.suppress(ConnectionError, OSError):
                writer.write(encode(HangupFrame()))
                await asyncio.wait_for(writer.drain(), 1.0)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
        if not self.connected.done():
            self.connected.set_exception(ConnectionAbortedError("stream closed before connect"))
            self.connected.exception()   # retrieved: nobody has to await it

    # -- server side ---------------------------------------------------------------------

    def _attach(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._sender = self._loop.create_task(self._send_media(writer),
                                              name=f"audiosocket-send-{self.uuid}")
        if not self.connected.done():
            self.connected.set_result(None)

    def _push(self, frame: AudioFrame | DtmfFrame) -> None:
        if isinstance(frame, AudioFrame):
            if self._audio_in_buffer >= self._max_audio_frames:
                self._drop_oldest_audio()
            self._audio_in_buffer += 1
        self._frames.append(frame)
        self._wakeup.set()

    def _drop_oldest_audio(self) -> None:
        for i, f in enumerate(self._frames):
            if isinstance(f, AudioFrame):
                del self._frames[i]
                self._audio_in_buffer -= 1
                if self.dropped_frames == 0:
                    log.warning("audiosocket %s: nobody is reading the caller's audio; "
                                "dropping the oldest frames", self.uuid)
                self.dropped_frames += 1
                return

    def _end(self, reason: str) -> None:
        if not self._ended:
            self._ended = True
            self.end_reason = reason
        self._wakeup.set()

    async def _send_media(self, writer: asyncio.StreamWriter) -> None:
        # Paced on the loop clock from a fixed start so the 20 ms cadence does not drift.
        silence = encode_audio(SILENCE_FRAME_PCM)
        start = self._loop.time()
        n = 0
        try:
            while not writer.is_closing():
                pcm = self._outbound.popleft() if self._outbound else None
                writer.write(encode_audio(pcm) if pcm is not None else silence)
                await writer.drain()
                n += 1
                delay = start + n * FRAME_S - self._loop.time()
                if delay < -1.0:       # the loop stalled: resync instead of bursting frames
                    start, n = self._loop.time(), 0
                    delay = 0.0
                await asyncio.sleep(max(delay, 0.0))
        except (ConnectionError, OSError) as e:
            log.info("audiosocket %s: send failed (%s); the call has gone", self.uuid, e)


class AudioSocketServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._expected: dict[uuidlib.UUID, AudioStream] = {}
        self._handlers: set[asyncio.Task[object]] = set()

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self._port)
        log.info("audiosocket: listening on %s:%d", self.host, self.port)

    def expect(self, uuid: str | uuidlib.UUID, max_buffer_s: float = 10.0) -> AudioStream:
        """Register a call's UUID before sending ``EXEC AudioSocket <uuid>,<host>:<port>``."""
        u = uuid if isinstance(uuid, uuidlib.UUID) else uuidlib.UUID(uuid)
        if u in self._expected:
            raise ValueError(f"audiosocket: UUID {u} is already expected")
        stream = AudioStream(u, self, max_buffer_s)
        self._expected[u] = stream
        return stream

    def _forget(self, stream: AudioStream) -> None:
        if self._expected.get(stream.uuid) is stream:
            del self._expected[stream.uuid]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for stream in list(self._expected.values()):
            await stream.close()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        log.info("audiosocket: stopped")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        peer = writer.get_extra_info("peername")
        parser = FrameParser(name=f"audiosocket {peer}")
        stream: AudioStream | None = None
        try:
            stream, leftover = await self._hello(reader, parser, peer)
            if stream is None:
                return
            stream._attach(writer)
            log.info("audiosocket %s: connected from %s", stream.uuid, peer)
            for frame in leftover:
                if self._deliver(stream, frame):
                    return
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    stream._end("eof")
                    break
                for frame in parser.feed(data):
                    if self._deliver(stream, frame):
                        return
        except (ConnectionError, OSError) as e:
            log.info("audiosocket %s: connection lost: %s", stream.uuid if stream else peer, e)
        finally:
            self._handlers.discard(task)
            if stream is None:
                writer.close()
            else:
                if parser.pending:
                    log.error("audiosocket %s: connection ended inside a frame (%d bytes)",
                              stream.uuid, parser.pending)
                stream._end("eof")
                # The owner closes the stream (it may still be reading buffered frames); the
                # sender has nothing to talk to any more.
                if stream._sender is not None:
                    stream._sender.cancel()
                writer.close()

    async def _hello(self, reader: asyncio.StreamReader, parser: FrameParser,
                     peer: object) -> tuple[AudioStream | None, list[object]]:
        """Read up to the UUID frame; the stream it names, or None (refused)."""
        frames: list[object] = []
        try:
            async with asyncio.timeout(HELLO_TIMEOUT_S):
                while not frames:
                    data = await reader.read(READ_SIZE)
                    if not data:
                        log.warning("audiosocket %s: closed before sending a UUID", peer)
                        return None, []
                    frames = list(parser.feed(data))
        except TimeoutError:
            log.warning("audiosocket %s: no UUID frame within %.0f s; refused",
                        peer, HELLO_TIMEOUT_S)
            return None, []
        first, rest = frames[0], frames[1:]
        if not isinstance(first, UuidFrame):
            log.warning("audiosocket %s: first frame is %s, not a UUID; refused",
                        peer, type(first).__name__)
            return None, []
        stream = self._expected.get(first.uuid)
        if stream is None or stream.connected.done():
            why = "already connected" if stream else "not expected (unknown call)"
            log.warning("audiosocket %s: UUID %s %s; refused", peer, first.uuid, why)
            return None, []
        return stream, rest

    @staticmethod
    def _deliver(stream: AudioStream, frame: object) -> bool:
        """Hand a frame to the stream; True when the call is over."""
        if isinstance(frame, (AudioFrame, DtmfFrame)):
            stream._push(frame)
            return False
        if isinstance(frame, HangupFrame):
            log.info("audiosocket %s: caller hung up", stream.uuid)
            stream._end("hangup")
            return True
        if isinstance(frame, ErrorFrame):
            log.error("audiosocket %s: Asterisk reported error code %s", stream.uuid, frame.code)
            stream._end("error")
            return True
        log.warning("audiosocket %s: ignoring unexpected %s", stream.uuid, type(frame).__name__)
        return False
