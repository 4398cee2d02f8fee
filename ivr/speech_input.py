"""Listening to the caller: AudioSocket from Asterisk into Vosk, during one IVR step.

The session asks Asterisk to ``EXEC AudioSocket <uuid>,<host:port>``; the stream registered
under that uuid is captured until the caller stops talking (or presses a key), then closed,
which ends the AudioSocket application and hands the channel back to async AGI. A message
(after hours) is recorded the same way, only longer, and transcribed from the whole audio.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import math
import sys
import uuid
from collections.abc import AsyncIterator, Callable

from ivr.agi import AgiChannel
from ivr.aio import cancel_and_wait
from routing.topics import TopicCatalogue
from speech.audio_stream import AudioStream
from speech.audiosocket import AudioFrame, DtmfFrame
from speech.audiosocket_server import AudioSocketServer
from speech.capture import EnergyVad, Utterance, capture_utterance
from speech.decoder import BYTES_PER_S, SAMPLE_RATE, Mode
from speech.engine import SpeechEngine
from speech.files import FileTranscript, transcribe_pcm
from speech.spotting import ANYTHING, Expect

log = logging.getLogger("hotline.speech")

CONNECT_TIMEOUT_S = 5.0
# Beyond the longest the caller may talk: the results' own wait (2 s for the transcript) and
# closing the stream. A decoder that never answers (a wedged Vosk) then costs the caller this
# much silence once, and the call goes on with keys.
LISTEN_SLACK_S = 8.0
END_KEY = "#"                 # ends a message


def beep(seconds: float = 0.3, hz: float = 1000.0) -> bytes:
    """The tone after which the caller speaks (8 kHz slin)."""
    n = int(SAMPLE_RATE * seconds)
    samples = array.array("h", (int(8000 * math.sin(2 * math.pi * hz * i / SAMPLE_RATE))
                                for i in range(n)))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


class SpeechInput:
    def __init__(self, server: AudioSocketServer, engine: SpeechEngine,
                 catalogue: TopicCatalogue, *, advertise: str, max_utterance_s: float,
                 transcription: Mode | None) -> None:
        self._server = server
        self._engine = engine
        self._catalogue = catalogue
        self._advertise = advertise
        self._max_s = max_utterance_s
        self._transcription = transcription

    async def listen(self, agi: AgiChannel, locale: str,
                     on_partial: Callable[[str], None] | None = None, *,
                     expect: Expect = ANYTHING) -> Utterance:
        """One utterance (``expect``: what the caller may say at this step). Raises on any
        failure (TimeoutError when the recognizer does not answer in time); the caller of
        this falls back to keys."""
        async with asyncio.timeout(self._max_s + CONNECT_TIMEOUT_S + LISTEN_SLACK_S):
            async with self._audiosocket(agi, self._max_s) as stream:
                return await capture_utterance(stream, self._engine, self._catalogue, locale,
                                               self._max_s, on_partial,
                                               transcription=self._transcription,
                                               expect=expect)

    async def record(self, agi: AgiChannel, max_s: float, silence_s: float) -> bytes:
        """A message: 8 kHz slin from the tone until '#', ``silence_s`` of silence after
        speech, ``max_s`` of audio, or the caller hanging up. Raises on failure."""
        async with self._audiosocket(agi, max_s) as stream:
            stream.play(beep())
            return await _record_pcm(stream, max_s, silence_s)

    async def transcribe(self, pcm: bytes, locale: str) -> FileTranscript:
        """Transcript and topic of recorded audio (``speech.files``). Raises TimeoutError
        past several times the audio's length: the message is then kept untranscribed."""
        audio_s = len(pcm) / BYTES_PER_S
        async with asyncio.timeout(30.0 + 4.0 * audio_s):
            return await transcribe_pcm(self._engine, pcm, self._catalogue, locale,
                                        fast=self._transcription == "transcription_fast")

    @contextlib.asynccontextmanager
    async def _audiosocket(self, agi: AgiChannel, max_s: float) -> AsyncIterator[AudioStream]:
        sid = uuid.uuid4()
        stream = self._server.expect(sid)
        exec_task = asyncio.create_task(
            agi.exec("AudioSocket", f"{sid},{self._advertise}",
                     timeout=max_s + CONNECT_TIMEOUT_S + 10),
            name=f"audiosocket-{sid}")
        try:
            await stream.wait_connected(CONNECT_TIMEOUT_S)
            yield stream
        finally:
            await stream.close()       # hangup frame: AudioSocket() returns to the AGI loop
            try:
                async with asyncio.timeout(5.0):     # not wait_for: see ivr.aio
                    await asyncio.shield(exec_task)
            except Exception as e:  # noqa: BLE001 - the AGI must go on whatever happened
                log.debug("AudioSocket exec on %s ended with %s", agi.channel, e)
            finally:
                if not exec_task.done():
                    with contextlib.suppress(Exception):
                        await cancel_and_wait(exec_task)


async def _record_pcm(stream: AudioStream, max_s: float, silence_s: float) -> bytes:
    chunks: list[bytes] = []
    audio_s = quiet_s = 0.0
    # Voice against the line's own noise floor, DC removed (the capture's detector): a fixed
    # level would take a DC offset or mains hum above it for speech that never ends.
    vad = EnergyVad()
    # Asterisk paces audio in real time; the wall clock only matters if it stops sending.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max_s + 2.0):
            async for frame in stream:
                if isinstance(frame, DtmfFrame):
                    if frame.digit == END_KEY:
                        break
                    continue
                if not isinstance(frame, AudioFrame):
                    continue
                chunks.append(frame.pcm)
                seconds = len(frame.pcm) / BYTES_PER_S
                audio_s += seconds
                quiet_s = 0.0 if vad.update(frame.pcm) else quiet_s + seconds
                if audio_s >= max_s or (vad.speech_seen and quiet_s >= silence_s):
                    break
    spoken = vad.speech_seen
    pcm = b"".join(chunks)
    log.info("message %s: %.1f s recorded (%s)", stream.uuid, audio_s,
             "speech" if spoken else "silence only")
    return pcm if spoken else b""
