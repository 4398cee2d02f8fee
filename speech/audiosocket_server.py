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

The same clock fills the gaps of a line that sends nothing while the caller is quiet (see
``speech.audio_stream``, one call's stream: its frames in, its media out). Inbound frames are
parsed in the connection's protocol callback and handed to the stream at once.

Task ownership: the server owns its media clock task and its connections (protocol objects,
no tasks) and closes what is left on ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuidlib

from ivr.aio import cancel_and_wait
from speech.audio_stream import FRAME_S, AudioStream
from speech.audiosocket import (
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

HELLO_TIMEOUT_S = 5.0          # a connection must name its UUID this fast

log = logging.getLogger(__name__)

# The media clock ticking this late (the event loop was stuck) says nothing about the line:
# that tick fills no gap; the next one does, if no frame came meanwhile.
STALL_S = 0.1


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
            due = start + n * period
            await asyncio.sleep(max(due - loop.time(), 0.0))
            now = loop.time()
            # A tick this late means the loop was stuck: the callers' frames may wait unread
            # in the sockets, so their absence is no quiet line yet (AudioStream._fill_gap).
            # The loop reads them before the next tick, which counts the gap if none came.
            # The clock starts again from now instead of bursting the frames it missed.
            stalled = now - due > STALL_S
            if stalled:
                start, n = now, 0
            for stream in list(self._expected.values()):
                if stream._transport is not None:
                    if not stalled:
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
