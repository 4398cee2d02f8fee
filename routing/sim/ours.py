"""Adapter: runs the production policy (``routing.policy``) inside the simulator.

The adapter plays the live service's part: it keeps a ``DecayedStats`` fed with what the
service would observe (arrivals, completed handle times, ended waits), builds the policy's
``Snapshot`` from the engine's queues, and applies the policy's answers the way the service
applies them to Asterisk (entry window and priority, Redirect with a new window, QueuePenalty).
It also records each decision's expected wait to measure the estimator against the wait that
actually followed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from routing.estimator import DecayedStats
from routing.policy import (
    Caller,
    Member,
    PolicyParams,
    RoutingPolicy,
    Snapshot,
    Waiting,
    initial_penalties,
)
from routing.sim.engine import SERVED, Engine, QueueModel
from routing.sim.scenario import Scenario


@dataclass(slots=True)
class OursController:
    model: QueueModel
    topics: tuple[str, ...]
    policy: RoutingPolicy
    stats: DecayedStats
    wants_events: bool = True
    predicted: dict[int, float] = field(default_factory=dict)
    moves: int = 0
    penalty_changes: int = 0
    _home: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _members: list[list[int]] = field(default_factory=list)     # per queue: agent ids
    _member_cache: dict[tuple[int, int, int, bool], Member] = field(default_factory=dict)
    _names: tuple[str, ...] = ()
    _qidx: dict[str, int] = field(default_factory=dict)
    _widest: list[int] = field(default_factory=list)           # per queue: widest window
    _ready: bool = False
    _views: dict[int, tuple[Member, ...]] = field(default_factory=dict)  # clean member tuples
    _agent_queues: list[tuple[int, ...]] = field(default_factory=list)
    # (time, params) changes applied during the run: the admin console's stand-in.
    param_changes: list[tuple[float, PolicyParams]] = field(default_factory=list)

    @classmethod
    def create(cls, sc: Scenario, model: QueueModel, params: PolicyParams | None) -> OursController:
        ctl = cls(model, sc.topic_names, RoutingPolicy(params or PolicyParams()), DecayedStats())
        ctl._names = tuple(str(a) for a in range(model.n_agents))
        ctl._qidx = {q: i for i, q in enumerate(model.queues)}
        ctl._members = [[a for a in range(model.n_agents) if q in model.members[a]]
                        for q in range(len(model.queues))]
        ctl._agent_queues = [tuple(m) for m in model.members]
        ctl._home = {str(a): tuple(model.queues[q] for q, p in model.members[a].items() if p == 0)
                     for a in range(model.n_agents)}
        return ctl

    # --- snapshot ----------------------------------------------------------------------
    def _member(self, eng: Engine, a: int, q: int) -> Member:
        pen = eng.member_pen[a][q]
        busy = a not in eng.idle
        key = (a, q, pen, busy)
        m = self._member_cache.get(key)
        if m is None:
            m = Member(self._names[a], pen, self.model.skills[a][q], busy)
            self._member_cache[key] = m
        return m

    def snapshot(self, eng: Engine) -> Snapshot:
        from routing.policy import QueueView
        arr = eng.calls.arrival
        queues = {}
        views = self._views
        for qi, name in enumerate(self.model.queues):
            members = views.get(qi)
            if members is None:
                members = tuple(self._member(eng, a, qi) for a in self._members[qi])
                views[qi] = members
            waiting = tuple(Waiting(str(c), arr[c], eng.prio[c], eng.max_pen[c])
                            for c in eng.waiting[qi])
            queues[name] = QueueView(name, members, waiting)
        return Snapshot(eng.now, queues, self._home, self.stats.view(eng.now))

    def _attach(self, eng: Engine) -> None:
        """Provision the policy's member-penalty layout before the first call."""
        self._ready = True
        p = self.policy.params
        for ch in initial_penalties(self.snapshot(eng), p):
            eng.member_pen[int(ch.agent)][self._qidx[ch.queue]] = ch.penalty
        self._views.clear()
        self._widest = [max((eng.member_pen[a][q] for a in self._members[q]
                             if eng.member_pen[a][q] < 1000), default=0)
                        for q in range(len(self.model.queues))]

    # --- engine hooks --------------------------------------------------------------------
    def _console(self, now: float) -> None:
        """Apply due parameter changes: the policy object is kept, its params replaced."""
        while self.param_changes and self.param_changes[0][0] <= now:
            self.policy.params = self.param_changes.pop(0)[1]

    def on_arrival(self, eng: Engine, c: int) -> None:
        if not self._ready:
            self._attach(eng)
        self._console(eng.now)
        topic = self.topics[eng.calls.topic[c]]
        q = eng.queue[c]
        self.stats.observe_arrival(self.model.queues[q], eng.now)
        caller = Caller(str(c), topic, (self.model.queues[q],))
        d = self.policy.choose_group(caller, self.snapshot(eng))
        eng.queue[c] = self._qidx[d.queue]
        eng.min_pen[c], eng.max_pen[c], eng.prio[c] = d.min_penalty, d.max_penalty, d.priority
        self.predicted[c] = d.expected_wait_s

    def on_timer(self, eng: Engine, c: int) -> None:
        pass

    def _touch(self, a: int) -> None:
        """Agent ``a`` changed state: its queues' member views must be rebuilt."""
        for q in self._agent_queues[a]:
            self._views.pop(q, None)

    def on_answer(self, eng: Engine, c: int, a: int) -> None:
        self._touch(a)
        self.stats.observe_wait_end(eng.now - eng.calls.arrival[c], False, eng.now)

    def on_depart(self, eng: Engine, a: int, c: int) -> None:
        self._touch(a)
        q = self.model.queues[eng.queue[c]]
        self.stats.observe_handle(q, eng.served_pen[c], eng.now - eng.answered_at[c], eng.now)

    def on_abandon(self, eng: Engine, c: int) -> None:
        self.stats.observe_wait_end(eng.now - eng.calls.arrival[c], True, eng.now)

    def after_event(self, eng: Engine) -> None:
        if not self._ready:
            return
        self._console(eng.now)
        snap = self.snapshot(eng)
        changes = self.policy.member_penalties(snap)
        for ch in changes:
            a = int(ch.agent)
            self._touch(a)
            eng.set_member_penalty(a, self._qidx[ch.queue], ch.penalty)
        self.penalty_changes += len(changes)
        if changes:
            snap = self.snapshot(eng)
        for qi, name in enumerate(self.model.queues):
            for c in list(eng.waiting[qi]):
                # Each topic has one queue here: a caller already at the widest window has
                # nowhere to move, so skip asking (a shortcut, not a decision).
                if eng.max_pen[c] >= self._widest[qi] or eng.state[c] != 1:
                    continue
                caller = Caller(str(c), self.topics[eng.calls.topic[c]], (name,), queue=name)
                mv = self.policy.reconsider(caller, snap)
                if mv is not None:
                    d = mv.decision
                    eng.set_window(c, d.min_penalty, d.max_penalty, d.priority,
                                   self._qidx[d.queue])
                    self.moves += 1

    # --- report --------------------------------------------------------------------------
    def report(self, eng: Engine) -> dict[str, float]:
        arr = eng.calls.arrival
        errs = [eng.answered_at[c] - arr[c] - w for c, w in self.predicted.items()
                if eng.measured[c] and eng.state[c] == SERVED and math.isfinite(w)]
        waited = [eng.answered_at[c] - arr[c] - w for c, w in self.predicted.items()
                  if eng.measured[c] and eng.state[c] == SERVED and math.isfinite(w)
                  and (w > 0.0 or eng.answered_at[c] > arr[c])]
        n = sum(eng.measured)
        return {
            "estimator_mae_s": sum(abs(e) for e in errs) / len(errs) if errs else math.nan,
            "estimator_bias_s": sum(errs) / len(errs) if errs else math.nan,
            # The same over callers who waited or were told they would: the harder half.
            "estimator_mae_waited_s": (sum(abs(e) for e in waited) / len(waited)
                                       if waited else math.nan),
            "moves_per_call": self.moves / max(1, len(self.predicted)),
            "penalty_changes_per_call": self.penalty_changes / max(1, len(self.predicted)),
            "measured_calls": float(n),
        }
