"""``hotline speech check|transcribe``: the command bodies (argument parsing lives in ivr.cli).

Exit status: 0 success, 1 the speech stack does not work (message on stderr says why and how
to fix it), 2 a bad argument (unreadable audio file, unknown locale).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from ivr.config import HotlineConfig
from routing.topics import TopicCatalogue
from speech.decoder import BYTES_PER_S
from speech.engine import SpeechEngine, SpeechUnavailable
from speech.files import AudioFileError, FileTranscript, transcribe_file, transcribe_pcm
from speech.synth import SynthesisError, synthesize

# A phrase per locale that the bundled keyword grammar should spot, and the topic it means.
CHECK_PHRASES = {"ko-KR": ("보험 문의", "social_security"), "zh-CN": ("停水", "water")}


def _engine(config: HotlineConfig) -> SpeechEngine:
    return SpeechEngine(config.speech.model_path or None)


def _check_locale(config: HotlineConfig) -> str:
    # The model's language (speech.locale: the bundled model's, or the one configured), not
    # the callers' default language: a check phrase in another language proves nothing.
    return config.speech.locale if config.speech.locale in CHECK_PHRASES else "ko-KR"


def cmd_check(config: HotlineConfig, *, engine: SpeechEngine | None = None) -> int:
    """Load the model, transcribe a synthesized phrase, print what was heard.

    ``engine``: an already created engine to use (and leave open); by default one is made
    from ``config`` and closed at the end.
    """
    locale = _check_locale(config)
    phrase, expected = CHECK_PHRASES[locale]
    catalogue = TopicCatalogue.from_config(config.topics)
    owned = engine is None
    try:
        if engine is None:
            engine = _engine(config)
        print(f"model:      {engine.model_path}")
        t0 = time.perf_counter()
        engine.load_sync()
        print(f"loaded in:  {time.perf_counter() - t0:.1f} s")
        pcm = synthesize(phrase, locale)
    except (SpeechUnavailable, SynthesisError) as e:
        print(f"speech check failed: {e}", file=sys.stderr)
        if owned and engine is not None:
            engine.close()
        return 1
    try:
        t0 = time.perf_counter()
        result = asyncio.run(transcribe_pcm(engine, pcm, catalogue, locale))
        took = time.perf_counter() - t0
    finally:
        if owned:
            engine.close()
    audio_s = len(pcm) / BYTES_PER_S
    print(f"phrase:     {phrase} ({locale}, espeak-ng, {audio_s:.1f} s)")
    print(f"transcript: {result.text or '(nothing)'}")
    print(f"keywords:   {', '.join(result.keywords) or '(none)'}")
    print(f"topic:      {result.topic or '(none)'} (confidence {result.confidence:.2f})")
    print(f"decoded in: {took:.2f} s ({took / audio_s:.2f} x real time, both decoders)")
    if result.topic is None and not result.text:
        print("speech check failed: the model heard nothing in the synthesized phrase; is "
              f"speech.model_path a {locale} model?", file=sys.stderr)
        return 1
    if result.topic != expected:
        # The model works; the keywords for this locale may not suit it (or espeak-ng).
        print(f"warning: expected topic {expected!r}; check the {locale} keywords of the "
              "topics against the model's vocabulary", file=sys.stderr)
    print("speech OK")
    return 0


def known_locales(config: HotlineConfig) -> set[str]:
    """Locales something is configured for: topic keywords, a menu, the speech model."""
    return ({loc for t in config.topics for loc in t.keywords}
            | {m.language for m in config.ivr.menus.values()} | {config.speech.locale})


def _as_dict(r: FileTranscript) -> dict[str, Any]:
    return {"text": r.text, "keywords": list(r.keywords), "topic": r.topic,
            "confidence": r.confidence}


def cmd_transcribe(config: HotlineConfig, wav_path: str, locale: str | None = None,
                   as_json: bool = False, *, engine: SpeechEngine | None = None) -> int:
    """Transcribe a WAV file; print the transcript, the spotted keywords and the topic.

    ``--json`` prints one object with exactly ``text``, ``keywords``, ``topic``, ``confidence``.
    """
    locale = locale or config.speech.locale     # the model's language
    catalogue = TopicCatalogue.from_config(config.topics)
    known = known_locales(config)
    if locale not in known:
        print(f"unknown locale {locale!r}: the topics and menus know "
              f"{', '.join(sorted(known))}", file=sys.stderr)
        return 2
    owned = engine is None
    try:
        if engine is None:
            engine = _engine(config)
    except SpeechUnavailable as e:
        print(f"speech unavailable: {e}", file=sys.stderr)
        return 1
    try:
        result = asyncio.run(transcribe_file(engine, wav_path, catalogue, locale))
    except AudioFileError as e:
        print(f"cannot transcribe: {e}", file=sys.stderr)
        return 2
    except SpeechUnavailable as e:
        print(f"speech unavailable: {e}", file=sys.stderr)
        return 1
    finally:
        if owned:
            engine.close()
    if as_json:
        print(json.dumps(_as_dict(result), ensure_ascii=False))
    else:
        print(f"text:       {result.text}")
        print(f"keywords:   {', '.join(result.keywords) or '(none)'}")
        print(f"topic:      {result.topic or '(none)'} (confidence {result.confidence:.2f})")
    return 0
