"""A decoding session: one Vosk recognizer fed from a bounded buffer, decoded off the loop.

Only pool threads touch the recognizer, one job at a time (Kaldi recognizers are not
thread-safe); results come back to the event loop as ``Segment``s and partial texts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from speech.pool import DecodePool

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


def is_word(token: str) -> bool:
    """False for the model's markers rather than words: its unknown-word token and tokens
    in brackets ('[2]', '[noise]', '<sil>'; the Korean model emits '[N]' in free speech)."""
    return bool(token) and token not in UNK_TOKENS and not (
        (token[0], token[-1]) in (("[", "]"), ("<", ">")) and len(token) > 2)


def parse_result(raw: str, endpoint: bool) -> Segment:
    data = json.loads(raw)
    words = tuple(Word(w["word"], float(w.get("conf", 1.0)), float(w.get("start", 0.0)),
                       float(w.get("end", 0.0)))
                  for w in data.get("result", []) if is_word(w["word"]))
    text = " ".join(t for t in data.get("text", "").split() if is_word(t))
    return Segment(text, words, endpoint)


class Decoder:
    """One recognizer fed from a bounded buffer and decoded on the engine's pool.

    ``feed`` never blocks (it is called from the audio path). When decoding falls behind by
    more than ``max_pending_s`` of audio (the engine's, 2 s by default), the oldest pending
    audio is dropped and counted (``dropped_s``): for a live call, late audio is worth more
    than complete audio, and the bound keeps both memory and the final-result latency bounded
    (at most ``max_pending_s`` times the decoder's real-time factor after the caller stops).

    Hand-offs are kept to the minimum because they, not Vosk, were the service's overhead
    for keyword spotting (profiled: an asyncio future, a loop wake-up and a task switch per
    batch cost as much CPU as decoding the batch with a small grammar). ``feed`` posts a
    plain pool job only when a batch is ready and none is queued; the job decodes one batch,
    requeues itself behind other calls' jobs if more audio is waiting (fair on a busy pool),
    and wakes the event loop only when there is news (a result, a changed partial text).
    ``finish`` drains the rest in one urgent job (``speech.pool``); ``flush`` decodes what is
    pending now, however little, in an urgent job, for when a result is wanted before the
    next routine batch (the capture's end rule, once the voice pauses).
    """

    # Vosk's CPU cost per second of audio is the same for 20 ms or 400 ms chunks (measured);
    # batching cuts pool round trips; 100 ms bounds the latency it adds.
    MIN_BATCH_S = 0.1
    # ...and at most 0.3 s per job when a decoder is behind: an urgent job (a caller who
    # just stopped) waits for a thread only as long as a running job takes; 1 s batches
    # made that wait, on a saturated pool of a slow machine, as long as the quiet rules
    # (test_a_busy_pool_does_not_delay_the_end_of_an_utterance). Vosk's cost per audio
    # second does not depend on the batch.
    MAX_BATCH_S = 0.3

    def __init__(self, pool: DecodePool, recognizer: Any, mode: Mode, *,
                 on_segment: Callable[[Segment], None] | None,
                 on_partial: Callable[[str], None] | None, name: str,
                 max_pending_s: float, min_batch_s: float | None = None) -> None:
        self.mode = mode
        self.name = name
        self._loop = asyncio.get_running_loop()
        self._pool = pool
        self._rec = recognizer
        self._on_segment = on_segment
        self._on_partial = on_partial
        self._max_pending_s = max_pending_s
        self._max_pending = int(max_pending_s * BYTES_PER_S)
        self._min_batch = int((self.MIN_BATCH_S if min_batch_s is None else min_batch_s)
                              * BYTES_PER_S)
        self._max_batch = int(self.MAX_BATCH_S * BYTES_PER_S)
        # Shared by the loop (feed, finish, aclose) and the job running on a pool thread.
        self._lock = threading.Lock()
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._scheduled = False        # a job is queued or running
        self._running = False          # a job is running: never two at once
        self._finishing = False
        self._closed = False
        self._flush = False            # decode what is pending now, whatever its size
        self._done: asyncio.Future[None] = self._loop.create_future()
        self.segments: list[Segment] = []
        self.partial = ""
        self._partial_seen = ""        # pool side: last partial text sent to the loop
        self.fed_s = 0.0
        self.decoded_s = 0.0
        self.dropped_s = 0.0
        self.cpu_s = 0.0         # wall time spent in Vosk calls (per job, on pool threads)

    # -- loop side -----------------------------------------------------------------------

    def feed(self, pcm: bytes) -> None:
        if not pcm:
            return
        with self._lock:
            if self._finishing or self._closed:
                return
            self._chunks.append(pcm)
            self._size += len(pcm)
            self.fed_s += len(pcm) / BYTES_PER_S
            while self._size > self._max_pending and len(self._chunks) > 1:
                old = self._chunks.popleft()
                self._size -= len(old)
                if self.dropped_s == 0:
                    log.warning("speech %s: decoder behind by more than %.1f s of audio; "
                                "dropping the oldest audio (CPU overloaded?)", self.name,
                                self._max_pending_s)
                self.dropped_s += len(old) / BYTES_PER_S
            start = not self._scheduled and self._size >= self._min_batch
            if start:
                self._scheduled = True
        if start:
            self._submit()

    def flush(self) -> None:
        """Decode what is pending now, on the urgent lane, however little it is.

        For a pause in the voice: the result is wanted before the next routine batch would
        be full and before other calls' queued batches would let it run.
        """
        with self._lock:
            if self._finishing or self._closed or not self._size or self._flush:
                return                   # (a flush already asked for takes this audio too)
            self._flush = True
            if self._running:            # the running job sees the flag before it stops
                return
            self._scheduled = True
        # A routine job may still be queued: it runs later and finds nothing (or new audio).
        self._submit(urgent=True)

    async def finish(self) -> list[Segment]:
        """Decode what is pending, take Vosk's final result; all segments of the session.

        The rest of the decoding goes to the pool's urgent lane: the caller is waiting.
        """
        with self._lock:
            first = not self._finishing
            self._finishing = True
            idle = not self._closed and not self._running
            if self._closed and not self._scheduled:
                self._resolve()
            elif first and idle:
                self._scheduled = True
        if first and idle:
            # A routine job may still be queued behind other calls; this one jumps ahead
            # and the other, when its turn comes, finds nothing left to do.
            self._submit(urgent=True)
        await asyncio.shield(self._done)
        return self.segments

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    async def aclose(self) -> None:
        """Stop decoding now (no final result). A batch being decoded runs to its end."""
        with self._lock:
            self._closed = True
            self._chunks.clear()
            self._size = 0
            idle = not self._running
        if idle:
            self._resolve()

    def _submit(self, urgent: bool = False) -> None:
        if not self._pool.post(self._job, urgent=urgent, on_cancel=self._stop_from_pool):
            self._stop_from_pool()       # the engine was closed

    def _stop_from_pool(self) -> None:
        with self._lock:
            self._closed = True
            self._scheduled = False
        self._post(self._resolve)

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:             # the loop is gone; nobody is waiting any more
            pass

    def _resolve(self) -> None:
        if not self._done.done():
            self._done.set_result(None)

    def _deliver_segment(self, seg: Segment) -> None:
        if seg.text:
            self.segments.append(seg)
        self.partial = ""
        if self._on_segment is not None:
            self._on_segment(seg)

    def _deliver_partial(self, text: str) -> None:
        self.partial = text
        if self._on_partial is not None:
            self._on_partial(text)

    # -- pool side: only this touches the recognizer, one job at a time ------------------

    def _job(self) -> None:
        with self._lock:
            if self._running:            # a duplicate (see finish): the running job goes on
                return
            self._running = True
        try:
            self._run()
        except Exception:
            log.exception("speech %s: decoder failed", self.name)
            with self._lock:
                self._running = False
            self._stop_from_pool()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    self._running = self._scheduled = False
                    self._post(self._resolve)
                    return
                if self._size and (self._finishing or self._flush
                                   or self._size >= self._min_batch):
                    self._flush = False
                    chunk = self._take()
                elif self._finishing:
                    chunk = b""
                else:                     # nothing to do (a duplicate came late)
                    self._running = self._scheduled = False
                    return
            if not chunk:
                self._final()
                return
            self._accept(chunk)
            with self._lock:
                if self._finishing or self._closed or self._flush:
                    continue             # the caller waits: drain it all in this job
                self._running = False
                if self._size < self._min_batch:
                    self._scheduled = False
                    return
            # More audio waiting: go to the back of the queue, behind other calls' jobs.
            self._submit()
            return

    def _take(self) -> bytes:
        out: list[bytes] = []
        n = 0
        while self._chunks and n < self._max_batch:
            c = self._chunks.popleft()
            out.append(c)
            n += len(c)
        self._size -= n
        return b"".join(out)

    def _accept(self, chunk: bytes) -> None:
        t0 = time.perf_counter()
        rec = self._rec
        if rec.AcceptWaveform(chunk):
            raw, partial = rec.Result(), None
        elif self._on_partial is not None:
            raw, partial = None, json.loads(rec.PartialResult()).get("partial", "")
        else:
            raw = partial = None
        self.cpu_s += time.perf_counter() - t0
        self.decoded_s += len(chunk) / BYTES_PER_S
        if raw is not None:
            seg = parse_result(raw, True)
            self._partial_seen = ""
            if seg.text or seg.endpoint:
                self._post(self._deliver_segment, seg)
        elif partial is not None and partial != self._partial_seen:
            self._partial_seen = partial
            self._post(self._deliver_partial, partial)

    def _final(self) -> None:
        t0 = time.perf_counter()
        raw = str(self._rec.FinalResult())
        self.cpu_s += time.perf_counter() - t0
        seg = parse_result(raw, False)
        if seg.text:
            self._post(self._deliver_segment, seg)
        with self._lock:
            self._running = self._scheduled = False
            self._closed = True          # nothing more to decode after the final result
        self._post(self._resolve)
