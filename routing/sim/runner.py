"""Run a policy on a scenario over its seeds (in parallel processes across seeds)."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from routing.sim.baselines import PenaltyRules, Static, build_model
from routing.sim.engine import Controller, Engine, QueueModel
from routing.sim.metrics import SeedResult, aggregate, seed_result
from routing.sim.scenario import Scenario
from routing.sim.streams import generate_calls

BASELINES = ("static", "penalty_rules", "full_flex")
POLICIES = (*BASELINES, "ours")


@dataclass(frozen=True, slots=True)
class Job:
    scenario: Scenario
    policy: str
    seed: int
    params: Any = None          # routing.policy.PolicyParams for "ours"


def _controller(job: Job, model: QueueModel) -> tuple[Controller, Any]:
    if job.policy in ("static", "full_flex"):
        return Static(), None
    if job.policy == "penalty_rules":
        return PenaltyRules.for_model(model), None
    if job.policy == "ours":
        from routing.sim.ours import OursController  # the production policy, adapted
        ctl = OursController.create(job.scenario, model, job.params)
        return ctl, ctl
    raise ValueError(f"unknown policy {job.policy!r}; choose from {POLICIES}")


def simulate(job: Job) -> tuple[Engine, Any]:
    """One seed of one policy, run to the end: the engine and the policy's reporter (or None)."""
    sc = job.scenario
    model = build_model(sc, pooled=job.policy == "full_flex")
    ctl, reporter = _controller(job, model)
    eng = Engine(model, generate_calls(sc, job.seed), ctl)
    eng.run()
    return eng, reporter


def run_seed(job: Job) -> SeedResult:
    sc = job.scenario
    eng, reporter = simulate(job)
    extra = reporter.report(eng) if reporter is not None else {}
    return seed_result(eng, job.seed, sc.service_level_s, extra, sc.topic_names)


def default_workers() -> int:
    # The machine is shared: at most two processes unless told otherwise.
    return int(os.environ.get("HOTLINE_SIM_WORKERS", str(min(2, os.cpu_count() or 1))))


def run_jobs(jobs: list[Job], workers: int | None = None) -> list[SeedResult]:
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(jobs) <= 1:
        return [run_seed(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(run_seed, jobs, chunksize=max(1, len(jobs) // (4 * workers))))


def run_policy(sc: Scenario, policy: str, params: Any = None,
               workers: int | None = None) -> tuple[dict[str, float], list[SeedResult]]:
    res = run_jobs([Job(sc, policy, s, params) for s in sc.seeds], workers)
    return aggregate(res), res
