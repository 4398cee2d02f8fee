"""Capture one caller utterance from an AudioSocket stream: topic when they stop, transcript.

The same audio feeds two Vosk decoders: a keyword grammar (fast, decides the topic) and free
transcription (for the case record). The utterance ends at the first of:

- ``endpoint``: the voice has been quiet for ``quiet_end_s`` (0.2 s) after the spotter heard
  a keyword, or for ``quiet_unheard_s`` (0.5 s) if it heard none yet (a caller pausing in
  "um... water" is not cut off), or the spotting decoder reports Vosk's endpoint after speech was
  heard (Vosk's own rules: 0.5 s of trailing silence after a confident end of a word, 1-2 s
  otherwise; measured 0.5-0.9 s after the voice stops, too slow for "the topic is known when
  they stop", hence the quiet rule, which Vosk 0.3.45 offers no setter for). Vosk names a
  keyword up to 0.2 s after the word ends, so from shortly before ``quiet_end_s`` until it
  does, the spotter decodes each frame as it arrives, on the pool's urgent lane: on a busy
  node its routine batches would otherwise queue behind other calls' and the long rule would
  end the utterance (measured with 40 calls on 2 cores: p95 end-of-speech-to-topic 524 ms
  without, 235 ms with);
- ``key``: the caller pressed a DTMF key (kept in ``digits``; the IVR maps it to a topic);
- ``max_duration``: ``max_s`` seconds of audio (or of wall clock, if Asterisk stops sending);
- ``hangup``: the caller hung up; what they said so far is still returned.

The topic comes from the spotted keywords and the transcript (``speech.spotting``: an
emergency in either wins, else the spotter decides, and how much of it to believe). An energy
detector complements Vosk: when it heard no voice the utterance is ``no_speech``, whatever
the decoders made of the silence or line noise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from routing.topics import TopicCatalogue
from speech.audio_stream import AudioStream
from speech.audiosocket import AudioFrame, DtmfFrame
from speech.decoder import BYTES_PER_S, SAMPLE_RATE, UNK_TOKENS, Decoder, Mode, Segment
from speech.engine import SpeechEngine
from speech.spotting import ANYTHING, Expect, heard_words, topic_of

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
    spotted: tuple[str, ...] = ()      # every grammar word that counted (person words too)


class EnergyVad:
    """Per 20 ms frame: is it voice? Speech = ``min_frames`` voiced frames in a row.

    A frame is voiced when it is louder (DC offset removed) than ``threshold_dbfs`` and than
    the line's noise floor by ``margin_db``. Telephone silence sits below -60 dBFS and speech
    around -30..-10 dBFS; -40 dBFS with 60 ms of persistence ignores clicks and comfort noise.
    The floor is the quietest frame of the last ``floor_window_s`` (2 s), so steady line noise louder than -40 dBFS (a noisy line, a street,
    50 Hz mains hum) is not taken for speech and its pauses are still heard.
    numpy keeps this to microseconds per frame (a Python loop over the samples cost more than
    keyword spotting the call).
    """

    def __init__(self, threshold_dbfs: float = -40.0, min_frames: int = 3,
                 margin_db: float = 10.0, floor_window_s: float = 2.0) -> None:
        self._threshold_sq = (32768.0 * 10 ** (threshold_dbfs / 20)) ** 2
        self._margin = 10 ** (margin_db / 10)
        self._min = min_frames
        self._run = 0
        # Ring of the last frames' energies (plain floats: cheaper per frame than numpy
        # scalars); the floor is their minimum, rescanned only when that minimum leaves.
        self._energies = [math.inf] * max(1, int(floor_window_s / 0.02))
        self._i = 0
        self._floor = math.inf
        self.speech_seen = False
        self.voiced = False          # the last frame
        self.voiced_s = 0.0          # seconds of voiced frames so far

    @property
    def floor(self) -> float:
        """The line's noise floor: the lowest frame energy of the window (mean square)."""
        return self._floor

    def update(self, pcm: bytes) -> bool:
        """Feed one frame; True if it is voiced."""
        samples = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2).astype(np.float64)
        n = samples.size
        if not n:
            return self.voiced
        # Without the frame's DC offset: a line with a DC bias (bad codecs, sound cards)
        # would otherwise be "loud" all the time and bury the voice in the floor. The
        # variance as E[x^2] - E[x]^2, in float64 (exact for 16-bit frames): a third of the
        # CPU of subtracting the mean, and this runs for every frame of every call.
        total = float(samples.sum())
        energy = max(0.0, (float(samples.dot(samples)) - total * total / n) / n)
        energies, i = self._energies, self._i
        leaving = energies[i]
        energies[i] = energy
        self._i = i + 1 if i + 1 < len(energies) else 0
        if energy <= self._floor:
            self._floor = energy
        elif leaving == self._floor:
            self._floor = min(energies)
        self.voiced = energy >= self._threshold_sq and energy >= self._floor * self._margin
        self._run = self._run + 1 if self.voiced else 0
        if self.voiced:
            self.voiced_s += n / SAMPLE_RATE
        if self._run >= self._min:
            self.speech_seen = True
        return self.voiced


