"""Audio and DTMF between channels: sound files, prompts with barge-in, DTMF, audio taps.

Audio is 8 kHz signed 16-bit mono (slin), as AudioSocket carries it. What a channel plays is heard
by its receiver (bridge peer, else the other Local half); an AudioSocket session listens through
an :class:`AudioTap` on the channel it runs on.
"""

from __future__ import annotations

import array
import logging
import sys
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import lifecycle
from .channels import Channel, Notice, receiver_of

if TYPE_CHECKING:
    from .config import SimConfig
    from .core import PbxCore

log = logging.getLogger("pbxsim.media")

RATE = 8000
BYTES_PER_SECOND = RATE * 2
FRAME_BYTES = 320  # 20 ms
DTMF_DIGITS = "0123456789*#ABCD"


def _to_mono16(raw: bytes, width: int, channels: int) -> array.array[int]:
    if width == 1:
        samples = array.array("h", ((b - 128) << 8 for b in raw))
    elif width == 2:
        samples = array.array("h", raw)
        if sys.byteorder == "big":
            samples.byteswap()
    else:  # keep the two most significant bytes of 24/32-bit little-endian samples
        samples = array.array("h", (int.from_bytes(raw[i + width - 2:i + width], "little",
                                                   signed=True)
                                    for i in range(0, len(raw) - width + 1, width)))
    if channels > 1:
        samples = array.array("h", (sum(samples[i:i + channels]) // channels
                                    for i in range(0, len(samples) - channels + 1, channels)))
    return samples


def resample(samples: array.array[int], src_rate: int, dst_rate: int = RATE) -> array.array[int]:
    """Linear-interpolation resampling; good enough for speech fed to a recogniser."""
    if src_rate == dst_rate or not samples:
        return samples
    n_out = max(1, int(len(samples) * dst_rate / src_rate))
    step = src_rate / dst_rate
    out = array.array("h", bytes(2 * n_out))
    last = len(samples) - 1
    for i in range(n_out):
        pos = i * step
        j = int(pos)
        frac = pos - j
        a = samples[min(j, last)]
        b = samples[min(j + 1, last)]
        out[i] = int(a + (b - a) * frac)
    return out


def load_audio(path: Path) -> bytes:
    """A WAV (any rate/width/channels) or raw slin file as 8 kHz slin16 mono bytes."""
    suffix = path.suffix.lower()
    if suffix == ".wav":
        with wave.open(str(path), "rb") as w:
            raw = w.readframes(w.getnframes())
            samples = _to_mono16(raw, w.getsampwidth(), w.getnchannels())
            rate = w.getframerate()
    else:
        samples = _to_mono16(path.read_bytes(), 2, 1)
        rate = 16000 if suffix == ".sln16" else RATE
    samples = resample(samples, rate)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


class SoundLibrary:
    """Resolves Asterisk sound names to audio; unknown names play as silence of a set length."""

    EXTENSIONS = ("", ".wav", ".sln", ".slin", ".sln16", ".raw")

    def __init__(self, config: SimConfig) -> None:
        self._config = config
        self._cache: dict[str, bytes | None] = {}

    def _candidates(self, name: str) -> list[Path]:
        mapped = self._config.sounds.get(name)
        if mapped is not None:
            return [Path(mapped)]
        bases = [Path(name)] if name.startswith("/") else []
        bases += [Path(d) / name for d in self._config.sounds_dirs]
        return [Path(str(b) + ext) for b in bases for ext in self.EXTENSIONS]

    def load(self, name: str) -> bytes | None:
        if name not in self._cache:
            pcm: bytes | None = None
            for cand in self._candidates(name):
                if cand.is_file():
                    try:
                        pcm = load_audio(cand)
                        break
                    except (OSError, wave.Error, EOFError) as exc:
                        log.warning("cannot read sound %s: %s", cand, exc)
            self._cache[name] = pcm
        return self._cache[name]

    def missing(self, name: str) -> bool:
        """True when the sound cannot be played: not found, on a sim that fails on that."""
        return self._config.missing_sounds_fail and self.load(name) is None

    def duration(self, name: str) -> float:
        pcm = self.load(name)
        return len(pcm) / BYTES_PER_SECOND if pcm is not None else self._config.default_prompt_s


