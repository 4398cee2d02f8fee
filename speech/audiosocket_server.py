"""AudioSocket TCP server: Asterisk connects here after ``EXEC AudioSocket <uuid>,<host>:<port>``.

The IVR registers the UUID first (``server.expect(uuid)``), then asks Asterisk to connect; a
connection whose first frame names a UUID nobody expects is refused (hangup frame, close) and
logged.

While a stream is open we keep sending media back: recent Asterisk releases end AudioSocket
after about 2 s with no media either way, and the caller hears our silence as silence. One media
clock per server sends every open stream its media (silence, or a prompt queued with ``play``)
in bursts of ``media_burst_s`` (60 ms, three 20 ms frames, by default): one timer for all calls
and one send per call per burst, instead of a timer and a send per call every 20 ms (profiled:
the per-call 20 ms sender cost more CPU than keyword-spotting the call). Asterisk writes each
frame to the channel as it reads it, and res_rtp_asterisk stamps RTP from the time between
writes: it keeps the steady +160 samples only while that time is under 80 ms
(MAX_TIMESTAMP_SKEW, 640 samples), and re-bases the stream otherwise, which the phone hears as
a gap in a prompt. So a burst must reach Asterisk well within 80 ms of the last; 60 ms leaves
room for a late timer, and three frames (969 bytes) fit one TCP segment, which Asterisk 18's
res_audiosocket needs (it treated a frame split across reads as an error).
``media_burst_s=0.02`` paces frame by frame.

Some lines send nothing while the caller is quiet (silence suppression, G.729 annex B, Opus
DTX): Asterisk then forwards no frames at all. The same clock counts such a gap as the silence
it is: after ``GAP_FILL_S`` without a frame, the stream gets silent frames for the time that
passed, so the end of an utterance or a message is still heard when the line goes quiet.
Closing the stream sends a hangup frame and closes the TCP connection, which makes the
AudioSocket application return so the dialplan/AGI continues.

Inbound frames are parsed in the connection's protocol callback and handed on at once: to the
stream's sink if one is attached (``attach_sink``: the capture, which feeds the decoders
without a task switch per frame), else to a bounded buffer read with ``async for``.

Task ownership: the server owns its media clock task and its connections (protocol objects,
no tasks) and closes what is left on ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuidlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Protocol

from ivr.aio import cancel_and_wait
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
MAX_UNSENT_BYTES = 64 * 1024   # a peer that stops reading gets no more media (bounded memory)
# No frame for this long is a quiet line that sends nothing (see the module docstring). Longer
# than RTP jitter and an event loop busy for a moment, shorter than the quiet that ends an
# utterance after no keyword (0.5 s).
GAP_FILL_S = 0.3
SILENT_FRAME = AudioFrame(SILENCE_FRAME_PCM)


class FrameSink(Protocol):
    """Receives a stream's frames synchronously, from the connection's callback."""

    def on_frame(self, frame: AudioFrame | DtmfFrame) -> None: ...

    def on_end(self, reason: str) -> None: ...


class AudioStream:
    """One call's audio: frames from Asterisk in, silence or prompts out.

    Inbound frames go to the attached sink, or wait in a bounded buffer (``max_buffer_s`` of
    audio) so a stream nobody is reading (the IVR busy elsewhere) cannot grow memory: the
    oldest audio is dropped first, DTMF and the end of the stream never are.
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
        self._transport: asyncio.Transport | None = None
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self._sink: FrameSink | None = None
        self._outbound: deque[bytes] = deque()  # queued prompt audio, 320-byte slices
        self._closing = False
        self.heard_at = 0.0            # loop time the last frame came (or a gap was filled)
        self.filled_s = 0.0            # silence counted for gaps in the line's frames

    def __repr__(self) -> str:
        return f"AudioStream({self.uuid}, ended={self._ended})"

    # -- consumer side -------------------------------------------------------------------

    async def wait_connected(self, timeout: float | None) -> None:
        """Wait for Asterisk to connect; ``TimeoutError`` after ``timeout`` seconds."""
        # asyncio.timeout, not wait_for: on 3.11 wait_for can drop a cancellation that lands
        # as the awaited future completes (see ivr.aio).
        async with asyncio.timeout(timeout):
            await asyncio.shield(self.connected)

    @property
    def ended(self) -> bool:
        """True once the caller hung up or the connection closed, and all frames were read."""
        return self._ended and not self._frames

    def attach_sink(self, sink: FrameSink) -> None:
        """Hand every frame to ``sink`` as it arrives (buffered frames first)."""
        self._sink = sink
        while self._frames and self._sink is sink:
            frame = self._frames.popleft()
            if isinstance(frame, AudioFrame):
                self._audio_in_buffer -= 1
            sink.on_frame(frame)
        if self._ended and self._sink is sink:
            sink.on_end(self.end_reason or "closed")

    def detach_sink(self) -> None:
        """Back to buffering (for ``async for`` or the next sink)."""
        self._sink = None

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
        """Hang up our side: hangup frame, TCP close. Idempotent."""
        if self._closing:
            return
        self._closing = True
        self._end("closed")          # a consumer still iterating stops after buffered frames
        self._sink = None
        self._server._forget(self)
        transport = self._transport
        self._transport = None
        if transport is not None and not transport.is_closing():
            with contextlib.suppress(ConnectionError, OSError):
                transport.write(encode(HangupFrame()))
            transport.close()        # flushes what is buffered, then closes
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await asyncio.shield(self._lost)
        if not self.connected.done():
            self.connected.set_exception(ConnectionAbortedError("stream closed before connect"))
            self.connected.exception()   # retrieved: nobody has to await it

    # -- server side ---------------------------------------------------------------------

    def _attach(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.heard_at = self._loop.time()
        if not self.connected.done():
            self.connected.set_result(None)
        self._send_media(self._server.burst_frames)   # media at once, then on the clock

    def _detach(self) -> None:
        self._transport = None
        if not self._lost.done():
            self._lost.set_result(None)

    def _send_media(self, frames: int) -> None:
        t = self._transport
        if t is None or t.is_closing() or t.get_write_buffer_size() > MAX_UNSENT_BYTES:
            return
        if not self._outbound:
            t.write(self._server.silence_burst)
            return
        out = []
        for _ in range(frames):
            pcm = self._outbound.popleft() if self._outbound else SILENCE_FRAME_PCM
            out.append(encode_audio(pcm))
        t.write(b"".join(out))

    def _fill_gap(self, now: float) -> None:
        """No frame since ``heard_at``: a line that sends nothing while the caller is quiet.
        Count the time that passed as silent frames, as if Asterisk had sent them."""
        gap = now - self.heard_at
        if gap < GAP_FILL_S or self._ended:
            return
        n = int(gap / FRAME_S)
        if self.filled_s == 0.0:
            log.info("audiosocket %s: no audio from Asterisk for %.1f s (silence suppression "
                     "on the line?); counting gaps as silence", self.uuid, gap)
        self.heard_at += n * FRAME_S
        self.filled_s += n * FRAME_S
        for _ in range(n):
            if self._ended:
                return
            self._push(SILENT_FRAME)

    def _push(self, frame: AudioFrame | DtmfFrame) -> None:
        sink = self._sink
        if sink is not None:
            try:
                sink.on_frame(frame)
            except Exception:
                log.exception("audiosocket %s: frame consumer failed; detached", self.uuid)
                self._sink = None
            return
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
            sink = self._sink
            if sink is not None:
                try:
                    sink.on_end(reason)
                except Exception:
                    log.exception("audiosocket %s: frame consumer failed at the end", self.uuid)
        self._wakeup.set()


class _Connection(asyncio.Protocol):
    """One TCP connection from Asterisk: the UUID frame first, then the call's frames."""

    def __init__(self, server: AudioSocketServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._peer: object = None
        self._parser = FrameParser()
        self._stream: AudioStream | None = None
        self._hello_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._peer = transport.get_extra_info("peername")
        self._parser.name = f"audiosocket {self._peer}"
        self._server._conns.add(self)
        self._hello_timer = asyncio.get_running_loop().call_later(HELLO_TIMEOUT_S,
                                                                 self._hello_timeout)

    def _hello_timeout(self) -> None:
        log.warning("audiosocket %s: no UUID frame within %.0f s; refused",
                    self._peer, HELLO_TIMEOUT_S)
        self.refuse()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def refuse(self) -> None:
        """Hang up a connection that has no stream: a hangup frame, then close."""
        t = self._transport
        if t is not None and not t.is_closing():
            with contextlib.suppress(ConnectionError, OSError):
                t.write(encode(HangupFrame()))
        self.close()

    def data_received(self, data: bytes) -> None:
        frames = self._parser.feed(data)
        if not frames:
            return
        stream = self._stream
        if stream is None:
            stream = self._hello(frames[0])
            frames = frames[1:]
            if stream is None:
                return
        stream.heard_at = stream._loop.time()
        for frame in frames:
            if isinstance(frame, (AudioFrame, DtmfFrame)):
                stream._push(frame)
            elif isinstance(frame, HangupFrame):
                log.info("audiosocket %s: caller hung up", stream.uuid)
                self._finish(stream, "hangup")
                return
            elif isinstance(frame, ErrorFrame):
                log.error("audiosocket %s: Asterisk reported error code %s", stream.uuid,
                          frame.code)
                self._finish(stream, "error")
                return
            else:
                log.warning("audiosocket %s: ignoring unexpected %s", stream.uuid,
                            type(frame).__name__)

    def _hello(self, first: object) -> AudioStream | None:
        """The stream the first frame names, or None (the connection is refused)."""
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        stream = None
        if not isinstance(first, UuidFrame):
            log.warning("audiosocket %s: first frame is %s, not a UUID; refused",
                        self._peer, type(first).__name__)
        else:
            stream = self._server._expected.get(first.uuid)
            if stream is None or stream.connected.done():
                why = "already connected" if stream else "not expected (unknown call)"
                log.warning("audiosocket %s: UUID %s %s; refused", self._peer, first.uuid, why)
                stream = None
        if stream is None:
            # With a hangup frame: older Asterisk releases read the bare EOF as "no frame" and
            # keep the channel in AudioSocket, where later AGI commands would wait behind it.
            self.refuse()
            return None
        assert self._transport is not None
        self._stream = stream
        stream._attach(self._transport)
        log.info("audiosocket %s: connected from %s", stream.uuid, self._peer)
        return stream

    def _finish(self, stream: AudioStream, reason: str) -> None:
        # The call is over: stop reading; the owner closes the stream (it may still be
        # reading buffered frames), the media has nothing to talk to any more.
        stream._end(reason)
        stream._detach()
        self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._hello_timer is not None:
            self._hello_timer.cancel()
        self._server._conns.discard(self)
        stream = self._stream
        if stream is None:
            if exc is None and not self._parser.pending:
                log.debug("audiosocket %s: closed before sending a UUID", self._peer)
            return
        if exc is not None:
            log.info("audiosocket %s: connection lost: %s", stream.uuid, exc)
        if self._parser.pending:
            log.error("audiosocket %s: connection ended inside a frame (%d bytes)",
                      stream.uuid, self._parser.pending)
        stream._end("eof")
        stream._detach()


class AudioSocketServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 media_burst_s: float = 0.06) -> None:
        self.host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._expected: dict[uuidlib.UUID, AudioStream] = {}
        self._conns: set[_Connection] = set()
        self.burst_frames = max(1, round(media_burst_s / FRAME_S))
        self.silence_burst = encode_audio(SILENCE_FRAME_PCM) * self.burst_frames
        self._clock: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), self.host,
                                                self._port)
        self._clock = loop.create_task(self._media_clock(), name="audiosocket-media-clock")
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

    async def _media_clock(self) -> None:
        # Paced on the loop clock from a fixed start so the cadence does not drift.
        loop = asyncio.get_running_loop()
        period = self.burst_frames * FRAME_S
        start = loop.time()
        n = 0
        while True:
            n += 1
            delay = start + n * period - loop.time()
            if delay < -1.0:           # the loop stalled: resync instead of bursting frames
                start, n = loop.time(), 0
                delay = 0.0
            await asyncio.sleep(max(delay, 0.0))
            now = loop.time()
            for stream in list(self._expected.values()):
                if stream._transport is not None:
                    stream._fill_gap(now)
                    stream._send_media(self.burst_frames)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for stream in list(self._expected.values()):
            await stream.close()
        for conn in list(self._conns):
            conn.close()
        if self._clock is not None:
            await cancel_and_wait(self._clock)
            self._clock = None
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        log.info("audiosocket: stopped")
