"""From a classified need to a skill group's Asterisk queue.

This is the seam the routing policy plugs into: the call session asks ``route`` and gets a
decision it can carry out with ``EXEC Queue``. Anything unknown goes to the default group:
a caller is never left without a queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.config import GroupConfig

from .topics import Classification, TopicCatalogue


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
        """What app_queue reads from the caller's channel when ``Queue()`` starts."""
        out: dict[str, str] = {}
        if self.min_penalty is not None:
            out["QUEUE_MIN_PENALTY"] = str(self.min_penalty)
        if self.max_penalty is not None:
            out["QUEUE_MAX_PENALTY"] = str(self.max_penalty)
        if self.priority:
            out["QUEUE_PRIO"] = str(self.priority)
        return out


class Router:
    def __init__(self, catalogue: TopicCatalogue, groups: list[GroupConfig],
                 default_group: str, *, min_confidence: float = 0.5) -> None:
        self._catalogue = catalogue
        self._groups = {g.name: g for g in groups}
        self._default = default_group
        self._min_conf = min_confidence

    def default(self, reason: str) -> RouteDecision:
        g = self._groups[self._default]
        return RouteDecision(g.name, g.queue, reason)

    def route(self, c: Classification) -> RouteDecision:
        if c.topic is None or c.topic not in self._catalogue:
            return self.default("no topic")
        if c.confidence < self._min_conf:
            return self.default(f"low confidence {c.confidence:.2f}")
        topic = self._catalogue.get(c.topic)
        g = self._groups[topic.groups[0]]
        return RouteDecision(g.name, g.queue, f"primary group of {topic.name}")
