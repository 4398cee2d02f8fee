"""Unit tests of the production routing policy and the wait estimator (no simulation)."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from pydantic import ValidationError

from routing.estimator import DecayedStats, StatsView, expected_wait
from routing.policy import (
    PARKED,
    STRIDE,
    Caller,
    Member,
    PolicyParams,
    QueueView,
    RoutingPolicy,
    Snapshot,
    Waiting,
    caller_priority,
    skill_of,
    window_for,
)

AHT = 240.0


def stats(theta: float = 0.0, rates: dict[str, float] | None = None) -> StatsView:
    return StatsView({}, rates or {}, theta, AHT)


def members(prefix: str, n: int, busy: int, skill: int = 0, penalty: int | None = None
            ) -> tuple[Member, ...]:
    pen = 2 * skill if penalty is None else penalty
    return tuple(Member(f"{prefix}{i}", pen, skill, i < busy) for i in range(n))


def waiting(n: int, t0: float = 0.0, max_penalty: int = 1) -> tuple[Waiting, ...]:
    return tuple(Waiting(f"w{i}", t0 + i, 0, max_penalty) for i in range(n))


def snap(queues: list[QueueView], home: dict[str, tuple[str, ...]] | None = None,
         st: StatsView | None = None) -> Snapshot:
    return Snapshot(100.0, {q.name: q for q in queues}, home or {}, st or stats())


# --- estimator ---------------------------------------------------------------------------
def test_expected_wait_formula() -> None:
    # No abandonment: (k + 1) departures of n busy agents at AHT each.
    assert expected_wait(3, 0, 10 / AHT, 0.0) == pytest.approx(4 * AHT / 10)
    assert expected_wait(2, 3, 10 / AHT, 0.0) == 0.0          # an idle agent is free for it
    # Abandonment ahead shortens the wait, and the sum matches Erlang-A's position formula.
    r, th = 10 / AHT, 1 / 150
    assert expected_wait(3, 0, r, th) == pytest.approx(
        sum(1 / (r + (j + 1) * th) for j in range(4)))
    assert expected_wait(3, 0, r, th) < expected_wait(3, 0, r, 0.0)
    assert math.isinf(expected_wait(0, 0, 0.0, 0.0))
    # A fractional (projected) position lies between its neighbours.
    assert expected_wait(2, 0, r, th) < expected_wait(2.5, 0, r, th) < expected_wait(3, 0, r, th)


def test_decayed_stats_learn_and_forget() -> None:
    s = DecayedStats(half_life_s=600.0, arrival_half_life_s=300.0, prior_aht_s=300.0)
    for i in range(200):
        s.observe_handle("water", 0, 200.0, float(i))
        s.observe_handle("water", 1, 240.0, float(i))
    v = s.view(200.0)
    assert v.aht("water", 0) == pytest.approx(200.0, rel=0.02)
    assert v.aht("water", 1) == pytest.approx(240.0, rel=0.02)
    assert v.aht("water", 2) == v.aht("water", 0)      # unseen level: the queue's primary
    assert v.aht("energy", 0) == 300.0                  # unseen queue: the prior
    # A steady 1 call / 10 s stream is estimated at about 0.1/s, early and late.
    for t in range(0, 3000, 10):
        s.observe_arrival("water", float(t))
        if t == 290:
            assert s.view(float(t)).rate("water") == pytest.approx(0.1, rel=0.2)
    assert s.view(2990.0).rate("water") == pytest.approx(0.1, rel=0.1)
    # Abandonment hazard: 1 abandon per 150 s of waiting.
    for i in range(100):
        s.observe_wait_end(75.0, i % 2 == 0, 3000.0 + i)
    assert s.view(3100.0).theta == pytest.approx(1 / 150, rel=0.05)


# --- choose_group ------------------------------------------------------------------------
def test_choose_group_prefers_shorter_expected_wait_plus_cost() -> None:
    water = QueueView("water", members("p", 10, busy=10) + members("h", 2, busy=0, skill=1),
                      waiting(4))
    s = snap([water])
    # Without parking, the caller's window decides whether it takes a helper.
    pol = RoutingPolicy(PolicyParams(proficiency_cost_s=10.0, park_helpers=False))
    d = pol.choose_group(Caller("c", "water", ("water",)), s)
    # Primaries: 5 departures of 10 busy agents = 120 s; idle helpers: 0 s + 10 s cost.
    assert d.queue == "water" and d.max_penalty == window_for(1)
    assert d.expected_wait_s == 0.0
    # With a proficiency cost above the primary wait, the caller stays with primaries.
    pol.params = PolicyParams(proficiency_cost_s=500.0, park_helpers=False)
    d = pol.choose_group(Caller("c", "water", ("water",)), s)
    assert d.max_penalty == window_for(0)
    assert d.expected_wait_s == pytest.approx(5 * AHT / 10)
    # With parking, the member side decides who is offered: every caller takes the widest
    # window (Asterisk reads it once, and callers with narrower ones at the head would hold
    # back a caller that could take a helper just offered).
    pol.params = PolicyParams(proficiency_cost_s=500.0)
    d = pol.choose_group(Caller("c", "water", ("water",)), s)
    assert d.max_penalty == window_for(1)


def test_choose_group_picks_the_less_loaded_group_and_priorities_jump_the_queue() -> None:
    a = QueueView("water", members("a", 5, busy=5), waiting(6))
    g = QueueView("general", members("g", 5, busy=5), waiting(1))
    s = snap([a, g])
    pol = RoutingPolicy(PolicyParams(proficiency_cost_s=10.0))
    d = pol.choose_group(Caller("c", "water", ("water", "general")), s)
    assert d.queue == "general" and "general" in d.reason       # 2*48+10 < 7*48
    # An emergency is ahead of everybody in its queue: the primary group wins again.
    d = pol.choose_group(Caller("c", "water", ("water", "general"), emergency=True), s)
    assert d.queue == "water" and d.priority == PolicyParams().priority_emergency
    assert d.expected_wait_s == pytest.approx(AHT / 5)


def test_priority_weights_add_up() -> None:
    p = PolicyParams()
    c = Caller("c", "water", ("water",), emergency=True, repeat_7d=True, flagged=True)
    assert caller_priority(c, p) == p.priority_emergency + p.priority_repeat + p.priority_flagged
    assert caller_priority(Caller("c", "water", ("water",)), p) == 0


# --- reconsider --------------------------------------------------------------------------
def test_reconsider_moves_only_beyond_the_margin() -> None:
    water = QueueView("water", members("p", 10, busy=10) + members("h", 2, busy=0, skill=1),
                      waiting(4, max_penalty=window_for(0)))
    s = snap([water])
    c = Caller("w3", "water", ("water",), queue="water")
    pol = RoutingPolicy(PolicyParams(margin_s=10.0, proficiency_cost_s=10.0))
    mv = pol.reconsider(c, s)
    # Position 3 behind 10 busy primaries: 96 s; idle helpers: 0 s + 10 s.
    assert mv is not None and mv.decision.max_penalty == window_for(1)
    assert mv.saving_s == pytest.approx(4 * AHT / 10 - 10.0)
    pol.params = PolicyParams(margin_s=200.0, proficiency_cost_s=10.0)
    assert pol.reconsider(c, s) is None
    # Never narrows a window, and a caller not in the snapshot is left alone.
    assert pol.reconsider(Caller("zz", "water", ("water",), queue="water"), s) is None


# --- member penalties (helper parking) -----------------------------------------------------
def _two_queues(own_waiting: int, own_idle: int, other_waiting: int) -> Snapshot:
    own = QueueView("enterprise",
                    members("e", 5, busy=5 - own_idle, penalty=0) + (Member("x", 1, 0, False),),
                    waiting(own_waiting))
    water = QueueView("water", members("w", 10, busy=10) + (Member("x", 3, 1, False),),
                      waiting(other_waiting))
    return snap([own, water], home={"x": ("enterprise",)})


def test_helper_parked_while_its_own_callers_wait() -> None:
    pol = RoutingPolicy(PolicyParams(proficiency_cost_s=10.0))
    ch = pol.member_penalties(_two_queues(own_waiting=2, own_idle=0, other_waiting=1))
    assert [(c.queue, c.agent, c.penalty) for c in ch] == [("water", "x", PARKED + 3)]
    assert skill_of(PARKED + 3) == 1 == skill_of(3)
    # Own queue empty with spare colleagues, water congested: stays offered to water.
    assert pol.member_penalties(_two_queues(own_waiting=0, own_idle=2, other_waiting=3)) == []
    # A parked membership as the live state sees it (skill read as penalty // STRIDE) is
    # opened again when its queue needs it: the proficiency is decoded from the penalty.
    s = _two_queues(own_waiting=0, own_idle=2, other_waiting=3)
    water = s.queues["water"]
    parked = Member("x", PARKED + 3, (PARKED + 3) // 2, False)
    s2 = snap([s.queues["enterprise"],
               QueueView("water", water.members[:-1] + (parked,), water.waiting)], s.home)
    assert [(c.agent, c.penalty) for c in pol.member_penalties(s2)] == [("x", 3)]
    # Parking can be switched off from the console.
    pol.params = pol.params.replace(park_helpers=False)
    assert pol.member_penalties(_two_queues(own_waiting=2, own_idle=0, other_waiting=1)) == []


def test_params_are_validated_and_replaced_whole() -> None:
    p = PolicyParams()
    q = p.replace(margin_s=30)
    assert q.margin_s == 30 and p.margin_s == 10          # the old object is unchanged
    with pytest.raises(ValidationError):
        p.replace(margin_s=-1)
    with pytest.raises(ValidationError):
        p.replace(unknown=1)
    # What reaches Asterisk stays sane: no window reaching parked members (1000 + penalty),
    # no QUEUE_PRIO beyond a C int, no margin of centuries.
    for absurd in ({"max_skill_penalty": 10**25}, {"priority_emergency": 10**30},
                   {"margin_s": 1e308}, {"proficiency_cost_s": 1e308}):
        with pytest.raises(ValidationError):
            p.replace(**absurd)
    assert STRIDE * p.replace(max_skill_penalty=100).max_skill_penalty + 1 < PARKED


# --- accepted proficiency (caller windows) -------------------------------------------------
def test_a_caller_accepts_helpers_only_when_its_wait_exceeds_their_cost() -> None:
    # (Without parking: with it, every window is the widest; see the choose_group test.)
    pol = RoutingPolicy(PolicyParams(proficiency_cost_s=10.0, park_helpers=False))
    # 10 busy primaries (24 s per departure), 2 busy helpers.
    water = QueueView("water", members("p", 10, busy=10) + members("h", 2, busy=2, skill=1), ())
    s = snap([water])
    # First in line: about 24 s for a primary, more than one step of cost: helpers welcome.
    assert pol.admitted(s, water, 0)[0] == 1
    # An idle primary answers at once: nothing to gain from a helper.
    idle = QueueView("water", members("p", 10, busy=9) + members("h", 2, busy=0, skill=1), ())
    assert pol.admitted(snap([idle]), idle, 0) == (0, 0.0)
    # A high cost keeps the caller with primaries unless the wait outgrows it.
    pol.params = PolicyParams(proficiency_cost_s=100.0, park_helpers=False)
    assert pol.admitted(s, water, 0)[0] == 0
    assert pol.admitted(s, water, 6)[0] == 1
    # Accepting more never lengthens the expected wait, and the further back, the wider.
    widths = [pol.admitted(s, water, k) for k in range(12)]
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(widths))
    for k in range(12):
        assert widths[k][1] <= pol.wait_in(s, "water", window_for(0), k) + 1e-9


def test_max_skill_penalty_bounds_every_window_and_parks_beyond_it() -> None:
    water = QueueView("water", members("p", 4, busy=4) + members("h", 2, busy=0, skill=1)
                      + members("g", 2, busy=0, skill=2), waiting(8, max_penalty=window_for(0)))
    s = snap([water])
    pol = RoutingPolicy(PolicyParams(max_skill_penalty=1, proficiency_cost_s=1.0))
    d = pol.choose_group(Caller("c", "water", ("water",)), s)
    assert d.max_penalty == window_for(1)
    mv = pol.reconsider(Caller("w7", "water", ("water",), queue="water"), s)
    assert mv is not None and mv.decision.max_penalty == window_for(1)
    parked = {(c.agent, c.penalty) for c in pol.member_penalties(s)}
    assert {("g0", PARKED + 4), ("g1", PARKED + 4)} <= parked


def _random_snapshot(rng: random.Random) -> tuple[Snapshot, list[str]]:
    """A few queues; agents with a home queue (skill 0) and maybe helper skills elsewhere."""
    names = [f"q{i}" for i in range(rng.randint(1, 4))]
    mem: dict[str, list[Member]] = {q: [] for q in names}
    home: dict[str, tuple[str, ...]] = {}
    for a in range(rng.randint(1, 12)):
        agent = f"a{a}"
        own = rng.choice(names)
        busy = rng.random() < 0.7
        home[agent] = (own,)
        mem[own].append(Member(agent, rng.choice([0, 1]), 0, busy))
        for q in names:
            if q != own and rng.random() < 0.4:
                skill = rng.randint(1, 4)
                pen = 2 * skill + 1 + (PARKED if rng.random() < 0.5 else 0)
                mem[q].append(Member(agent, pen, skill, busy))
    queues = [QueueView(q, tuple(mem[q]),
                        tuple(Waiting(f"{q}-w{i}", float(i), rng.choice([0, 0, 0, 10]),
                                      window_for(rng.randint(0, 2)))
                              for i in range(rng.randint(0, 6))))
              for q in names]
    st = StatsView({}, {q: rng.uniform(0.0, 0.1) for q in names}, rng.choice([0.0, 1 / 150]),
                   AHT)
    return snap(queues, home, st), names


def test_policy_invariants_on_random_states() -> None:
    """Whatever the state: a caller goes only to a queue able to take its topic, with a
    window no wider than max_skill_penalty; a waiting caller's window only ever widens in
    place; primary memberships are never touched and helper ones only parked or opened."""
    rng = random.Random(5)
    for _ in range(300):
        s, names = _random_snapshot(rng)
        pol = RoutingPolicy(PolicyParams(max_skill_penalty=rng.randint(0, 3),
                                         proficiency_cost_s=rng.choice([0.0, 10.0, 60.0])))
        able = tuple(rng.sample(names, rng.randint(1, len(names))))
        d = pol.choose_group(Caller("c", "t", able), s)
        assert d.queue in able
        assert d.max_penalty <= window_for(pol.params.max_skill_penalty)
        assert d.expected_wait_s >= 0.0
        for qv in s.queues.values():
            for w in qv.waiting:
                c = Caller(w.caller_id, "t", (qv.name, *[q for q in able if q != qv.name]),
                           queue=qv.name)
                mv = pol.reconsider(c, s)
                if mv is None:
                    continue
                assert mv.decision.queue in c.queues and mv.saving_s > pol.params.margin_s
                assert mv.decision.max_penalty <= window_for(pol.params.max_skill_penalty)
                if mv.decision.queue == qv.name:
                    assert mv.decision.max_penalty > w.max_penalty
        for ch in pol.member_penalties(s):
            m = next(m for m in s.queues[ch.queue].members if m.agent == ch.agent)
            assert m.skill > 0 and skill_of(ch.penalty) == skill_of(m.penalty)
            assert ch.penalty in (2 * m.skill + 1, PARKED + 2 * m.skill + 1)
