"""Where the waiting is: per topic, inside and outside the scenario's surges (a diagnostic).

    python -m bench.routing_breakdown --scenario FILE [--json] [--seeds N] [--policies a,b]

``bench.routing`` reports one ASA per policy; tuning a policy needs to know which callers
carry it. This runs the same simulations (same seeds, common random numbers) and splits the
measured calls by topic and by whether they arrived inside any surge window of the scenario.
Per cell: ``answered``, ``abandoned``, ``wait_sum_s`` (the waits of answered calls; their sum
over all cells divided by all answered calls is the ASA), ``asa_s`` and ``helper_served`` (calls
answered by an agent at penalty > 0, who takes ``secondary_slowdown`` times longer). Totals are
over all seeds, not means per seed.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from routing.sim.engine import ABANDONED, SERVED
from routing.sim.runner import POLICIES, Job, default_workers, simulate
from routing.sim.scenario import Scenario, load_scenario


@dataclass(slots=True)
class Cell:
    answered: int = 0
    abandoned: int = 0
    wait_sum_s: float = 0.0
    helper_served: int = 0

    def add(self, other: Cell) -> None:
        self.answered += other.answered
        self.abandoned += other.abandoned
        self.wait_sum_s += other.wait_sum_s
        self.helper_served += other.helper_served

    def as_json(self) -> dict[str, Any]:
        return {"answered": self.answered, "abandoned": self.abandoned,
                "wait_sum_s": round(self.wait_sum_s, 1),
                "asa_s": round(self.wait_sum_s / self.answered, 3) if self.answered else None,
                "helper_served": self.helper_served}


@dataclass(slots=True)
class Breakdown:
    cells: dict[tuple[str, bool], Cell] = field(default_factory=dict)

    def cell(self, topic: str, in_surge: bool) -> Cell:
        return self.cells.setdefault((topic, in_surge), Cell())


def _in_surge(sc: Scenario, t: float) -> bool:
    return any(s.start_s <= t < s.end_s for topic in sc.topics for s in topic.surges)


def run_seed(job: Job) -> Breakdown:
    sc = job.scenario
    eng, _ = simulate(job)
    calls = eng.calls
    out = Breakdown()
    for c in range(len(calls.arrival)):
        if not eng.measured[c]:
            continue
        cell = out.cell(sc.topic_names[calls.topic[c]], _in_surge(sc, calls.arrival[c]))
        if eng.state[c] == SERVED:
            cell.answered += 1
            cell.wait_sum_s += eng.answered_at[c] - calls.arrival[c]
            cell.helper_served += eng.served_pen[c] > 0
        elif eng.state[c] == ABANDONED:
            cell.abandoned += 1
    return out


def breakdown(sc: Scenario, policy: str, workers: int) -> Breakdown:
    jobs = [Job(sc, policy, s) for s in sc.seeds]
    total = Breakdown()
    with ProcessPoolExecutor(max_workers=max(1, workers)) as ex:
        for b in ex.map(run_seed, jobs):
            for (topic, surge), cell in b.cells.items():
                total.cell(topic, surge).add(cell)
    return total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.routing_breakdown",
                                description=__doc__.split("\n")[0])
    p.add_argument("--scenario", required=True, help="scenario TOML")
    p.add_argument("--json", action="store_true")
    p.add_argument("--seeds", type=int, default=0, help="only the first N seeds")
    p.add_argument("--policies", default="penalty_rules,ours")
    p.add_argument("--workers", type=int, default=default_workers())
    args = p.parse_args(argv)
    sc = load_scenario(args.scenario)
    if args.seeds:
        sc = sc.with_seeds(sc.seeds[: args.seeds])
    policies = [x.strip() for x in args.policies.split(",") if x.strip()]
    unknown = [x for x in policies if x not in POLICIES]
    if unknown:
        p.error(f"unknown policies {unknown}; choose from {list(POLICIES)}")
    result: dict[str, Any] = {"scenario": sc.name, "seeds": len(sc.seeds), "policies": {}}
    for pol in policies:
        b = breakdown(sc, pol, args.workers)
        answered = sum(c.answered for c in b.cells.values())
        waited = sum(c.wait_sum_s for c in b.cells.values())
        topics: dict[str, dict[str, Any]] = {}
        for (topic, surge), cell in sorted(b.cells.items()):
            topics.setdefault(topic, {})["in_surge" if surge else "outside"] = cell.as_json()
        result["policies"][pol] = {"asa_s": round(waited / answered, 3) if answered else None,
                                   "wait_sum_s": round(waited, 1), "topics": topics}
    if args.json:
        print(json.dumps(result))
        return 0
    for pol, r in result["policies"].items():
        print(f"{pol}: ASA {r['asa_s']} s (pooled over {result['seeds']} seeds)")
        for topic, parts in r["topics"].items():
            for part, c in parts.items():
                print(f"  {topic:16s} {part:8s} answered {c['answered']:5d}  abandoned "
                      f"{c['abandoned']:4d}  ASA {c['asa_s'] or 0:6.1f} s  wait {c['wait_sum_s']:9.0f} s"
                      f"  by helpers {c['helper_served']:4d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
