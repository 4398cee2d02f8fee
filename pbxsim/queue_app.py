"""The Queue() application for one caller, with app_queue's loop and event sequence.

A caller waits until it is its turn (re-checked every second), then the chosen member(s) ring
for the queue's ``timeout``; with no answer (AgentRingNoAnswer) it waits ``retry`` seconds and
tries again, until a member answers (AgentConnect, bridge, AgentComplete), the caller hangs up
(QueueCallerAbandon) or the Queue() timeout expires (QUEUESTATUS=TIMEOUT; app_queue sends a
QueueCallerAbandon for that too, and for leavewhenempty).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from . import lifecycle
from .bridge import Bridge
from .channels import UP, Channel, Notice
from .dial import Leg, start_leg
from .expr import split_args
from .media import notify_far
from .queues import CallQueue, QueueCaller
from .variables import set_variable

if TYPE_CHECKING:
    from .core import PbxCore

log = logging.getLogger("pbxsim.queue")

RECHECK_S = 1.0  # app_queue's RECHECK: how often a caller that is not first looks again
EMPTY_VARS = ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT",
              "QUEUEWAIT_MS")


def _int_var(chan: Channel, name: str) -> int | None:
    value = chan.variables.get(name, "").strip()
    try:
        return int(value) if value else None
    except ValueError:
        return None


async def queue_exec(core: PbxCore, chan: Channel, data: str) -> int:
    args = split_args(data)
    qname = args[0].strip()
    q = core.queues.get(qname)
    if q is None:
        log.warning("Queue(%s): no such queue", qname)
        set_variable(core, chan, "QUEUESTATUS", "UNKNOWN")
        return 0
    try:
        timeout_s = float(args[4]) if len(args) > 4 and args[4].strip() else None
    except ValueError:
        timeout_s = None
    for name in EMPTY_VARS:
        set_variable(core, chan, name, "")
    caller = QueueCaller(chan, core.clock.now(), 0, None, _int_var(chan, "QUEUE_MAX_PENALTY"),
                         _int_var(chan, "QUEUE_MIN_PENALTY"),
                         prio=_int_var(chan, "QUEUE_PRIO") or 0)
    if q.config.joinempty.lower() not in ("yes", "") and not core.queues.has_usable_members(
            q, caller):
        log.info("%s not queued in %s: no usable member (joinempty)", chan.name, q.name)
        set_variable(core, chan, "QUEUESTATUS", "JOINEMPTY")
        return 0
    if q.config.maxlen and len(q.callers) >= q.config.maxlen:
        set_variable(core, chan, "QUEUESTATUS", "FULL")
        return 0
    options = args[1] if len(args) > 1 else ""
    return await _QueueCall(core, q, chan, timeout_s if timeout_s and timeout_s > 0 else None,
                            caller, options).run()


class _QueueCall:
    def __init__(self, core: PbxCore, q: CallQueue, chan: Channel, timeout_s: float | None,
                 probe: QueueCaller, options: str = "") -> None:
        self.core, self.q, self.chan = core, q, chan
        self.continue_after = "c" in options  # Queue option c: go on when the agent hangs up
        self.caller = core.queues.join(q, chan, timeout_s, probe.max_penalty, probe.min_penalty,
                                       probe.prio)

    # -- entering and leaving ------------------------------------------------------------------
    async def run(self) -> int:
        core, q, chan = self.core, self.q, self.chan
        core.devices.publish(f"Queue:{q.name}", "RINGING")
        core.emit("QueueCallerJoin", "agent", chan,
                  [("Queue", q.name), ("Position", str(q.position(self.caller))),
                   ("Count", str(len(q.callers)))])
        core.emit("MusicOnHoldStart", "call", chan, [("Class", q.config.musicclass)])
        notify_far(chan, Notice("queue_join", queue=q.name))
        log.info("%s waits in queue %s at position %d", chan.name, q.name,
                 q.position(self.caller))
        try:
            return await self._loop()
        finally:
            if self.caller in q.callers:  # cancelled by the simulator shutting down
                q.callers.remove(self.caller)

    def _hold(self) -> int:
        return int(self.core.clock.now()) - int(self.caller.start)

    def _leave(self) -> int:
        pos = self.core.queues.leave(self.q, self.caller)
        if not self.q.callers:
            self.core.devices.publish(f"Queue:{self.q.name}", "NOT_INUSE")
        self.core.emit("QueueCallerLeave", "agent", self.chan,
                       [("Queue", self.q.name), ("Position", str(pos)),
                        ("Count", str(len(self.q.callers)))])
        return pos

    def _dialed_ms(self) -> int:
        return int((self.core.clock.now() - self.chan.created) * 1000)

    def _record_abandoned(self) -> int:
        """app_queue's record_abandoned: ABANDONED=TRUE and QueueCallerAbandon. Asterisk
        calls it when the caller hangs up, and also when the Queue() timeout expires or the
        queue empties (leavewhenempty): the event alone does not mean the caller is gone."""
        core, chan = self.core, self.chan
        hold = self._hold()
        set_variable(core, chan, "ABANDONED", "TRUE")
        pos = self.q.position(self.caller)
        core.emit("QueueCallerAbandon", "agent", chan,
                  [("Queue", self.q.name), ("Position", str(pos)),
                   ("OriginalPosition", str(self.caller.original_position)),
                   ("HoldTime", str(hold))])
        self.q.record_abandoned(hold)
        return pos

    def _abandon(self) -> int:
        core, chan = self.core, self.chan
        hold = self._hold()
        core.emit("MusicOnHoldStop", "call", chan)
        dialed = self._dialed_ms()
        for name, value in (("QUEUEWAIT", hold), ("QUEUEWAIT_MS", hold * 1000),
                            ("DIALEDTIME", dialed // 1000), ("DIALEDTIME_MS", dialed),
                            ("ANSWEREDTIME", 0), ("ANSWEREDTIME_MS", 0)):
            set_variable(core, chan, name, str(value))
        pos = self._record_abandoned()
        self._leave()
        set_variable(core, chan, "QUEUEPOSITION", str(pos))
        notify_far(chan, Notice("queue_leave", queue=self.q.name, reason="abandon"))
        log.info("%s abandoned queue %s after %d s", chan.name, self.q.name, hold)
        return -1

    def _leave_queue(self) -> int:
        """What every way out of the queue does: music stops, the wait is recorded, the
        caller leaves (QueueCallerLeave). Returns the hold time in seconds."""
        core, chan = self.core, self.chan
        hold = self._hold()
        core.emit("MusicOnHoldStop", "call", chan)
        set_variable(core, chan, "QUEUEWAIT", str(hold))
        set_variable(core, chan, "QUEUEWAIT_MS", str(hold * 1000))
        pos = self._leave()
        set_variable(core, chan, "QUEUEPOSITION", str(pos))
        return hold

    def _exit(self, status: str) -> int:
        core, chan = self.core, self.chan
        if status in ("TIMEOUT", "LEAVEEMPTY"):
            self._record_abandoned()      # as app_queue does, though the caller is still here
        hold = self._leave_queue()
        set_variable(core, chan, "QUEUESTATUS", status)
        notify_far(chan, Notice("queue_leave", queue=self.q.name, reason=status.lower()))
        log.info("%s leaves queue %s: %s after %d s", chan.name, self.q.name, status, hold)
        return 0

    async def _wait(self, seconds: float) -> int | None:
        """Wait between checks; the Queue() result when the caller left meanwhile (hung up,
        or pressed an exit key of the queue's ``context``), None to go on waiting."""
        core, chan, context = self.core, self.chan, self.q.config.context
        if not context:
            return None if await lifecycle.sleep(core, chan, seconds) else self._abandon()
        end = core.clock.now() + seconds
        while (left := end - core.clock.now()) > 0:
            digit, stopped = await lifecycle.read_digit(core, chan, left)
            if stopped:
                return self._abandon()
            if digit is None:
                return None
            if core.dialplan.exists(context, digit):
                return self._exit_with_key(context, digit)
        return None

    def _exit_with_key(self, context: str, digit: str) -> int:
        """app_queue's valid_exit: the caller leaves (QueueCallerLeave, no QUEUESTATUS) and
        the channel's location becomes ``digit@context`` (priority 1 next, as
        ast_goto_if_exists leaves it for a channel in the PBX)."""
        chan = self.chan
        hold = self._leave_queue()
        chan.context, chan.exten, chan.priority = context, digit, 0
        notify_far(chan, Notice("queue_leave", queue=self.q.name, reason="exitwithkey"))
        log.info("%s leaves queue %s with key %s after %d s", chan.name, self.q.name, digit,
                 hold)
        return 0

    def _expired(self) -> bool:
        exp = self.caller.expire
        return exp is not None and self.core.clock.now() >= exp

    def _empty(self) -> bool:
        rule = self.q.config.leavewhenempty.lower()
        return rule not in ("no", "") and not self.core.queues.has_usable_members(self.q,
                                                                                  self.caller)

    # -- the wait loop ---------------------------------------------------------------------------
    async def _loop(self) -> int:
        core = self.core
        while True:
            while not core.queues.is_our_turn(self.q, self.caller):
                if self._expired():
                    return self._exit("TIMEOUT")
                if self._empty():
                    return self._exit("LEAVEEMPTY")
                left = await self._wait(RECHECK_S)
                if left is not None:
                    return left
            while True:
                if self._expired():
                    return self._exit("TIMEOUT")
                if self._empty():
                    return self._exit("LEAVEEMPTY")
                result = await self._try_calling()
                if result is not None:
                    return result
                if self._expired():
                    return self._exit("TIMEOUT")
                left = await self._wait(float(self.q.config.retry))
                if left is not None:
                    return left
                if not core.queues.is_our_turn(self.q, self.caller):
                    break

    async def _try_calling(self) -> int | None:
        """One ring round: the best member(s) ring until answer, ring timeout or caller gone.

        A member whose phone answers busy is given up at once and the next best one rung in
        the remaining time (app_queue's ring_one after AST_CONTROL_BUSY).
        """
        core, q, chan, caller = self.core, self.q, self.chan, self.caller
        now = core.clock.now()
        deadline: float | None = now + q.config.timeout if q.config.timeout > 0 else None
        if caller.expire is not None:
            deadline = caller.expire if deadline is None else min(deadline, caller.expire)
        tried: set[str] = set()
        while True:
            members = core.queues.choose(q, caller, tried)
            if not members:
                return None
            tried.update(m.interface for m in members)
            legs = [leg for m in members if (leg := start_leg(core, chan, q, m)) is not None]
            if not legs:
                continue
            for leg in legs:
                core.devices.use(leg.member.interface).ringing += 1
            caller.pending = True
            ring_start = core.clock.now()
            try:
                winner, why = await self._ring(legs, deadline, ring_start)
            finally:
                caller.pending = False
                for leg in legs:
                    core.devices.use(leg.member.interface).ringing -= 1
            if winner is not None:
                return await self._connect(winner, ring_start)
            if why == "cancel" or chan.should_stop:
                return self._abandon()
            left = None if deadline is None else deadline - core.clock.now()
            if why != "busy" or q.config.strategy == "ringall" or (left is not None
                                                                  and left <= 0.5):
                return None

    async def _ring(self, legs: list[Leg], deadline: float | None, ring_start: float
                    ) -> tuple[Leg | None, str]:
        """Wait for the first answer; (None, why) with why in timeout / cancel / busy."""
        core, chan = self.core, self.chan
        legs = list(legs)  # the caller's list still counts every leg rung this round
        while legs:
            events = [chan.interrupted] + [leg.near.answered for leg in legs] + [
                leg.near.interrupted for leg in legs]
            left = None if deadline is None else max(0.0, deadline - core.clock.now())
            idx = await lifecycle.wait_any(core, events, left)
            if idx is None:
                for leg in legs:
                    self._end_leg(leg, "NOANSWER")
                    self._ring_no_answer(leg, ring_start)
                return None, "timeout"
            if idx == 0:
                for leg in legs:
                    self._end_leg(leg, "CANCEL")
                return None, "cancel"
            answered = [leg for leg in legs if leg.near.answered.is_set() and not leg.near.hungup]
            if answered:
                for leg in legs:
                    if leg is not answered[0]:
                        self._end_leg(leg, "CANCEL")
                return answered[0], "answer"
            for leg in [leg for leg in legs if leg.near.interrupted.is_set()]:
                self._end_leg(leg, "BUSY")
                self._ring_no_answer(leg, ring_start)
                legs.remove(leg)
        return None, "busy"

    def _ring_no_answer(self, leg: Leg, ring_start: float) -> None:
        rna_ms = int((self.core.clock.now() - ring_start) * 1000)
        self.core.emit("AgentRingNoAnswer", "agent", self.chan,
                       [("Queue", self.q.name), ("Interface", leg.member.interface),
                        ("MemberName", leg.member.membername), ("RingTime", str(rna_ms))],
                       dest=leg.near)
        log.info("queue %s: %s did not answer (%d ms)", self.q.name, leg.member.membername,
                 rna_ms)

    def _end_leg(self, leg: Leg, status: str) -> None:
        self.core.emit("DialEnd", "call", self.chan, [("DialStatus", status)], dest=leg.near)
        leg.drop(self.core)

    # -- connected call ---------------------------------------------------------------------------
    async def _connect(self, leg: Leg, ring_start: float) -> int:
        core, q, chan, near, m = self.core, self.q, self.chan, leg.near, leg.member
        now = core.clock.now()
        hold = self._hold()
        if chan.state != UP:
            lifecycle.answer(core, chan)  # bridging the member answers an unanswered caller
        near.conn_num, near.conn_name = chan.caller_num, chan.caller_name
        if leg.far is not None:
            core.emit("Newexten", "dialplan", near, [("Extension", near.exten),
                                                     ("Application", near.appl),
                                                     ("AppData", near.data)])
            core.emit("NewConnectedLine", "call", near)
        core.emit("DialEnd", "call", chan, [("DialStatus", "ANSWER")], dest=near)
        core.emit("MusicOnHoldStop", "call", chan)
        pos = self._leave()
        set_variable(core, chan, "QUEUEPOSITION", str(pos))
        set_variable(core, chan, "QUEUEWAIT", str(hold))
        set_variable(core, chan, "QUEUEWAIT_MS", str(hold * 1000))
        use = core.devices.use(m.interface)
        use.in_call = True
        m.in_call = True
        q.record_holdtime(hold)
        core.emit("AgentConnect", "agent", chan,
                  [("Queue", q.name), ("Interface", m.interface), ("MemberName", m.membername),
                   ("HoldTime", str(hold)), ("RingTime", str(int(now) - int(ring_start)))],
                  dest=near)
        bridge = Bridge(core)
        bridge.enter(near)
        bridge.enter(chan)
        set_variable(core, near, "BRIDGEPEER", chan.name)
        set_variable(core, chan, "BRIDGEPEER", near.name)
        notify_far(chan, Notice("connected", queue=q.name, member=m.membername))
        log.info("%s connected to %s (%s) in queue %s after %d s", chan.name, m.membername,
                 near.name, q.name, hold)
        talk_start = core.clock.now()
        idx = await lifecycle.wait_any(core, [chan.interrupted, near.interrupted], None)
        end = core.clock.now()
        talk = int(end) - int(talk_start)
        reason = "caller" if idx == 0 else "agent"
        core.emit("AgentComplete", "agent", chan,
                  [("Queue", q.name), ("Interface", m.interface), ("MemberName", m.membername),
                   ("HoldTime", str(hold)), ("TalkTime", str(talk)), ("Reason", reason)],
                  dest=near)
        set_variable(core, near, "BRIDGEPEER", "")
        set_variable(core, chan, "BRIDGEPEER", "")
        if reason == "agent":
            bridge.leave(near)
            leg.drop(core, 16)
            bridge.leave(chan)
            if not chan.hangupcause:
                chan.hangupcause = near.hangupcause or 16
        else:
            bridge.leave(chan)
            leg.drop(core, chan.hangupcause or 16)
            bridge.leave(near)
        answered_ms = int((end - talk_start) * 1000)
        dialed = self._dialed_ms()
        for name, value in (("ANSWEREDTIME", answered_ms // 1000), ("ANSWEREDTIME_MS", answered_ms),
                            ("DIALEDTIME", dialed // 1000), ("DIALEDTIME_MS", dialed)):
            set_variable(core, chan, name, str(value))
        bridge.destroy()
        use.in_call = False
        m.in_call = False
        m.calls_taken += 1
        m.last_call = int(end)
        use.wrapup_until = end + (m.wrapuptime or q.config.wrapuptime)
        q.record_completed(hold, talk)
        notify_far(chan, Notice("unbridged", queue=q.name, member=m.membername, reason=reason))
        log.info("%s call with %s ended by the %s after %d s", chan.name, m.membername, reason,
                 talk)
        if reason == "agent" and self.continue_after and not chan.should_stop:
            set_variable(core, chan, "QUEUESTATUS", "CONTINUE")
            return 0
        # Without the 'c' option app_queue ends the caller's dialplan once the bridge is over.
        return -1
