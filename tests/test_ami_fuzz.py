"""Random and truncated bytes never crash the AMI framing and never grow it without bound."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.ami.codec import MAX_MESSAGE_BYTES, FrameParser, parse_fields
from ivr.ami.events import to_event
from tests.reference import recv_stream

REAL = recv_stream("call-through-ivr-and-queue.txt")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=30))
def test_random_bytes_never_raise(chunks: list[bytes]) -> None:
    parser = FrameParser()
    for c in chunks:
        for msg in parser.feed(c):
            f = parse_fields(msg)
            if "event" in f:
                to_event(f)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(REAL)), st.integers(0, len(REAL)), st.binary(max_size=50))
def test_real_stream_with_a_hole_still_parses_the_rest(a: int, b: int, noise: bytes) -> None:
    lo, hi = sorted((a, b))
    damaged = REAL[:lo] + noise + REAL[hi:]
    parser = FrameParser()
    n = sum(1 for _ in parser.feed(damaged))
    # Everything after the damage that forms whole messages is still delivered.
    assert n >= REAL[hi:].count(b"\r\n\r\n") - 1


def test_a_message_that_never_ends_is_dropped_not_buffered_forever() -> None:
    parser = FrameParser()
    parser.feed(b"Asterisk Call Manager/13.0.0\r\n")
    list(parser.feed(b"Event: X\r\n" + b"A" * (MAX_MESSAGE_BYTES + 10)))
    last = list(parser.feed(b"\r\n\r\nEvent: Hangup\r\nUniqueid: 1\r\n\r\n"))[-1]
    assert parse_fields(last)["event"] == "Hangup"
