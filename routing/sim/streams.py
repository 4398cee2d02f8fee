"""Per-seed random streams of calls, independent of any policy (common random numbers).

Everything random about a call — arrival time, topic, base handle time, patience — is drawn
here before the simulation starts, from streams keyed by (seed, topic, kind). Two policies, or
two skill configurations the advisor compares, therefore meet exactly the same callers, and a
difference in their metrics is the policy's effect rather than sampling noise. Keying by topic
also keeps the other topics' calls identical when one topic's load is changed.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from routing.sim.scenario import Scenario, TopicSpec

_ARRIVALS, _HANDLE, _PATIENCE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Calls:
    """The calls of one seed, sorted by arrival time (plain lists: fastest scalar access)."""

    arrival: list[float]
    topic: list[int]
    handle: list[float]      # full-speed handle time; penalty > 0 multiplies it by the slowdown
    patience: list[float]    # math.inf: never abandons
    measured_from: float     # metrics cover arrivals in [measured_from, measured_to)
    measured_to: float

    def __len__(self) -> int:
        return len(self.arrival)


def tail_s(sc: Scenario) -> float:
    """How long arrivals continue after the window, so the last measured callers still compete
    with the load that follows them rather than with an emptying centre."""
    return max(1800.0, 10.0 * sc.handle_mean_s)


def _segments(t: TopicSpec, start: float, end: float) -> list[tuple[float, float, float]]:
    """Piecewise-constant rate (calls per second) over [start, end)."""
    cuts = {start, end}
    for s in t.surges:
        cuts.update(x for x in (s.start_s, s.end_s) if start < x < end)
    pts = sorted(cuts)
    out = []
    for a, b in itertools.pairwise(pts):
        rate = t.calls_per_hour / 3600.0
        mid = 0.5 * (a + b)
        for s in t.surges:
            if s.start_s <= mid < s.end_s:
                rate *= s.factor
        out.append((a, b, rate))
    return out


def _rng(seed: int, topic: int, kind: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, topic, kind]))


def handle_sampler(sc: Scenario, rng: np.random.Generator, n: int) -> np.ndarray:
    m = sc.handle_mean_s
    if sc.handle_distribution == "exponential":
        return rng.exponential(m, n)
    # Lognormal with the given mean and coefficient of variation.
    sigma2 = math.log1p(sc.handle_cv ** 2)
    return rng.lognormal(math.log(m) - sigma2 / 2.0, math.sqrt(sigma2), n)


def generate_calls(sc: Scenario, seed: int) -> Calls:
    start, end = -sc.warmup_s, sc.duration_s + tail_s(sc)
    times, topics, handles, pats = [], [], [], []
    for ti, t in enumerate(sc.topics):
        r = _rng(seed, ti, _ARRIVALS)
        parts = []
        for a, b, rate in _segments(t, start, end):
            n = int(r.poisson(rate * (b - a)))
            parts.append(np.sort(r.uniform(a, b, n)))
        ts = np.concatenate(parts) if parts else np.empty(0)
        n = len(ts)
        times.append(ts)
        topics.append(np.full(n, ti, dtype=np.int64))
        handles.append(handle_sampler(sc, _rng(seed, ti, _HANDLE), n))
        if sc.patience_mean_s > 0:
            pats.append(_rng(seed, ti, _PATIENCE).exponential(sc.patience_mean_s, n))
        else:
            pats.append(np.full(n, np.inf))
    t_all = np.concatenate(times)
    order = np.argsort(t_all, kind="stable")
    return Calls(
        arrival=t_all[order].tolist(),
        topic=np.concatenate(topics)[order].tolist(),
        handle=np.concatenate(handles)[order].tolist(),
        patience=np.concatenate(pats)[order].tolist(),
        measured_from=0.0,
        measured_to=sc.duration_s,
    )
