"""Counts over the case store and the hotspot check (热点预警) on live data.

Categorical counts are grouped in SQL; time buckets are made in Python from ``created_at``
alone, because the centre's local hour is a time-zone conversion each database spells (and
supports) differently, and one narrow column per case is cheap for a day or a month.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, func, select

from cases.analysis import Hotspot, HotspotRule, detect_hotspots
from cases.core import StoreCore, aware
from cases.models import Case

Dimension = Literal["hour", "day", "district", "topic", "department", "satisfaction",
                    "case_type", "status", "channel"]
_COLUMNS = {"district": Case.district, "topic": Case.topic, "department": Case.department,
            "satisfaction": Case.satisfaction, "case_type": Case.case_type,
            "status": Case.status, "channel": Case.channel}
_BUCKET_FORMAT = {"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d"}


class AnalysisMixin(StoreCore):
    async def counts(
        self, by: Dimension, *, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str | None, int]:
        """Cases created in [since, until) per value of ``by``, largest first (time buckets:
        oldest first, keyed by the centre-local start, e.g. "2026-03-10 14:00"). Cases
        without a value count under None (no district yet, not yet asked for satisfaction)."""
        if by in _BUCKET_FORMAT:
            q_times = select(Case.created_at).where(*_created_between(since, until))
            async with self._reading("counts") as s:
                times = (await s.execute(q_times)).scalars().all()
            fmt = _BUCKET_FORMAT[by]
            buckets = Counter(t.astimezone(self._tz).strftime(fmt) for t in times)
            return {k: buckets[k] for k in sorted(buckets)}
        if by not in _COLUMNS:
            raise ValueError(f"cannot count by {by!r}; dimensions: "
                             f"{', '.join([*_BUCKET_FORMAT, *_COLUMNS])}")
        column = _COLUMNS[by]
        q = (select(column, func.count()).where(*_created_between(since, until))
             .group_by(column))
        async with self._reading("counts") as s:
            rows = (await s.execute(q)).all()
        pairs = [(None if k is None else str(k), int(n)) for k, n in rows]
        return dict(sorted(pairs, key=lambda kv: (-kv[1], kv[0] or "")))

    async def hotspots(
        self,
        now: datetime | None = None,
        *,
        window: timedelta = timedelta(days=1),
        rule: HotspotRule | None = None,
    ) -> list[Hotspot]:
        """Topic × district hotspots of the window ending at ``now`` (default the store's
        clock) against the ``rule.baseline_windows`` windows before it (see
        ``cases.analysis`` for the rule). Cases without topic or district are not counted."""
        r = rule or HotspotRule()
        end = aware("now", now) if now is not None else self._now()
        n = r.baseline_windows + 1
        q = (select(Case.topic, Case.district, Case.created_at)
             .where(Case.topic.is_not(None), Case.district.is_not(None),
                    Case.created_at >= end - n * window, Case.created_at < end))
        async with self._reading("hotspots") as s:
            rows = (await s.execute(q)).all()
        series: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * n)
        for topic, district, at in rows:
            age = int((end - at) / window)  # 0: the latest window
            series[(str(topic), str(district))][n - 1 - age] += 1
        return detect_hotspots(series, r)



def _created_between(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    conditions = []
    if since is not None:
        conditions.append(Case.created_at >= aware("since", since))
    if until is not None:
        conditions.append(Case.created_at < aware("until", until))
    return conditions
