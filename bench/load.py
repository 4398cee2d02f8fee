"""Load: many calls through the whole service, pbxsim in its own process at accelerated time.

    python -m bench.load --calls 2000 --concurrency 300 --json

pbxsim (``python -m pbxsim --calls N --concurrency C``) places the calls; citizens press a
topic key at once, so the time from AsyncAGIStart to the queue decision is the service's own
work plus AMI round trips. The service runs in this process with a fresh SQLite case store.

Printed: ``calls``; ``cases`` (this run's); ``lost`` (calls with no case plus cases with no
call); ``routing_p99_ms`` (AsyncAGIStart received → ``EXEC Queue`` sent, 99th percentile);
``cpu_ms_per_call`` (this process's CPU time over the run ÷ calls); ``rss_growth_mb`` (RSS at
the end minus RSS once the first wave of calls was in, i.e. after warm-up); ``events_per_s``
(AMI events read by the adapter ÷ run time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.ami.events import AmiEvent
from ivr.config import HotlineConfig, load_config
from ivr.service import HotlineService


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def queues_conf(cfg: HotlineConfig) -> str:
    out = ["[general]\npersistentmembers = no\n"]
    for g in cfg.routing.groups:
        out.append(f"[{g.queue}]\nstrategy = leastrecent\ntimeout = 15\nretry = 1\n"
                   "wrapuptime = 0\njoinempty = yes\nringinuse = no\n")
    return "\n".join(out)


async def run(calls: int, concurrency: int, speed: float, agents: int,
              talk_s: float, first_wave_s: float | None = None) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="hotline-load-"))
    base = load_config(env={})
    qfile = work / "queues.conf"
    qfile.write_text(queues_conf(base))
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    topic_queues = [base.group(t.groups[0]).queue for t in base.topics if t.key]
    keys = [t.key for t in base.topics if t.key]
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pbxsim", "--port", str(port), "--speed", str(speed),
        "--queues", str(qfile), "--log-level", "WARNING", "--calls", str(calls),
        "--concurrency", str(concurrency), "--agents", str(agents),
        "--agent-queues", ",".join(topic_queues), "--keys", ",".join(k for k in keys if k),
        "--talk-s", str(talk_s), "--start-after-login",
        *(("--first-wave-s", str(first_wave_s)) if first_wave_s is not None else ()),
        stdout=asyncio.subprocess.PIPE, cwd=str(Path(__file__).resolve().parent.parent))
    await asyncio.sleep(1.0)   # let it bind
    cfg = base.model_copy(update={
        "ami": base.ami.model_copy(update={"port": port, "secret": "s3cret",
                                           "heartbeat_interval_s": 5.0}),
        "database": base.database.model_copy(update={
            "url": f"sqlite+aiosqlite:///{work / 'cases.db'}"}),
        "speech": base.speech.model_copy(update={"enabled": False}),
        "service": base.service.model_copy(update={"node": "load"}),
    })
    service = HotlineService(cfg)
    started: dict[str, float] = {}
    latencies: list[float] = []
    warm = {"rss": 0.0, "starts": 0}
    warm_after = min(calls, max(concurrency, calls // 10))

    def on_start(ev: AmiEvent) -> None:
        started[ev.fields.get("channel", "")] = time.perf_counter()
        warm["starts"] += 1
        if warm["starts"] == warm_after:
            warm["rss"] = rss_mb()

    def on_agi(channel: str, command: str) -> None:
        if command.startswith("EXEC Queue") and channel in started:
            latencies.append((time.perf_counter() - started.pop(channel)) * 1000)

    service.link.add_listener(on_start, {"asyncagistart"})
    service.link.agi_observers.append(on_agi)
    await service.start()
    cpu0, t0 = cpu_s(), time.perf_counter()
    assert sim.stdout is not None
    line = await asyncio.wait_for(sim.stdout.readline(), 1800)
    await sim.wait()
    async with asyncio.timeout(60):
        while service.calls.sessions:
            await asyncio.sleep(0.1)
    await service.recorder.drain()
    duration = time.perf_counter() - t0
    cpu = cpu_s() - cpu0
    rss_end = rss_mb()
    events = service.link.events_received
    result = json.loads(line)
    cases = await service.store.list_cases(limit=calls * 2)
    case_calls = {c.call_id for c in cases if c.node == "load"}
    sim_calls = set(result["uniqueids"])
    await service.stop()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else None
    return {"calls": result["calls"], "answered": result["answered"], "cases": len(case_calls),
            "lost": len(sim_calls ^ case_calls),
            "routing_p50_ms": round(latencies[len(latencies) // 2], 1) if latencies else None,
            "routing_p99_ms": round(p99, 1) if p99 is not None else None,
            "cpu_ms_per_call": round(cpu * 1000 / max(1, result["calls"]), 2),
            "rss_growth_mb": round(rss_end - warm["rss"], 1),
            "events_per_s": round(events / duration), "duration_s": round(duration, 1),
            "calls_per_s": round(result["calls"] / duration, 1),
            # The simulated Asterisk is single-threaded Python: when it is busy, its own
            # delay in answering AGI commands is part of routing_*_ms.
            "pbxsim_cpu_share": round(result.get("cpu_s", 0.0) / duration, 2),
            "case_writes_merged": service.recorder.merged,
            "concurrency": concurrency, "speed": speed, "talk_s": talk_s,
            "first_wave_s": talk_s if first_wave_s is None else first_wave_s}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=300)
    p.add_argument("--speed", type=float, default=20.0)
    p.add_argument("--agents", type=int, default=0, help="default: 90%% of concurrency")
    p.add_argument("--talk-s", type=float, default=180.0,
                   help="simulated talk time per answered call (a 12345 call: ~3 min)")
    p.add_argument("--first-wave-s", type=float, default=None,
                   help="simulated seconds over which the first CONCURRENCY calls arrive "
                        "(default: one talk time, a steady hotline; 0: all at once, a surge)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = asyncio.run(run(args.calls, args.concurrency, args.speed,
                          args.agents or max(1, int(args.concurrency * 0.9)), args.talk_s,
                          args.first_wave_s))
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