class AudioTap:
    """What a listener (AudioSocket) receives from a channel: queued audio. DTMF is not
    copied here: the listener reads it from the channel, so each key has one reader."""

    def __init__(self) -> None:
        self._pcm = bytearray()
        self.closed = False

    def feed(self, pcm: bytes) -> None:
        if not self.closed:
            self._pcm += pcm

    def next_frame(self) -> bytes:
        """20 ms of audio: queued audio (the last piece of a file may be short) or silence."""
        if self._pcm:
            frame = bytes(self._pcm[:FRAME_BYTES])
            del self._pcm[:FRAME_BYTES]
            return frame
        return bytes(FRAME_BYTES)

    @property
    def pending(self) -> int:
        return len(self._pcm)

    def close(self) -> None:
        self.closed = True


def write_audio(sender: Channel, pcm: bytes) -> None:
    receiver = receiver_of(sender)
    if receiver is not None:
        for tap in list(receiver.taps):
            tap.feed(pcm)


def notify_far(chan: Channel, notice: Notice) -> None:
    """Tell the simulated phone on the other Local half what ``chan`` is doing."""
    peer = chan.local_peer
    if peer is not None and peer.endpoint is not None and not peer.hungup:
        peer.endpoint.notice(notice)


def deliver_dtmf_begin(core: PbxCore, receiver: Channel, digit: str) -> None:
    core.emit("DTMFBegin", "dtmf", receiver, [("Digit", digit), ("Direction", "Received")])


def deliver_dtmf_end(core: PbxCore, receiver: Channel, digit: str, duration_ms: int) -> None:
    """The digit is queued on the channel for whichever application reads it next, as an
    Asterisk DTMF frame is: a prompt, GET DATA, AudioSocket (0x03), or an idle AGI that
    drops it. Never copied to two readers."""
    core.emit("DTMFEnd", "dtmf", receiver, [("Digit", digit), ("DurationMs", str(duration_ms)),
                                            ("Direction", "Received")])
    receiver.dtmf.put_nowait(digit)


def drop_dtmf(chan: Channel) -> None:
    """Read and drop the keys waiting on ``chan``, telling the caller (who hears that
    nothing happened) which keys were lost."""
    dropped = chan.drain_dtmf()
    if dropped:
        notify_far(chan, Notice("dtmf_dropped", digits=dropped))


async def send_dtmf(core: PbxCore, sender: Channel, digits: str, between_s: float = 0.25,
                    duration_ms: int = 100, lead_s: float = 0.1) -> bool:
    """ast_dtmf_stream: a 100 ms pause, then each digit for its duration and a gap."""
    if lead_s > 0 and not await lifecycle.sleep(core, sender, lead_s):
        return False
    for digit in digits:
        if digit.upper() not in DTMF_DIGITS:
            continue
        receiver = receiver_of(sender)
        if receiver is not None:
            deliver_dtmf_begin(core, receiver, digit)
        if not await lifecycle.sleep(core, sender, duration_ms / 1000):
            return False
        receiver = receiver_of(sender)
        if receiver is not None and not receiver.hungup:
            deliver_dtmf_end(core, receiver, digit, duration_ms)
        if not await lifecycle.sleep(core, sender, between_s):
            return False
    return True


@dataclass(frozen=True)
class PlayResult:
    digit: str | None
    stopped: bool
    samples: int


async def play(core: PbxCore, chan: Channel, name: str, escape: str = "",
               duration_s: float | None = None) -> PlayResult:
    """Play a sound on ``chan``; a DTMF digit in ``escape`` interrupts it (barge-in)."""
    pcm = core.sounds.load(name)
    length = duration_s if duration_s is not None else core.sounds.duration(name)
    if pcm is not None and duration_s is None:
        write_audio(chan, pcm)
    start = core.clock.now()

    def played() -> int:
        return int(min(length, core.clock.now() - start) * RATE)

    while True:
        remaining = start + length - core.clock.now()
        if remaining <= 0:
            return PlayResult(None, False, int(length * RATE))
        digit, stopped = await lifecycle.read_digit(core, chan, remaining)
        if stopped:
            return PlayResult(None, True, played())
        if digit is not None and digit in escape:
            return PlayResult(digit, False, played())


def new_tap(chan: Channel) -> AudioTap:
    tap = AudioTap()
    chan.taps.append(tap)
    return tap


def remove_tap(chan: Channel, tap: AudioTap) -> None:
    tap.close()
    if tap in chan.taps:
        chan.taps.remove(tap)

