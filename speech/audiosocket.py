"""AudioSocket framing (Asterisk ``res_audiosocket``): typed frames, encoder, streaming parser.

Wire format: 1 type byte, 2-byte big-endian payload length, payload. Asterisk sends one UUID
frame first, then 20 ms slin frames (320 bytes of 8 kHz signed 16-bit little-endian mono; the
last one of a call may be shorter, as the reference capture shows), DTMF digits and a hangup.

The parser is fed whatever TCP delivers (any chunking). A frame whose header is readable but
whose payload makes no sense (a UUID that is not 16 bytes, a DTMF that is not one digit, an
odd-length audio payload, an unknown type) is logged and skipped: its length field still tells
where the next frame starts. The parser never raises on input bytes.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from dataclasses import dataclass, field
from enum import IntEnum

log = logging.getLogger(__name__)

HEADER_LEN = 3
SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2   # 320: one 20 ms slin frame
SILENCE_FRAME_PCM = bytes(FRAME_BYTES)
DTMF_DIGITS = frozenset("0123456789*#ABCD")


class Kind(IntEnum):
    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    AUDIO = 0x10      # slin, 8 kHz
    ERROR = 0xFF


@dataclass(frozen=True, slots=True)
class HangupFrame:
    pass


@dataclass(frozen=True, slots=True)
class UuidFrame:
    uuid: uuidlib.UUID


@dataclass(frozen=True, slots=True)
class DtmfFrame:
    digit: str


@dataclass(frozen=True, slots=True)
class AudioFrame:
    pcm: bytes        # 8 kHz signed 16-bit LE mono

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / (2 * SAMPLE_RATE)


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    code: int | None  # Asterisk's error byte, when present


Frame = HangupFrame | UuidFrame | DtmfFrame | AudioFrame | ErrorFrame


class FramingError(ValueError):
    """Raised by the encoder only (bad arguments); the parser logs instead of raising."""


def _header(kind: int, length: int) -> bytes:
    if not 0 <= length <= 0xFFFF:
        raise FramingError(f"payload of {length} bytes does not fit a 16-bit length")
    return bytes((kind,)) + length.to_bytes(2, "big")


def encode(frame: Frame) -> bytes:
    match frame:
        case HangupFrame():
            return _header(Kind.HANGUP, 0)
        case UuidFrame(uuid=u):
            return _header(Kind.UUID, 16) + u.bytes
        case DtmfFrame(digit=d):
            if d not in DTMF_DIGITS:
                raise FramingError(f"not a DTMF digit: {d!r}")
            return _header(Kind.DTMF, 1) + d.encode("ascii")
        case AudioFrame(pcm=pcm):
            if len(pcm) % 2:
                raise FramingError("slin audio must be a whole number of 16-bit samples")
            return _header(Kind.AUDIO, len(pcm)) + pcm
        case ErrorFrame(code=c):
            payload = b"" if c is None else bytes((c,))
            return _header(Kind.ERROR, len(payload)) + payload
    raise FramingError(f"not a frame: {frame!r}")


def encode_audio(pcm: bytes) -> bytes:
    return encode(AudioFrame(pcm))


def _decode(kind: int, payload: bytes) -> Frame | str:
    """A frame, or the reason it is malformed."""
    if kind == Kind.AUDIO:
        if len(payload) % 2:
            return f"audio payload of odd length {len(payload)}"
        return AudioFrame(payload)
    if kind == Kind.DTMF:
        digit = payload.decode("ascii", "replace")
        if len(payload) != 1 or digit not in DTMF_DIGITS:
            return f"DTMF payload {payload!r} is not one digit"
        return DtmfFrame(digit)
    if kind == Kind.UUID:
        if len(payload) != 16:
            return f"UUID payload of {len(payload)} bytes, expected 16"
        return UuidFrame(uuidlib.UUID(bytes=payload))
    if kind == Kind.HANGUP:
        return HangupFrame()   # a payload on hangup is harmless: the call is over either way
    if kind == Kind.ERROR:
        return ErrorFrame(payload[0] if payload else None)
    return f"unknown frame type 0x{kind:02x} ({len(payload)} bytes)"


@dataclass(slots=True)
class FrameParser:
    """Incremental parser: ``feed`` bytes as they arrive, get the complete frames back."""

    name: str = "audiosocket"          # for log lines: which connection
    max_payload: int = 0xFFFF
    errors: int = 0
    _buf: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        pos = 0
        buf = self._buf
        while len(buf) - pos >= HEADER_LEN:
            kind = buf[pos]
            length = int.from_bytes(buf[pos + 1 : pos + 3], "big")
            if len(buf) - pos - HEADER_LEN < length:
                break                                  # wait for the rest of the payload
            payload = bytes(buf[pos + HEADER_LEN : pos + HEADER_LEN + length])
            pos += HEADER_LEN + length
            if length > self.max_payload:
                self._reject(kind, length, f"payload larger than {self.max_payload} bytes")
                continue
            out = _decode(kind, payload)
            if isinstance(out, str):
                self._reject(kind, length, out)
            else:
                frames.append(out)
        del buf[:pos]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back; non-zero at EOF means a truncated frame."""
        return len(self._buf)

    def _reject(self, kind: int, length: int, reason: str) -> None:
        self.errors += 1
        log.error("%s: malformed frame skipped (type 0x%02x, length %d): %s",
                  self.name, kind, length, reason)
