"""Bare Vosk: what decoding in small jobs with pauses between them costs (a diagnostic).

    python -m bench.speech_wakeups [--json]

The service decodes each call's audio as it arrives, one short job per batch, on threads that
sleep between jobs; bare Vosk in ``bench.speech`` decodes back to back. This decodes the
spotting corpus of ``bench.speech`` (up to 0.3 s past each phrase) on as many threads as the
engine has, in chunks of 100/200/400 ms, with 0/5/20 ms of sleep after each chunk, and prints
the process CPU per configuration and its ratio to back-to-back 100 ms chunks measured in the
same run (alternated over ``--rounds``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from bench.speech_corpus import KO_KEYWORDS, LOCALE, build_corpus
from ivr.config import load_config
from routing.topics import TopicCatalogue
from speech.decoder import BYTES_PER_S
from speech.engine import SpeechEngine
from speech.spotting import Expect

CHUNKS_S = (0.1, 0.2, 0.4)
SLEEPS_S = (0.0, 0.005, 0.02)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.speech_wakeups")
    p.add_argument("--json", action="store_true")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    cfg = load_config(None)
    topics = [t.model_copy(update={"keywords": {**t.keywords, LOCALE: KO_KEYWORDS.get(t.name, [])}})
              for t in cfg.topics]
    # The greeting's grammar, as the service and bench.speech run it.
    menu = next((m for m in cfg.ivr.menus.values() if m.language == LOCALE), None)
    keywords = Expect(person_words=tuple(menu.human_words) if menu is not None else ()
                      ).grammar_words(TopicCatalogue.from_config(topics), LOCALE)
    engine = SpeechEngine(cfg.speech.model_path or None)
    audio = [s.audio[: s.speech_end + int(0.3 * BYTES_PER_S) // 2 * 2]
             for s in build_corpus("spotting", False)]
    audio_s = sum(len(a) for a in audio) / BYTES_PER_S
    engine.recognizer_sync("spotting", keywords)          # load the model outside the timing

    def one(pcm: bytes, chunk: int, sleep_s: float) -> None:
        rec = engine.recognizer_sync("spotting", keywords)
        for i in range(0, len(pcm), chunk):
            if rec.AcceptWaveform(pcm[i : i + chunk]):
                rec.Result()
            if sleep_s:
                time.sleep(sleep_s)
        rec.FinalResult()

    cpu: dict[str, float] = {}
    try:
        for _ in range(args.rounds):
            for c in CHUNKS_S:
                for s in SLEEPS_S:
                    chunk = int(c * BYTES_PER_S)
                    t0 = time.process_time()
                    with ThreadPoolExecutor(engine.threads) as pool:
                        list(pool.map(lambda a, k=chunk, z=s: one(a, k, z), audio))
                    key = f"chunk_{round(c * 1000)}ms_sleep_{round(s * 1000)}ms"
                    cpu[key] = cpu.get(key, 0.0) + time.process_time() - t0
    finally:
        engine.close()
    base = cpu["chunk_100ms_sleep_0ms"]
    result = {"audio_s": round(audio_s, 1), "threads": engine.threads, "rounds": args.rounds,
              "configs": {k: {"streams_per_core": round(audio_s * args.rounds / v, 1),
                              "cpu_vs_back_to_back_100ms": round(v / base, 3)}
                          for k, v in cpu.items()}}
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result["configs"].items():
            print(f"{k:28s} {v['streams_per_core']:6.1f}/core  x{v['cpu_vs_back_to_back_100ms']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
