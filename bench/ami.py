"""AMI event throughput: the adapter's parse + dispatch against a bare socket reader.

Both read the same byte stream over loopback TCP: the recorded real-Asterisk session
``call-through-ivr-and-queue.txt`` repeated ``--repeat`` times (about 150 messages each),
ended by one sentinel event.

- bare reader: splits the stream into messages and each message into its header fields
  (a dict per message): the least any AMI consumer must do to read an event.
- adapter: ``AmiLink`` as the service runs it — listeners subscribed to the typed events the
  service acts on; it frames bytes, reads every event's name, fully parses (UTF-8,
  URL-decoding, typed frozen event) and dispatches those events, and skips parsing the rest.

``ratio`` = adapter events/s ÷ bare messages/s, in the same run (interleaved rounds,
medians). ``split_only_messages_per_s`` (a reader that only cuts messages apart, in C) and
``ratio_vs_split_only`` are reported too, for the full picture.

    python -m bench.ami --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.ami.events import TYPED_EVENTS, AmiEvent
from ivr.ami.link import AmiLink
from ivr.config import AmiConfig
from tests.reference import recv_stream

LOGIN_OK = b"Response: Success\r\nActionID: %s\r\nMessage: Authentication accepted\r\n\r\n"


SENTINEL = b"Event: BenchEnd\r\nPrivilege: system,all\r\n\r\n"


def build_stream(repeat: int) -> bytes:
    data = recv_stream("call-through-ivr-and-queue.txt")
    body = data[data.index(b"\r\n") + 2:]           # without the banner
    return body * repeat + SENTINEL


def _fields(block: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").split("\r\n"):
        k, _, v = line.partition(": ")
        out[k] = v
    return out


async def serve(payload: bytes, login: bool) -> tuple[asyncio.base_events.Server, int]:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"Asterisk Call Manager/13.0.0\r\n")
        if login:
            raw = await r.readuntil(b"\r\n\r\n")
            aid = next(ln.split(b": ", 1)[1] for ln in raw.split(b"\r\n")
                       if ln.lower().startswith(b"actionid"))
            w.write(LOGIN_OK % aid)
        w.write(payload)
        await w.drain()
        try:
            await r.read()    # keep the connection until the client goes
        except (asyncio.CancelledError, ConnectionError):
            pass              # the server closing at the end of a round
        w.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def bare(payload: bytes, expected: int, fields: bool) -> float:
    server, port = await serve(payload, login=False)
    r, w = await asyncio.open_connection("127.0.0.1", port)
    buf = b""
    n = 0
    t0 = time.perf_counter()
    while n < expected:
        chunk = await r.read(65536)
        if not chunk:
            break
        buf += chunk
        parts = buf.split(b"\r\n\r\n")
        buf = parts.pop()
        if fields:
            for part in parts:
                _fields(part)
        n += len(parts)
    dt = time.perf_counter() - t0
    w.close()
    server.close()
    return n / dt


async def adapter(payload: bytes, expected_events: int) -> float:
    server, port = await serve(payload, login=True)
    link = AmiLink(AmiConfig(host="127.0.0.1", port=port, username="b", secret="b",
                             action_timeout_s=30, ping_interval_s=600, reconnect_min_s=1,
                             reconnect_max_s=1, heartbeat_interval_s=600))
    done = asyncio.Event()
    count = 0
    t0 = 0.0

    def listener(ev: AmiEvent) -> None:
        nonlocal count
        count += 1
        if ev.name == "BenchEnd":
            done.set()
    # Subscribed as the service's call registry and queue state are.
    link.add_listener(listener, TYPED_EVENTS | {"benchend"})
    link.start()
    await link.wait_up(30)
    t0 = time.perf_counter()
    await asyncio.wait_for(done.wait(), 300)
    dt = time.perf_counter() - t0
    await link.stop()
    server.close()
    return expected_events / dt


async def main_async(repeat: int, rounds: int) -> dict[str, object]:
    payload = build_stream(repeat)
    messages = payload.count(b"\r\n\r\n")
    events = sum(1 for block in payload.split(b"\r\n\r\n") if block.startswith(b"Event:"))
    b_rates, s_rates, a_rates = [], [], []
    for _ in range(rounds):       # interleaved, so machine load hits all alike
        b_rates.append(await bare(payload, messages, fields=True))
        s_rates.append(await bare(payload, messages, fields=False))
        a_rates.append(await adapter(payload, events))
    b, sp, a = (statistics.median(x) for x in (b_rates, s_rates, a_rates))
    return {"bytes": len(payload), "messages": messages, "events": events, "rounds": rounds,
            "bare_messages_per_s": round(b), "adapter_events_per_s": round(a),
            "events_per_s": round(a), "ratio": round(a / b, 3),
            "split_only_messages_per_s": round(sp), "ratio_vs_split_only": round(a / sp, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=300)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    out = asyncio.run(main_async(args.repeat, args.rounds))
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
