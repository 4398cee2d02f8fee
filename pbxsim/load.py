"""Load generation inside pbxsim: citizens calling with a bounded number at once.

Used by ``python -m pbxsim --calls N`` so that a load benchmark can run the simulated
Asterisk in its own process, as a real one would be, and read its outcome from stdout.
"""

from __future__ import annotations

import asyncio
import random
import resource
from dataclasses import dataclass

from .agents import AgentSpec
from .citizens import CitizenScript
from .sim import PbxSim


@dataclass(frozen=True, slots=True)
class LoadPlan:
    calls: int
    concurrency: int
    agents: int
    queues: tuple[str, ...]        # agents are spread over these (penalty 0)
    keys: tuple[str, ...]          # a citizen presses one of these at the greeting
    talk_s: float = 20.0
    seed: int = 1
    # Simulated seconds over which the first `concurrency` calls arrive (None: one call's
    # length, a steady hotline; 0: all at once, a surge after a city-wide outage).
    first_wave_s: float | None = None


async def staff(sim: PbxSim, plan: LoadPlan) -> None:
    for i in range(plan.agents):
        ext = 2000 + i
        interface = f"Local/{ext}@agents/n"
        sim.add_agent(AgentSpec(interface=interface, name=f"agent{ext}", answer_delay_s=0.5,
                                talk_time_s=plan.talk_s))
        sim.queue_add(plan.queues[i % len(plan.queues)], interface, penalty=0,
                      member_name=f"agent{ext}")


async def run_load(sim: PbxSim, plan: LoadPlan) -> dict[str, object]:
    rng = random.Random(plan.seed)
    gate = asyncio.Semaphore(plan.concurrency)
    outcomes: list[dict[str, object]] = []
    start = sim.clock.now()
    wave_s = plan.talk_s if plan.first_wave_s is None else plan.first_wave_s

    async def one(n: int) -> None:
        try:
            call = await sim.place_call(CitizenScript(
                caller_num=f"139{n:08d}", keys=[(rng.choice(plan.keys), 0.0)] * 3,
                patience_s=600.0))
            out = await call.done
            outcomes.append({"uniqueid": call.ivr_uniqueid, "answered": bool(out.answered_by),
                             "queue": out.queue})
        finally:
            gate.release()

    # Calls are placed in order by this one loop: the first wave arrives spread over one
    # call's length, as callers do, and every later call takes the slot of one that ended.
    # Taking the gate in each call's own task would let later calls, which have no ramp
    # to wait for, take every slot at once: waves of `concurrency` simultaneous arrivals.
    async with asyncio.TaskGroup() as calls:
        for n in range(plan.calls):
            if n < plan.concurrency and wave_s > 0:
                await sim.clock.sleep_until(start + n * wave_s / plan.concurrency)
            await gate.acquire()
            calls.create_task(one(n), name=f"load-call-{n}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"calls": len(outcomes), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "answered": sum(1 for o in outcomes if o["answered"]),
            "uniqueids": [o["uniqueid"] for o in outcomes]}
