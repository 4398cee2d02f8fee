"""Hotspot warning (热点预警): a topic × district whose count jumps above its recent baseline.

The rule, per (topic, district) series of counts in equal windows (e.g. days), the last window
being the one under test and the ``baseline_windows`` before it the baseline:

1. baseline rate λ = mean of the baseline windows, but at least ``baseline_floor`` (a series
   that was silent is not infinitely surprised by its first case);
2. under "nothing changed", the latest count X is Poisson(λ); the tail probability
   p = P(X ≥ observed) says how surprising the count is;
3. warn when p < ``alpha`` **and** the count is at least ``min_count`` **and** at least
   ``min_ratio`` × λ.

Why each guard: complaint counts are burstier than Poisson (a burst main makes a street call
at once), so the tail alone over-warns; ``alpha`` is strict (0.001) for that reason, the ratio
keeps a large busy series from warning on a few extra calls that are statistically "certain"
but not news, and ``min_count`` keeps a quiet series from warning on two calls. Warnings are
sorted most surprising first. Everything here is pure; ``cases.analysis_store`` feeds it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import fmean

from pydantic import BaseModel, ConfigDict, Field

Series = Mapping[tuple[str, str], Sequence[int]]


class HotspotRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    baseline_windows: int = Field(default=7, ge=2)
    alpha: float = Field(default=0.001, gt=0, lt=1)
    min_count: int = Field(default=5, ge=1)
    min_ratio: float = Field(default=2.0, ge=1)
    baseline_floor: float = Field(default=0.5, gt=0)


class Hotspot(BaseModel):
    """One warning: ``count`` in the latest window against a ``baseline`` mean per window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: str
    district: str
    count: int
    baseline: float  # mean count per window over the baseline windows (before the floor)
    p_value: float   # P(X >= count) for X ~ Poisson(max(baseline, floor))

    @property
    def ratio(self) -> float:
        return self.count / self.baseline if self.baseline else math.inf


def poisson_tail(k: int, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(lam), summed in log space (stable for large counts)."""
    if k <= 0:
        return 1.0
    # 1 - P(X <= k-1); for far tails sum upward instead, which does not cancel to zero.
    if k > lam:
        total, i = 0.0, k
        while True:
            term = math.exp(-lam + i * math.log(lam) - math.lgamma(i + 1))
            total += term
            if term < total * 1e-16 or i > k + 10_000:
                return min(1.0, total)
            i += 1
    below = sum(math.exp(-lam + i * math.log(lam) - math.lgamma(i + 1)) for i in range(k))
    return max(0.0, 1.0 - below)


def detect_hotspots(series: Series, rule: HotspotRule | None = None) -> list[Hotspot]:
    """Warnings for the series whose last count is a hotspot under ``rule`` (see the module
    docstring). Each series holds ``rule.baseline_windows`` + 1 counts, oldest first; shorter
    ones are padded with zeros at the start (no cases in a window means zero)."""
    r = rule or HotspotRule()
    need = r.baseline_windows + 1
    out: list[Hotspot] = []
    for (topic, district), counts in series.items():
        if len(counts) > need:
            raise ValueError(f"{topic}/{district}: {len(counts)} windows, expected {need}")
        padded = [0] * (need - len(counts)) + list(counts)
        latest, baseline = padded[-1], fmean(padded[:-1])
        lam = max(baseline, r.baseline_floor)
        if latest < r.min_count or latest < r.min_ratio * lam:
            continue
        p = poisson_tail(latest, lam)
        if p < r.alpha:
            out.append(Hotspot(topic=topic, district=district, count=latest,
                               baseline=baseline, p_value=p))
    return sorted(out, key=lambda h: (h.p_value, -h.count, h.topic, h.district))
