"""Metric definitions (pinned here; every report uses these functions).

Over the calls that arrive in the measured window [0, duration_s) of one seed:

- ``asa_s``: average speed of answer = mean wait of *answered* calls (arrival to answer).
- ``p90_wait_s``: 90th percentile of the answered calls' waits (linear interpolation).
- ``service_level``: share of answered calls answered within ``service_level_s``.
- ``abandon_rate``: abandoned / arrived.
- ``primary_share``: share of answered calls served by an agent whose skill penalty for the
  call's topic is 0.

A scenario's figure is the plain mean of the per-seed figures over its seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from routing.sim.engine import ABANDONED, SERVED, Engine

METRICS = ("asa_s", "p90_wait_s", "service_level", "abandon_rate", "primary_share")


@dataclass(frozen=True, slots=True)
class SeedResult:
    seed: int
    asa_s: float
    p90_wait_s: float
    service_level: float
    abandon_rate: float
    primary_share: float
    arrived: int
    answered: int
    extra: dict[str, float] = field(default_factory=dict)
    # Total time callers of each topic spent waiting, answered or not (where waiting is).
    wait_by_topic: dict[str, float] = field(default_factory=dict)

    def metric(self, name: str) -> float:
        return float(getattr(self, name)) if name in METRICS else self.extra[name]


def seed_result(eng: Engine, seed: int, service_level_s: float,
                extra: dict[str, float] | None = None,
                topics: tuple[str, ...] = ()) -> SeedResult:
    calls = eng.calls
    arr = calls.arrival
    waits: list[float] = []
    by_topic = [0.0] * (max(calls.topic, default=0) + 1)
    arrived = abandoned = primary = 0
    for c, m in enumerate(eng.measured):
        if not m:
            continue
        arrived += 1
        st = eng.state[c]
        if st == SERVED:
            w = eng.answered_at[c] - arr[c]
            waits.append(w)
            by_topic[calls.topic[c]] += w
            if eng.served_pen[c] == 0:
                primary += 1
        elif st == ABANDONED:
            abandoned += 1
            by_topic[calls.topic[c]] += calls.patience[c]
    wait_arr = np.asarray(waits)
    n = len(waits)
    return SeedResult(
        seed=seed,
        asa_s=float(wait_arr.mean()) if n else math.nan,
        p90_wait_s=float(np.percentile(wait_arr, 90)) if n else math.nan,
        service_level=float((wait_arr <= service_level_s).mean()) if n else math.nan,
        abandon_rate=abandoned / arrived if arrived else math.nan,
        primary_share=primary / n if n else math.nan,
        arrived=arrived,
        answered=n,
        extra=dict(extra or {}),
        wait_by_topic={t: by_topic[i] for i, t in enumerate(topics) if i < len(by_topic)},
    )


def aggregate(results: list[SeedResult]) -> dict[str, float]:
    """Mean over seeds of every metric (and of every extra both share)."""
    out = {m: float(np.mean([r.metric(m) for r in results])) for m in METRICS}
    if results:
        keys = set(results[0].extra)
        for r in results[1:]:
            keys &= set(r.extra)
        for k in sorted(keys):
            out[k] = float(np.nanmean([r.extra[k] for r in results]))
    return out
