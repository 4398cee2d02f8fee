"""Shared by the tests that speak to the service: a loaded Vosk engine (once per module, the
model takes seconds to load) and a caller's WAV synthesized by espeak-ng."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from speech.engine import SpeechEngine
from speech.synth import synthesize


@pytest.fixture(scope="module")
def engine() -> Iterator[SpeechEngine]:
    e = SpeechEngine()
    e.load_sync()
    e.load_sync(fast=True)
    yield e
    e.close()


def wav_of(text: str, path: Path) -> Path:
    """``text`` said in Korean, as an 8 kHz mono WAV: a short lead-in, the words, 1 s of quiet."""
    pcm = bytes(2400) + synthesize(text, "ko-KR") + bytes(16000)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm)
    return path
