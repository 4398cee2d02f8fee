"""Queue layouts and the three baseline policies the scenario header defines.

- ``static``: a caller is served only by agents with penalty 0 for its topic.
- ``penalty_rules``: Asterisk queue rules ``penaltychange => 30,+1`` repeated — the caller's
  QUEUE_MAX_PENALTY grows by one every 30 s, so a penalty-p member becomes eligible after
  p x 30 s of waiting.
- ``full_flex``: every agent serves every topic at penalty 0 and full speed: one pooled
  queue, the limit no routing can beat.
"""

from __future__ import annotations

from dataclasses import dataclass

from routing.sim.engine import WAITING, Engine, QueueModel
from routing.sim.scenario import Scenario


def build_model(sc: Scenario, *, pooled: bool = False) -> QueueModel:
    """One queue per topic with the scenario's members; ``pooled`` gives the full_flex layout."""
    tix = {t: i for i, t in enumerate(sc.topic_names)}
    skills: list[dict[int, int]] = []
    members: list[dict[int, int]] = []
    group: list[int] = []
    for gi, g in enumerate(sc.agents):
        for _ in range(g.count):
            if pooled:
                skills.append({i: 0 for i in range(len(tix))})
                members.append({0: 0})
            else:
                sk = {tix[t]: p for t, p in g.skills}
                skills.append(sk)
                members.append(dict(sk))
            group.append(gi)
    if pooled:
        return QueueModel(("all",), tuple(0 for _ in tix), tuple(skills), tuple(members),
                          tuple(group), 1.0)
    return QueueModel(sc.topic_names, tuple(range(len(tix))), tuple(skills), tuple(members),
                      tuple(group), sc.secondary_slowdown)


class Quiet:
    """No-op event hooks for controllers that act only at arrival and on their own timers."""

    wants_events = False

    def on_timer(self, eng: Engine, c: int) -> None:
        pass

    def on_answer(self, eng: Engine, c: int, a: int) -> None:
        pass

    def on_depart(self, eng: Engine, a: int, c: int) -> None:
        pass

    def on_abandon(self, eng: Engine, c: int) -> None:
        pass

    def after_event(self, eng: Engine) -> None:
        pass


@dataclass(slots=True)
class Static(Quiet):
    """Primary members only: the window is [0, 0] for the whole wait."""

    def on_arrival(self, eng: Engine, c: int) -> None:
        eng.min_pen[c] = 0
        eng.max_pen[c] = 0


@dataclass(slots=True)
class PenaltyRules(Quiet):
    """``penaltychange => step_s,+1`` repeated up to the largest member penalty in the queue."""

    max_member_penalty: tuple[int, ...]   # per queue
    step_s: float = 30.0

    @classmethod
    def for_model(cls, model: QueueModel, step_s: float = 30.0) -> PenaltyRules:
        top = [0] * len(model.queues)
        for m in model.members:
            for q, p in m.items():
                top[q] = max(top[q], p)
        return cls(tuple(top), step_s)

    def on_arrival(self, eng: Engine, c: int) -> None:
        eng.min_pen[c] = 0
        eng.max_pen[c] = 0
        if self.max_member_penalty[eng.queue[c]] > 0:
            eng.schedule(eng.now + self.step_s, c)

    def on_timer(self, eng: Engine, c: int) -> None:
        k = eng.max_pen[c] + 1
        eng.set_window(c, 0, k)
        if k < self.max_member_penalty[eng.queue[c]] and eng.state[c] == WAITING:
            eng.schedule(eng.calls.arrival[c] + (k + 1) * self.step_s, c)

