"""Prompt audio: espeak-ng, resampled by sox to what Asterisk's format_wav plays without
transcoding (8 kHz, signed 16-bit, mono), in a WAV container written here.

Both tools are deterministic with these options (espeak-ng always; sox with ``-D``, because
its default dither adds random noise), and the header is ours, not espeak-ng's streaming
header with its placeholder sizes: the same text gives the same bytes.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave

from dialplan.common import DialplanError

RATE = 8000
SPEED_WPM = 150   # slower than espeak-ng's 175: telephone audio, callers of every age


def _run(argv: list[str], data: bytes) -> bytes:
    tool = argv[0]
    if shutil.which(tool) is None:
        raise DialplanError(f"{tool} is not installed (Debian: apt-get install {tool})")
    done = subprocess.run(argv, input=data, capture_output=True, check=False)
    if done.returncode != 0 or not done.stdout:
        err = done.stderr.decode(errors="replace").strip()
        raise DialplanError(f"{tool} failed ({' '.join(argv[:3])} ...): {err or 'no output'}")
    return done.stdout


def synthesize_pcm(text: str, voice: str) -> bytes:
    """``text`` spoken with espeak-ng ``voice``, as 8 kHz signed 16-bit little-endian mono."""
    # Text on stdin, declared UTF-8 (-b 1): independent of the caller's locale and safe for a
    # text starting with '-'.
    wav = _run(["espeak-ng", "-v", voice, "-s", str(SPEED_WPM), "-b", "1", "--stdin",
                "--stdout"], text.encode("utf-8"))
    return _run(["sox", "-V1", "-D", "-t", "wav", "-", "-t", "raw", "-r", str(RATE), "-c", "1",
                 "-b", "16", "-e", "signed-integer", "-L", "-"], wav)


def wav_bytes(pcm: bytes) -> bytes:
    """A canonical 44-byte-header PCM WAV around 8 kHz 16-bit mono samples."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return buf.getvalue()


def synthesize_wav(text: str, voice: str) -> bytes:
    return wav_bytes(synthesize_pcm(text, voice))
