"""``python -m pbxsim``: run the simulated Asterisk until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
from pathlib import Path

from .config import SimConfig
from .load import LoadPlan, run_load, staff
from .sim import PbxSim


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pbxsim", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5038)
    p.add_argument("--username", default="hotline")
    p.add_argument("--secret", default="s3cret")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    p.add_argument("--dialplan", type=Path, help="extensions.conf (default: the reference's)")
    p.add_argument("--queues", type=Path, help="queues.conf (default: the reference's)")
    p.add_argument("--sounds-dir", type=Path, action="append", default=[],
                   help="where to find sound files named by the dialplan/AGI")
    p.add_argument("--log-level", default="INFO")
    load = p.add_argument_group("load generation (prints one JSON line when done, then exits)")
    load.add_argument("--calls", type=int, default=0, help="citizens to place (0: none)")
    load.add_argument("--concurrency", type=int, default=50)
    load.add_argument("--agents", type=int, default=0)
    load.add_argument("--agent-queues", default="water,energy,housing",
                      help="comma-separated queues the agents join")
    load.add_argument("--keys", default="1,2,3", help="comma-separated greeting keys")
    load.add_argument("--talk-s", type=float, default=20.0)
    load.add_argument("--first-wave-s", type=float, default=None,
                      help="simulated seconds over which the first wave arrives "
                           "(default: one talk time; 0: all at once)")
    load.add_argument("--start-after-login", action="store_true",
                      help="wait for an AMI client to log in before calling")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    config = SimConfig(host=args.host, port=args.port, username=args.username,
                       secret=args.secret, speed=args.speed,
                       dialplan=args.dialplan.read_text() if args.dialplan else None,
                       queues=args.queues.read_text() if args.queues else None,
                       sounds_dirs=tuple(args.sounds_dir))
    sim = PbxSim(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await sim.start()
    try:
        if args.calls > 0:
            plan = LoadPlan(args.calls, args.concurrency, args.agents,
                            tuple(args.agent_queues.split(",")), tuple(args.keys.split(",")),
                            args.talk_s, first_wave_s=args.first_wave_s)
            await staff(sim, plan)
            if args.start_after_login:
                while sim.login_attempts == 0 and not stop.is_set():
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)
            load = asyncio.create_task(run_load(sim, plan))
            orphaned = asyncio.create_task(_parent_gone())
            stopped = asyncio.create_task(stop.wait())      # SIGTERM/SIGINT
            done, _ = await asyncio.wait({load, orphaned, stopped},
                                         return_when=asyncio.FIRST_COMPLETED)
            orphaned.cancel()
            stopped.cancel()
            if load in done:
                print(json.dumps(load.result()), flush=True)
            else:
                # The benchmark that started us is gone: nobody will read the result.
                load.cancel()
                await asyncio.gather(load, return_exceptions=True)
            return
        await stop.wait()
    finally:
        logging.getLogger("pbxsim").info("shutting down")
        await sim.stop()


async def _parent_gone() -> None:
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(1.0)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
