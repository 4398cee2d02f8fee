"""Routing policy: send each caller where its expected wait is shortest, in Asterisk terms.

The same code runs in the live service and in the simulator (``routing/sim/ours.py``). It sees
a small frozen ``Snapshot`` (per queue: members with their member penalty, proficiency and
busy state; waiting callers in service order; decayed handle-time, arrival and abandonment
estimates) and answers three questions, each mapping 1:1 onto Asterisk:

``choose_group(caller, snap) -> Decision``
    At arrival: the queue and penalty window (``EXEC Queue <queue>`` with
    ``QUEUE_MIN_PENALTY``/``QUEUE_MAX_PENALTY`` and ``QUEUE_PRIO``) minimising expected wait
    plus ``proficiency_cost_s`` per step of lower proficiency.
``reconsider(caller, snap) -> Move | None``
    While waiting: a wider window or another queue when that option's expected wait plus cost
    beats the current one by ``margin_s`` (AMI Redirect back into ``Queue()`` with the new
    variables and the caller's position).
``member_penalties(snap) -> list[PenaltyChange]``
    Queue penalties (AMI ``QueuePenalty``). A multi-skilled agent is offered to callers of a
    topic it is *less* proficient in only while that saves more wait than it costs: the
    expected wait of that queue's next caller (without this agent) must exceed the wait it
    would cause its own callers by the proficiency cost. Otherwise its membership there is
    parked at ``PARKED`` + its penalty (outside every caller window), so an agent freed
    while its own callers wait serves them rather than whoever waited longest elsewhere.

Member penalties encode proficiency: ``STRIDE * skill`` (+1 for agents with several skills when
``specialists_first``, so a caller takes an idle specialist before an idle multi-skilled agent,
keeping the flexible agent free for the queue only it can help). A window that admits
proficiency up to ``s`` is ``[0, STRIDE * s + 1]``.

Nothing here does I/O or keeps global state; ``RoutingPolicy.params`` is replaced whole at run
time (admin console) and the next decision uses it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from routing.estimator import StatsView, expected_wait

STRIDE = 2
# A parked membership sits at PARKED + its routing penalty: outside every caller window, yet
# its proficiency stays readable from the penalty alone (``skill_of``).
PARKED = 1000

MAX_SECONDS = 3600.0
MAX_SKILL = 100
MAX_PRIORITY = 1_000_000


class PolicyParams(BaseModel):
    """Run-time tunables (validated: the admin console sends these)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Upper bounds keep what reaches Asterisk sane: windows (STRIDE * skill + 1) stay below
    # PARKED, and QUEUE_PRIO (the sum of a caller's weights) within a C int.
    margin_s: float = Field(10.0, ge=0.0, le=MAX_SECONDS,
                            description="a move must save at least this much")
    proficiency_cost_s: float = Field(
        10.0, ge=0.0, le=MAX_SECONDS,
        description="cost of one step of lower proficiency, in seconds of wait")
    max_skill_penalty: int = Field(3, ge=0, le=MAX_SKILL,
                                   description="never route beyond this proficiency")
    specialists_first: bool = True
    park_helpers: bool = True
    look_ahead: bool = True
    priority_emergency: int = Field(100, ge=0, le=MAX_PRIORITY)
    priority_flagged: int = Field(20, ge=0, le=MAX_PRIORITY)
    priority_repeat: int = Field(10, ge=0, le=MAX_PRIORITY,
                                 description="called within the last 7 days")
    priority_enterprise: int = Field(5, ge=0, le=MAX_PRIORITY)

    def replace(self, *, strict: bool = False, **changes: object) -> PolicyParams:
        """A validated copy with some fields changed (what the admin console applies).
        ``strict``: JSON types as they are ("5" is no number, 0 no boolean)."""
        return PolicyParams.model_validate({**self.model_dump(), **changes}, strict=strict)


# --- snapshot ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Member:
    agent: str
    penalty: int          # current member penalty (what Asterisk routes on)
    skill: int            # proficiency for this queue's topic: 0 = primary
    busy: bool


@dataclass(frozen=True, slots=True)
class Waiting:
    caller_id: str
    entered: float        # arrival time: the service order key within a priority
    priority: int
    max_penalty: int


@dataclass(frozen=True, slots=True)
class QueueView:
    name: str
    members: tuple[Member, ...]
    waiting: tuple[Waiting, ...]      # in service order (priority, then arrival)


