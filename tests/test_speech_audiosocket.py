"""AudioSocket framing and server, against the bytes a real Asterisk sent (no speech model)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speech.audio_stream import AudioStream
from speech.audiosocket import (
    AudioFrame,
    DtmfFrame,
    ErrorFrame,
    Frame,
    FrameParser,
    FramingError,
    HangupFrame,
    UuidFrame,
    encode,
)
from speech.audiosocket_server import AudioSocketServer
from speech.caller import SimulatedCaller
from tests.reference import reference_dir

REFERENCE_BIN = "audiosocket-from-asterisk.bin"
# The UUID inside the capture. The recorder's NOTE (and the EXEC AudioSocket command in
# call-through-ivr-and-queue.txt) name 1eba5d59-6aed-41ee-b240-e4602ab7b536, but the bytes
# of the .bin carry this one: the capture and the NOTE come from different runs. The frame
# counts and audio_bytes=44370 of the NOTE do match the .bin.
REFERENCE_UUID = uuid.UUID("333c133c-43ba-4491-a47f-cee77466a26c")

FRAMES: list[Frame] = [UuidFrame(uuid.UUID(int=0x1234)), AudioFrame(bytes(range(256)) + bytes(64)),
          DtmfFrame("5"), DtmfFrame("#"), AudioFrame(b""), ErrorFrame(4), ErrorFrame(None),
          HangupFrame()]


def _reference() -> bytes:
    path = reference_dir() / REFERENCE_BIN
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"reference capture not found at {path}", pytrace=False)
        pytest.skip(f"reference capture not found at {path}")
    return path.read_bytes()


def test_round_trip_every_frame_type() -> None:
    wire = b"".join(encode(f) for f in FRAMES)
    parser = FrameParser()
    assert parser.feed(wire) == FRAMES
    assert parser.pending == 0 and parser.errors == 0


def test_encoder_rejects_bad_frames() -> None:
    bad_frames: list[Frame] = [DtmfFrame("x"), AudioFrame(b"\0"), AudioFrame(bytes(70000))]
    for bad in bad_frames:
        with pytest.raises(FramingError):
            encode(bad)


def test_reference_capture_parsed_exactly() -> None:
    data = _reference()
    parser = FrameParser()
    frames = parser.feed(data)
    assert parser.pending == 0 and parser.errors == 0
    assert frames[0] == UuidFrame(REFERENCE_UUID)
    audio = frames[1:]
    assert len(audio) == 139 and all(isinstance(f, AudioFrame) for f in audio)
    sizes = [len(f.pcm) for f in audio if isinstance(f, AudioFrame)]
    # 138 full 20 ms frames, then a short last one when the server ended the session.
    assert sizes[:138] == [320] * 138 and sizes[138] == 210
    assert sum(sizes) == 44370                      # audio_bytes in the README NOTE
    # Byte at a time gives the same frames.
    slow = FrameParser()
    assert [f for i in range(len(data)) for f in slow.feed(data[i : i + 1])] == frames


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(min_value=0, max_value=44806), max_size=30))
def test_any_chunking_gives_the_same_frames(cuts: list[int]) -> None:
    data = _reference()
    edges = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    parser = FrameParser()
    out = [f for a, b in itertools.pairwise(edges) for f in parser.feed(data[a:b])]
    assert len(out) == 140 and parser.pending == 0


@settings(max_examples=60, deadline=None)
@given(junk=st.binary(max_size=2000), cut=st.integers(min_value=0, max_value=2000))
def test_garbage_and_truncation_never_crash(junk: bytes, cut: int) -> None:
    parser = FrameParser()
    parser.feed(junk[:cut])
    parser.feed(junk[cut:])
    assert parser.pending <= len(junk)


def test_malformed_frames_are_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    good = encode(AudioFrame(bytes(320)))
    wire = (b"\x01\x00\x03abc"          # UUID of 3 bytes
            + b"\x03\x00\x01x"          # DTMF 'x'
            + b"\x10\x00\x03\x00\x00\x00"  # odd-length audio
            + b"\x42\x00\x02hi"         # unknown type
            + good)
    parser = FrameParser(name="test")
    with caplog.at_level(logging.ERROR, logger="speech.audiosocket"):
        frames = parser.feed(wire)
    assert frames == [AudioFrame(bytes(320))]
    assert parser.errors == 4
    assert sum("malformed frame skipped" in r.message for r in caplog.records) == 4
    # A truncated frame waits for the rest instead of being misread.
    assert parser.feed(good[:100]) == [] and parser.pending == 100
    assert parser.feed(good[100:]) == [AudioFrame(bytes(320))]


async def _server() -> AudioSocketServer:
    server = AudioSocketServer("127.0.0.1", 0)
    await server.start()
    return server


async def test_stream_frames_media_back_and_close_sends_hangup() -> None:
    server = await _server()
    caller = SimulatedCaller("127.0.0.1", server.port)
    stream = server.expect(caller.uuid)
    try:
        await caller.connect()
        await stream.wait_connected(2.0)
        await caller.send_audio(bytes(320) * 3, speed=0)
        await caller.send_dtmf("7")
        got = [await anext(stream) for _ in range(4)]
        assert got[:3] == [AudioFrame(bytes(320))] * 3 and got[3] == DtmfFrame("7")
        # Asterisk drops the call after 2 s without media from us: silence flows meanwhile.
        await asyncio.sleep(1.2)
        r = caller.received
        assert r.first_media_after_s is not None and r.first_media_after_s < 0.5
        assert r.max_gap_s < 1.0 and r.audio_frames >= 20
        await stream.close()
        assert await caller.wait_hangup(2.0) and caller.received.hangup
    finally:
        await caller.close()
        await server.stop()


async def test_caller_hangup_ends_iteration() -> None:
    server = await _server()
    caller = SimulatedCaller("127.0.0.1", server.port)
    stream = server.expect(str(caller.uuid))
    try:
        await caller.connect()
        await caller.send_audio(bytes(640), speed=0)
        await caller.hangup()
        frames = [f async for f in asyncio_timeout_iter(stream, 2.0)]
        assert frames == [AudioFrame(bytes(320))] * 2
        assert stream.end_reason == "hangup"
        await stream.close()
    finally:
        await caller.close()
        await server.stop()


async def asyncio_timeout_iter(stream: AudioStream,
                               timeout: float) -> AsyncIterator[AudioFrame | DtmfFrame]:
    async with asyncio.timeout(timeout):
        async for f in stream:
            yield f


async def test_unknown_uuid_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    server = await _server()
    caller = SimulatedCaller("127.0.0.1", server.port)
    try:
        with caplog.at_level(logging.WARNING, logger="speech.audiosocket_server"):
            await caller.connect()
            assert await caller.wait_hangup(2.0)
        # A hangup frame before the close: older Asterisk releases take a bare close for "no
        # frame yet" and would keep the channel in AudioSocket.
        assert caller.received.hangup
        assert caller.received.audio_frames == 0
        assert any("not expected" in r.message and str(caller.uuid) in r.message
                   for r in caplog.records)
    finally:
        await caller.close()
        await server.stop()


async def test_unread_stream_keeps_bounded_buffer_and_dtmf() -> None:
    server = await _server()
    caller = SimulatedCaller("127.0.0.1", server.port)
    stream = server.expect(caller.uuid, max_buffer_s=0.2)     # 10 frames
    try:
        await caller.connect()
        await caller.send_dtmf("1")
        await caller.send_audio(bytes(range(256)) * 50, speed=0)   # 40 frames
        await caller.hangup()
        async with asyncio.timeout(2.0):
            while stream.end_reason is None:          # everything arrived, nothing read yet
                await asyncio.sleep(0.01)
        frames = [f async for f in asyncio_timeout_iter(stream, 2.0)]
        assert frames[0] == DtmfFrame("1")
        assert len(frames) == 11 and stream.dropped_frames == 30
    finally:
        await stream.close()
        await caller.close()
        await server.stop()


async def test_stop_closes_streams_and_tasks() -> None:
    server = await _server()
    caller = SimulatedCaller("127.0.0.1", server.port)
    stream = server.expect(caller.uuid)
    pending = server.expect(uuid.uuid4())                   # never connects
    await caller.connect()
    await stream.wait_connected(2.0)
    await server.stop()
    assert await caller.wait_hangup(2.0) and caller.received.hangup
    with pytest.raises(ConnectionAbortedError):
        await pending.wait_connected(0.1)
    await caller.close()
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not [t for t in leftover if "audiosocket" in t.get_name()]


def _rtp_rebases(write_times_ms: list[int]) -> int:
    """How often res_rtp_asterisk re-bases the RTP timestamps of frames written to a channel
    at these times (ast_rtp_raw_write: the clock advances by the time since the last write,
    8 samples a millisecond, and keeps the steady +160 only while that stays within
    MAX_TIMESTAMP_SKEW, 640 samples, of it). A re-base is heard as a gap in a prompt."""
    lastts, rebases = 0, 0
    for prev, now in itertools.pairwise(write_times_ms):
        pred = lastts + 160
        lastts += (now - prev) * 8
        if abs(lastts - pred) < 640:
            lastts = pred
        else:
            rebases += 1
    return rebases


@pytest.mark.parametrize("late_ms", [0, 30])
def test_media_bursts_keep_asterisks_rtp_timestamps_steady(late_ms: int) -> None:
    """Asterisk writes our frames to the caller's channel as it reads them. The server's
    bursts (and a media clock running up to 30 ms late) must not make Asterisk re-base the
    RTP stream, and a burst must fit one TCP segment (Asterisk 18 fails on a split frame)."""
    server = AudioSocketServer("127.0.0.1", 0)
    period_ms = round(server.burst_frames * 20)
    times = []
    for tick in range(50):
        t = tick * period_ms + (late_ms if tick % 2 else 0)
        times += [t] * server.burst_frames
    assert _rtp_rebases(times) == 0
    assert len(server.silence_burst) <= 1448
    # The rule itself: 100 ms bursts, the old default, re-based every burst.
    assert _rtp_rebases([t for tick in range(50) for t in [tick * 100] * 5]) == 49


class _StallingSink:
    """Takes the frames as the speech capture does, and once holds the event loop for
    ``stall_s`` (a slow callback, a garbage collection) right after a frame was read, when
    nothing else is waiting in the socket: then the media clock's tick comes first."""

    def __init__(self, stall_after: int, stall_s: float) -> None:
        self.frames: list[AudioFrame | DtmfFrame] = []
        self.ended = asyncio.get_running_loop().create_future()
        self._stall_after, self._stall_s = stall_after, stall_s

    def on_frame(self, frame: AudioFrame | DtmfFrame) -> None:
        self.frames.append(frame)
        if len(self.frames) == self._stall_after:
            time.sleep(self._stall_s)

    def on_end(self, reason: str) -> None:
        if not self.ended.done():
            self.ended.set_result(reason)


