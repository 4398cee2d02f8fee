"""From a classified need to a skill group's Asterisk queue.

This is the seam the routing policy plugs into: the call session asks ``route`` and gets a
decision it can carry out with ``EXEC Queue``. Anything unknown goes to the default group:
a caller is never left without a queue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ivr.config import GroupConfig

from .live_state import LiveQueues
from .policy import PARKED, Caller, RoutingPolicy
from .topics import Classification, TopicCatalogue

log = logging.getLogger("hotline.routing")


@dataclass(frozen=True, slots=True)
class RouteDecision:
    group: str
    queue: str
    reason: str
    max_penalty: int | None = None
    min_penalty: int | None = None
    priority: int = 0
    expected_wait_s: float | None = None

    def channel_vars(self) -> dict[str, str]:
        """What app_queue reads from the caller's channel when ``Queue()`` starts.

        A decision without a window (the default group, static routing, an overflow) still
        keeps out the memberships the rebalancer parked (at ``PARKED`` and above): without a
        limit app_queue rings them once every nearer member is busy, which is what parking
        an agent for its own queue's callers is meant to prevent."""
        out: dict[str, str] = {}
        if self.min_penalty is not None:
            out["QUEUE_MIN_PENALTY"] = str(self.min_penalty)
        out["QUEUE_MAX_PENALTY"] = str(self.max_penalty if self.max_penalty is not None
                                       else PARKED - 1)
        if self.priority:
            out["QUEUE_PRIO"] = str(self.priority)
        return out


class Router:
    """``strategy="static"``: a topic's first group. ``"expected_wait"``: the production
    policy picks, among the topic's groups, the queue and penalty window with the shortest
    expected wait plus a proficiency cost, from the live queue state."""

    def __init__(self, catalogue: TopicCatalogue, groups: list[GroupConfig],
                 default_group: str, *, min_confidence: float = 0.5,
                 strategy: str = "static", policy: RoutingPolicy | None = None,
                 live: LiveQueues | None = None) -> None:
        self._catalogue = catalogue
        self._groups = {g.name: g for g in groups}
        self._by_queue = {g.queue: g for g in groups}
        self._default = default_group
        self._min_conf = min_confidence
        self.strategy = strategy
        self.policy = policy
        self.live = live

    def default(self, reason: str) -> RouteDecision:
        g = self._groups[self._default]
        return RouteDecision(g.name, g.queue, reason)

    def route(self, c: Classification, caller_id: str = "") -> RouteDecision:
        if c.topic is None or c.topic not in self._catalogue:
            return self.default("no topic")
        if c.confidence < self._min_conf:
            return self.default(f"low confidence {c.confidence:.2f}")
        topic = self._catalogue.get(c.topic)
        g = self._groups[topic.groups[0]]
        static = RouteDecision(g.name, g.queue, f"primary group of {topic.name}")
        if self.strategy != "expected_wait" or self.policy is None or self.live is None:
            return static
        try:
            queues = tuple(self._groups[name].queue for name in topic.groups)
            d = self.policy.choose_group(
                Caller(caller_id or "?", topic.name, queues, emergency=topic.emergency),
                self.live.snapshot())
        except Exception:
            # A policy bug must cost the caller nothing: fall back to the static choice.
            log.exception("routing policy failed for %s; static route", topic.name)
            return static
        group = self._by_queue.get(d.queue, g)
        decision = RouteDecision(group.name, d.queue, d.reason, max_penalty=d.max_penalty,
                                 min_penalty=d.min_penalty or None, priority=d.priority,
                                 expected_wait_s=d.expected_wait_s)
        if caller_id:
            self.live.note_decision(caller_id, d.priority, d.max_penalty)
        return decision
