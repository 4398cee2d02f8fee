"""The speech benchmarks' corpus: espeak-ng phrases per topic, at several speeds, clean and
with sox noise, synthesized at run time (see ``bench.speech`` for how each is used), and the
word and character error rates of transcripts against the synthesized text."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import numpy as np

from speech.decoder import Mode
from speech.synth import synthesize

LOCALE = "ko-KR"
# The ko-KR keywords of the defaults (ivr/defaults.toml; chosen by measurement, see
# RESULTS_speech.md); --config-keywords uses the configuration's instead.
KO_KEYWORDS = {
    "water": ["수도", "하수도", "정수기"],
    "energy": ["난방비", "가스", "보일러"],
    "housing": ["임대", "월세", "관리비"],
    "transport": ["버스", "마을버스"],
    "social_security": ["보험", "고용", "연금", "일자리"],
    "gas_leak": ["가스누출"],
    "fire": ["화재"],
    "crime": ["범죄신고", "폭행"],
}
CORPUS: list[tuple[str, str]] = [
    ("하수도", "water"), ("정수기요", "water"), ("수도 문의", "water"),
    ("난방비요", "energy"), ("보일러", "energy"), ("가스", "energy"),
    ("관리비요", "housing"), ("임대", "housing"), ("월세", "housing"),
    ("마을버스 문의", "transport"), ("버스", "transport"), ("마을버스요", "transport"),
    ("보험 문의", "social_security"), ("고용", "social_security"), ("일자리", "social_security"),
]
# Longer speech for the word error rate of free transcription (topic: what the spotter
# should find in it, for the accuracy figure of those modes).
SENTENCES: list[tuple[str, str]] = [
    ("안녕하세요 수도 요금 문의 드립니다", "water"), ("어제부터 하수도 물이 넘쳐요", "water"),
    ("보일러가 고장 났어요", "energy"), ("관리비가 많이 나왔어요", "housing"),
    ("마을버스가 너무 늦게 와요", "transport"), ("일자리 정보를 알고 싶습니다", "social_security"),
    ("연금 신청은 어떻게 하나요", "social_security"), ("월세 계약 문제로 전화했어요", "housing"),
]
SPEEDS = (130, 170, 210)          # espeak-ng words per minute (its default is 175)
NOISE_DB = -15.0                  # white noise level relative to the voice's RMS
LEAD_S, TRAIL_S = 0.3, 2.5
VOICED_DBFS = -45.0               # a 20 ms frame of espeak-ng output louder than this is voice


@dataclass(frozen=True, slots=True)
class Sample:
    text: str
    topic: str
    condition: str         # "s170-clean", "s130-noise", ...
    audio: bytes           # lead, phrase, trail; 8 kHz slin
    speech_end: int        # byte offset just after the last voiced frame of the phrase


def _sox_noise(seconds: float, rms_dbfs: float, seed: int) -> np.ndarray:
    """White noise from sox at ``rms_dbfs`` (float samples)."""
    raw = subprocess.run(
        ["sox", "-V1", "-R", "-n", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
         "-L", "-t", "raw", "-", "synth", f"{seconds:.3f}", "whitenoise", "vol", "0.5"],
        capture_output=True, check=True).stdout
    x = np.frombuffer(raw, "<i2").astype(np.float64)
    rng = np.random.default_rng(seed)          # sox -R is repeatable: vary the start
    x = np.roll(x, int(rng.integers(0, max(1, len(x)))))
    rms = float(np.sqrt(np.mean(x * x))) or 1.0
    return x * (32768 * 10 ** (rms_dbfs / 20) / rms)


def _hiss(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(0, 20, n)               # a quiet telephone line, about -64 dBFS


def _voiced_end(speech: np.ndarray) -> int:
    frames = speech[: len(speech) // 160 * 160].reshape(-1, 160)
    loud = np.nonzero((frames**2).mean(axis=1) > (32768 * 10 ** (VOICED_DBFS / 20)) ** 2)[0]
    return int(loud[-1] + 1) * 160 if loud.size else len(speech)


def _sample(text: str, topic: str, speed: int, noisy: bool, seed: int) -> Sample:
    speech = np.frombuffer(synthesize(text, LOCALE, speed=speed), "<i2").astype(np.float64)
    rng = np.random.default_rng(seed)
    lead, trail = int(LEAD_S * 8000), int(TRAIL_S * 8000)
    x = np.concatenate([np.zeros(lead), speech, np.zeros(trail)])
    x += _hiss(len(x), rng)
    if noisy:
        voice_rms = float(np.sqrt(np.mean(speech[np.abs(speech) > 300] ** 2)))
        noise_dbfs = 20 * np.log10(voice_rms / 32768) + NOISE_DB
        x += _sox_noise(len(x) / 8000 + 0.01, noise_dbfs, seed)[: len(x)]
    pcm = np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()
    return Sample(text, topic, f"s{speed}-{'noise' if noisy else 'clean'}", pcm,
                  2 * (lead + _voiced_end(speech)))


def build_corpus(mode: Mode, quick: bool) -> list[Sample]:
    items: list[tuple[str, str, int, bool]] = []
    if mode == "spotting":
        speeds = SPEEDS[1:2] if quick else SPEEDS
        items = [(t, tp, sp, n) for sp in speeds for n in (False, True) for t, tp in CORPUS]
    else:
        phrases = CORPUS[::3] if quick else CORPUS
        items = [(t, tp, 170, False) for t, tp in phrases]
        sentences = SENTENCES[::2] if quick else SENTENCES
        items += [(t, tp, 170, n) for n in (False, True) for t, tp in sentences]
    return [_sample(t, tp, sp, n, seed) for seed, (t, tp, sp, n) in enumerate(items)]


def edit_distance(a: list[str], b: list[str]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def error_rates(pairs: list[tuple[str, str]]) -> tuple[float, float]:
    """(WER, CER) over (reference, hypothesis) pairs."""
    w_err = sum(edit_distance(r.split(), h.split()) for r, h in pairs)
    w_ref = sum(len(r.split()) for r, _ in pairs)
    c_err = sum(edit_distance(list(r.replace(" ", "")), list(h.replace(" ", ""))) for r, h in pairs)
    c_ref = sum(len(r.replace(" ", "")) for r, _ in pairs)
    return round(w_err / max(w_ref, 1), 3), round(c_err / max(c_ref, 1), 3)
