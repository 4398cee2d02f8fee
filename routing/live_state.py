"""Live queue state from AMI events, as the routing policy's ``Snapshot``.

Members (penalty, paused, busy), callers waiting in each queue, and decayed estimates of
arrivals, handle times and patience, from QueueMember*/QueueCaller*/Agent* events. Events can
be missed (a reconnect, a restart), so a periodic QueueStatus rebuilds the picture.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ivr.ami.errors import AmiError
from ivr.ami.events import (
    TYPED_EVENTS,
    AgentEvent,
    AmiEvent,
    Hangup,
    QueueCallerAbandon,
    QueueCallerJoin,
    QueueCallerLeave,
    QueueEntry,
    QueueMemberEvent,
)
from ivr.ami.link import AmiLink

from .estimator import DecayedStats
from .policy import STRIDE, Member, QueueView, Snapshot, Waiting

log = logging.getLogger("hotline.routing")

# Device states of a member that mean "cannot take a call now" (app_queue's Status field):
# 2 INUSE, 3 BUSY, 6 RINGING, 7 RINGINUSE, 8 ONHOLD.
_BUSY_STATES = frozenset({2, 3, 6, 7, 8})
NO_WINDOW = 10**6     # a caller we did not route: every member may serve it


@dataclass(slots=True)
class _Member:
    name: str
    interface: str
    penalty: int
    paused: bool
    busy: bool


@dataclass(slots=True)
class _Caller:
    uniqueid: str
    entered: float
    priority: int = 0
    max_penalty: int = NO_WINDOW


@dataclass(frozen=True, slots=True)
class _Intent:
    priority: int
    max_penalty: int


@dataclass(slots=True)
class LiveQueues:
    clock: Callable[[], float]
    stats: DecayedStats = field(default_factory=DecayedStats)
    members: dict[str, dict[str, _Member]] = field(default_factory=dict)
    waiting: dict[str, dict[str, _Caller]] = field(default_factory=dict)
    _intents: dict[str, _Intent] = field(default_factory=dict)

    # ---- what the router tells us ---------------------------------------------------
    def note_decision(self, caller_id: str, priority: int, max_penalty: int | None) -> None:
        """The window and priority a caller will enter ``Queue()`` with (app_queue does not
        report them in its events)."""
        self._intents[caller_id] = _Intent(priority, NO_WINDOW if max_penalty is None
                                           else max_penalty)

    # ---- AMI events ------------------------------------------------------------------
    def on_event(self, ev: AmiEvent) -> None:
        now = self.clock()
        if isinstance(ev, QueueMemberEvent):
            self._member(ev)
        elif isinstance(ev, QueueCallerJoin):
            intent = self._intents.pop(ev.uniqueid, _Intent(0, NO_WINDOW))
            self.waiting.setdefault(ev.queue, {})[ev.uniqueid] = _Caller(
                ev.uniqueid, now, intent.priority, intent.max_penalty)
            self.stats.observe_arrival(ev.queue, now)
        elif isinstance(ev, Hangup):
            self._intents.pop(ev.uniqueid, None)   # routed but never reached Queue()
        elif isinstance(ev, QueueCallerLeave):
            self.waiting.get(ev.queue, {}).pop(ev.uniqueid, None)
        elif isinstance(ev, QueueCallerAbandon):
            self.stats.observe_wait_end(float(ev.hold_time), True, now)
        elif isinstance(ev, AgentEvent):
            m = self.members.get(ev.queue, {}).get(ev.member_name)
            if ev.name == "AgentConnect":
                self.stats.observe_wait_end(float(ev.hold_time), False, now)
                self._set_busy(ev.member_name, True)
            elif ev.name == "AgentComplete":
                skill = (m.penalty // STRIDE) if m is not None else 0
                self.stats.observe_handle(ev.queue, skill, float(ev.talk_time), now)
                self._set_busy(ev.member_name, False)

    def _member(self, ev: QueueMemberEvent) -> None:
        queue = self.members.setdefault(ev.queue, {})
        if ev.name.lower() == "queuememberremoved":
            queue.pop(ev.member_name, None)
            return
        queue[ev.member_name] = _Member(ev.member_name, ev.interface, ev.penalty, ev.paused,
                                        ev.in_call or ev.status in _BUSY_STATES)

    def _set_busy(self, name: str, busy: bool) -> None:
        # One person, several queues: busy in one is busy in all.
        for queue in self.members.values():
            m = queue.get(name)
            if m is not None:
                m.busy = busy

    # ---- resync ----------------------------------------------------------------------
    def apply_status(self, events: tuple[AmiEvent, ...]) -> None:
        """Replace the picture with a QueueStatus reply (members and callers)."""
        now = self.clock()
        members: dict[str, dict[str, _Member]] = {}
        waiting: dict[str, dict[str, _Caller]] = {}
        for ev in events:
            if isinstance(ev, QueueMemberEvent):
                members.setdefault(ev.queue, {})[ev.member_name] = _Member(
                    ev.member_name, ev.interface, ev.penalty, ev.paused,
                    ev.in_call or ev.status in _BUSY_STATES)
            elif isinstance(ev, QueueEntry):
                old = self.waiting.get(ev.queue, {}).get(ev.uniqueid)
                waiting.setdefault(ev.queue, {})[ev.uniqueid] = old or _Caller(
                    ev.uniqueid, now - ev.wait)
        self.members, self.waiting = members, waiting

    # ---- the policy's view -------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        now = self.clock()
        queues: dict[str, QueueView] = {}
        home: dict[str, list[str]] = {}
        for name in set(self.members) | set(self.waiting):
            ms = tuple(Member(m.name, m.penalty, m.penalty // STRIDE, m.busy)
                       for m in self.members.get(name, {}).values() if not m.paused)
            for m in ms:
                if m.skill == 0:
                    home.setdefault(m.agent, []).append(name)
            ws = sorted(self.waiting.get(name, {}).values(),
                        key=lambda c: (-c.priority, c.entered))
            queues[name] = QueueView(name, ms, tuple(
                Waiting(c.uniqueid, c.entered, c.priority, c.max_penalty) for c in ws))
        return Snapshot(now=now, queues=queues,
                        home={a: tuple(q) for a, q in home.items()},
                        stats=self.stats.view(now))


class QueueStateFeed:
    """Keeps a ``LiveQueues`` fed: events as they come, QueueStatus on connect and
    periodically."""

    def __init__(self, link: AmiLink, live: LiveQueues, interval_s: float) -> None:
        self._link = link
        self.live = live
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None
        link.add_listener(live.on_event, TYPED_EVENTS)
        link.on_up(self.resync)

    async def resync(self) -> None:
        try:
            res = await self._link.action("QueueStatus")
        except AmiError as e:
            log.warning("queue state resync failed: %s", e)
            return
        self.live.apply_status(res.events)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="queue-resync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if self._link.is_up:
                await self.resync()
