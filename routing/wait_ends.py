"""Which queue waits ended in abandonment, from AMI events.

app_queue sends ``QueueCallerAbandon`` when the caller hangs up in the queue, and also when
the Queue() timeout expires or the queue empties (``record_abandoned`` runs on all three):
the caller is then still on the line, and the service offers another queue. Counting those
as abandonment would inflate the patience estimate and the board's abandon rate. So an
Abandon is only a pending end: the caller's ``Hangup`` confirms it; joining another queue
(the overflow) makes it a timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ivr.ami.events import AmiEvent, Hangup, QueueCallerAbandon, QueueCallerJoin

End = Literal["abandoned", "timed_out"]
# A pending Abandon neither confirmed nor overturned this long after (events missed over a
# reconnect) is dropped rather than kept for ever.
FORGET_AFTER_S = 3600.0


@dataclass(frozen=True, slots=True)
class _Pending:
    queue: str
    hold_s: float
    at: float


@dataclass(slots=True)
class WaitEnds:
    """Feed it every QueueCallerAbandon, QueueCallerJoin and Hangup; ``on_end(queue, hold_s,
    end)`` is called once per Abandon when its meaning is known."""

    on_end: Callable[[str, float, End], None]
    clock: Callable[[], float]
    _pending: dict[str, _Pending] = field(default_factory=dict)

    def on_event(self, ev: AmiEvent) -> None:
        if isinstance(ev, QueueCallerAbandon):
            now = self.clock()
            self._forget_old(now)
            self._pending[ev.uniqueid] = _Pending(ev.queue, float(ev.hold_time), now)
        elif isinstance(ev, Hangup):
            p = self._pending.pop(ev.uniqueid, None)
            if p is not None:
                self.on_end(p.queue, p.hold_s, "abandoned")
        elif isinstance(ev, QueueCallerJoin):
            p = self._pending.pop(ev.uniqueid, None)
            if p is not None:
                self.on_end(p.queue, p.hold_s, "timed_out")

    def _forget_old(self, now: float) -> None:
        if len(self._pending) < 64:
            return
        for uid in [u for u, p in self._pending.items() if now - p.at > FORGET_AFTER_S]:
            del self._pending[uid]
