"""Capture one caller utterance from an AudioSocket stream: topic when they stop, transcript.

The same audio feeds two Vosk decoders: a keyword grammar (fast, decides the topic) and free
transcription (for the case record). The utterance ends at the first of:

- ``endpoint``: the spotting decoder reports Vosk's endpoint after speech was heard (Vosk's
  own rules: about 0.5 s of trailing silence after a confident end of a word, 1 s otherwise);
- ``key``: the caller pressed a DTMF key (kept in ``digits``; the IVR maps it to a topic);
- ``max_duration``: ``max_s`` seconds of audio (or of wall clock, if Asterisk stops sending);
- ``hangup``: the caller hung up; what they said so far is still returned.

The topic comes from the spotted keywords; only if none were spotted is the transcript
classified instead. An energy detector complements Vosk so that silence (or line noise that
Vosk maps to nothing) is reported as ``no_speech`` rather than an empty transcript.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from routing.topics import TopicCatalogue
from speech.audiosocket import AudioFrame, DtmfFrame
from speech.audiosocket_server import AudioStream
from speech.decoder import BYTES_PER_S, Decoder, Mode, Segment
from speech.engine import SpeechEngine

log = logging.getLogger(__name__)

EndedBy = Literal["endpoint", "max_duration", "key", "hangup"]


@dataclass(frozen=True, slots=True)
class Utterance:
    text: str                     # free transcript ("" when transcription is off)
    keywords: tuple[str, ...]     # the keywords that decided the topic
    topic: str | None
    confidence: float
    ended_by: EndedBy
    no_speech: bool
    digits: str                   # DTMF keys pressed during capture
    audio_s: float = 0.0          # audio received
    dropped_s: float = 0.0        # audio the decoders skipped because the CPU fell behind
    transcript_complete: bool = True   # False: cut at transcript_wait_s (CPU overloaded)


class EnergyVad:
    """Speech = ``min_frames`` consecutive frames louder than ``threshold_dbfs``.

    Telephone silence sits below -60 dBFS and speech around -30..-10 dBFS; -40 dBFS with 60 ms
    of persistence ignores clicks and comfort noise.
    """

    def __init__(self, threshold_dbfs: float = -40.0, min_frames: int = 3) -> None:
        self._threshold = 32768.0 * 10 ** (threshold_dbfs / 20)
        self._min = min_frames
        self._run = 0
        self.speech_seen = False

    def update(self, pcm: bytes) -> bool:
        samples = array.array("h")
        samples.frombytes(pcm[: len(pcm) & ~1])
        if sys.byteorder == "big":
            samples.byteswap()
        if not samples:
            return self.speech_seen
        rms = math.sqrt(math.fsum(s * s for s in samples) / len(samples))
        self._run = self._run + 1 if rms >= self._threshold else 0
        if self._run >= self._min:
            self.speech_seen = True
        return self.speech_seen


# Synchronous on purpose: the capture loop must never wait on a listener, or audio would
# queue up behind it. A listener with async work hands the text to its own queue or task.
PartialCallback = Callable[[str], None]


async def capture_utterance(
    stream: AudioStream, engine: SpeechEngine, catalogue: TopicCatalogue, locale: str,
    max_s: float, on_partial: PartialCallback | None = None, *,
    transcription: Mode | None = "transcription", vad: EnergyVad | None = None,
    transcript_wait_s: float = 2.0,
) -> Utterance:
    """Listen to ``stream`` until the caller stops talking; see the module docstring.

    ``transcription`` is ``"transcription"``, ``"transcription_fast"`` or None (topic only).
    After the end, the transcript gets at most ``transcript_wait_s`` to catch up (it lags
    only when the CPU is overloaded); past that the utterance carries what was decoded so far
    and ``transcript_complete=False``, so the caller is never kept waiting for the record.
    ``on_partial`` gets the growing transcript (a plain function; see ``PartialCallback``).
    """
    vad = vad or EnergyVad()
    # One queue for frames and decoder events, so there is no race between sources. It
    # stays short: the loop below never waits on anything but this queue.
    events: asyncio.Queue[tuple[str, object]] = asyncio.Queue()

    def on_spot(seg: Segment) -> None:
        if seg.endpoint:
            events.put_nowait(("endpoint", seg))

    def on_text(text: str) -> None:
        events.put_nowait(("partial", text))

    async with contextlib.AsyncExitStack() as owned:     # decoders and the pump end with us
        spot = await engine.decoder("spotting", catalogue.keywords(locale),
                                    on_segment=on_spot, name=f"spot-{stream.uuid}")
        owned.push_async_callback(spot.aclose)
        tr = None
        if transcription is not None:
            tr = await engine.decoder(transcription, on_partial=on_text if on_partial else None,
                                      name=f"text-{stream.uuid}")
            owned.push_async_callback(tr.aclose)
        pump = asyncio.get_running_loop().create_task(_pump(stream, events),
                                                      name=f"capture-{stream.uuid}")
        owned.push_async_callback(_cancel, pump)
        ended_by, digits, audio_s = await _listen(stream, events, vad, spot, tr, max_s,
                                                  on_partial)
        await _cancel(pump)

        # The spotter is fast and nearly idle here (it has its own threads); the transcript
        # lags only if the CPU is overloaded, and then at most transcript_wait_s.
        if ended_by == "key":
            await spot.aclose()      # the key decides; no need for the rest of the audio
            spotted: list[Segment] = list(spot.segments)
        else:
            spotted = await spot.finish()
        text = ""
        complete = True
        if tr is not None:
            try:
                await asyncio.wait_for(tr.finish(), transcript_wait_s)
                text = tr.text
            except TimeoutError:
                complete = False
                text = " ".join(t for t in (tr.text, tr.partial) if t)
                log.warning("capture %s: transcript still %.1f s behind after %.1f s; keeping "
                            "what was decoded (CPU overloaded?)", stream.uuid,
                            tr.fed_s - tr.decoded_s - tr.dropped_s, transcript_wait_s)

    spot_words = tuple(w.word for s in spotted for w in s.words)
    no_speech = not vad.speech_seen and not spot_words and not text
    if no_speech:
        cls = catalogue.classify("", locale)
    else:
        cls = catalogue.classify(" ".join(spot_words), locale)
        if cls.topic is None and text:
            cls = catalogue.classify(text, locale)
    dropped = spot.dropped_s + (tr.dropped_s if tr is not None else 0.0)
    utt = Utterance(text=text, keywords=cls.keywords, topic=cls.topic,
                    confidence=cls.confidence, ended_by=ended_by, no_speech=no_speech,
                    digits=digits, audio_s=round(audio_s, 3), dropped_s=round(dropped, 3),
                    transcript_complete=complete)
    log.info("capture %s: %s after %.1f s; topic=%s (%.2f, %s) no_speech=%s text=%r",
             stream.uuid, ended_by, audio_s, utt.topic, utt.confidence,
             ",".join(utt.keywords) or "-", no_speech, text)
    return utt


async def _listen(stream: AudioStream, events: asyncio.Queue[tuple[str, object]],
                  vad: EnergyVad, spot: Decoder, tr: Decoder | None, max_s: float,
                  on_partial: PartialCallback | None) -> tuple[EndedBy, str, float]:
    """Feed the decoders until the utterance ends: (ended_by, digits, audio seconds)."""
    digits = ""
    audio_s = 0.0
    speech_heard = False
    # Asterisk paces audio in real time, so the wall clock only matters if audio stalls.
    try:
        async with asyncio.timeout(max_s + 1.0):
            while True:
                kind, payload = await events.get()
                if kind == "audio":
                    assert isinstance(payload, bytes)
                    audio_s += len(payload) / BYTES_PER_S
                    vad.update(payload)
                    spot.feed(payload)
                    if tr is not None:
                        tr.feed(payload)
                    if audio_s >= max_s:
                        return "max_duration", digits, audio_s
                elif kind == "endpoint":
                    assert isinstance(payload, Segment)
                    speech_heard = speech_heard or bool(payload.text)
                    if speech_heard or vad.speech_seen:   # not Vosk's 5 s-of-silence rule
                        return "endpoint", digits, audio_s
                elif kind == "key":
                    return "key", digits + str(payload), audio_s
                elif kind == "hangup":
                    return "hangup", digits, audio_s
                elif kind == "partial" and on_partial is not None:
                    try:
                        on_partial(str(payload))
                    except Exception:
                        log.exception("capture %s: on_partial listener failed", stream.uuid)
    except TimeoutError:
        log.info("capture %s: audio stalled; ending at max duration", stream.uuid)
    return "max_duration", digits, audio_s


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _pump(stream: AudioStream, events: asyncio.Queue[tuple[str, object]]) -> None:
    """Stream frames into the capture's event queue (one queue: no race between sources)."""
    async for frame in stream:
        if isinstance(frame, AudioFrame):
            events.put_nowait(("audio", frame.pcm))
        elif isinstance(frame, DtmfFrame):
            events.put_nowait(("key", frame.digit))
    events.put_nowait(("hangup", stream.end_reason))
