"""A decoding session: one Vosk recognizer fed from a bounded buffer, decoded off the loop.

Only pool threads touch the recognizer, one job at a time (Kaldi recognizers are not
thread-safe); results come back to the event loop as ``Segment``s and partial texts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Literal

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
BYTES_PER_S = SAMPLE_RATE * 2
Mode = Literal["spotting", "transcription", "transcription_fast"]
# Tokens models use for "some word not in the grammar"; English models have [unk], Kaldi
# recipes often <unk> or <UNK>. A grammar naming a token the model lacks is ignored by Vosk.
UNK_TOKENS = ("[unk]", "<unk>", "<UNK>")


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    conf: float
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Segment:
    """One recognised stretch of speech, up to an endpoint (or the end of the audio)."""

    text: str
    words: tuple[Word, ...]
    endpoint: bool           # True: Vosk's endpointer closed it; False: flushed at the end


def parse_result(raw: str, endpoint: bool) -> Segment:
    data = json.loads(raw)
    words = tuple(Word(w["word"], float(w.get("conf", 1.0)), float(w.get("start", 0.0)),
                       float(w.get("end", 0.0)))
                  for w in data.get("result", []) if w["word"] not in UNK_TOKENS)
    text = " ".join(t for t in data.get("text", "").split() if t not in UNK_TOKENS)
    return Segment(text, words, endpoint)


@dataclass(slots=True)
class _Pending:
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0



class Decoder:
    """One recognizer fed from a bounded buffer and decoded on the engine's pool.

    ``feed`` never blocks (it is called from the audio path). When decoding falls behind by
    more than ``max_pending_s`` of audio (the engine's, 2 s by default), the oldest pending
    audio is dropped and counted (``dropped_s``): for a live call, late audio is worth more
    than complete audio, and the bound keeps both memory and the final-result latency bounded
    (at most ``max_pending_s`` times the decoder's real-time factor after the caller stops).
    """

    # Vosk's CPU cost per second of audio is the same for 20 ms or 400 ms chunks (measured);
    # batching at 100 ms cuts pool round trips fivefold for at most 100 ms of extra latency.
    MIN_BATCH_S = 0.1
    MAX_BATCH_S = 1.0        # ...and at most 1 s, so endpoints and partials stay timely

    def __init__(self, executor: Executor, recognizer: Any, mode: Mode, *,
                 on_segment: Callable[[Segment], None] | None,
                 on_partial: Callable[[str], None] | None, name: str,
                 max_pending_s: float) -> None:
        self.mode = mode
        self.name = name
        self._executor = executor
        self._rec = recognizer
        self._on_segment = on_segment
        self._on_partial = on_partial
        self._max_pending_s = max_pending_s
        self._max_pending = int(max_pending_s * BYTES_PER_S)
        self._pending = _Pending()
        self._data = asyncio.Event()
        self._finishing = False
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.segments: list[Segment] = []
        self.partial = ""
        self.fed_s = 0.0
        self.decoded_s = 0.0
        self.dropped_s = 0.0
        self.cpu_s = 0.0         # wall time spent in Vosk calls (per job, on pool threads)
        self._worker = asyncio.get_running_loop().create_task(self._work(),
                                                              name=f"vosk-{name}")

    def feed(self, pcm: bytes) -> None:
        if self._finishing or not pcm:
            return
        p = self._pending
        p.chunks.append(pcm)
        p.size += len(pcm)
        self.fed_s += len(pcm) / BYTES_PER_S
        while p.size > self._max_pending and len(p.chunks) > 1:
            old = p.chunks.pop(0)
            p.size -= len(old)
            if self.dropped_s == 0:
                log.warning("speech %s: decoder behind by more than %.1f s of audio; dropping "
                            "the oldest audio (CPU overloaded?)", self.name, self._max_pending_s)
            self.dropped_s += len(old) / BYTES_PER_S
        if p.size >= self.MIN_BATCH_S * BYTES_PER_S:
            self._data.set()

    async def finish(self) -> list[Segment]:
        """Decode what is pending, take Vosk's final result; all segments of the session."""
        if not self._finishing:
            self._finishing = True
            self._data.set()
        await asyncio.shield(self._done)
        return self.segments

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    async def aclose(self) -> None:
        """Stop decoding now (no final result). The job in flight, if any, runs to its end."""
        self._finishing = True
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker

    def _take(self) -> bytes:
        p = self._pending
        limit = int(self.MAX_BATCH_S * BYTES_PER_S)
        out: list[bytes] = []
        n = 0
        while p.chunks and n < limit:
            c = p.chunks.pop(0)
            out.append(c)
            n += len(c)
        p.size -= n
        return b"".join(out)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._data.wait()
                self._data.clear()
                while self._pending.size >= self.MIN_BATCH_S * BYTES_PER_S or (
                        self._finishing and self._pending.size):
                    chunk = self._take()
                    out = await loop.run_in_executor(self._executor, self._accept, chunk)
                    self._deliver(out)
                if self._finishing:
                    raw = await loop.run_in_executor(self._executor, self._final)
                    self._deliver((True, raw, False))
                    break
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("speech %s: decoder failed", self.name)
        finally:
            if not self._done.done():
                self._done.set_result(None)

    # Pool side: only these touch the recognizer.
    def _accept(self, chunk: bytes) -> tuple[bool, str, bool]:
        t0 = time.perf_counter()
        try:
            if self._rec.AcceptWaveform(chunk):
                return True, self._rec.Result(), True
            if self.mode != "spotting" and self._on_partial is not None:
                return False, self._rec.PartialResult(), False
            return False, "", False
        finally:
            self.cpu_s += time.perf_counter() - t0
            self.decoded_s += len(chunk) / BYTES_PER_S

    def _final(self) -> str:
        t0 = time.perf_counter()
        try:
            return str(self._rec.FinalResult())
        finally:
            self.cpu_s += time.perf_counter() - t0

    # Loop side.
    def _deliver(self, out: tuple[bool, str, bool]) -> None:
        final, raw, endpoint = out
        if final:
            seg = parse_result(raw, endpoint)
            if seg.text or seg.endpoint:
                if seg.text:
                    self.segments.append(seg)
                self.partial = ""
                if self._on_segment is not None:
                    self._on_segment(seg)
        elif raw:
            text = json.loads(raw).get("partial", "")
            if text != self.partial:
                self.partial = text
                if self._on_partial is not None:
                    self._on_partial(text)
