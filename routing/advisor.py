"""Skill advisor: which agents to train in which topics, judged by simulation.

Greedy: at each of up to K steps, every candidate addition — one agent of an ``[[agents]]``
block learns one more topic at a given (usually secondary) penalty — is simulated with the
production policy, and the one that cuts the mean wait (ASA) most is kept. Candidates are
compared on common random numbers: every candidate meets exactly the same callers (arrival
times, topics, handle times and patience are drawn per seed and topic, independent of agents
and policy), so the paired per-seed differences are free of most sampling noise; otherwise
the noise of an hour's simulation, larger than most single additions, would choose.

Two stages keep it affordable: every candidate is screened on a subset of seeds, the best
few are re-run on all seeds, and the best of those is kept if its paired gain is clear
(mean improvement larger than ``min_gain_s`` and than ``z`` standard errors; each kept
addition reports its standard error so an admin can weigh it).

The input is a ``Scenario``: a file, or one built from the live arrivals and handle times
with ``scenario_from_observations``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routing.policy import PolicyParams
from routing.sim.metrics import SeedResult, aggregate
from routing.sim.runner import Job, run_jobs
from routing.sim.scenario import AgentGroup, Scenario, TopicSpec


@dataclass(frozen=True, slots=True)
class Candidate:
    group: int            # index into scenario.agents at the time of the step
    topic: str
    penalty: int

    def apply(self, sc: Scenario) -> Scenario:
        return sc.with_skill(self.group, self.topic, self.penalty, agents=1)


@dataclass(frozen=True, slots=True)
class Addition:
    step: int
    candidate: Candidate
    group_skills: str     # the trained agent's skills before the addition
    asa_before_s: float
    asa_after_s: float
    delta_se_s: float     # standard error of the paired per-seed difference
    abandon_after: float
    primary_share_after: float

    def as_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "agent_group": self.candidate.group,
            "agent_skills_before": self.group_skills,
            "add_topic": self.candidate.topic,
            "penalty": self.candidate.penalty,
            "asa_before_s": round(self.asa_before_s, 3),
            "asa_after_s": round(self.asa_after_s, 3),
            "delta_asa_s": round(self.asa_after_s - self.asa_before_s, 3),
            "delta_se_s": round(self.delta_se_s, 3),
            "abandon_rate_after": round(self.abandon_after, 4),
            "primary_share_after": round(self.primary_share_after, 4),
        }


@dataclass(slots=True)
class AdvisorConfig:
    k: int = 8
    penalties: tuple[int, ...] = (1,)     # a newly trained skill starts less proficient
    screen_seeds: int = 8
    finalists: int = 3
    max_topics: int = 3                   # only the topics with the most waiting are candidates
    min_gain_s: float = 0.0
    z: float = 1.0                        # keep an addition only if its gain exceeds z SEs
    params: PolicyParams = field(default_factory=PolicyParams)
    workers: int | None = None


@dataclass(slots=True)
class Advice:
    baseline: dict[str, float]
    final: dict[str, float]
    additions: list[Addition]
    scenario: Scenario

    def as_json(self) -> dict[str, Any]:
        b, f = self.baseline["asa_s"], self.final["asa_s"]
        return {
            "k": len(self.additions),
            "baseline_asa_s": round(b, 3),
            "final_asa_s": round(f, 3),
            "asa_cut": round(1.0 - f / b, 4) if b > 0 else 0.0,
            "baseline_abandon_rate": round(self.baseline["abandon_rate"], 4),
            "final_abandon_rate": round(self.final["abandon_rate"], 4),
            "final_primary_share": round(self.final["primary_share"], 4),
            "additions": [a.as_json() for a in self.additions],
        }


def _run(scs: list[Scenario], seeds: tuple[int, ...], cfg: AdvisorConfig) -> list[list[SeedResult]]:
    jobs = [Job(sc.with_seeds(seeds), "ours", s, cfg.params) for sc in scs for s in seeds]
    res = run_jobs(jobs, cfg.workers)
    n = len(seeds)
    return [res[i * n:(i + 1) * n] for i in range(len(scs))]


def _paired(base: list[SeedResult], cand: list[SeedResult]) -> tuple[float, float]:
    """Mean and standard error of the per-seed ASA difference (candidate - base)."""
    d = np.array([c.asa_s - b.asa_s for b, c in zip(base, cand)])
    se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.inf
    return float(d.mean()), se


def candidates(sc: Scenario, topics: list[str], penalties: tuple[int, ...]) -> list[Candidate]:
    return [Candidate(gi, t, p) for gi, g in enumerate(sc.agents) for t in topics
            for p in penalties if all(t != s for s, _ in g.skills)]


def busiest_topics(sc: Scenario, results: list[SeedResult], n: int) -> list[str]:
    """Topics ordered by total waiting under the current configuration (a cheap pre-filter:
    an addition can only pay where callers wait)."""
    waits = {t: 0.0 for t in sc.topic_names}
    for r in results:
        for t in sc.topic_names:
            waits[t] += r.wait_by_topic.get(t, 0.0)
    ranked = sorted(sc.topic_names, key=lambda t: -waits[t])
    return ranked[:n] if any(waits.values()) else list(sc.topic_names)


def advise(sc: Scenario, cfg: AdvisorConfig) -> Advice:
    seeds = sc.seeds
    screen = seeds[: max(2, min(cfg.screen_seeds, len(seeds)))]
    [base_res] = _run([sc], seeds, cfg)
    baseline = aggregate(base_res)
    cur, cur_res = sc, base_res
    additions: list[Addition] = []
    for step in range(1, cfg.k + 1):
        topics = busiest_topics(cur, cur_res, cfg.max_topics)
        cands = candidates(cur, topics, cfg.penalties)
        if not cands:
            break
        scs = [c.apply(cur) for c in cands]
        base_screen = [r for r in cur_res if r.seed in screen]
        screened = _run(scs, screen, cfg)
        order = sorted(range(len(cands)), key=lambda i: _paired(base_screen, screened[i])[0])
        top = order[: cfg.finalists]
        finals = _run([scs[i] for i in top], seeds, cfg)
        scored = [(_paired(cur_res, f), i, f) for i, f in zip(top, finals)]
        (mean, se), best, best_res = min(scored, key=lambda x: x[0][0])
        if not (mean < -cfg.min_gain_s and mean < -cfg.z * se):
            break   # no addition clearly helps any more
        agg_before, agg_after = aggregate(cur_res), aggregate(best_res)
        c = cands[best]
        additions.append(Addition(step, c, cur.agents[c.group].label(), agg_before["asa_s"],
                                  agg_after["asa_s"], se, agg_after["abandon_rate"],
                                  agg_after["primary_share"]))
        cur, cur_res = scs[best], best_res
    return Advice(baseline, aggregate(cur_res), additions, cur)


def scenario_from_observations(name: str, calls_per_hour: dict[str, float],
                               handle_mean_s: float, handle_cv: float, patience_mean_s: float,
                               agents: list[tuple[int, dict[str, int]]], *,
                               secondary_slowdown: float = 1.2, service_level_s: float = 20.0,
                               seeds: int = 30) -> Scenario:
    """A scenario from live figures (the estimator's arrival rates and handle times, the
    current members), so the advisor can run on today's centre rather than a file."""
    return Scenario(
        name=name, duration_s=3600.0, warmup_s=900.0, seeds=tuple(range(1, seeds + 1)),
        handle_mean_s=handle_mean_s, handle_cv=handle_cv, handle_distribution="lognormal",
        secondary_slowdown=secondary_slowdown, patience_mean_s=patience_mean_s,
        service_level_s=service_level_s,
        topics=tuple(TopicSpec(t, r) for t, r in calls_per_hour.items()),
        agents=tuple(AgentGroup(n, tuple(sk.items())) for n, sk in agents),
    )
