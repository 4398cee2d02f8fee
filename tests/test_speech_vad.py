"""The energy detector that decides when a caller has stopped talking (speech.capture)."""

from __future__ import annotations

import math
import random
import shutil

import numpy as np
import pytest

from speech.capture import EnergyVad
from speech.synth import synthesize

FRAME = 320     # bytes: 20 ms of 8 kHz slin


def _frames(x: np.ndarray) -> list[bytes]:
    pcm = np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()
    return [pcm[i : i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]


def _mean_square(frame: bytes) -> float:
    s = np.frombuffer(frame, "<i2").astype(np.float64)
    return float(np.mean(s * s))


def test_noise_floor_is_the_quietest_frame_of_the_last_two_seconds() -> None:
    # Levels that rise and fall in steps, so the quietest frame keeps leaving the window:
    # the detector only rescans its window then, and must still agree with a plain minimum.
    rng = random.Random(7)
    vad = EnergyVad(floor_window_s=0.2)          # a 10-frame window: many expiries
    history: list[float] = []
    level = 100.0
    for _ in range(3000):
        if rng.random() < 0.1:
            level = rng.choice([30.0, 100.0, 300.0, 3000.0, 30.0])
        frame = _frames(np.random.default_rng(rng.randrange(1 << 30))
                        .normal(0, level, FRAME // 2))[0]
        vad.update(frame)
        history.append(_mean_square(frame))
        assert math.isclose(vad.floor, min(history[-10:]), rel_tol=1e-5)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng synthesizes the voice")
def test_voice_over_a_noisy_line_and_the_pause_after_it() -> None:
    rng = np.random.default_rng(3)
    voice = np.frombuffer(synthesize("수도 요금 문의", "ko-KR"), "<i2").astype(np.float64)
    noise_rms = 32768 * 10 ** (-36 / 20)         # a street: louder than the -40 dBFS gate
    lead, tail = 40 * 160, 50 * 160
    x = np.concatenate([np.zeros(lead), voice, np.zeros(tail)])
    x += rng.normal(0, noise_rms, len(x))
    vad = EnergyVad()
    flags = [vad.update(f) for f in _frames(x)]
    assert vad.speech_seen
    assert not any(flags[:40]), "steady line noise before the voice is not voice"
    voiced = [i for i, v in enumerate(flags) if v]
    assert voiced[0] < 40 + len(voice) // 160
    # The voice ends: what follows is the noise again and must be heard as a pause, or the
    # utterance would never end on a noisy line.
    assert not any(flags[-40:])


def test_silence_and_steady_noise_alone_are_never_speech() -> None:
    rng = np.random.default_rng(5)
    for level_dbfs in (-70.0, -45.0, -30.0):
        vad = EnergyVad()
        for f in _frames(rng.normal(0, 32768 * 10 ** (level_dbfs / 20), 8000 * 5)):
            vad.update(f)
        assert not vad.speech_seen, level_dbfs
