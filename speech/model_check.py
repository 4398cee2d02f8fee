"""Is a Vosk model directory whole? Checked before the service relies on it.

A partly copied model is not always refused by Vosk: with ``graph/HCLr.fst`` truncated or
missing, ``vosk.Model`` loads, and the first keyword-grammar recognizer (the first caller)
segfaults the whole process. So before speech is enabled:

- ``check_model_dir`` looks at the files (cheap, in process): the acoustic model, the
  configuration, and a decoding graph (``HCLr.fst`` + ``Gr.fst``, or ``HCLG.fst``), each
  present, not empty, and the graphs starting with OpenFst's magic number;
- ``probe_model`` builds one recognizer of each kind (free transcription and a keyword
  grammar) and decodes a moment of silence in a short-lived child process, where a crash
  costs only the child. Its verdict names the file Vosk complained about.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

# OpenFst's binary files start with this 32-bit number (little-endian on every platform Vosk
# ships for).
FST_MAGIC = (2125659606).to_bytes(4, "little")
# Loading the bundled Korean model takes ~3 s; a slow disk or a bigger model more.
PROBE_TIMEOUT_S = 180.0

# Runs in the child: only vosk, so it works wherever the service does. argv: model directory.
_PROBE = r"""
import json, sys, vosk
vosk.SetLogLevel(-1)
model = vosk.Model(sys.argv[1])
unk = [t for t in ("[unk]", "<unk>", "<UNK>") if model.vosk_model_find_word(t) >= 0][:1]
for grammar in (None, json.dumps(unk)):
    rec = (vosk.KaldiRecognizer(model, 8000) if grammar is None
           else vosk.KaldiRecognizer(model, 8000, grammar))
    rec.AcceptWaveform(bytes(8000))
    rec.FinalResult()
print("probe ok", flush=True)
"""


class ModelBroken(Exception):
    """The model directory cannot be used; the message says what is wrong with it."""


def _check_file(path: Path, fst: bool = False) -> str | None:
    if not path.is_file():
        return f"{path.name} is missing"
    if path.stat().st_size == 0:
        return f"{path.name} is empty"
    if fst:
        with path.open("rb") as f:
            if f.read(4) != FST_MAGIC:
                return f"{path.name} is not an OpenFst file"
    return None


def check_model_dir(directory: str | Path) -> None:
    """Raise ``ModelBroken`` naming the first missing or damaged part of the model."""
    d = Path(directory)
    if not d.is_dir():
        raise ModelBroken(f"{d} is not a directory")
    # Vosk's two layouts: am/ conf/ graph/ (current models), or everything at the top.
    if (d / "am").is_dir() or (d / "conf").is_dir() or (d / "graph").is_dir():
        graph = d / "graph"
        if not (d / "conf").is_dir():
            raise ModelBroken("conf/ is missing")
        problem = _check_file(d / "am" / "final.mdl")
        if problem is not None:
            raise ModelBroken(f"am/{problem}")
    elif (d / "final.mdl").exists():
        graph = d
        problem = _check_file(d / "final.mdl")
        if problem is not None:
            raise ModelBroken(problem)
    else:
        raise ModelBroken("it has no am/, conf/ or graph/ (nor a final.mdl)")
    lookahead = [graph / "HCLr.fst", graph / "Gr.fst"]
    static = graph / "HCLG.fst"
    if any(p.exists() for p in lookahead) or not static.exists():
        problems = [p for p in (_check_file(f, fst=True) for f in lookahead) if p]
        if problems and static.exists() and _check_file(static, fst=True) is None:
            problems = []            # a static graph is enough for both kinds of recognizer
        if problems:
            raise ModelBroken(f"{graph.name}/{', '.join(problems)} (a decoding graph needs "
                              "HCLr.fst and Gr.fst, or HCLG.fst)")
    else:
        problem = _check_file(static, fst=True)
        if problem is not None:
            raise ModelBroken(f"{graph.name}/{problem}")


def probe_model(directory: str | Path, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Build and run both kinds of recognizer in a child process; ``ModelBroken`` if that
    crashes, fails or hangs."""
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, str(directory)],
                              capture_output=True, text=True, timeout=timeout_s,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ModelBroken(f"building a recognizer took longer than {timeout_s:.0f} s"
                          ) from None
    if proc.returncode == 0 and "probe ok" in proc.stdout:
        return
    # Vosk's own complaints name the file ("ConstFst::Read: Read failed: .../HCLr.fst").
    said = [ln.strip() for ln in proc.stderr.splitlines()
            if "ERROR" in ln or ln.startswith("Exception")][-3:]
    if proc.returncode < 0:
        try:
            how = f"crashed Vosk ({signal.Signals(-proc.returncode).name})"
        except ValueError:
            how = f"crashed Vosk (signal {-proc.returncode})"
    else:
        how = f"failed in Vosk (exit {proc.returncode})"
    raise ModelBroken(f"building a recognizer {how}" + (f": {'; '.join(said)}" if said else ""))
