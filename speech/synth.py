"""Speech synthesis with espeak-ng, for ``hotline speech check``, tests and the benchmark.

espeak-ng's Korean voice is robotic: Vosk's Korean model recognises some words from it well
(see the report on keyword choice) and free transcription of it poorly. It proves the audio
path end to end; it says little about accuracy on real callers.
"""

from __future__ import annotations

import shutil
import subprocess

from speech.decoder import SAMPLE_RATE

# espeak-ng voice per hotline locale
VOICES = {"ko-KR": "ko", "zh-CN": "cmn"}


class SynthesisError(RuntimeError):
    pass


def synthesize(text: str, locale: str = "ko-KR", speed: int = 150, pitch: int = 50) -> bytes:
    """``text`` spoken by espeak-ng, as 8 kHz mono signed 16-bit little-endian samples."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise SynthesisError(f"{tool} is not installed (Debian: apt-get install {tool})")
    voice = VOICES.get(locale, locale.split("-")[0].lower())
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                          "--stdout", text], capture_output=True, check=False)
    if wav.returncode != 0 or not wav.stdout:
        raise SynthesisError(f"espeak-ng failed for voice {voice!r}: "
                             f"{wav.stderr.decode(errors='replace').strip()}")
    raw = subprocess.run(["sox", "-V1", "-t", "wav", "-", "-t", "raw", "-r", str(SAMPLE_RATE),
                          "-c", "1", "-b", "16", "-e", "signed-integer", "-L", "-"],
                         input=wav.stdout, capture_output=True, check=False)
    if raw.returncode != 0:
        raise SynthesisError(f"sox failed: {raw.stderr.decode(errors='replace').strip()}")
    return raw.stdout
