"""Screen-pop delivery: pbxsim emitting AgentConnect → the pop arriving at an operator's
websocket, with 100 operators connected.

    python -m bench.screenpop --json

Three processes, as in production: pbxsim (the PBX) places the calls and notes the moment it
emits each ``AgentConnect``; the service with the web console (the system measured) runs in
this process; the operators' screens are 100 websocket clients in a third process that note
the moment each ``connected`` pop arrives. Both notes are ``time.monotonic()``: on Linux that
is CLOCK_MONOTONIC, one clock for every process on the machine, so the difference is the
end-to-end delivery time (AMI over TCP, the adapter, the call registry, the pop, the hub, the
websocket over TCP, the client's JSON parse).

Each operator logs in through the login form and opens ``/ws/operator``; the pbxsim agents
are the same members (``agent2000``…), spread over the groups' queues. One supervisor keeps the
live board open too, so the board pusher runs as it would.

Printed: ``operators``, ``calls``, ``answered``, ``pops`` (AgentConnects matched to a
received pop), ``missing`` (AgentConnects with no pop at the agent's screen), ``p50_ms``,
``p99_ms``, ``max_ms`` (the screen pops); ``board_updates``, ``board_p50_ms``,
``board_p99_ms``: from the k-th AgentConnect of a queue to the first board message at the
supervisor's screen that counts k answered calls there; the load (``speed``,
``concurrency``, ``talk_s``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
FIRST_EXT = 2000           # pbxsim.load.staff names its agents agent2000, agent2001, ...
CHEAP = {"n": 2**10, "r": 8, "p": 1}   # login cost is not what is measured


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _pct(sorted_ms: list[float], q: float) -> float | None:
    if not sorted_ms:
        return None
    return round(sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * q))], 1)


# ---- worker: pbxsim ----------------------------------------------------------------------

async def pbx_worker(args: argparse.Namespace) -> None:
    from pbxsim import PbxSim, SimConfig
    from pbxsim.load import LoadPlan, run_load, staff

    sim = PbxSim(SimConfig(host="127.0.0.1", port=args.port, speed=args.speed,
                           queues=Path(args.queues).read_text()))
    emitted: dict[str, tuple[float, str]] = {}     # uniqueid -> (when, queue)

    def note(fields: list[tuple[str, str]]) -> None:
        # Subscribed before any AMI session: noted just before the event is written out.
        if fields and fields[0] == ("Event", "AgentConnect"):
            f = dict(fields)
            emitted[f["Uniqueid"]] = (time.monotonic(), f["Queue"])

    sim.core.bus.subscribe(note)
    await sim.start()
    plan = LoadPlan(args.calls, args.concurrency, args.operators,
                    tuple(args.agent_queues.split(",")), tuple(args.keys.split(",")),
                    args.talk_s)
    await staff(sim, plan)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)      # "go"
    result = await run_load(sim, plan)
    print(json.dumps({"calls": result["calls"], "answered": result["answered"],
                      "emitted": emitted}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)      # "exit": the service is down
    await sim.stop()


# ---- worker: the operators' screens ----------------------------------------------------

async def _login(session: Any, name: str, password: str) -> None:
    async with session.get("/login") as r:
        m = re.search(r'name="csrf_token" value="([^"]+)"', await r.text())
    assert m is not None, "no login form"
    async with session.post("/login", data={"csrf_token": m.group(1), "username": name,
                                            "password": password},
                            allow_redirects=False) as r:
        if r.status != 302 or "error" in r.headers.get("Location", ""):
            raise RuntimeError(f"login of {name} failed: {r.status} {r.headers.get('Location')}")


async def clients_worker(args: argparse.Namespace) -> None:
    import aiohttp

    received: dict[str, float] = {}      # uniqueid -> when its "connected" pop arrived
    # The supervisor's board: (when, {queue: answered today}) each time a count changed.
    boards: list[tuple[float, dict[str, int]]] = []
    counts = {"messages": 0, "board": 0}
    sessions: list[aiohttp.ClientSession] = []
    tasks: list[asyncio.Task[None]] = []
    ready = asyncio.Semaphore(0)

    async def screen(name: str, path: str) -> None:
        s = aiohttp.ClientSession(args.base, cookie_jar=aiohttp.CookieJar(unsafe=True))
        sessions.append(s)
        await _login(s, name, name)
        async with s.ws_connect(path, max_msg_size=0) as ws:
            ready.release()
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                at = time.monotonic()
                counts["messages"] += 1
                data = json.loads(msg.data)
                if data.get("type") == "pop" and data.get("phase") == "connected":
                    received.setdefault(data["uniqueid"], at)
                elif data.get("type") == "board":
                    counts["board"] += 1
                    answered = {g["queue"]: g["answered"] for g in data["groups"]}
                    if not boards or boards[-1][1] != answered:
                        boards.append((at, answered))

    names = [f"agent{FIRST_EXT + i}" for i in range(args.operators)]
    for n in names:
        tasks.append(asyncio.create_task(screen(n, "/ws/operator")))
    tasks.append(asyncio.create_task(screen("supervisor", "/ws/board")))
    async with asyncio.timeout(120):
        for _ in range(len(tasks)):
            await ready.acquire()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)      # "stop"
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for s in sessions:
        await s.close()
    print(json.dumps({"received": received, "boards": boards, **counts}), flush=True)


# ---- the run ------------------------------------------------------------------------------

async def _line(proc: asyncio.subprocess.Process, timeout: float) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout)
    if not line:
        raise RuntimeError(f"worker {proc.pid} exited early (status {await proc.wait()})")
    return line.decode().strip()


async def _send(proc: asyncio.subprocess.Process, text: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(text.encode() + b"\n")
    await proc.stdin.drain()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.load import queues_conf
    from console.app import WebConsole
    from console.auth import Role, WebUser, hash_password
    from console.settings import ConsoleSettings
    from ivr.config import load_config
    from ivr.service import HotlineService

    work = Path(tempfile.mkdtemp(prefix="hotline-screenpop-"))
    base = load_config(env={})
    qfile = work / "queues.conf"
    qfile.write_text(queues_conf(base))
    port = _free_port()
    topics = [t for t in base.topics if t.key]
    common = [sys.executable, "-m", "bench.screenpop", "--operators", str(args.operators)]
    procs: list[asyncio.subprocess.Process] = []
    pbx = await asyncio.create_subprocess_exec(
        *common, "--worker", "pbx", "--port", str(port), "--queues", str(qfile),
        "--speed", str(args.speed), "--calls", str(args.calls),
        "--concurrency", str(args.concurrency), "--talk-s", str(args.talk_s),
        # Agents in every group's queue: a call the router sends to the general queue is
        # answered too.
        "--agent-queues", ",".join(g.queue for g in base.routing.groups),
        "--keys", ",".join(t.key for t in topics if t.key),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=str(ROOT))
    procs.append(pbx)
    service: HotlineService | None = None
    web: WebConsole | None = None
    try:
        await _line(pbx, 60)                                    # staffed and listening
        _progress("pbxsim ready")
        cfg = base.model_copy(update={
            "ami": base.ami.model_copy(update={"port": port, "secret": "s3cret"}),
            "database": base.database.model_copy(update={
                "url": f"sqlite+aiosqlite:///{work / 'cases.db'}"}),
            "speech": base.speech.model_copy(update={"enabled": False}),
            "web": base.web.model_copy(update={"host": "127.0.0.1", "port": 0}),
        })
        users = [WebUser(name=f"agent{FIRST_EXT + i}", role=Role.OPERATOR,
                         password_hash=hash_password(f"agent{FIRST_EXT + i}", **CHEAP),
                         member=f"agent{FIRST_EXT + i}",
                         interface=f"Local/{FIRST_EXT + i}@agents/n")
                 for i in range(args.operators)]
        users.append(WebUser(name="supervisor", role=Role.SUPERVISOR,
                             password_hash=hash_password("supervisor", **CHEAP)))
        service = HotlineService(cfg)
        await service.start()
        await service.link.wait_up(timeout=10)
        web = WebConsole(service, cfg.web, users=users,
                         settings=ConsoleSettings(audit_log=str(work / "audit.jsonl")))
        await web.start()
        clients = await asyncio.create_subprocess_exec(
            *common, "--worker", "clients", "--base", f"http://127.0.0.1:{web.port}",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=str(ROOT))
        procs.append(clients)
        await _line(clients, 180)                               # every screen connected
        _progress(f"{args.operators} operators and a supervisor connected; calling")
        await _send(pbx, "go")
        sim_out = json.loads(await _line(pbx, 1800))
        _progress(f"{sim_out['calls']} calls done")
        await asyncio.sleep(1.0)                                # the last pops in flight
        await _send(clients, "stop")
        cl_out = json.loads(await _line(clients, 60))
        await clients.wait()
    finally:
        if web is not None:
            await web.stop()
        if service is not None:
            await service.stop()
        if pbx.returncode is None:
            with contextlib.suppress(ConnectionError):
                await _send(pbx, "exit")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pbx.wait(), 10)
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()

    emitted: dict[str, list[Any]] = sim_out["emitted"]
    received: dict[str, float] = cl_out["received"]
    lat = sorted((received[u] - t) * 1000 for u, (t, _) in emitted.items() if u in received)
    board = _board_latencies(emitted, cl_out["boards"])
    return {"operators": args.operators, "calls": sim_out["calls"],
            "answered": sim_out["answered"], "pops": len(lat),
            "missing": len(emitted) - len(lat), "p50_ms": _pct(lat, 0.50),
            "p99_ms": _pct(lat, 0.99), "max_ms": round(lat[-1], 1) if lat else None,
            "board_updates": len(board), "board_p50_ms": _pct(board, 0.50),
            "board_p99_ms": _pct(board, 0.99), "board_messages": cl_out["board"],
            "speed": args.speed, "concurrency": args.concurrency, "talk_s": args.talk_s}


def _board_latencies(emitted: dict[str, list[Any]],
                     boards: list[list[Any]]) -> list[float]:
    """For the k-th AgentConnect of a queue (in emission order: one TCP stream keeps it),
    the time until the supervisor's board first counts k answered calls in that queue."""
    by_queue: dict[str, list[float]] = {}
    for t, queue in emitted.values():
        by_queue.setdefault(queue, []).append(t)
    out = []
    for queue, times in by_queue.items():
        times.sort()
        i = 0
        for k, t in enumerate(times, start=1):
            while i < len(boards) and boards[i][1].get(queue, 0) < k:
                i += 1
            if i == len(boards):
                break          # never shown (the run ended first): counted as missing
            out.append((boards[i][0] - t) * 1000)
    return sorted(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--operators", type=int, default=100)
    p.add_argument("--calls", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=100, help="calls in progress at most")
    p.add_argument("--speed", type=float, default=5.0, help="pbxsim's simulated s per real s")
    p.add_argument("--talk-s", type=float, default=30.0, help="simulated talk time per call")
    p.add_argument("--json", action="store_true")
    # Internal: the two worker processes.
    p.add_argument("--worker", choices=("pbx", "clients"), help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--queues", help=argparse.SUPPRESS)
    p.add_argument("--agent-queues", help=argparse.SUPPRESS)
    p.add_argument("--keys", help=argparse.SUPPRESS)
    p.add_argument("--base", help=argparse.SUPPRESS)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.worker == "pbx":
        asyncio.run(pbx_worker(args))
        return
    if args.worker == "clients":
        asyncio.run(clients_worker(args))
        return
    out = asyncio.run(run(args))
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
