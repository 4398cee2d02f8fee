"""Live queue state from AMI events, as the routing policy's ``Snapshot``.

Members (penalty, paused, busy, reachable, in wrap-up), callers waiting in each queue, and
decayed estimates of arrivals, handle times and patience, from QueueMember*/QueueCaller*/
Agent* events. Events can be missed (a reconnect, a restart), so a periodic QueueStatus
rebuilds the picture, and so does Asterisk's FullyBooted (it takes AMI logins before its
queues are loaded).

Only the queues the service routes to are followed (``managed``): an Asterisk often serves
other queues too, whose members and callers are none of the router's business.

A member counts as free as app_queue's ``is_member_available`` has it: not paused, its device
neither in use nor ringing nor unreachable (INVALID, UNAVAILABLE: an unregistered phone), and
past its wrap-up time after a call (queues.conf ``wrapuptime``, shared across queues).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ivr.aio import cancel_and_wait
from ivr.ami.errors import AmiError
from ivr.ami.events import (
    TYPED_EVENTS,
    AgentEvent,
    AmiEvent,
    Hangup,
    QueueCallerJoin,
    QueueCallerLeave,
    QueueEntry,
    QueueMemberEvent,
)
from ivr.ami.link import AmiLink

from .estimator import DecayedStats
from .policy import STRIDE, Member, QueueView, Snapshot, Waiting, skill_of
from .wait_ends import End, WaitEnds

log = logging.getLogger("hotline.routing")

# Device states of a member that mean "cannot take a call now" (app_queue's Status field):
# 2 INUSE, 3 BUSY, 6 RINGING, 7 RINGINUSE, 8 ONHOLD.
_BUSY_STATES = frozenset({2, 3, 6, 7, 8})
# 4 INVALID, 5 UNAVAILABLE: the phone is not there (unregistered); app_queue never rings it.
_ABSENT_STATES = frozenset({4, 5})
NO_WINDOW = 10**6     # a caller we did not route: every member may serve it


@dataclass(slots=True)
class _Member:
    name: str
    interface: str
    penalty: int
    paused: bool
    busy: bool
    unavailable: bool = False     # its device cannot be rung (INVALID, UNAVAILABLE)
    free_at: float = 0.0          # (LiveQueues clock) end of its wrap-up after a call

    def state(self, now: float) -> str:
        """paused, unavailable, on_call, wrap_up or available (the board's words)."""
        if self.paused:
            return "paused"
        if self.unavailable:
            return "unavailable"
        if self.busy:
            return "on_call"
        if now < self.free_at:
            return "wrap_up"
        return "available"

    @classmethod
    def of(cls, ev: QueueMemberEvent) -> _Member:
        return cls(ev.member_name, ev.interface, ev.penalty, ev.paused,
                   ev.in_call or ev.status in _BUSY_STATES, ev.status in _ABSENT_STATES)


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
    managed: frozenset[str] | None = None     # the queues followed (None: all)
    wrapup_s: float = 0.0                     # queues.conf wrapuptime
    _intents: dict[str, _Intent] = field(default_factory=dict)
    _ends: WaitEnds | None = None
    _connected_skill: dict[tuple[str, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ends = WaitEnds(self._wait_ended, self.clock)

    def _follows(self, queue: str) -> bool:
        return self.managed is None or queue in self.managed

    def _wait_ended(self, queue: str, hold_s: float, end: End) -> None:
        # A timeout is exposure to impatience, not an instance of it.
        self.stats.observe_wait_end(hold_s, end == "abandoned", self.clock())

    # ---- what the router tells us ---------------------------------------------------
    def note_decision(self, caller_id: str, priority: int, max_penalty: int | None) -> None:
        """The window and priority a caller will enter ``Queue()`` with (app_queue does not
        report them in its events)."""
        self._intents[caller_id] = _Intent(priority, NO_WINDOW if max_penalty is None
                                           else max_penalty)

    # ---- AMI events ------------------------------------------------------------------
    def on_event(self, ev: AmiEvent) -> None:
        now = self.clock()
        queue = getattr(ev, "queue", None)
        if isinstance(queue, str) and not self._follows(queue):
            return
        if self._ends is not None:
            self._ends.on_event(ev)
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
        elif isinstance(ev, AgentEvent):
            m = self.members.get(ev.queue, {}).get(ev.member_name)
            key = (ev.queue, ev.member_name)
            if ev.name == "AgentConnect":
                self.stats.observe_wait_end(float(ev.hold_time), False, now)
                # The skill it answers with: by the time the call ends the rebalancer may
                # have parked the member, or it may have left the queue.
                self._connected_skill[key] = skill_of(m.penalty) if m is not None else 0
                self._set(ev.member_name, busy=True)
            elif ev.name == "AgentComplete":
                skill = self._connected_skill.pop(
                    key, skill_of(m.penalty) if m is not None else 0)
                # Wrap-up is part of what a call costs an agent: the next call waits for it.
                self.stats.observe_handle(ev.queue, skill,
                                          float(ev.talk_time) + self.wrapup_s, now)
                self._set(ev.member_name, busy=False, free_at=now + self.wrapup_s)

    def _member(self, ev: QueueMemberEvent) -> None:
        queue = self.members.setdefault(ev.queue, {})
        if ev.name.lower() == "queuememberremoved":
            queue.pop(ev.member_name, None)
            return
        new = _Member.of(ev)
        old = queue.get(ev.member_name)
        if old is not None:
            new.free_at = old.free_at
        queue[ev.member_name] = new

    def _set(self, name: str, *, busy: bool, free_at: float | None = None) -> None:
        # One person, several queues: busy in one is busy in all, and wrap-up is shared
        # (queues.conf shared_lastcall).
        for queue in self.members.values():
            m = queue.get(name)
            if m is not None:
                m.busy = busy
                if free_at is not None:
                    m.free_at = free_at

    # ---- resync ----------------------------------------------------------------------
    def apply_status(self, events: tuple[AmiEvent, ...]) -> None:
        """Replace the picture with a QueueStatus reply (members and callers)."""
        now = self.clock()
        members: dict[str, dict[str, _Member]] = {}
        waiting: dict[str, dict[str, _Caller]] = {}
        for ev in events:
            if isinstance(ev, QueueMemberEvent) and self._follows(ev.queue):
                m = _Member.of(ev)
                old = self.members.get(ev.queue, {}).get(ev.member_name)
                if old is not None:
                    m.free_at = old.free_at
                members.setdefault(ev.queue, {})[ev.member_name] = m
            elif isinstance(ev, QueueEntry) and self._follows(ev.queue):
                old_c = self.waiting.get(ev.queue, {}).get(ev.uniqueid)
                waiting.setdefault(ev.queue, {})[ev.uniqueid] = old_c or _Caller(
                    ev.uniqueid, now - ev.wait, ev.priority)
        self.members, self.waiting = members, waiting

    # ---- the policy's view -------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        now = self.clock()
        queues: dict[str, QueueView] = {}
        home: dict[str, list[str]] = {}
        for name in set(self.members) | set(self.waiting):
            # (A parked member keeps its raw penalty // STRIDE as skill: out of every
            # window, which is how the policy recognises it.)
            ms = tuple(Member(m.name, m.penalty, m.penalty // STRIDE,
                              m.busy or now < m.free_at)
                       for m in self.members.get(name, {}).values()
                       if not m.paused and not m.unavailable)
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
        link.add_listener(self._on_booted, ["FullyBooted"])
        link.on_up(self.resync)
        self._booted: asyncio.Task[None] | None = None

    def _on_booted(self, _ev: AmiEvent) -> None:
        # Sent on every login, and when a restarted Asterisk has loaded its modules: the
        # QueueStatus at login may have come too early (empty, or refused).
        if self._booted is None or self._booted.done():
            self._booted = asyncio.get_running_loop().create_task(self.resync(),
                                                                  name="queue-resync-booted")

    async def resync(self) -> None:
        try:
            # Applied as the list's last event is read: by the time this task ran again,
            # the reader could have applied newer events (a caller leaving, an agent
            # answering) that the older snapshot would then undo.
            await self._link.action("QueueStatus", on_list=self.live.apply_status)
        except AmiError as e:
            log.warning("queue state resync failed: %s", e)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="queue-resync")

    async def stop(self) -> None:
        for task in (self._task, self._booted):
            if task is not None:
                await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if self._link.is_up:
                await self.resync()
