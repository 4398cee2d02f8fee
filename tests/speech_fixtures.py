"""Shared by the tests that speak to the service: a loaded Vosk engine (once per module, the
model takes seconds to load) and a caller's WAV synthesized by espeak-ng."""

from __future__ import annotations

import contextlib
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from speech.audio_stream import AudioStream
from speech.audiosocket_server import AudioSocketServer
from speech.caller import SimulatedCaller
from speech.engine import SpeechEngine, default_model_path
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


def partly_copied_model(into: Path) -> Path:
    """The bundled model with its graph/HCLr.fst cut at 1 MB (of 180), as an interrupted copy
    leaves it: Vosk loads it, and segfaults building the first keyword-grammar recognizer.
    The other files are links to the real ones."""
    src = Path(default_model_path())
    into.mkdir(parents=True)
    for entry in src.iterdir():
        if entry.name != "graph":
            (into / entry.name).symlink_to(entry.resolve())
    (into / "graph").mkdir()
    for entry in (src / "graph").iterdir():
        if entry.name == "HCLr.fst":
            with entry.open("rb") as f:
                (into / "graph" / entry.name).write_bytes(f.read(1_000_000))
        else:
            (into / "graph" / entry.name).symlink_to(entry.resolve())
    return into


@contextlib.asynccontextmanager
async def one_caller() -> AsyncIterator[tuple[SimulatedCaller, AudioStream]]:
    """An AudioSocket server in this process and one simulated Asterisk connected to it: the
    caller's side and the service's stream of the call."""
    server = AudioSocketServer("127.0.0.1", 0)
    await server.start()
    caller = SimulatedCaller("127.0.0.1", server.port)
    stream = server.expect(caller.uuid)
    try:
        await caller.connect()
        await stream.wait_connected(2.0)
        yield caller, stream
    finally:
        await stream.close()
        await caller.close()
        await server.stop()