@pytest.mark.parametrize("asterisk_in", ["thread", "loop"])
async def test_a_stalled_event_loop_is_not_taken_for_a_quiet_line(asterisk_in: str) -> None:
    """While the service's event loop is stuck, the caller's frames are late, not missing:
    counting that time as silence would put a pause in the middle of the caller's words
    (the spotter then hears other keywords in the pieces). Asterisk is a thread with its
    own clock (its frames wait in the socket), or, as pbxsim is, a task of the same loop
    (stuck too, it sends its frames after the stall)."""
    server = await _server()
    voice = bytes([0x10, 0x27]) * 160                     # a constant, non-silent frame
    n_frames = 75                                          # 1.5 s
    caller = SimulatedCaller("127.0.0.1", server.port)
    stream = server.expect(caller.uuid)
    sink = _StallingSink(stall_after=15, stall_s=0.7)
    stream.attach_sink(sink)

    def asterisk() -> None:
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(encode(UuidFrame(caller.uuid)))
            for _ in range(n_frames):
                s.sendall(encode(AudioFrame(voice)))
                time.sleep(0.02)
            s.sendall(encode(HangupFrame()))
            s.recv(1 << 16)

    line = threading.Thread(target=asterisk, daemon=True)
    try:
        if asterisk_in == "thread":
            line.start()
        else:
            await caller.connect()
            await caller.send_audio(voice * n_frames, speed=1.0)
            await caller.hangup()
        async with asyncio.timeout(10):
            assert await sink.ended == "hangup"
    finally:
        await stream.close()
        await caller.close()
        await server.stop()
        if line.is_alive():
            line.join(5.0)
    assert sink.frames == [AudioFrame(voice)] * n_frames
    assert stream.filled_s == 0.0


async def test_a_quiet_line_is_still_heard_while_the_loop_keeps_stalling() -> None:
    """Silence suppression on the line and a loop stuck for 0.2 s every 0.3 s: the ticks
    after each stall still count the quiet since the caller's last frame, as silence (a
    stall must only postpone that, or the caller's answer never ends under load)."""
    server = await _server()
    caller = SimulatedCaller("127.0.0.1", server.port)
    stream = server.expect(caller.uuid)
    try:
        await caller.connect()
        await caller.send_audio(bytes([0x10, 0x27]) * 160, speed=0)     # then nothing
        await stream.wait_connected(2.0)
        for _ in range(8):
            await asyncio.sleep(0.1)
            time.sleep(0.2)  # noqa: ASYNC251 (the point: the loop is stuck)
        await asyncio.sleep(0.1)
    finally:
        await stream.close()
        await caller.close()
        await server.stop()
    assert stream.filled_s >= 1.5, stream.filled_s