# How long before quiet_end_s the spotter starts decoding frame by frame (see on_frame).
HURRY_BEFORE_S = 0.04


# Synchronous on purpose: the capture loop must never wait on a listener, or audio would
# queue up behind it. A listener with async work hands the text to its own queue or task.
PartialCallback = Callable[[str], None]


class _Listener:
    """The capture's sink on the stream: each frame goes to the VAD and the decoders at once,
    in the connection's callback (no queue, no task switch per frame), until the utterance
    ends; ``ended`` then holds how."""

    def __init__(self, vad: EnergyVad, spot: Decoder, tr: Decoder | None, max_s: float,
                 on_partial: PartialCallback | None, name: str, quiet_end_s: float,
                 quiet_unheard_s: float) -> None:
        self.vad = vad
        self.quiet_end = int(quiet_end_s * BYTES_PER_S)
        self.quiet_unheard = int(quiet_unheard_s * BYTES_PER_S)
        self.quiet = 0               # bytes of unvoiced audio since the last voiced frame
        # From this much quiet on, the spotter decodes each frame as it comes (see on_frame).
        self.hurry_from = max(0, self.quiet_end - int(HURRY_BEFORE_S * BYTES_PER_S))
        self.keyword_heard = False   # the spotter's partial or a result holds a keyword
        self.spot = spot
        self.tr = tr
        self.max_bytes = int(max_s * BYTES_PER_S)
        self.on_partial = on_partial
        self.name = name
        self.audio_bytes = 0
        self.digits = ""
        self.ended: asyncio.Future[EndedBy] = asyncio.get_running_loop().create_future()

    def _end(self, how: EndedBy) -> None:
        if not self.ended.done():
            self.ended.set_result(how)

    def on_frame(self, frame: AudioFrame | DtmfFrame) -> None:
        if self.ended.done():
            return
        if isinstance(frame, AudioFrame):
            pcm = frame.pcm
            self.audio_bytes += len(pcm)
            self.quiet = 0 if self.vad.update(pcm) else self.quiet + len(pcm)
            self.spot.feed(pcm)
            if (self.quiet_end and self.quiet >= self.hurry_from and not self.keyword_heard
                    and self.vad.speech_seen):
                # The voice paused and no keyword is heard yet: that decides whether the
                # utterance ends after quiet_end_s or quiet_unheard_s, and Vosk names the
                # word only 0.1-0.2 s after it ends, so the spotter decodes each frame as it
                # comes, ahead of routine batches, until it names one.
                self.spot.flush()
            if self.tr is not None:
                self.tr.feed(pcm)
            if self.audio_bytes >= self.max_bytes:
                self._end("max_duration")
            elif self.vad.speech_seen and self.quiet_end and self.quiet >= (
                    self.quiet_end if self.keyword_heard else self.quiet_unheard):
                self._end("endpoint")
        else:
            self.digits += frame.digit
            self._end("key")

    def on_end(self, reason: str) -> None:
        self._end("hangup")

    def on_spot(self, seg: Segment) -> None:
        self.keyword_heard = self.keyword_heard or bool(seg.words)
        # Vosk's endpoint after speech; not its 5 s-of-silence-at-the-start rule.
        if seg.endpoint and (seg.text or self.vad.speech_seen):
            self._end("endpoint")

    def on_spot_partial(self, text: str) -> None:
        self.keyword_heard = self.keyword_heard or any(
            w not in UNK_TOKENS for w in text.split())

    def on_text(self, text: str) -> None:
        if self.on_partial is not None and not self.ended.done():
            try:
                self.on_partial(text)
            except Exception:
                log.exception("capture %s: on_partial listener failed", self.name)


