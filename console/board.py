"""The admin's live board: per group, who waits and who is free, and today's service figures.

Waiting callers and members come from the routing layer's live queue state (the same picture
the router decides on). The day's figures are counted here from AMI events, per queue:

* offered: ``QueueCallerJoin``; answered and wait: ``AgentConnect`` (HoldTime);
  abandoned: ``QueueCallerAbandon`` followed by the caller's Hangup; timed out: a
  ``QueueCallerAbandon`` after which the caller joined another queue (app_queue sends the
  event on a Queue() timeout too, and the service then offers the default group);
* ASA: mean wait of the answered calls;
* service level: answered within ``service_level_s`` over answered plus abandoned plus
  timed out (an unanswered call counts against it however early it left: the strict
  reading);
* 15-minute buckets of offered calls and mean wait, for the plots.

The figures restart at local midnight (the service's time zone) and at a service restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ivr.ami.events import (
    AgentEvent,
    AmiEvent,
    QueueCallerJoin,
    QueueMemberEvent,
)
from routing.live_state import LiveQueues
from routing.wait_ends import End, WaitEnds

BUCKET_S = 15 * 60


@dataclass(slots=True)
class _Bucket:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    timed_out: int = 0
    wait_sum_s: float = 0.0


@dataclass(slots=True)
class QueueDay:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    timed_out: int = 0
    answered_in_sl: int = 0
    wait_sum_s: float = 0.0
    buckets: dict[int, _Bucket] = field(default_factory=dict)   # index of the 15 minutes

    def bucket(self, idx: int) -> _Bucket:
        b = self.buckets.get(idx)
        if b is None:
            b = self.buckets[idx] = _Bucket()
        return b


@dataclass(slots=True)
class Totals:
    """Since start, never reset: what Prometheus counters need."""
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    timed_out: int = 0


class QueueStats:
    def __init__(self, timezone: str, service_level_s: float,
                 now: Callable[[], datetime] | None = None) -> None:
        self._tz = ZoneInfo(timezone)
        self._now = now or (lambda: datetime.now(self._tz))
        self.service_level_s = service_level_s
        self._day: date = self._now().date()
        self.queues: dict[str, QueueDay] = {}
        self.totals: dict[str, Totals] = {}
        self.pause_reasons: dict[str, str] = {}      # member name -> reason (any queue)
        # (queue, wait seconds, answered) for each ended wait: the metrics histogram.
        self.on_wait: list[Callable[[str, float, bool], None]] = []
        self._ends = WaitEnds(self._wait_ended, time.monotonic)

    def _today(self, queue: str) -> tuple[QueueDay, int]:
        now = self._now()
        if now.date() != self._day:
            self._day, self.queues = now.date(), {}
        idx = (now.hour * 3600 + now.minute * 60 + now.second) // BUCKET_S
        d = self.queues.get(queue)
        if d is None:
            d = self.queues[queue] = QueueDay()
        return d, idx

    def on_event(self, ev: AmiEvent) -> None:
        self._ends.on_event(ev)
        if isinstance(ev, QueueCallerJoin):
            d, i = self._today(ev.queue)
            d.offered += 1
            d.bucket(i).offered += 1
            self.totals.setdefault(ev.queue, Totals()).offered += 1
        elif isinstance(ev, AgentEvent) and ev.name == "AgentConnect":
            d, i = self._today(ev.queue)
            wait = float(ev.hold_time)
            d.answered += 1
            d.wait_sum_s += wait
            d.answered_in_sl += wait <= self.service_level_s
            b = d.bucket(i)
            b.answered += 1
            b.wait_sum_s += wait
            self.totals.setdefault(ev.queue, Totals()).answered += 1
            for f in self.on_wait:
                f(ev.queue, wait, True)
        elif isinstance(ev, QueueMemberEvent) and ev.member_name:
            if ev.paused:
                if ev.paused_reason or ev.member_name not in self.pause_reasons:
                    self.pause_reasons[ev.member_name] = ev.paused_reason
            elif ev.name.lower() in ("queuememberpause", "queuememberremoved"):
                self.pause_reasons.pop(ev.member_name, None)

    def _wait_ended(self, queue: str, hold_s: float, end: End) -> None:
        d, i = self._today(queue)
        b = d.bucket(i)
        t = self.totals.setdefault(queue, Totals())
        if end == "abandoned":
            d.abandoned += 1
            b.abandoned += 1
            t.abandoned += 1
        else:
            d.timed_out += 1
            b.timed_out += 1
            t.timed_out += 1
        for f in self.on_wait:
            f(queue, hold_s, False)

    def day(self, queue: str) -> QueueDay:
        self._today(queue)   # rolls over at midnight even when nothing happened since
        return self.queues.get(queue) or QueueDay()

    def now(self) -> datetime:
        return self._now()


def _r(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def board_snapshot(groups: list[tuple[str, str]], live: LiveQueues, stats: QueueStats,
                   *, last_buckets: int = 32) -> dict[str, Any]:
    """The board as JSON: one entry per (group name, queue)."""
    now_live = live.clock()
    now = stats.now()
    cur = (now.hour * 3600 + now.minute * 60 + now.second) // BUCKET_S
    first = max(0, cur - last_buckets + 1)
    out = []
    for name, queue in groups:
        members = live.members.get(queue, {})
        waiting = live.waiting.get(queue, {})
        d = stats.day(queue)
        ended = d.answered + d.abandoned + d.timed_out
        states = {m.name: m.state(now_live) for m in members.values()}
        count = {k: sum(1 for v in states.values() if v == k)
                 for k in ("available", "on_call", "wrap_up", "paused", "unavailable")}
        longest = max((now_live - c.entered for c in waiting.values()), default=0.0)
        series = []
        for i in range(first, cur + 1):
            b = d.buckets.get(i) or _Bucket()
            series.append({"t": f"{i * 15 // 60:02d}:{i * 15 % 60:02d}", "calls": b.offered,
                           "answered": b.answered, "abandoned": b.abandoned,
                           "mean_wait_s": _r(b.wait_sum_s / b.answered if b.answered else None)})
        out.append({
            "group": name, "queue": queue,
            "waiting": len(waiting), "longest_wait_s": round(max(0.0, longest), 1),
            "agents": {**count, "total": len(members)},
            "members": [{"name": m.name, "interface": m.interface, "penalty": m.penalty,
                         "paused": m.paused, "busy": m.busy, "state": states[m.name],
                         "reason": stats.pause_reasons.get(m.name, "") if m.paused else ""}
                        for m in sorted(members.values(), key=lambda m: m.name)],
            "offered": d.offered, "answered": d.answered, "abandoned": d.abandoned,
            "timed_out": d.timed_out,
            "asa_s": _r(d.wait_sum_s / d.answered if d.answered else None),
            "service_level": _r(d.answered_in_sl / ended if ended else None, 3),
            "abandon_rate": _r(d.abandoned / ended if ended else None, 3),
            "series": series,
        })
    return {"type": "board", "at": now.isoformat(timespec="seconds"),
            "service_level_s": stats.service_level_s, "groups": out}
