"""Reader for the byte-exact AMI transcripts recorded from a real Asterisk.

The transcripts live in ``../shared/asterisk-reference/`` beside the repository (override with
``HOTLINE_ASTERISK_REFERENCE``). Each block starts with a header line ``### SEND t=…``,
``### RECV t=…`` or ``### NOTE t=…`` ended by ``\\n``; the payload that follows is the exact bytes
written on the wire (CRLF line ends) up to the next header.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_HEADER = re.compile(rb"^### (SEND|RECV|NOTE) t=([0-9.]+)\n", re.MULTILINE)


def reference_dir() -> Path:
    env = os.environ.get("HOTLINE_ASTERISK_REFERENCE")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "asterisk-reference"


@dataclass(frozen=True, slots=True)
class Block:
    kind: Literal["SEND", "RECV", "NOTE"]
    t: float
    data: bytes


def load_transcript(name: str) -> list[Block]:
    raw = (reference_dir() / name).read_bytes()
    matches = list(_HEADER.finditer(raw))
    blocks: list[Block] = []
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(raw)
        kind = m.group(1).decode()
        blocks.append(Block(kind, float(m.group(2)), raw[m.end() : end]))  # type: ignore[arg-type]
    return blocks


def recv_stream(name: str) -> bytes:
    """Everything Asterisk wrote in one transcript, concatenated as a client would read it."""
    return b"".join(b.data for b in load_transcript(name) if b.kind == "RECV")


def parse_message(data: bytes) -> list[tuple[str, str]]:
    """A payload as ordered (key, value) pairs; a test-side oracle independent of the adapter."""
    pairs: list[tuple[str, str]] = []
    for line in data.decode("utf-8").split("\r\n"):
        if ": " in line:
            k, v = line.split(": ", 1)
            pairs.append((k, v))
        elif line.endswith(":"):
            pairs.append((line[:-1], ""))
    return pairs
