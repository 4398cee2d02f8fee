"""Audio files: convert any WAV to 8 kHz mono slin, transcribe it (after-hours messages, CLI).

Conversion uses ``sox`` when it is installed (proper resampling filter); otherwise a stdlib
path reads PCM WAV with ``wave``, averages the channels and resamples with a box low-pass
and linear interpolation (no ``audioop``, which Python 3.13 removed). The stdlib path is
slower and a little less accurate, good enough for a voicemail.
"""

from __future__ import annotations

import array
import asyncio
import logging
import shutil
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

from routing.topics import TopicCatalogue
from speech.capture import EnergyVad
from speech.decoder import BYTES_PER_S, SAMPLE_RATE, Mode, Segment, parse_result
from speech.engine import SpeechEngine
from speech.spotting import heard_words, topic_of

log = logging.getLogger(__name__)

CHUNK_BYTES = BYTES_PER_S // 5          # 200 ms per AcceptWaveform: Vosk's efficient size


class AudioFileError(ValueError):
    """The file cannot be read as audio; the message names the file and the reason."""


@dataclass(frozen=True, slots=True)
class FileTranscript:
    text: str
    keywords: tuple[str, ...]
    topic: str | None
    confidence: float
    duration_s: float


def to_slin8k(path: str | Path, use_sox: bool | None = None) -> bytes:
    """The file as 8 kHz mono signed 16-bit little-endian samples."""
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    if use_sox is None:
        use_sox = shutil.which("sox") is not None
    if use_sox:
        proc = subprocess.run(
            ["sox", "-V1", str(path), "-t", "raw", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16",
             "-e", "signed-integer", "-L", "-"], capture_output=True, check=False)
        if proc.returncode != 0:
            msg = proc.stderr.decode(errors="replace").strip() or f"exit {proc.returncode}"
            raise AudioFileError(f"{path}: sox cannot read it: {msg}")
        return proc.stdout
    return _wav_to_slin8k_stdlib(path)


def _wav_to_slin8k_stdlib(path: Path) -> bytes:
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise AudioFileError(f"{path}: not a PCM WAV file ({e}); install sox for other "
                             "formats") from None
    mono = _downmix(_samples(raw, width), channels)
    out = _resample(mono, rate, SAMPLE_RATE)
    pcm = array.array("h", (max(-32768, min(32767, round(s))) for s in out))
    if sys.byteorder == "big":
        pcm.byteswap()
    return pcm.tobytes()


def _samples(raw: bytes, width: int) -> list[float]:
    """Samples scaled to the 16-bit range."""
    if width == 1:        # WAV 8-bit is unsigned
        return [(b - 128) * 256.0 for b in raw]
    if width == 2:
        a = array.array("h")
        a.frombytes(raw[: len(raw) // 2 * 2])
        if sys.byteorder == "big":
            a.byteswap()
        return [float(s) for s in a]
    if width in (3, 4):
        scale = 1 / (1 << (8 * width - 16))
        return [int.from_bytes(raw[i : i + width], "little", signed=True) * scale
                for i in range(0, len(raw) - width + 1, width)]
    raise AudioFileError(f"unsupported sample width {width} bytes")


def _downmix(samples: list[float], channels: int) -> list[float]:
    if channels == 1:
        return samples
    n = len(samples) // channels
    return [sum(samples[i * channels : (i + 1) * channels]) / channels for i in range(n)]


def _resample(x: list[float], src: int, dst: int) -> list[float]:
    if src == dst or not x:
        return x
    ratio = src / dst
    if ratio > 1:
        # Box low-pass over one output period before decimating, against aliasing.
        k = max(1, round(ratio))
        acc = [0.0]
        for v in x:
            acc.append(acc[-1] + v)
        half = k // 2
        n = len(x)
        x = [(acc[min(n, i + k - half)] - acc[max(0, i - half)])
             / (min(n, i + k - half) - max(0, i - half)) for i in range(n)]
    n_out = int(len(x) / ratio)
    out = []
    last = len(x) - 1
    for i in range(n_out):
        t = i * ratio
        j = int(t)
        f = t - j
        out.append(x[j] * (1 - f) + x[min(j + 1, last)] * f)
    return out


def _decode_all(engine: SpeechEngine, mode: Mode, keywords: list[str] | None,
                pcm: bytes) -> list[Segment]:
    """Blocking: one recognizer over the whole file (runs on the engine's pool)."""
    rec = engine.recognizer_sync(mode, keywords)
    segs: list[Segment] = []
    for i in range(0, len(pcm), CHUNK_BYTES):
        if rec.AcceptWaveform(pcm[i : i + CHUNK_BYTES]):
            segs.append(parse_result(rec.Result(), True))
    segs.append(parse_result(rec.FinalResult(), False))
    return [s for s in segs if s.text]


def _voice_of(pcm: bytes) -> EnergyVad:
    """The energy detector run over the whole recording: was a voice heard, for how long."""
    vad = EnergyVad()
    frame = BYTES_PER_S // 50                       # 20 ms, as Asterisk sends them
    for i in range(0, len(pcm) - frame + 1, frame):
        vad.update(pcm[i : i + frame])
    return vad


async def transcribe_pcm(engine: SpeechEngine, pcm: bytes, catalogue: TopicCatalogue,
                         locale: str, fast: bool = False) -> FileTranscript:
    """Transcript and spotted topic of 8 kHz slin audio; both decoders run in parallel."""
    mode: Mode = "transcription_fast" if fast else "transcription"
    free, spot = await asyncio.gather(
        engine.run(_decode_all, engine, mode, None, pcm),
        engine.run(_decode_all, engine, "spotting", catalogue.keywords(locale), pcm,
                   spotting=True))
    text = " ".join(s.text for s in free)
    vad = _voice_of(pcm)
    words = heard_words([w for s in spot for w in s.words], vad.speech_seen)
    cls = (topic_of(catalogue, locale, words, text, voiced_s=vad.voiced_s)
           if vad.speech_seen else topic_of(catalogue, locale, [], ""))
    return FileTranscript(text, cls.keywords, cls.topic, cls.confidence,
                          round(len(pcm) / BYTES_PER_S, 3))


async def transcribe_file(engine: SpeechEngine, path: str | Path, catalogue: TopicCatalogue,
                          locale: str, fast: bool = False) -> FileTranscript:
    pcm = await asyncio.to_thread(to_slin8k, path)
    result = await transcribe_pcm(engine, pcm, catalogue, locale, fast)
    log.info("speech: transcribed %s (%.1f s): topic=%s text=%r", path, result.duration_s,
             result.topic, result.text)
    return result
