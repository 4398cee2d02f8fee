"""Simulator semantics: Erlang C, the baselines' rules, common random numbers, scenarios."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from bench.routing import validate
from routing.sim.baselines import PenaltyRules, Static, build_model
from routing.sim.engine import SERVED, Engine, QueueModel
from routing.sim.metrics import seed_result
from routing.sim.runner import Job, run_policy, run_seed
from routing.sim.scenario import ScenarioError, load_scenario, parse_scenario, scenarios_dir
from routing.sim.streams import Calls, generate_calls

CITY = scenarios_dir() / "city-peak-hour.toml"


@pytest.fixture(scope="module")
def city():  # type: ignore[no-untyped-def]
    return load_scenario(CITY)


def test_erlang_c_short_run() -> None:
    """2,000,000 s x 5 seeds (a quarter of the full check). At 85% load one seed of this
    length has a relative standard deviation of about 7%, so the mean of five about 3.5%;
    12% is three and a half of those."""
    sc = load_scenario(scenarios_dir() / "erlang-c-check.toml").with_duration(2_000_000)
    out = validate(sc, workers=2)
    assert out["erlang_c_asa_s"] == pytest.approx(23.10, abs=0.01)   # the header's figure
    assert out["ratio"] == pytest.approx(1.0, abs=0.12)
    assert out["simulated_service_level"] == pytest.approx(out["erlang_c_service_level"],
                                                           abs=0.03)


def _tiny(calls: list[tuple[float, int, float]], members: list[dict[int, int]]
          ) -> tuple[QueueModel, Calls]:
    """Two topics/queues, hand-made calls (arrival, topic, handle); nobody abandons."""
    model = QueueModel(("a", "b"), (0, 1), tuple(dict(m) for m in members),
                       tuple(dict(m) for m in members), tuple(range(len(members))), 1.2)
    return model, Calls([c[0] for c in calls], [c[1] for c in calls], [c[2] for c in calls],
                        [math.inf] * len(calls), 0.0, 1e9)


def test_freed_agent_takes_longest_waiting_eligible_caller() -> None:
    # One agent, primary for a, secondary for b. At t=100 it frees: the b caller (waited 99 s,
    # eligible after 30 s) has waited longer than the second a caller (98 s).
    model, calls = _tiny([(0, 0, 100), (1, 1, 50), (2, 0, 50)], [{0: 0, 1: 1}])
    eng = Engine(model, calls, PenaltyRules.for_model(model))
    eng.run()
    assert eng.answered_at[1] == 100 and eng.answered_at[2] == 100 + 50 * 1.2
    assert eng.served_pen[1] == 1                       # served at penalty 1, 1.2x slower


def test_caller_takes_lowest_penalty_then_longest_idle() -> None:
    # Agents 0 and 1 primary for a, agent 2 secondary. Agent 1 frees first, so it has been
    # idle longest when the t=30 caller arrives; the secondary agent is never preferred.
    model, calls = _tiny([(0, 0, 20), (0, 0, 10), (30, 0, 5)], [{0: 0}, {0: 0}, {0: 1}])
    eng = Engine(model, calls, PenaltyRules.for_model(model))
    eng.run()
    assert eng.served_by[:3] == [0, 1, 1]
    # With no primary idle, a static caller waits rather than take the secondary.
    model, calls = _tiny([(0, 0, 100), (1, 0, 10)], [{0: 0}, {0: 1}])
    eng = Engine(model, calls, Static())
    eng.run()
    assert eng.served_by[1] == 0 and eng.answered_at[1] == 100


def test_static_never_serves_off_primary(city) -> None:  # type: ignore[no-untyped-def]
    agg, res = run_policy(city.with_seeds(range(1, 6)), "static", workers=1)
    assert agg["primary_share"] == 1.0 and all(r.primary_share == 1.0 for r in res)


def test_penalty_rules_eligibility_after_p_times_30s(city) -> None:  # type: ignore[no-untyped-def]
    for seed in (1, 2, 3):
        model = build_model(city)
        eng = Engine(model, generate_calls(city, seed), PenaltyRules.for_model(model))
        eng.run()
        arr = eng.calls.arrival
        served = [c for c in range(len(arr)) if eng.state[c] == SERVED]
        secondary = [c for c in served if eng.served_pen[c] > 0]
        assert secondary, "the surge must push some callers to secondaries"
        assert all(eng.answered_at[c] - arr[c] >= 30.0 * eng.served_pen[c] - 1e-9
                   for c in served)


def test_full_flex_is_a_lower_bound(city) -> None:  # type: ignore[no-untyped-def]
    sc = city.with_seeds(range(1, 9))
    asa = {p: run_policy(sc, p, workers=2)[0]["asa_s"]
           for p in ("static", "penalty_rules", "full_flex", "ours")}
    assert asa["full_flex"] < min(asa["static"], asa["penalty_rules"], asa["ours"])
    assert asa["penalty_rules"] < asa["static"]


def test_common_random_numbers(city) -> None:  # type: ignore[no-untyped-def]
    a = generate_calls(city, 7)
    # Other agents (the advisor's candidates) meet exactly the same callers.
    b = generate_calls(city.with_skill(0, "energy", 1), 7)
    assert a == b
    # Changing one topic's load leaves the other topics' calls untouched.
    topics = list(city.topics)
    topics[1] = replace(topics[1], calls_per_hour=topics[1].calls_per_hour * 1.5)
    c = generate_calls(replace(city, topics=tuple(topics)), 7)
    water_a = [(t, h) for t, k, h in zip(a.arrival, a.topic, a.handle) if k == 0]
    water_c = [(t, h) for t, k, h in zip(c.arrival, c.topic, c.handle) if k == 0]
    assert water_a == water_c and len(c) > len(a)


def test_seed_results_are_deterministic(city) -> None:  # type: ignore[no-untyped-def]
    job = Job(city, "penalty_rules", 3)
    assert run_seed(job) == run_seed(job)


def test_metrics_definitions() -> None:
    # Three callers: waits 0 and 100 answered, one abandons after 5 s.
    model = QueueModel(("a",), (0,), ({0: 0},), ({0: 0},), (0,), 1.2)
    calls = Calls([0.0, 1.0, 2.0], [0, 0, 0], [101.0, 10.0, 10.0], [math.inf, math.inf, 5.0],
                  0.0, 10.0)
    eng = Engine(model, calls, Static())
    eng.run()
    r = seed_result(eng, 1, 20.0, topics=("a",))
    assert (r.arrived, r.answered) == (3, 2)
    assert r.asa_s == pytest.approx(50.0)              # mean of answered waits 0 and 100
    assert r.service_level == 0.5 and r.abandon_rate == pytest.approx(1 / 3)
    assert r.primary_share == 1.0
    assert r.wait_by_topic["a"] == pytest.approx(105.0)  # answered waits + abandoned waits


def test_scenario_errors_name_the_problem() -> None:
    base = {"scenario": {"duration_s": 10, "seeds": [1], "handle_mean_s": 1, "handle_cv": 1},
            "topics": [{"name": "a", "calls_per_hour": 1}]}
    with pytest.raises(ScenarioError, match="unknown topics"):
        parse_scenario({**base, "agents": [{"count": 1, "skills": {"b": 0}}]})
    with pytest.raises(ScenarioError, match="handle_distribution"):
        parse_scenario({**base, "scenario": {**base["scenario"], "handle_distribution": "x"},
                        "agents": []})


def test_ours_serves_each_topic_only_by_agents_with_that_skill(city) -> None:  # type: ignore[no-untyped-def]
    """The production policy in the simulator: every call is answered by an agent holding
    the call's topic, never beyond max_skill_penalty; with max_skill_penalty 0 it routes to
    primaries only."""
    from routing.policy import PolicyParams
    from routing.sim.ours import OursController

    for max_skill in (0, 1):
        params = PolicyParams(max_skill_penalty=max_skill)
        model = build_model(city)
        eng = Engine(model, generate_calls(city, 2), OursController.create(city, model, params))
        eng.run()
        served = [c for c in range(len(eng.calls.arrival)) if eng.state[c] == SERVED]
        assert served
        for c in served:
            skill = model.skills[eng.served_by[c]].get(eng.calls.topic[c])
            assert skill is not None and skill == eng.served_pen[c] <= max_skill
        if max_skill == 0:
            assert all(eng.served_pen[c] == 0 for c in served)


@pytest.mark.parametrize("variant", ["reference", "surge-elsewhere", "hub-and-spoke"])
def test_ours_waits_less_than_queue_rules_without_more_abandonment(city, variant) -> None:  # type: ignore[no-untyped-def]
    """Common random numbers, eight seeds: ours answers sooner on average than Asterisk's
    penalty rules and loses no more callers, on the reference scenario, with its surge moved
    to another group, and on a differently shaped centre it was never tuned on."""
    from pathlib import Path
    sc = {"reference": city, "surge-elsewhere": city.surge_moved("social_security"),
          "hub-and-spoke": load_scenario(Path(__file__).resolve().parents[1] / "bench"
                                         / "scenarios" / "hub-and-spoke.toml")}[variant]
    sc = sc.with_seeds(range(1, 9))
    ours, _ = run_policy(sc, "ours", workers=2)
    rules, _ = run_policy(sc, "penalty_rules", workers=2)
    assert ours["asa_s"] < 0.95 * rules["asa_s"]
    assert ours["abandon_rate"] <= rules["abandon_rate"]


def test_skill_advisor_trains_the_idle_group_in_the_overloaded_topic() -> None:
    """Topic a is overloaded, b's agents are mostly idle: the advisor's first proposal is a b
    agent learning a, and on the same callers it cuts ours' ASA."""
    from routing.advisor import AdvisorConfig, advise
    sc = parse_scenario({
        "scenario": {"duration_s": 1800, "warmup_s": 600, "seeds": [1, 2, 3, 4, 5, 6],
                     "handle_mean_s": 240, "handle_cv": 0.6, "secondary_slowdown": 1.2,
                     "patience_mean_s": 150, "service_level_s": 20},
        "topics": [{"name": "a", "calls_per_hour": 140}, {"name": "b", "calls_per_hour": 30}],
        "agents": [{"count": 8, "skills": {"a": 0}}, {"count": 6, "skills": {"b": 0}}],
    })
    adv = advise(sc, AdvisorConfig(k=2, screen_seeds=3, workers=2))
    first = adv.additions[0]
    assert (first.candidate.group, first.candidate.topic) == (1, "a")
    assert first.asa_after_s < first.asa_before_s
    assert adv.final["asa_s"] < adv.baseline["asa_s"]
    out = adv.as_json()
    assert out["asa_cut"] > 0 and out["additions"][0]["add_topic"] == "a"


def test_breakdown_accounts_for_every_measured_call(city) -> None:  # type: ignore[no-untyped-def]
    # The diagnostic splits exactly the calls bench.routing measures: its cells add up to the
    # seed's answered and abandoned calls and to the same ASA.
    from bench.routing_breakdown import run_seed as breakdown_seed
    sc = city.with_seeds(city.seeds[:1])
    job = Job(sc, "penalty_rules", sc.seeds[0])
    res = run_seed(job)
    cells = breakdown_seed(job).cells
    answered = sum(c.answered for c in cells.values())
    assert answered == res.answered
    abandoned = sum(c.abandoned for c in cells.values())
    assert answered + abandoned == res.arrived      # the run ends when every one is resolved
    assert abandoned / res.arrived == pytest.approx(res.abandon_rate)
    assert sum(c.wait_sum_s for c in cells.values()) / answered == pytest.approx(res.asa_s)
    # The surge (water, minutes 20-40) is where water callers wait longest.
    assert {t for t, _ in cells} == set(sc.topic_names)
    water_in, water_out = cells[("water", True)], cells[("water", False)]
    assert water_in.wait_sum_s / water_in.answered > 2 * water_out.wait_sum_s / water_out.answered
