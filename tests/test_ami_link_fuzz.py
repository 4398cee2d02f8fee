"""Random and truncated bytes on a live AMI connection never crash the link or leak memory.

A fake Asterisk on real TCP accepts the login, then writes garbage (random bytes, and real
messages cut short) between well-formed events. The link must stay up on its first connection,
deliver every well-formed event that follows a message boundary, and hold no more memory after
thousands of such rounds than after the first few hundred.
"""

from __future__ import annotations

import asyncio
import random
import re
import tracemalloc
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.ami.events import AmiEvent
from ivr.ami.link import AmiLink
from ivr.config import load_config
from tests.reference import recv_stream

REAL = recv_stream("call-through-ivr-and-queue.txt")


class _FakeAsterisk:
    """Accepts one AMI login; then ``send`` writes to that client."""

    def __init__(self) -> None:
        self.client: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()
        self.port = 0
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/13.0.0\r\n")
        login = await reader.readuntil(b"\r\n\r\n")
        m = re.search(rb"ActionID: (\S+)", login)
        assert m is not None
        writer.write(b"Response: Success\r\nActionID: " + m.group(1)
                     + b"\r\nMessage: Authentication accepted\r\n\r\n")
        await writer.drain()
        await self.client.put(writer)
        with_eof = await reader.read()          # hold the connection until the link goes
        del with_eof

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def _event(token: str, seq: int) -> bytes:
    return (f"Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: fuzz\r\nToken: {token}\r\n"
            f"Seq: {seq}\r\n\r\n").encode()


async def _link_to(fake: _FakeAsterisk) -> AmiLink:
    base = load_config(env={}).ami
    cfg = base.model_copy(update={"host": "127.0.0.1", "port": fake.port, "secret": "x",
                                  "ping_interval_s": 600.0, "action_timeout_s": 5.0})
    link = AmiLink(cfg, name="fuzz")
    link.start()
    await link.wait_up(timeout=10)
    return link


async def _rounds(garbage: list[bytes]) -> tuple[AmiLink, list[int], int]:
    """Send garbage, a boundary and a well-formed event, per round; what arrived."""
    fake = _FakeAsterisk()
    await fake.start()
    link = await _link_to(fake)
    token = uuid.uuid4().hex
    seen: list[int] = []

    def on_user(ev: AmiEvent) -> None:
        if ev.fields.get("token") == token:
            seen.append(int(ev.fields["seq"]))
    link.add_listener(on_user, {"userevent"})
    writer = await asyncio.wait_for(fake.client.get(), 10)
    try:
        for i, junk in enumerate(garbage):
            writer.write(junk + b"\r\n\r\n" + _event(token, i))
        writer.write(_event(token, len(garbage)))
        await writer.drain()
        async with asyncio.timeout(10):
            while len(seen) < len(garbage) + 1 and link.is_up:
                await asyncio.sleep(0.005)
        return link, seen, link.connects
    finally:
        await link.stop()
        writer.close()
        await fake.stop()


def _truncated_real(rng: random.Random) -> bytes:
    start = rng.randrange(len(REAL))
    return REAL[start:start + rng.randrange(1, 600)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.binary(max_size=400),
                          st.integers(0, 2**32).map(lambda s: _truncated_real(random.Random(s)))),
                min_size=1, max_size=15))
def test_garbage_between_events_never_takes_the_link_down(garbage: list[bytes]) -> None:
    _link, seen, connects = asyncio.run(_rounds(garbage))
    assert connects == 1                          # never dropped and reconnected
    assert seen == list(range(len(garbage) + 1))  # every event after a boundary, in order


async def test_thousands_of_garbage_rounds_hold_no_more_memory(
        caplog: pytest.LogCaptureFixture) -> None:
    fake = _FakeAsterisk()
    await fake.start()
    link = await _link_to(fake)
    writer = await asyncio.wait_for(fake.client.get(), 10)
    token = uuid.uuid4().hex
    seen = [0]

    def on_user(ev: AmiEvent) -> None:
        seen[0] += 1
    link.add_listener(on_user, {"userevent"})
    rng = random.Random(7)

    async def rounds(n: int) -> None:
        target = seen[0] + n
        for i in range(n):
            junk = (rng.randbytes(rng.randrange(400)) if i % 2 else _truncated_real(rng))
            writer.write(junk + b"\r\n\r\n" + _event(token, i))
            if i % 50 == 0:
                await writer.drain()
        await writer.drain()
        async with asyncio.timeout(30):
            while seen[0] < target:
                await asyncio.sleep(0.01)

    # What the link itself holds: memory allocated by the AMI package's code.
    mine = [tracemalloc.Filter(True, "*/ivr/ami/*")]
    tracemalloc.start()
    try:
        await rounds(500)                         # warm-up: caches, buffers at their size
        before = tracemalloc.take_snapshot().filter_traces(mine)
        await rounds(3000)
        after = tracemalloc.take_snapshot().filter_traces(mine)
    finally:
        tracemalloc.stop()
        await link.stop()
        writer.close()
        await fake.stop()
    assert link.connects == 1
    grown = sum(d.size_diff for d in after.compare_to(before, "filename"))
    assert grown < 64 * 1024, f"the AMI link grew by {grown / 1024:.0f} KiB"
    # Malformed input is logged, but a flood of it is not logged line by line.
    assert link.skipped > 1000
    skipped_lines = [r for r in caplog.records if "skipping" in r.getMessage()]
    assert 1 <= len(skipped_lines) <= 10
