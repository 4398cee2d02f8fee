"""Queue membership (QueueAdd/Remove/Pause/Penalty semantics and events) and member choice."""

from __future__ import annotations

import functools
import logging
from enum import Enum
from typing import TYPE_CHECKING

from .devices import INVALID, NOT_INUSE, UNAVAILABLE, UNKNOWN, local_device, status_available
from .queues import (
    CallQueue,
    QueueCaller,
    QueueConfig,
    QueueMember,
    member_event_fields,
    strategy_metric,
)

if TYPE_CHECKING:
    from .channels import Channel
    from .core import PbxCore

log = logging.getLogger("pbxsim.queues")


class Res(Enum):
    OKAY = "ok"
    EXISTS = "exists"
    NOSUCHQUEUE = "nosuchqueue"
    NOT_DYNAMIC = "notdynamic"


class QueueManager:
    def __init__(self, core: PbxCore, configs: dict[str, QueueConfig]) -> None:
        self._core = core
        self.queues: dict[str, CallQueue] = {}
        for name, cfg in configs.items():
            q = CallQueue(cfg)
            for iface, penalty, mname, state in cfg.members:
                q.members[iface] = QueueMember(iface, mname, state, penalty=penalty,
                                               dynamic=False, ringinuse=cfg.ringinuse,
                                               login_time=int(core.clock.now()))
            self.queues[name] = q
            core.devices.publish(f"Queue:{name}_avail", "INUSE", quiet=True)

    def get(self, name: str) -> CallQueue | None:
        return self.queues.get(name.strip())

    # -- status -------------------------------------------------------------------------------
    def status(self, member: QueueMember) -> int:
        return self._core.devices.status(member.state_interface)

    def _publish_avail(self, q: CallQueue) -> None:
        avail = any(not m.paused and self.status(m) in (UNKNOWN, NOT_INUSE)
                    for m in q.members.values())
        self._core.devices.publish(f"Queue:{q.name}_avail", "NOT_INUSE" if avail else "INUSE")

    def _member_event(self, event: str, q: CallQueue, m: QueueMember) -> None:
        status = self.status(m)
        m.last_status = status
        self._core.emit_fields([("Event", event), ("Privilege", "agent,all"),
                                *member_event_fields(q, m, status)])

    def refresh_member_status(self, device: str | None = None) -> None:
        """QueueMemberStatus for members whose device state changed (``device``: only the
        members on that device can have changed; None: look at every member)."""
        # A Local device's state is its channels' (narrowed to it); other technologies'
        # member status also follows ring/in-call use, so look at everyone then.
        wanted = device.lower() if device is not None and local_device(device) else None
        for q in self.queues.values():
            for m in q.members.values():
                if wanted is not None and _device_key(m.state_interface) != wanted:
                    continue
                status = self.status(m)
                if m.last_status != -1 and status != m.last_status:
                    self._member_event("QueueMemberStatus", q, m)
                m.last_status = status

    # -- AMI member management ----------------------------------------------------------------
    def add_member(self, queue: str, interface: str, *, penalty: int = 0, paused: bool = False,
                   membername: str = "", state_interface: str = "", reason: str = "",
                   wrapuptime: int = 0) -> Res:
        q = self.get(queue)
        if q is None:
            return Res.NOSUCHQUEUE
        if q.find_member(interface) is not None:
            return Res.EXISTS
        now = int(self._core.clock.now())
        m = QueueMember(interface, membername or interface, state_interface or interface,
                        penalty=penalty, paused=paused, paused_reason=reason if paused else "",
                        login_time=now, last_pause=now if paused else 0, wrapuptime=wrapuptime,
                        ringinuse=q.config.ringinuse)
        q.members[interface] = m
        self._core.devices.publish(f"Queue:{q.name}_pause_{interface}",
                                   "INUSE" if paused else "NOT_INUSE")
        self._member_event("QueueMemberAdded", q, m)
        self._publish_avail(q)
        log.info("member %s (%s) added to queue %s, penalty %d%s", m.membername, interface,
                 q.name, penalty, ", paused" if paused else "")
        return Res.OKAY

    def remove_member(self, queue: str, interface: str) -> Res:
        q = self.get(queue)
        if q is None:
            return Res.NOSUCHQUEUE
        m = q.find_member(interface)
        if m is None:
            return Res.EXISTS
        if not m.dynamic:
            return Res.NOT_DYNAMIC
        del q.members[m.interface]
        self._member_event("QueueMemberRemoved", q, m)
        self._publish_avail(q)
        log.info("member %s removed from queue %s", m.membername, q.name)
        return Res.OKAY

    def _targets(self, queue: str, interface: str) -> list[tuple[CallQueue, QueueMember]]:
        queues = [self.get(queue)] if queue else list(self.queues.values())
        found = []
        for q in queues:
            if q is not None and (m := q.find_member(interface)) is not None:
                found.append((q, m))
        return found

    def pause(self, queue: str, interface: str, paused: bool, reason: str = "") -> bool:
        targets = self._targets(queue, interface)
        now = int(self._core.clock.now())
        for q, m in targets:
            m.paused = paused
            m.paused_reason = reason if paused else ""
            if paused:
                m.last_pause = now
            self._core.devices.publish(f"Queue:{q.name}_pause_{m.interface}",
                                       "INUSE" if paused else "NOT_INUSE")
            self._member_event("QueueMemberPause", q, m)
            self._publish_avail(q)
            log.info("member %s %s in queue %s%s", m.membername,
                     "paused" if paused else "unpaused", q.name, f" ({reason})" if reason else "")
        return bool(targets)

    def set_penalty(self, queue: str, interface: str, penalty: int) -> bool:
        if penalty < 0:
            return False
        targets = self._targets(queue, interface)
        for q, m in targets:
            m.penalty = penalty
            self._member_event("QueueMemberPenalty", q, m)
            log.info("member %s penalty %d in queue %s", m.membername, penalty, q.name)
        return bool(targets)

    # -- callers ------------------------------------------------------------------------------
    def join(self, q: CallQueue, chan: Channel, timeout_s: float | None,
             max_penalty: int | None, min_penalty: int | None,
             prio: int = 0) -> QueueCaller:
        """app_queue's join_queue: behind every caller of the same or a higher priority,
        ahead of the first of a lower one."""
        now = self._core.clock.now()
        at = next((i for i, c in enumerate(q.callers) if prio > c.prio), len(q.callers))
        caller = QueueCaller(chan, now, at + 1, now + timeout_s if timeout_s else None,
                             max_penalty, min_penalty, prio=prio)
        q.callers.insert(at, caller)
        return caller

    def leave(self, q: CallQueue, caller: QueueCaller) -> int:
        pos = q.position(caller)
        q.callers.remove(caller)
        return pos

    def _penalty_ok(self, m: QueueMember, caller: QueueCaller) -> bool:
        if caller.max_penalty is not None and m.penalty > caller.max_penalty:
            return False
        return caller.min_penalty is None or m.penalty >= caller.min_penalty

    def ringable(self, m: QueueMember, caller: QueueCaller | None, q: CallQueue) -> bool:
        """app_queue's can_ring_entry, plus: a simulated phone takes one call at a time."""
        if m.paused or (caller is not None and not self._penalty_ok(m, caller)):
            return False
        status = self.status(m)
        if status in (INVALID, UNAVAILABLE):
            return False
        use = self._core.devices.use(m.interface)
        if use.ringing or self._core.clock.now() < use.wrapup_until:
            return False  # pending_members / wrap-up after the member's last call
        if q.config.ringinuse:
            return True  # an agent in a call is rung anyway; a busy phone answers busy
        return status_available(status) and not use.in_call

    def available_count(self, q: CallQueue) -> int:
        return sum(1 for m in q.members.values() if self.ringable(m, None, q))

    def has_usable_members(self, q: CallQueue, caller: QueueCaller | None) -> bool:
        """For joinempty/leavewhenempty: a member not paused, reachable, within penalties."""
        return any(not m.paused and self.status(m) not in (INVALID, UNAVAILABLE)
                   and (caller is None or self._penalty_ok(m, caller))
                   for m in q.members.values())

    def is_our_turn(self, q: CallQueue, caller: QueueCaller) -> bool:
        ahead = 0
        for other in q.callers:
            if other is caller:
                break
            if not other.pending:
                ahead += 1
        # ahead < max(available, 1), counting members only as far as the answer needs: a
        # waiting caller asks every second, and under load hundreds of callers do.
        if ahead == 0:
            return True
        if not q.config.autofill:
            return False
        avail = 0
        for m in q.members.values():
            if self.ringable(m, None, q):
                avail += 1
                if avail > ahead:
                    return True
        return False

    def choose(self, q: CallQueue, caller: QueueCaller, exclude: set[str] | frozenset[str]
               = frozenset()) -> list[QueueMember]:
        """Members to ring now: the best one, or with ringall the whole best penalty tier."""
        now = self._core.clock.now()
        scored = [(strategy_metric(q, m, i, now, self._core.rng), i, m)
                  for i, m in enumerate(q.members.values())
                  if m.interface not in exclude and self.ringable(m, caller, q)]
        if not scored:
            return []
        scored.sort(key=lambda t: (t[0], t[1]))
        if q.config.strategy == "ringall":
            best = scored[0][0]
            return [m for metric, _, m in scored if metric == best]
        chosen = scored[0]
        q.rr_next = chosen[1] + 1
        return [chosen[2]]


@functools.lru_cache(maxsize=4096)
def _device_key(state_interface: str) -> str:
    """The device whose state a member's state interface follows, lower-cased."""
    loc = local_device(state_interface)
    return (f"Local/{loc[0]}@{loc[1]}" if loc is not None else state_interface).lower()
