"""Discrete-event engine with Asterisk queue semantics.

Model: queues with members (agent, penalty), as ``queues.conf`` members with ``penalty=``;
each waiting caller is in one queue with a penalty window ``[min_penalty, max_penalty]``
(``QUEUE_MIN_PENALTY``/``QUEUE_MAX_PENALTY``) and a priority (``QUEUE_PRIO``). Dispatch follows
the scenario header, the same for every policy:

- a freed agent takes, among the callers it is eligible for (member of their queue with a
  penalty inside their window), the one with the highest priority, then the longest-waiting;
- a caller that can be served takes the eligible idle agent with the lowest penalty, then the
  one idle longest.

A policy acts only through what Asterisk offers a controller: the window and priority a
caller enters with, changing it later (a Redirect back into the queue with new variables, or a
queue rule), and member penalties (the AMI ``QueuePenalty`` action). The handle time depends
on the agent's *skill* penalty for the topic (proficiency), not on a member penalty a policy
set for routing.

Speed: calls come pre-drawn (``streams.py``), arrivals are merged from a sorted list instead
of being pushed on the heap, idle agents are an insertion-ordered dict (iteration order is
"idle longest first"), and the waiting lists are short Python lists kept in priority/arrival
order (caller ids are in arrival order, so the key is ``(-prio, id)``).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Protocol

from routing.sim.streams import Calls

FUTURE, WAITING, SERVED, ABANDONED = 0, 1, 2, 3
_DEPART, _ABANDON, _TIMER = 0, 1, 2


@dataclass(frozen=True, slots=True)
class QueueModel:
    """Static layout: queue names, each topic's queue, and per agent its skills and members.

    ``skills[a]`` maps topic index -> proficiency penalty (drives the slowdown);
    ``members[a]`` maps queue index -> initial member penalty.
    """

    queues: tuple[str, ...]
    topic_queue: tuple[int, ...]
    skills: tuple[dict[int, int], ...]
    members: tuple[dict[int, int], ...]
    agent_group: tuple[int, ...]       # index of the scenario [[agents]] block, for reports
    slowdown: float

    @property
    def n_agents(self) -> int:
        return len(self.skills)


class Controller(Protocol):
    """What a routing policy plugs into the engine.

    ``on_arrival`` writes the caller's entry window (``eng.queue/min_pen/max_pen/prio``)
    directly; ``on_timer`` handles the caller timers it scheduled. The observation hooks and
    ``after_event`` are only called when ``wants_events`` is true, so that the baselines pay
    nothing per event.
    """

    wants_events: bool

    def on_arrival(self, eng: Engine, c: int) -> None: ...
    def on_timer(self, eng: Engine, c: int) -> None: ...
    def on_answer(self, eng: Engine, c: int, a: int) -> None: ...
    def on_depart(self, eng: Engine, a: int, c: int) -> None: ...
    def on_abandon(self, eng: Engine, c: int) -> None: ...
    def after_event(self, eng: Engine) -> None: ...


class Engine:
    def __init__(self, model: QueueModel, calls: Calls, ctl: Controller) -> None:
        self.model = model
        self.calls = calls
        self.ctl = ctl
        n, na, nq = len(calls), model.n_agents, len(model.queues)
        self.now = -math.inf
        self.state = [FUTURE] * n
        self.queue = [0] * n
        self.min_pen = [0] * n
        self.max_pen = [0] * n
        self.prio = [0] * n
        self.answered_at = [math.nan] * n
        self.served_pen = [-1] * n
        self.served_by = [-1] * n
        self.waiting: list[list[int]] = [[] for _ in range(nq)]
        self.member_pen: list[dict[int, int]] = [dict(m) for m in model.members]
        self.busy_until = [0.0] * na          # valid while the agent is busy
        self.busy_since = [0.0] * na
        self.serving = [-1] * na               # caller id, -1 = idle
        self.idle: dict[int, float] = {a: -math.inf for a in range(na)}  # agent -> idle since
        self._heap: list[tuple[float, int, int, int]] = []
        self._seq = 0
        self._wants = ctl.wants_events
        m_from, m_to = calls.measured_from, calls.measured_to
        self.measured = [m_from <= t < m_to for t in calls.arrival]
        self.unresolved = sum(self.measured)   # the run ends when this reaches 0

    # --- actions available to controllers --------------------------------------------
    def schedule(self, t: float, c: int) -> None:
        """A controller timer for caller ``c`` (e.g. an Asterisk queue rule step)."""
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, _TIMER, c))

    def set_window(self, c: int, min_pen: int, max_pen: int, prio: int | None = None,
                   queue: int | None = None) -> None:
        """Change a waiting caller's queue/penalty window/priority, keeping its arrival order
        (in Asterisk: Redirect back into Queue() with the new variables and its position)."""
        if self.state[c] != WAITING:
            return
        moved = (queue is not None and queue != self.queue[c]) or (
            prio is not None and prio != self.prio[c])
        if moved:
            self.waiting[self.queue[c]].remove(c)
            if queue is not None:
                self.queue[c] = queue
            if prio is not None:
                self.prio[c] = prio
            self._enqueue(c)
        self.min_pen[c], self.max_pen[c] = min_pen, max_pen
        self._offer(c)

    def set_member_penalty(self, a: int, q: int, pen: int) -> None:
        """AMI QueuePenalty: an idle agent is offered the callers it has just become
        eligible for."""
        mp = self.member_pen[a]
        if mp.get(q) == pen:
            return
        mp[q] = pen
        if a in self.idle:
            self._agent_free(a)

    # --- internals -------------------------------------------------------------------
    def _enqueue(self, c: int) -> None:
        w = self.waiting[self.queue[c]]
        p = self.prio[c]
        if not w or (self.prio[w[-1]] >= p and w[-1] < c):
            w.append(c)
            return
        prio = self.prio
        i = len(w)
        while i > 0 and (prio[w[i - 1]] < p or (prio[w[i - 1]] == p and w[i - 1] > c)):
            i -= 1
        w.insert(i, c)

    def _offer(self, c: int) -> bool:
        """Serve caller ``c`` if an eligible agent is idle (``_pick_idle``)."""
        q = self.queue[c]
        best = self._pick_idle(c, q)
        if best < 0:
            return False
        self.waiting[q].remove(c)
        del self.idle[best]
        self._serve(c, best)
        return True

    def _pick_idle(self, c: int, q: int) -> int:
        """The idle agent caller ``c`` in queue ``q`` takes: inside its window, lowest
        penalty, then idle longest; -1 if none."""
        lo, hi = self.min_pen[c], self.max_pen[c]
        best, best_p = -1, hi + 1
        mp = self.member_pen
        for a in self.idle:
            p = mp[a].get(q)
            if p is not None and lo <= p < best_p:
                best, best_p = a, p
                if p == lo:
                    break
        return best

    def _agent_free(self, a: int) -> None:
        """Agent ``a`` is (or stays) idle: take the best caller it is eligible for."""
        best, best_key = -1, (1, 0)
        prio, lo, hi = self.prio, self.min_pen, self.max_pen
        for q, p in self.member_pen[a].items():
            for c in self.waiting[q]:
                if lo[c] <= p <= hi[c]:
                    key = (-prio[c], c)
                    if key < best_key:
                        best, best_key = c, key
                    break
        if best < 0:
            if a not in self.idle:
                self.idle[a] = self.now
            return
        self.waiting[self.queue[best]].remove(best)
        self.idle.pop(a, None)
        self._serve(best, a)

    def _serve(self, c: int, a: int) -> None:
        calls = self.calls
        pen = self.model.skills[a][calls.topic[c]]
        h = calls.handle[c]
        if pen > 0:
            h *= self.model.slowdown
        self.state[c] = SERVED
        if self.measured[c]:
            self.unresolved -= 1
        self.answered_at[c] = self.now
        self.served_pen[c] = pen
        self.served_by[c] = a
        self.serving[a] = c
        self.busy_since[a] = self.now
        self.busy_until[a] = self.now + h
        self._seq += 1
        heapq.heappush(self._heap, (self.now + h, self._seq, _DEPART, a))
        if self._wants:
            self.ctl.on_answer(self, c, a)

    def run(self) -> None:
        calls, ctl = self.calls, self.ctl
        arrival, patience = calls.arrival, calls.patience
        n = len(calls)
        heap = self._heap
        pop, push = heapq.heappop, heapq.heappush
        state, measured = self.state, self.measured
        topic_queue, topic = self.model.topic_queue, calls.topic
        wants = ctl.wants_events
        i = 0
        while self.unresolved > 0:
            ta = arrival[i] if i < n else math.inf
            if heap and heap[0][0] <= ta:
                t, _, kind, x = pop(heap)
                self.now = t
                if kind == _DEPART:
                    if wants:
                        ctl.on_depart(self, x, self.serving[x])
                    self.serving[x] = -1
                    self._agent_free(x)
                elif kind == _ABANDON:
                    if state[x] != WAITING:
                        continue
                    state[x] = ABANDONED
                    self.waiting[self.queue[x]].remove(x)
                    if measured[x]:
                        self.unresolved -= 1
                    if wants:
                        ctl.on_abandon(self, x)
                else:
                    if state[x] != WAITING:
                        continue
                    ctl.on_timer(self, x)
            elif ta == math.inf:
                break  # cannot happen with finite patience or a stable queue; guards a hang
            else:
                self.now = ta
                c = i
                i += 1
                # The controller writes the entry window (queue, penalties, priority) directly.
                self.queue[c] = topic_queue[topic[c]]
                ctl.on_arrival(self, c)
                state[c] = WAITING
                self._enqueue(c)
                if not self._offer(c):
                    pt = patience[c]
                    if pt != math.inf:
                        self._seq += 1
                        push(heap, (ta + pt, self._seq, _ABANDON, c))
            if wants:
                ctl.after_event(self)
