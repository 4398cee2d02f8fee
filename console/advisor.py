"""The skill advisor (``routing.advisor``) on today's centre, with one-click apply.

The scenario is built from the live picture: each group's queue is a topic with the arrival
rate the router's estimator sees, agents are grouped by their current memberships (proficiency
= member penalty // STRIDE), handle time and patience from the same estimates. The advisor
simulates in a separate process (it is CPU-bound for tens of seconds; the event loop must keep
serving calls). A proposal "agents with skills S also take topic T at proficiency p" is
applied as one ``QueueAdd`` of a concrete member with those skills, at the member penalty the
routing layout uses for that proficiency.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from routing.advisor import AdvisorConfig, advise, scenario_from_observations
from routing.policy import PARKED, STRIDE, PolicyParams, routing_penalty

if TYPE_CHECKING:
    from ivr.service import HotlineService

log = logging.getLogger("hotline.web.advisor")

Skills = frozenset[tuple[str, int]]


def _run_advisor(name: str, rates: dict[str, float], aht: float, patience: float,
                 agents: list[tuple[int, dict[str, int]]], params: dict[str, Any],
                 k: int, seeds: int) -> dict[str, Any]:
    """In the worker process."""
    sc = scenario_from_observations(name, rates, aht, 0.6, patience, agents, seeds=seeds)
    cfg = AdvisorConfig(k=k, screen_seeds=min(4, seeds), finalists=2, workers=1,
                        params=PolicyParams.model_validate(params))
    return advise(sc, cfg).as_json()


@dataclass(slots=True)
class AdvisorRunner:
    k: int = 3
    seeds: int = 8
    running: bool = False
    error: str | None = None
    computed_at: float | None = None
    result: dict[str, Any] | None = None
    proposals: list[dict[str, Any]] = field(default_factory=list)
    _by_skills: dict[Skills, list[tuple[str, str]]] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _pool: ProcessPoolExecutor | None = None

    def state(self) -> dict[str, Any]:
        return {"running": self.running, "error": self.error,
                "computed_at": self.computed_at, "proposals": self.proposals,
                "summary": None if self.result is None else
                {k: v for k, v in self.result.items() if k != "additions"}}

    def start(self, service: HotlineService) -> bool:
        if self.running:
            return False
        self.running, self.error = True, None
        self._task = asyncio.create_task(self._compute(service), name="skill-advisor")
        return True

    def _inputs(self, service: HotlineService) -> tuple[dict[str, float], float, float,
                                                        list[tuple[int, dict[str, int]]]]:
        live = service.live
        view = live.stats.view(live.clock())
        queues = [g.queue for g in service.config.routing.groups]
        rates = {q: view.rate(q) * 3600.0 for q in queues}
        if sum(rates.values()) <= 0.0:
            raise ValueError("no calls observed yet: the advisor needs today's arrival rates")
        ahts = [v for (q, s), v in view.aht_s.items() if s == 0 and q in queues]
        aht = sum(ahts) / len(ahts) if ahts else view.default_aht_s
        patience = 1.0 / view.theta if view.theta > 0 else 0.0
        skills: dict[str, dict[str, int]] = {}
        interfaces: dict[str, str] = {}
        for q in queues:
            for m in live.members.get(q, {}).values():
                level = m.penalty // STRIDE if m.penalty < PARKED else 1
                skills.setdefault(m.name, {})[q] = level
                interfaces[m.name] = m.interface
        if not skills:
            raise ValueError("no agents in any queue")
        self._by_skills = {}
        for name, sk in sorted(skills.items()):
            self._by_skills.setdefault(frozenset(sk.items()), []).append(
                (name, interfaces[name]))
        agents = [(len(members), dict(sorted(key))) for key, members in self._by_skills.items()]
        return rates, aht, patience, agents

    async def _compute(self, service: HotlineService) -> None:
        try:
            rates, aht, patience, agents = self._inputs(service)
            policy = service.router.policy
            params = (policy.params if policy is not None
                      else PolicyParams.model_validate({})).model_dump()
            if self._pool is None:
                # spawn: never fork a process that runs an event loop and database threads.
                self._pool = ProcessPoolExecutor(
                    1, mp_context=multiprocessing.get_context("spawn"))
            loop = asyncio.get_running_loop()
            t0 = time.monotonic()
            self.result = await loop.run_in_executor(
                self._pool, _run_advisor, "live", rates, aht, patience, agents, params,
                self.k, self.seeds)
            log.info("skill advisor: %d proposal(s) in %.1fs",
                     len(self.result["additions"]), time.monotonic() - t0)
            self.proposals = [self._proposal(i, a) for i, a in
                              enumerate(self.result["additions"])]
            self.computed_at = time.time()
        except Exception as e:  # noqa: BLE001 - shown on the page, never fatal
            log.warning("skill advisor failed: %s", e)
            self.error = str(e)
        finally:
            self.running = False

    def _proposal(self, index: int, a: dict[str, Any]) -> dict[str, Any]:
        candidates = self._by_skills.get(_skills(a["agent_skills_before"]), [])
        return {"index": index, "skills_before": a["agent_skills_before"],
                "queue": a["add_topic"], "proficiency": a["penalty"],
                "member_penalty": routing_penalty(int(a["penalty"]), True,
                                                  PolicyParams.model_validate({})),
                "asa_before_s": a["asa_before_s"], "asa_after_s": a["asa_after_s"],
                "delta_se_s": a["delta_se_s"],
                "member": candidates[0][0] if candidates else None,
                "interface": candidates[0][1] if candidates else None,
                "applied": False}

    def take(self, index: int) -> dict[str, Any]:
        """The proposal to apply (raises IndexError/ValueError when there is none)."""
        p = self.proposals[index]
        if p["applied"]:
            raise ValueError("already applied")
        if not p["member"]:
            raise ValueError("no agent with those skills is logged in any more")
        return p

    def mark_applied(self, index: int) -> None:
        p = self.proposals[index]
        p["applied"] = True
        # The next proposal for the same skills must pick another person.
        for other in self.proposals[index + 1:]:
            if other["skills_before"] == p["skills_before"] and other["member"] == p["member"]:
                pool = [m for m in self._by_skills.get(_skills(p["skills_before"]), [])
                        if m[0] not in {q["member"] for q in self.proposals if q["applied"]}]
                other["member"], other["interface"] = pool[0] if pool else (None, None)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _skills(label: str) -> Skills:
    return frozenset((t, int(p)) for t, p in (x.rsplit(":", 1) for x in label.split("+")))
