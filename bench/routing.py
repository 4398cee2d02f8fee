"""Routing benchmark.

    python -m bench.routing --scenario FILE --json [--advise K] [--seeds N] [--policies a,b]
                            [--load X] [--surge-topic T]
    python -m bench.routing --validate --json [--duration S] [--seeds N]

The first prints {"policies": {name: {"asa_s", "p90_wait_s", "service_level", "abandon_rate",
"primary_share", ...}}, "comparison": ..., ["advisor": ...]}; metric definitions are pinned in
``routing/sim/metrics.py``. ``--validate`` simulates the M/M/c scenario (default
``../shared/scenarios/erlang-c-check.toml``) and compares its mean wait with Erlang C;
``--duration`` shortens it for tests (the full run is 8,000,000 s x 5 seeds on purpose).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from routing.advisor import AdvisorConfig, advise
from routing.policy import PolicyParams
from routing.sim.erlang import erlang_c, erlang_c_asa
from routing.sim.metrics import METRICS, SeedResult
from routing.sim.runner import POLICIES, run_policy
from routing.sim.scenario import Scenario, ScenarioError, load_scenario, scenarios_dir


def _round(d: dict[str, float], nd: int = 4) -> dict[str, float]:
    return {k: round(v, nd) for k, v in d.items()}


def _se(res: list[SeedResult], metric: str) -> float:
    x = np.array([r.metric(metric) for r in res])
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def _ratio_ci(num: list[SeedResult], den: list[SeedResult], reps: int = 4000) -> list[float]:
    """95% bootstrap interval over seeds of mean(num ASA) / mean(den ASA), seeds paired."""
    a = np.array([r.asa_s for r in num])
    b = np.array([r.asa_s for r in den])
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(a), (reps, len(a)))
    ratios = a[idx].mean(axis=1) / b[idx].mean(axis=1)
    return [round(float(x), 4) for x in np.percentile(ratios, [2.5, 97.5])]


def bench_scenario(sc: Scenario, policies: list[str], params: PolicyParams,
                   workers: int | None) -> tuple[dict[str, Any], dict[str, list[SeedResult]]]:
    out: dict[str, Any] = {}
    per_seed: dict[str, list[SeedResult]] = {}
    for name in policies:
        agg, res = run_policy(sc, name, params if name == "ours" else None, workers)
        row = _round(agg)
        row["asa_s_se"] = round(_se(res, "asa_s"), 4)
        row["asa_s_sd"] = round(float(np.std([r.asa_s for r in res], ddof=1)), 4) \
            if len(res) > 1 else float("nan")
        out[name] = row
        per_seed[name] = res
    return out, per_seed


def comparison(pol: dict[str, Any], per_seed: dict[str, list[SeedResult]]) -> dict[str, Any]:
    if "ours" not in pol or "penalty_rules" not in pol:
        return {}
    o, r = pol["ours"], pol["penalty_rules"]
    ratio = o["asa_s"] / r["asa_s"]
    return {
        "ours_asa_over_penalty_rules": round(ratio, 4),
        "ours_asa_over_penalty_rules_ci95": _ratio_ci(per_seed["ours"], per_seed["penalty_rules"]),
        # Common random numbers: the same callers meet both policies, seed by seed.
        "ours_better_seeds": sum(a.asa_s < b.asa_s for a, b in
                                 zip(per_seed["ours"], per_seed["penalty_rules"])),
        "abandon_rate_diff": round(o["abandon_rate"] - r["abandon_rate"], 4),
        "ours_primary_share": o["primary_share"],
        "acceptance": {
            "asa_ratio_le_0.85": ratio <= 0.85,
            "abandon_no_higher": o["abandon_rate"] <= r["abandon_rate"],
            "primary_share_ge_0.9": o["primary_share"] >= 0.9,
        },
    }


def validate(sc: Scenario, workers: int | None) -> dict[str, Any]:
    if len(sc.topics) != 1 or len(sc.agents) != 1 or sc.patience_mean_s > 0 \
            or sc.handle_distribution != "exponential" or any(t.surges for t in sc.topics):
        raise ScenarioError("validation needs an M/M/c scenario: one topic, one agent group, "
                            "exponential handle times, no abandonment, no surge")
    servers = sc.agents[0].count
    erlangs = sc.topics[0].calls_per_hour / 3600.0 * sc.handle_mean_s
    asa = erlang_c_asa(servers, erlangs, sc.handle_mean_s)
    # P(W <= t) = 1 - C e^{-(c - a) t / AHT}: the service level of an M/M/c queue.
    sl = 1.0 - erlang_c(servers, erlangs) * float(
        np.exp(-(servers - erlangs) * sc.service_level_s / sc.handle_mean_s))
    agg, res = run_policy(sc, "static", None, workers)
    ratio = agg["asa_s"] / asa
    return {
        "scenario": sc.name,
        "duration_s": sc.duration_s,
        "seeds": list(sc.seeds),
        "erlang_c_asa_s": round(asa, 4),
        "simulated_asa_s": round(agg["asa_s"], 4),
        "ratio": round(ratio, 4),
        "within_5pct": abs(ratio - 1.0) <= 0.05,
        "per_seed_asa_s": [round(r.asa_s, 3) for r in res],
        "erlang_c_service_level": round(sl, 4),
        "simulated_service_level": round(agg["service_level"], 4),
        "answered_calls": sum(r.answered for r in res),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.routing", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", type=Path, help="scenario TOML")
    ap.add_argument("--validate", action="store_true", help="Erlang C check")
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--policies", default=",".join(POLICIES))
    ap.add_argument("--seeds", type=int, help="only the first N seeds of the scenario")
    ap.add_argument("--duration", type=float, help="override duration_s (shorter validation)")
    ap.add_argument("--load", type=float, metavar="X",
                    help="multiply every arrival rate by X (a generalisation check)")
    ap.add_argument("--surge-topic", metavar="T",
                    help="move every surge to topic T (a generalisation check)")
    ap.add_argument("--advise", type=int, metavar="K", help="skill advisor with up to K additions")
    ap.add_argument("--params", default="{}", help="JSON PolicyParams overrides for ours")
    ap.add_argument("--workers", type=int, help="processes (default 2)")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    try:
        path = a.scenario or (scenarios_dir() / "erlang-c-check.toml" if a.validate else None)
        if path is None:
            ap.error("--scenario FILE or --validate")
        sc = load_scenario(path)
        if a.seeds:
            sc = sc.with_seeds(sc.seeds[: a.seeds])
        if a.duration:
            sc = sc.with_duration(a.duration)
        if a.load is not None:
            if a.load <= 0:
                raise ValueError(f"--load must be positive, got {a.load}")
            sc = sc.scaled(a.load)
        if a.surge_topic:
            sc = sc.surge_moved(a.surge_topic)
        params = PolicyParams.model_validate(json.loads(a.params))
        if a.validate:
            out = validate(sc, a.workers)
        else:
            policies = [p for p in a.policies.split(",") if p]
            pol, per_seed = bench_scenario(sc, policies, params, a.workers)
            out = {"scenario": sc.name, "seeds": len(sc.seeds), "policies": pol,
                   "comparison": comparison(pol, per_seed)}
            if a.advise:
                adv = advise(sc, AdvisorConfig(k=a.advise, params=params, workers=a.workers))
                out["advisor"] = adv.as_json()
    except (ScenarioError, OSError, ValueError) as e:
        print(f"bench.routing: {e}", file=sys.stderr)
        return 2
    out["wall_s"] = round(time.monotonic() - t0, 1)
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        _print_table(out)
    return 0


def _print_table(out: dict[str, Any]) -> None:
    if "policies" not in out:
        for k, v in out.items():
            print(f"{k:>26}: {v}")
        return
    print(f"{out['scenario']} ({out['seeds']} seeds)")
    print(f"{'policy':<14}" + "".join(f"{m:>15}" for m in METRICS))
    for name, row in out["policies"].items():
        print(f"{name:<14}" + "".join(f"{row[m]:>15.4f}" for m in METRICS))
    for k, v in out.get("comparison", {}).items():
        print(f"{k}: {v}")
    if "advisor" in out:
        print(json.dumps(out["advisor"], indent=2))


if __name__ == "__main__":
    raise SystemExit(main())
