"""Bare Vosk: how late the keyword spotter names a word, with and without each grammar word.

    python -m bench.speech_grammar [--json] [--without all|W,W...]

Vosk names a word in its partial result once no other path through the grammar may still
win: a longer keyword that starts with the same sounds keeps a short one unnamed for a while
after the caller stops (measured: '범죄신고' kept '버스' unnamed 0.5 s). The capture ends 0.2 s
after a keyword is named, 0.5 s after the voice if none is (``speech.capture``), so such a
pair shows in the end-of-speech latency. This decodes the spotting corpus of
``bench.speech`` in 20 ms frames with the greeting's grammar, as the service builds it, and
again with each word left out (by default the emergency topics' words), and prints per
grammar the lag from the end of the voice to the first word named: its median and p95, how
many phrases were named later than ``quiet_end_s`` (0.2 s) or never, and which phrases
a left-out word made faster by more than 0.1 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor

from bench.speech_corpus import KO_KEYWORDS, LOCALE, Sample, build_corpus
from ivr.config import load_config
from routing.topics import TopicCatalogue
from speech.decoder import BYTES_PER_S, UNK_TOKENS
from speech.engine import SpeechEngine
from speech.spotting import Expect

FRAME = 320                    # 20 ms, as Asterisk sends them
QUIET_END_S = 0.2              # speech.capture's default
FASTER_S = 0.1                 # a left-out word that saves more than this is reported
NEVER = float("inf")


def naming_lag(engine: SpeechEngine, words: list[str], s: Sample) -> float:
    """Seconds from the end of the voice to the first grammar word Vosk names (inf: none)."""
    rec = engine.recognizer_sync("spotting", words)
    for i in range(0, len(s.audio), FRAME):
        if rec.AcceptWaveform(s.audio[i : i + FRAME]):
            text = json.loads(rec.Result()).get("text", "")
        else:
            text = json.loads(rec.PartialResult()).get("partial", "")
        if any(w not in UNK_TOKENS for w in text.split()):
            return (i + FRAME - s.speech_end) / BYTES_PER_S
    return NEVER


def _p95(xs: list[float]) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, int(0.95 * len(ys)))]


def _ms(x: float) -> int | None:
    return None if x == NEVER else round(x * 1000)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.speech_grammar")
    p.add_argument("--json", action="store_true")
    p.add_argument("--without", default="",
                   help="words to leave out one at a time: 'all', or a comma-separated list "
                        "(default: the emergency topics' words)")
    args = p.parse_args(argv)
    cfg = load_config(None)
    topics = [t.model_copy(update={"keywords": {**t.keywords, LOCALE: KO_KEYWORDS.get(t.name, [])}})
              for t in cfg.topics]
    catalogue = TopicCatalogue.from_config(topics)
    # The greeting's grammar, as the service and bench.speech run it.
    menu = next((m for m in cfg.ivr.menus.values() if m.language == LOCALE), None)
    words = Expect(person_words=tuple(menu.human_words) if menu is not None else ()
                   ).grammar_words(catalogue, LOCALE)
    if args.without == "all":
        leave_out = list(words)
    elif args.without:
        leave_out = [w.strip() for w in args.without.split(",") if w.strip()]
    else:
        leave_out = [w for t in topics if catalogue.is_emergency(t.name)
                     for w in t.keywords.get(LOCALE, [])]
    unknown = [w for w in leave_out if w not in words]
    if unknown:
        print(f"bench.speech_grammar: not in the grammar: {', '.join(unknown)}",
              file=sys.stderr)
        return 2
    variants = {"full": words, **{f"without {w}": [x for x in words if x != w]
                                  for w in leave_out}}
    if len(leave_out) > 1:
        variants["without all of them"] = [x for x in words if x not in leave_out]
    corpus = build_corpus("spotting", False)
    engine = SpeechEngine(cfg.speech.model_path or None)
    lags: dict[str, list[float]] = {}
    try:
        with ThreadPoolExecutor(engine.threads) as pool:
            for name, ws in variants.items():
                lags[name] = list(pool.map(lambda s, ws=ws: naming_lag(engine, ws, s), corpus))
    finally:
        engine.close()
    full = lags["full"]
    table: dict[str, dict[str, object]] = {}
    for name, ls in lags.items():
        named = [x for x in ls if x != NEVER]
        v: dict[str, object] = {
            "lag_median_ms": _ms(statistics.median(named)) if named else None,
            "lag_p95_ms": _ms(_p95(ls)),
            "named_after_quiet_end": sum(QUIET_END_S < x < NEVER for x in ls),
            "never_named": len(ls) - len(named)}
        if name != "full":
            v["faster"] = sorted({f"{s.text} [{s.condition}]" for s, a, b in zip(
                corpus, full, ls, strict=True) if a - b > FASTER_S})
        table[name] = v
    result = {"grammar": words, "phrases": len(corpus), "variants": table}
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for name, v in table.items():
            faster = v.get("faster")
            print(f"{name:24s} median {v['lag_median_ms']} ms  p95 {v['lag_p95_ms']} ms  "
                  f"late {v['named_after_quiet_end']}  never {v['never_named']}"
                  + (f"  faster {len(faster)}" if isinstance(faster, list) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
