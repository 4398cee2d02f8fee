"""Does the routing policy generalise? Ours against the queue rules on random centres.

    python -m bench.routing_random [--json] [--centres 30] [--first 0] [--seeds 12]

The acceptance scenario is one centre; the policy will run in centres nobody has seen. This
draws ``--centres`` random centres in the scenario format (``routing.sim.scenario``), each from
its own seed (``--first`` + i), and runs ``static``, ``penalty_rules`` and ``ours`` on
``--seeds`` seeds of each (common random numbers). A centre has 2-7 topics with 2-14 primary
agents each and 0-2 helper groups per topic (1-4 agents; skill penalty 1 or 2, sometimes a
third topic at 2); load 0.6-1.0 of the primaries, each topic's rate varied by ±30%; a 40%
chance of a surge (x1.3-2.2, 10 or 20 minutes) per topic; handle mean 120-360 s with CV 0.4,
0.6 or 1; helpers 1.0, 1.2 or 1.5 times slower; patience 60, 150 or 300 s. Nothing in
``routing/`` was tuned on these centres.

Per centre: each policy's ``asa_s`` and ``abandon_rate``, and ``ours/penalty_rules``. The
summary counts centres where ours' ASA or abandonment is worse than the queue rules', and
gives the spread of the ratio.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from typing import Any

from routing.sim.runner import run_policy
from routing.sim.scenario import Scenario, parse_scenario

POLICIES = ("static", "penalty_rules", "ours")


def random_centre(seed: int, seeds: int) -> dict[str, Any]:
    """One random centre in the scenario file's format (a dict as TOML would give)."""
    r = random.Random(seed)
    topics = [f"t{i}" for i in range(r.randint(2, 7))]
    handle = r.choice([120, 180, 240, 360])
    agents: list[dict[str, Any]] = [{"count": r.randint(2, 14), "skills": {t: 0}}
                                    for t in topics]
    for _ in range(r.randint(0, 2 * len(topics))):
        a, b = r.sample(topics, 2)
        skills = {a: 0, b: r.choice([1, 1, 2])}
        if len(topics) > 2 and r.random() < 0.2:
            skills.setdefault(r.choice([t for t in topics if t not in (a, b)]), 2)
        agents.append({"count": r.randint(1, 4), "skills": skills})
    primaries = {t: sum(g["count"] for g in agents if g["skills"].get(t) == 0) for t in topics}
    load = r.uniform(0.6, 1.0)
    specs = []
    for t in topics:
        spec: dict[str, Any] = {"name": t, "calls_per_hour": round(
            primaries[t] * 3600 / handle * load * r.uniform(0.7, 1.3), 1)}
        if r.random() < 0.4:
            start = r.choice([600, 1200, 1800])
            spec["surges"] = [{"start_s": start, "end_s": start + r.choice([600, 1200]),
                               "factor": round(r.uniform(1.3, 2.2), 2)}]
        specs.append(spec)
    return {"scenario": {"name": f"random-{seed}", "duration_s": 3600, "warmup_s": 900,
                         "seeds": list(range(1, seeds + 1)), "handle_mean_s": handle,
                         "handle_cv": r.choice([0.4, 0.6, 1.0]),
                         "secondary_slowdown": r.choice([1.0, 1.2, 1.5]),
                         "patience_mean_s": r.choice([60, 150, 300]), "service_level_s": 20},
            "topics": specs, "agents": agents}


def compare(sc: Scenario) -> dict[str, Any]:
    res = {p: run_policy(sc, p)[0] for p in POLICIES}
    out: dict[str, Any] = {"centre": sc.name, "topics": len(sc.topics),
                           "agents": sum(g.count for g in sc.agents)}
    for p in POLICIES:
        out[p] = {"asa_s": round(res[p]["asa_s"], 3),
                  "abandon_rate": round(res[p]["abandon_rate"], 4)}
    pr = res["penalty_rules"]["asa_s"]
    out["ours_asa_over_penalty_rules"] = round(res["ours"]["asa_s"] / pr, 4) if pr > 0 else None
    out["ours_primary_share"] = round(res["ours"]["primary_share"], 3)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.routing_random",
                                description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--centres", type=int, default=30)
    p.add_argument("--first", type=int, default=0, help="seed of the first centre")
    p.add_argument("--seeds", type=int, default=12, help="simulation seeds per centre")
    args = p.parse_args(argv)
    rows = []
    for i in range(args.centres):
        sc = parse_scenario(random_centre(args.first + i, args.seeds), f"random-{args.first + i}")
        rows.append(compare(sc))
        if not args.json:
            print(json.dumps(rows[-1]), file=sys.stderr)
    ratios = [r["ours_asa_over_penalty_rules"] for r in rows
              if r["ours_asa_over_penalty_rules"] is not None]
    summary = {
        "centres": len(rows), "seeds_per_centre": args.seeds,
        "ratio_min": min(ratios), "ratio_median": round(statistics.median(ratios), 4),
        "ratio_max": max(ratios),
        "ours_asa_worse": sum(r > 1.0 for r in ratios),
        "ours_asa_worse_by_over_5pct": sum(r > 1.05 for r in ratios),
        "ours_abandon_higher": sum(r["ours"]["abandon_rate"] > r["penalty_rules"]["abandon_rate"]
                                   for r in rows),
        "ours_abandon_higher_by_over_half_a_point": sum(
            r["ours"]["abandon_rate"] > r["penalty_rules"]["abandon_rate"] + 0.005 for r in rows),
    }
    print(json.dumps({"summary": summary, "centres": rows}, indent=2 if args.json else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
