"""One call's AudioSocket stream: Asterisk's frames in, our media out.

Inbound frames are handed on as they are parsed: to the stream's sink if one is attached
(``attach_sink``: the capture, which feeds the decoders without a task switch per frame), else
to a bounded buffer read with ``async for``. Outbound, the server's media clock
(``speech.audiosocket_server``) asks each stream for a burst of media (silence, or a prompt
queued with ``play``), and for any gap in the caller's frames.

Some lines send nothing while the caller is quiet (silence suppression, G.729 annex B, Opus
DTX): Asterisk then forwards no frames at all. After ``GAP_FILL_S`` without a frame the stream
gets silent frames for the time that passed, so the end of an utterance or a message is still
heard when the line goes quiet. Closing the stream sends a hangup frame and closes the TCP
connection, which makes the AudioSocket application return so the dialplan/AGI continues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuidlib
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from speech.audiosocket import (
    FRAME_BYTES,
    SILENCE_FRAME_PCM,
    AudioFrame,
    DtmfFrame,
    HangupFrame,
    encode,
    encode_audio,
)

if TYPE_CHECKING:
    from speech.audiosocket_server import AudioSocketServer

log = logging.getLogger(__name__)

FRAME_S = 0.02
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