@dataclass(frozen=True)
class Snapshot:
    now: float
    queues: Mapping[str, QueueView]
    home: Mapping[str, tuple[str, ...]]   # agent -> queues it is primary (skill 0) in
    stats: StatsView
    # Figures derived from this snapshot, memoised by the policy (the snapshot is immutable,
    # so they cannot go stale).
    _memo: dict[object, object] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Caller:
    caller_id: str
    topic: str
    queues: tuple[str, ...]       # queues able to handle the topic, most proficient first
    queue: str | None = None      # where it waits now (for reconsider)
    emergency: bool = False
    repeat_7d: bool = False
    enterprise: bool = False
    flagged: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    queue: str
    min_penalty: int
    max_penalty: int
    priority: int
    expected_wait_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class Move:
    """Redirect the waiting caller into ``decision.queue`` with the new window, keeping its
    place (a window change in the same queue is the same Redirect)."""

    caller_id: str
    decision: Decision
    saving_s: float


@dataclass(frozen=True, slots=True)
class PenaltyChange:
    queue: str
    agent: str
    penalty: int
    reason: str


def routing_penalty(skill: int, multi_skilled: bool, params: PolicyParams) -> int:
    """Member penalty for a proficiency level (the layout the live service provisions)."""
    return STRIDE * skill + (1 if multi_skilled and params.specialists_first else 0)


def skill_of(penalty: int) -> int:
    """Proficiency encoded in a member penalty, parked or not (for a live state that only
    sees penalties)."""
    if penalty >= PARKED:
        penalty -= PARKED
    return penalty // STRIDE


def window_for(skill: int) -> int:
    """QUEUE_MAX_PENALTY that admits members up to proficiency ``skill``."""
    return STRIDE * skill + 1


def caller_priority(c: Caller, p: PolicyParams) -> int:
    """QUEUE_PRIO: flags add up, so an emergency repeat caller outranks a plain emergency."""
    return (p.priority_emergency * c.emergency + p.priority_flagged * c.flagged
            + p.priority_repeat * c.repeat_7d + p.priority_enterprise * c.enterprise)


@dataclass(slots=True)
class _Option:
    queue: str
    skill: int            # widest proficiency admitted
    wait_s: float
    cost_s: float

    @property
    def score(self) -> float:
        return self.wait_s + self.cost_s


