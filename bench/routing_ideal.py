"""Idealised dispatch rules, free of Asterisk's limits: how far can a simple rule go? (diagnostic)

    python -m bench.routing_ideal --scenario FILE [--json] [--seeds N]

``ours`` acts only through what Asterisk lets a controller change (caller windows, member
penalties). To tell a weak policy from a goal out of reach, this runs rules that choose
directly, at the moment of each decision, on the same seeds (common random numbers):

- a freed agent serves the caller with the highest index among the heads of its queues: the
  head's wait in its own (primary) queues; ``alpha`` x wait - ``beta`` in a queue where it is a
  helper (a large ``beta``: own callers first, help only when none wait), and only once that head has waited ``min_wait_s`` (the generalised c-mu family:
  ``alpha`` = 1/``secondary_slowdown`` weighs by service rate, ``beta`` is a fixed reluctance);
- an arriving caller takes an idle primary (single-skilled first), else an idle helper if
  ``idle_helper`` and at least ``reserve`` other agents of that helper's own queue are idle.

Each rule's figures are the scenario means of ``routing.sim.metrics`` (``asa_s``,
``abandon_rate``, ``primary_share``), next to ``penalty_rules`` and ``ours`` from the same run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any

from routing.sim.baselines import Quiet, build_model
from routing.sim.engine import Engine, QueueModel
from routing.sim.metrics import SeedResult, aggregate, seed_result
from routing.sim.runner import Job, default_workers, run_jobs
from routing.sim.scenario import Scenario, load_scenario
from routing.sim.streams import Calls, generate_calls


@dataclass(frozen=True, slots=True)
class Rule:
    alpha: float = 1.0
    beta: float = 0.0
    min_wait_s: float = 0.0
    idle_helper: bool = True
    reserve: int = 0


class _Open(Quiet):
    """Every member is eligible for every caller of its queue: the rule decides."""

    def on_arrival(self, eng: Engine, c: int) -> None:
        eng.min_pen[c], eng.max_pen[c] = 0, 1 << 30


class IdealEngine(Engine):
    def __init__(self, model: QueueModel, calls: Calls, rule: Rule) -> None:
        super().__init__(model, calls, _Open())
        self.rule = rule
        self._own = [tuple(q for q, p in m.items() if p == 0) for m in model.members]

    def _agent_free(self, a: int) -> None:
        r, now, arr = self.rule, self.now, self.calls.arrival
        best, best_v = -1, -math.inf
        for q, p in self.member_pen[a].items():
            if not self.waiting[q]:
                continue
            c = self.waiting[q][0]
            w = now - arr[c]
            if p > 0:
                if w < r.min_wait_s:
                    continue
                v = r.alpha * w - r.beta
            else:
                v = w
            if v > best_v:
                best, best_v = c, v
        if best < 0:
            self.idle.setdefault(a, now)
            return
        self.waiting[self.queue[best]].remove(best)
        self.idle.pop(a, None)
        self._serve(best, a)

    def _pick_idle(self, c: int, q: int) -> int:
        best, best_key = -1, (math.inf, math.inf)
        for a in self.idle:
            p = self.member_pen[a].get(q)
            if p is None or (p > 0 and not self._helper_free(a)):
                continue
            key = (p, len(self.member_pen[a]))     # primaries, single-skilled first
            if key < best_key:
                best, best_key = a, key
        return best

    def _helper_free(self, a: int) -> bool:
        r = self.rule
        if not r.idle_helper:
            return False
        if r.reserve <= 0:
            return True
        own = self._own[a]
        others = sum(1 for b in self.idle
                     if b != a and any(self.member_pen[b].get(q) == 0 for q in own))
        return others >= r.reserve


def _run(args: tuple[Scenario, Rule, int]) -> SeedResult:
    sc, rule, seed = args
    eng = IdealEngine(build_model(sc), generate_calls(sc, seed), rule)
    eng.run()
    return seed_result(eng, seed, sc.service_level_s, {}, sc.topic_names)


def rules(slowdown: float) -> list[Rule]:
    out = [Rule(alpha=a, beta=b, min_wait_s=t, idle_helper=i)
           for a, b, t, i in itertools.product((1.0, round(1 / slowdown, 3)),
                                               (0.0, 10.0, 30.0, 60.0, 120.0), (0.0, 15.0),
                                               (True, False))]
    best_guess = Rule(alpha=round(1 / slowdown, 3), beta=30.0)
    out += [replace(best_guess, reserve=k) for k in (1, 2, 3)]
    return out


def _summary(res: list[SeedResult]) -> dict[str, float]:
    ag = aggregate(res)
    return {k: round(ag[k], 4) for k in ("asa_s", "abandon_rate", "primary_share")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.routing_ideal",
                                description=__doc__.split("\n")[0])
    p.add_argument("--scenario", required=True)
    p.add_argument("--json", action="store_true")
    p.add_argument("--seeds", type=int, default=0, help="first N seeds only")
    args = p.parse_args(argv)
    sc = load_scenario(args.scenario)
    if args.seeds:
        sc = replace(sc, seeds=sc.seeds[: args.seeds])
    out: dict[str, Any] = {"scenario": sc.name, "seeds": len(sc.seeds), "reference": {},
                           "rules": []}
    for pol in ("penalty_rules", "ours"):
        out["reference"][pol] = _summary(run_jobs([Job(sc, pol, s) for s in sc.seeds]))
    with ProcessPoolExecutor(max_workers=default_workers()) as ex:
        for rule in rules(sc.secondary_slowdown):
            res = list(ex.map(_run, [(sc, rule, s) for s in sc.seeds]))
            out["rules"].append({"rule": asdict(rule), **_summary(res)})
            if not args.json:
                print(json.dumps(out["rules"][-1]), file=sys.stderr)
    best = min(out["rules"], key=lambda r: r["asa_s"])
    out["best_rule"] = best
    pr = out["reference"]["penalty_rules"]["asa_s"]
    out["best_rule_asa_over_penalty_rules"] = round(best["asa_s"] / pr, 4)
    out["ours_asa_over_penalty_rules"] = round(out["reference"]["ours"]["asa_s"] / pr, 4)
    print(json.dumps(out, indent=2 if args.json else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
