"""AudioSocket(uuid,host:port): stream the channel's audio to a TCP server, as app_audiosocket.

Framing (see audiosocket-from-asterisk.bin): 1 type byte, 2-byte big-endian length, payload.
0x01 carries the 16-byte UUID first, then 0x10 frames of 320 bytes (20 ms of 8 kHz slin16 mono;
the last frame of a played file may be shorter) paced in real time scaled by the clock, and
0x03 frames with a DTMF digit. The session ends when the server sends 0x00 or closes (result 0),
when the server sent nothing for 2 s, on an error frame or when the channel hangs up (-1).
With ``silence_suppression`` the caller's quiet is not sent at all, as on a line with DTX.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import media
from .channels import UP, Channel, Notice
from .expr import split_args
from .media import AudioTap

if TYPE_CHECKING:
    from .core import PbxCore

log = logging.getLogger("pbxsim.audiosocket")

KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_AUDIO, KIND_ERROR = 0x00, 0x01, 0x03, 0x10, 0xFF
FRAME_S = 0.02
CONNECT_TIMEOUT_S = 2.0
# Silence suppression: a phone's VAD stops sending after this many quiet frames (its hangover)
# of peaks under QUIET_PEAK (about -50 dBFS).
DTX_HANGOVER_FRAMES = 5
QUIET_PEAK = 100


def frame(kind: int, payload: bytes) -> bytes:
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


@dataclass
class _State:
    last_rx: float
    result: int | None = None
    reason: str = ""


async def _receive(core: PbxCore, chan: Channel, reader: asyncio.StreamReader,
                   state: _State) -> None:
    try:
        while state.result is None:
            header = await reader.readexactly(3)
            kind, length = header[0], int.from_bytes(header[1:3], "big")
            payload = await reader.readexactly(length) if length else b""
            state.last_rx = core.clock.now()
            if kind == KIND_HANGUP:
                state.result, state.reason = 0, "hangup frame from the server"
            elif kind == KIND_AUDIO:
                media.write_audio(chan, payload)  # what the server says is heard by the caller
            elif kind == KIND_ERROR:
                state.result, state.reason = -1, "error frame from the server"
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        if state.result is None:
            state.result, state.reason = 0, "server closed the connection"


async def _stream(core: PbxCore, chan: Channel, writer: asyncio.StreamWriter, tap: AudioTap,
                  state: _State) -> int:
    clock = core.clock
    next_t = clock.now()
    timeout = core.config.audiosocket_timeout_s
    dtx = core.config.silence_suppression
    quiet_frames = 0
    while True:
        if chan.should_stop:
            state.reason = "channel hung up"
            return -1
        if state.result is not None:
            return state.result
        if clock.now() - state.last_rx >= timeout:
            state.reason = f"no media from the server for {timeout:g} s"
            return -1
        try:
            pcm = tap.next_frame()
            if dtx:
                quiet = max(abs(v) for v in memoryview(pcm).cast("h")) < QUIET_PEAK if pcm else True
                quiet_frames = quiet_frames + 1 if quiet else 0
            if not dtx or quiet_frames <= DTX_HANGOVER_FRAMES:
                writer.write(frame(KIND_AUDIO, pcm))
            # app_audiosocket ast_read()s the caller's DTMF, forwards it and frees it: the
            # key is consumed here, including one that arrived while connecting.
            while not chan.dtmf.empty():
                writer.write(frame(KIND_DTMF, chan.dtmf.get_nowait().encode()))
            if writer.transport.get_write_buffer_size() > 64 * 1024:
                async with asyncio.timeout(clock.to_real(timeout)):   # not wait_for: see clock
                    await writer.drain()
        except (ConnectionError, OSError, TimeoutError):
            state.reason = "cannot write to the server"
            return -1
        next_t += FRAME_S
        await clock.sleep(next_t - clock.now())


async def audiosocket_exec(core: PbxCore, chan: Channel, data: str) -> int:
    args = split_args(data)
    try:
        session_id = uuid.UUID(args[0].strip())
    except ValueError:
        log.error("%s: AudioSocket: failed to parse UUID %r", chan.name, args[0])
        return -1
    host, _, port_s = (args[1].strip() if len(args) > 1 else "").rpartition(":")
    if chan.state != UP or not host or not port_s.isdigit():
        log.error("%s: AudioSocket(%s): channel not answered or bad service", chan.name, data)
        return -1
    try:
        # A TCP connect takes real time, whatever the simulated clock's speed: its timeout
        # is wall-clock, as res_audiosocket's is.
        # asyncio.timeout, not wait_for, which can lose a cancellation (see SimClock.timeout).
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(host, int(port_s))
    except (OSError, TimeoutError) as exc:
        log.error("%s: AudioSocket cannot connect to %s:%s: %s", chan.name, host, port_s, exc)
        return -1
    tap = media.new_tap(chan)
    state = _State(core.clock.now())
    receiver = core.spawn(_receive(core, chan, reader, state), f"audiosocket rx {chan.name}")
    log.info("%s streams audio to %s:%s (%s)", chan.name, host, port_s, session_id)
    try:
        writer.write(frame(KIND_UUID, session_id.bytes))
        media.notify_far(chan, Notice("audio_prompt"))
        result = await _stream(core, chan, writer, tap, state)
    finally:
        media.remove_tap(chan, tap)
        receiver.cancel()
        writer.close()
        media.notify_far(chan, Notice("audio_end"))
    log.info("%s AudioSocket ended: %s", chan.name, state.reason)
    return result
