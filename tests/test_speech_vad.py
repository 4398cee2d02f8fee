"""The energy detector that decides when a caller has stopped talking (speech.capture), and
when a recorded message (after hours) has ended."""

from __future__ import annotations

import asyncio
import math
import random
import shutil

import numpy as np
import pytest

from ivr.speech_input import _record_pcm
from speech.audiosocket_server import AudioSocketServer
from speech.caller import SimulatedCaller
from speech.capture import EnergyVad
from speech.synth import synthesize
from tests.speech_fixtures import one_caller

FRAME = 320     # bytes: 20 ms of 8 kHz slin


def _frames(x: np.ndarray) -> list[bytes]:
    pcm = np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()
    return [pcm[i : i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]


def _mean_square(frame: bytes) -> float:
    """A frame's energy as the detector sees it: without its DC offset."""
    s = np.frombuffer(frame, "<i2").astype(np.float64)
    s -= s.mean()
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


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng synthesizes the voice")
@pytest.mark.parametrize("line", ["dc offset", "mains hum"])
async def test_a_message_ends_after_the_silence_on_a_line_with_dc_or_hum(line: str) -> None:
    """A caller leaves a message, then says nothing: the recording ends ``silence_s`` later
    although the line is never digitally silent (a DC bias of -36 dBFS, or 50 Hz hum at
    -36 dBFS, both above the old fixed -40 dBFS silence level)."""
    rng = np.random.default_rng(9)
    voice = np.frombuffer(synthesize("수도 요금 문의 드립니다", "ko-KR"), "<i2").astype(np.float64)
    n_lead, n_tail = 4000, 8000 * 10
    x = np.concatenate([np.zeros(n_lead), voice, np.zeros(n_tail)])
    t = np.arange(len(x)) / 8000
    x += rng.normal(0, 20, len(x)) + (500.0 if line == "dc offset"
                                       else 700 * np.sin(2 * np.pi * 50 * t))
    pcm = np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()
    server = AudioSocketServer("127.0.0.1", 0)
    await server.start()
    caller = SimulatedCaller("127.0.0.1", server.port)
    stream = server.expect(caller.uuid)

    async def talk() -> None:
        await caller.send_audio(pcm, 8.0)
        await caller.hangup()

    talker: asyncio.Task[None] | None = None
    try:
        await caller.connect()
        await stream.wait_connected(2.0)
        talker = asyncio.create_task(talk())
        async with asyncio.timeout(20):
            recorded = await _record_pcm(stream, 60.0, 2.0)
    finally:
        if talker is not None:
            talker.cancel()
            await asyncio.gather(talker, return_exceptions=True)
        await stream.close()
        await caller.close()
        await server.stop()
    voice_end_s = (n_lead + len(voice)) / 8000
    assert recorded, "the voice was heard"
    assert len(recorded) / 16000 < voice_end_s + 2.0 + 0.6, len(recorded) / 16000


async def test_a_message_ends_after_the_silence_on_a_line_that_sends_nothing_when_quiet() -> None:
    """Silence suppression (G.729 annex B, Opus DTX): after the voice, Asterisk forwards no
    frames at all. The gap is silence, so the recording ends ``silence_s`` after the voice,
    not at its maximum length (60 s here)."""
    rng = np.random.default_rng(5)
    hiss = rng.normal(0, 30, 4000)                                      # 0.5 s, then
    tone = 3000 * np.sin(2 * np.pi * 300 * np.arange(8000) / 8000)     # 1 s of "voice"
    pcm = np.round(np.concatenate([hiss, tone])).astype("<i2").tobytes()
    async with one_caller() as (caller, stream):
        await caller.send_audio(pcm, 4.0)          # then the line goes quiet: no frames
        async with asyncio.timeout(15):
            recorded = await _record_pcm(stream, 60.0, 1.0)
    assert recorded[: len(pcm)] == pcm
    # The voice, then the silence that ended it (counted from the gap, in whole frames).
    assert 1.0 <= (len(recorded) - len(pcm)) / 16000 <= 1.5, len(recorded) / 16000
    assert stream.filled_s >= 1.0