@dataclass(slots=True)
class RoutingPolicy:
    params: PolicyParams = field(default_factory=PolicyParams)

    # --- expected waits -------------------------------------------------------------------
    @staticmethod
    def _pool(snap: Snapshot, qv: QueueView, max_pen: int,
              without: str | None = None) -> tuple[float, int]:
        """(total service rate, idle count) of the members inside ``[0, max_pen]``."""
        key = ("pool", qv.name, max_pen)
        got = snap._memo.get(key)
        if got is None:
            stats = snap.stats
            rate, idle = 0.0, 0
            for m in qv.members:
                if m.penalty <= max_pen:
                    rate += 1.0 / stats.aht(qv.name, m.skill)
                    idle += not m.busy
            got = (rate, idle)
            snap._memo[key] = got
        rate, idle = got  # type: ignore[misc]
        if without is not None:
            gone = _by_agent(snap, qv).get(without)
            if gone is not None and gone.penalty <= max_pen:
                rate -= 1.0 / snap.stats.aht(qv.name, gone.skill)
                idle -= not gone.busy
        return rate, idle

    def wait_in(self, snap: Snapshot, queue: str, max_pen: int, ahead: float,
                without: str | None = None, horizon_s: float = 0.0) -> float:
        """Expected wait behind ``ahead`` callers for the members inside ``[0, max_pen]``.

        With ``horizon_s`` > 0, the wait of a caller arriving that much later: callers ahead
        grow by the arrivals the pool cannot absorb meanwhile (zero unless it is overloaded),
        which is what makes a surge visible before its queue has formed.
        """
        qv = snap.queues[queue]
        rate, idle = self._pool(snap, qv, max_pen, without)
        if idle > 0:
            # Callers ahead cannot use an idle member of this window (Asterisk would already
            # have connected them), so it is free for this caller.
            ahead = 0
        if horizon_s > 0.0:
            ahead += max(0.0, (snap.stats.rate(queue) - rate) * horizon_s)
        return expected_wait(ahead, idle, rate, snap.stats.theta)

    @staticmethod
    def _served_skill(snap: Snapshot, qv: QueueView, max_pen: int) -> float:
        """Expected proficiency of the member that will answer a caller with window
        ``[0, max_pen]``: the lowest-penalty idle member if there is one (that is who Asterisk
        rings), else whoever frees first, each busy member with odds in proportion to its
        service rate. A wide window costs only as much as the helpers it is likely to get."""
        key = ("served", qv.name, max_pen)
        got = snap._memo.get(key)
        if got is None:
            stats = snap.stats
            idle = [m for m in qv.members if m.penalty <= max_pen and not m.busy]
            if idle:
                got = float(min(idle, key=lambda m: m.penalty).skill)
            else:
                num = den = 0.0
                for m in qv.members:
                    if m.penalty <= max_pen:
                        r = 1.0 / stats.aht(qv.name, m.skill)
                        num += r * m.skill
                        den += r
                got = num / den if den > 0 else 0.0
            snap._memo[key] = got
        return got  # type: ignore[return-value]

    def _skills(self, qv: QueueView) -> list[int]:
        return sorted({m.skill for m in qv.members if m.skill <= self.params.max_skill_penalty})

    def admitted(self, snap: Snapshot, qv: QueueView, ahead: float) -> tuple[int, float]:
        """(widest proficiency a caller ``ahead`` callers back should accept, expected wait).

        A wider window never makes the caller wait longer: the lowest-penalty idle member
        still answers first, and a less proficient one answers only when it is free before
        the narrower pool would be. Its cost is paid only if that happens, so the caller
        accepts proficiency ``s`` once the wait it faces without it exceeds what being served
        at ``s`` costs (``proficiency_cost_s`` per step below what it would get anyway).
        Whether a helper is actually offered to this queue is the member side's decision
        (``member_penalties``).

        With ``park_helpers`` (the member side decides who is offered) every caller takes the
        widest window: Asterisk reads a window once, at Queue(), and app_queue lets a caller
        ring only while fewer callers are ahead of it than members are free, whatever their
        windows. Callers with narrower windows at the head would hold back one that could
        take a helper just offered, and a window chosen at arrival never widens."""
        if self.params.park_helpers:
            skills = self._skills(qv)
            widest = skills[-1] if skills else 0
            return widest, self.wait_in(snap, qv.name, window_for(widest), ahead)
        c = self.params.proficiency_cost_s
        skill = 0
        wait = self.wait_in(snap, qv.name, window_for(0), ahead)
        for s in self._skills(qv):
            if s <= skill:
                continue
            if wait <= (s - self._served_skill(snap, qv, window_for(skill))) * c:
                break
            skill = s
            wait = self.wait_in(snap, qv.name, window_for(s), ahead)
        return skill, wait

    def _options(self, caller: Caller, snap: Snapshot, prio: int,
                 ahead_here: int | None) -> list[_Option]:
        p = self.params
        out = []
        for rank, q in enumerate(caller.queues):
            qv = snap.queues.get(q)
            if qv is None:
                continue
            if ahead_here is not None and q == caller.queue:
                ahead = ahead_here
            else:
                ahead = sum(1 for w in qv.waiting if w.priority >= prio)
            s, w = self.admitted(snap, qv, ahead)
            cost = rank + self._served_skill(snap, qv, window_for(s))
            out.append(_Option(q, s, w, cost * p.proficiency_cost_s))
        return out

    @staticmethod
    def _best(opts: list[_Option]) -> _Option:
        # Lowest expected wait plus cost; on a tie the more proficient (cheaper) option.
        return min(opts, key=lambda o: (o.score, o.cost_s))

    # --- the three questions ---------------------------------------------------------------
    def choose_group(self, caller: Caller, snap: Snapshot) -> Decision:
        prio = caller_priority(caller, self.params)
        opts = self._options(caller, snap, prio, None)
        if not opts:
            # Nobody can take this topic: the first configured queue, never a dropped call.
            return Decision(caller.queues[0], 0, window_for(0), prio, math.inf, "no members")
        b = self._best(opts)
        reason = f"{b.queue} up to proficiency {b.skill}: wait {b.wait_s:.0f}s + cost {b.cost_s:.0f}s"
        return Decision(b.queue, 0, window_for(b.skill), prio, b.wait_s, reason)

    def reconsider(self, caller: Caller, snap: Snapshot) -> Move | None:
        if caller.queue is None or caller.queue not in snap.queues:
            return None
        here = snap.queues[caller.queue]
        idx = next((i for i, w in enumerate(here.waiting) if w.caller_id == caller.caller_id), -1)
        if idx < 0:
            return None
        me = here.waiting[idx]
        rank = caller.queues.index(caller.queue) if caller.queue in caller.queues else 0
        skill_now = max(0, (me.max_penalty - 1) // STRIDE)
        cur = _Option(caller.queue, skill_now,
                      self.wait_in(snap, caller.queue, me.max_penalty, idx),
                      (rank + self._served_skill(snap, here, me.max_penalty))
                      * self.params.proficiency_cost_s)
        b = self._best(self._options(caller, snap, me.priority, idx))
        if b.queue == cur.queue and b.skill <= cur.skill:
            return None   # never narrow a window: that would only lose the caller its options
        # Every move is a Redirect of a waiting caller: worth it only beyond the margin.
        if not math.isfinite(b.score):
            return None   # nobody there to serve it either (all members parked or absent)
        saving = cur.score - b.score   # inf when nobody can serve the caller where it is
        if not saving > self.params.margin_s:
            return None
        reason = (f"{b.queue} up to proficiency {b.skill} saves {saving:.0f}s "
                  f"(wait {cur.wait_s:.0f}s -> {b.wait_s:.0f}s)")
        return Move(caller.caller_id,
                    Decision(b.queue, 0, window_for(b.skill), me.priority, b.wait_s, reason),
                    saving)

    def member_penalties(self, snap: Snapshot) -> list[PenaltyChange]:
        """Park or unpark each less-proficient membership (see the module docstring)."""
        p = self.params
        multi = _multi_skilled(snap)
        changes: list[PenaltyChange] = []
        next_wait: dict[tuple[str, int], float] = {}
        for qv in snap.queues.values():
            for m in qv.members:
                skill = skill_of(m.penalty) if m.penalty >= PARKED else m.skill
                if skill == 0:
                    continue
                base = routing_penalty(skill, m.agent in multi, p)
                want, why = base, "helper"
                if skill > p.max_skill_penalty:
                    want, why = PARKED + base, "beyond max proficiency"
                elif p.park_helpers:
                    away = snap.stats.aht(qv.name, skill) if p.look_ahead else 0.0
                    key = (qv.name, skill)
                    if key not in next_wait:
                        # The next caller here, served only by the more proficient members.
                        next_wait[key] = self.wait_in(
                            snap, qv.name, window_for(skill - 1), len(qv.waiting),
                            horizon_s=away)
                    gain = next_wait[key] - self._blocking(snap, m.agent, away)
                    if gain <= skill * p.proficiency_cost_s:
                        want, why = PARKED + base, f"own callers first (gain {gain:.0f}s)"
                if want != m.penalty:
                    changes.append(PenaltyChange(qv.name, m.agent, want, why))
        return changes

    def _blocking(self, snap: Snapshot, agent: str, away_s: float) -> float:
        """Expected wait of the next caller of the agent's own queues if the agent is away."""
        worst = 0.0
        for q in snap.home.get(agent, ()):
            qv = snap.queues.get(q)
            if qv is None:
                continue
            me = _by_agent(snap, qv).get(agent)
            # Agents of one pool in the same state block alike: memoise on that state.
            key = ("block", q, None if me is None else (me.skill, me.busy, me.penalty), away_s)
            w = snap._memo.get(key)
            if w is None:
                w = self.wait_in(snap, q, window_for(0), len(qv.waiting), without=agent,
                                 horizon_s=away_s)
                snap._memo[key] = w
            worst = max(worst, w)  # type: ignore[call-overload]
        return worst


def _by_agent(snap: Snapshot, qv: QueueView) -> dict[str, Member]:
    key = ("members", qv.name)
    got = snap._memo.get(key)
    if got is None:
        got = {m.agent: m for m in qv.members}
        snap._memo[key] = got
    return got  # type: ignore[return-value]


def _multi_skilled(snap: Snapshot) -> set[str]:
    got = snap._memo.get("multi")
    if got is None:
        seen: dict[str, int] = {}
        for qv in snap.queues.values():
            for m in qv.members:
                seen[m.agent] = seen.get(m.agent, 0) + 1
        got = {a for a, n in seen.items() if n > 1}
        snap._memo["multi"] = got
    return got  # type: ignore[return-value]


def initial_penalties(snap: Snapshot, params: PolicyParams) -> list[PenaltyChange]:
    """The member-penalty layout to provision before the first call (specialists first)."""
    multi = _multi_skilled(snap)
    return [PenaltyChange(qv.name, m.agent, routing_penalty(m.skill, m.agent in multi, params),
                          "layout")
            for qv in snap.queues.values() for m in qv.members
            if routing_penalty(m.skill, m.agent in multi, params) != m.penalty]