async def capture_utterance(
    stream: AudioStream, engine: SpeechEngine, catalogue: TopicCatalogue, locale: str,
    max_s: float, on_partial: PartialCallback | None = None, *,
    transcription: Mode | None = "transcription", vad: EnergyVad | None = None,
    transcript_wait_s: float = 2.0, quiet_end_s: float = 0.2, quiet_unheard_s: float = 0.5,
    expect: Expect = ANYTHING,
) -> Utterance:
    """Listen to ``stream`` until the caller stops talking; see the module docstring.

    ``transcription`` is ``"transcription"``, ``"transcription_fast"`` or None (topic only).
    After the end, the transcript gets at most ``transcript_wait_s`` to catch up (it lags
    only when the CPU is overloaded); past that the utterance carries what was decoded so far
    and ``transcript_complete=False``, so the caller is never kept waiting for the record.
    ``on_partial`` gets the growing transcript (a plain function; see ``PartialCallback``).
    ``quiet_end_s``: once the spotter has heard a keyword, this much quiet after the voice
    ends the utterance; ``quiet_unheard_s`` before that (0: only Vosk's endpoint does).
    ``expect``: what the caller may say here (the spotter's words, the topics allowed).
    """
    vad = vad or EnergyVad()
    name = str(stream.uuid)
    holder: list[_Listener] = []     # the decoders' callbacks reach the listener made below

    def on_spot(seg: Segment) -> None:
        if holder:
            holder[0].on_spot(seg)

    def on_text(text: str) -> None:
        if holder:
            holder[0].on_text(text)

    def on_spot_partial(text: str) -> None:
        if holder:
            holder[0].on_spot_partial(text)

    async with contextlib.AsyncExitStack() as owned:     # decoders and the sink end with us
        spot = await engine.decoder("spotting", expect.grammar_words(catalogue, locale),
                                    on_segment=on_spot, on_partial=on_spot_partial,
                                    name=f"spot-{name}")
        owned.push_async_callback(spot.aclose)
        tr = None
        if transcription is not None:
            tr = await engine.decoder(transcription, on_partial=on_text if on_partial else None,
                                      name=f"text-{name}")
            owned.push_async_callback(tr.aclose)
        listener = _Listener(vad, spot, tr, max_s, on_partial, name, quiet_end_s,
                             quiet_unheard_s)
        holder.append(listener)
        stream.attach_sink(listener)
        owned.callback(stream.detach_sink)
        # Asterisk paces audio in real time, so the wall clock only matters if audio stalls.
        try:
            async with asyncio.timeout(max_s + 1.0):     # not wait_for: see ivr.aio
                ended_by = await asyncio.shield(listener.ended)
        except TimeoutError:
            log.info("capture %s: audio stalled; ending at max duration", name)
            ended_by = "max_duration"
        stream.detach_sink()
        audio_s = listener.audio_bytes / BYTES_PER_S
        digits = listener.digits

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
                async with asyncio.timeout(transcript_wait_s):
                    await tr.finish()
                text = tr.text
            except TimeoutError:
                complete = False
                text = " ".join(t for t in (tr.text, tr.partial) if t)
                log.warning("capture %s: transcript still %.1f s behind after %.1f s; keeping "
                            "what was decoded (CPU overloaded?)", name,
                            tr.fed_s - tr.decoded_s - tr.dropped_s, transcript_wait_s)

    # No voice heard: whatever the decoders made of the line noise means nothing.
    spot_words = heard_words([w for s in spotted for w in s.words], vad.speech_seen)
    no_speech = not vad.speech_seen
    cls = (topic_of(catalogue, locale, spot_words, text, accept=expect.topics,
                    voiced_s=vad.voiced_s)
           if vad.speech_seen else topic_of(catalogue, locale, [], ""))
    dropped = spot.dropped_s + (tr.dropped_s if tr is not None else 0.0)
    utt = Utterance(text=text, keywords=cls.keywords, topic=cls.topic,
                    confidence=cls.confidence, ended_by=ended_by, no_speech=no_speech,
                    digits=digits, audio_s=round(audio_s, 3), dropped_s=round(dropped, 3),
                    transcript_complete=complete, spotted=tuple(w.word for w in spot_words))
    log.info("capture %s: %s after %.1f s; topic=%s (%.2f, %s) no_speech=%s spotted=%s "
             "text=%r", name, ended_by, audio_s, utt.topic, utt.confidence,
             ",".join(utt.keywords) or "-", no_speech,
             " ".join(f"{w.word}:{w.conf:.2f}" for w in spot_words) or "-", text)
    return utt
