"""Queueing a caller over async AGI, and settling the call when Queue() returns.

Part of ``CallSession`` (``ivr.session``), kept apart so each file has one concern: the call
script and its menu there; here what follows the routing decision. Queue() runs as an EXEC
in async AGI, so when it returns the caller is still on the line in async AGI (Asterisk does
not hang up after the agent does): a served caller is hung up, a caller who pressed the
queue's callback key gets the callback, and one nobody answered is offered the default group
once. Queue() may also end unseen, while the AMI link is down or across a service restart;
app_queue's QUEUESTATUS then tells whether anybody answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from cases.schemas import CaseView
from ivr.agi import AgiChannel
from ivr.ami.agi_result import AgiResult
from ivr.ami.errors import AgiResultLost
from ivr.call_state import FOLLOW_DIALPLAN, CallInfo, CallState, SessionDeps
from ivr.ivr_watchdog import VARIABLE as WATCHDOG_VARIABLE
from ivr.ivr_watchdog import IvrWatchdog
from ivr.menus.live_io import AgiCallIO
from ivr.menus.waiting import exit_key as queue_exit_key
from routing.router import RouteDecision

log = logging.getLogger("hotline.call")

# app_queue's QUEUESTATUS when the caller left without being answered.
NO_ANSWER_STATUSES = frozenset({"TIMEOUT", "FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL",
                                "LEAVEUNAVAIL"})
T = TypeVar("T")


class _ResultLost(Exception):
    """Queue()'s result went with the AMI link (it ran to its end meanwhile)."""


class QueueSteps:
    """The queue half of ``CallSession``; the attributes below are the session's."""

    info: CallInfo
    deps: SessionDeps
    state: CallState
    agi: AgiChannel
    io: AgiCallIO
    _menu_name: str
    _agi_ended: bool
    _case_open: asyncio.Task[CaseView | None] | None
    _background: set[asyncio.Task[object]]
    _watchdog: IvrWatchdog
    _hangup: asyncio.Event

    if TYPE_CHECKING:
        async def _step(self, op: Callable[[], Awaitable[T]]) -> T: ...
        async def _set_variables(self, variables: dict[str, str]) -> None: ...
        def _update(self, **changes: object) -> None: ...
        def _open_case(self) -> asyncio.Task[CaseView | None]: ...

    async def _follow_running_app(self, app: str) -> bool:
        """Taken up after a restart while an application the last service started runs.
        Queue and Dial are seen to their end and the call settled as ``_queue`` would; True
        then. Anything else (AudioSocket: it ends with the old service's connection) goes
        on as a resumed call from the menu."""
        if app == FOLLOW_DIALPLAN:
            self._open_case()
            await self._follow_the_dialplan("queued by the IVR watchdog while the service was "
                                            "away")
            return True
        if app.lower() not in ("queue", "dial"):
            return False
        self._open_case()
        log.info("call %s: following %s started by the previous service", self.info.uniqueid,
                 app)
        # Commands run in order: this one runs once the application has returned.
        await self._step(lambda: self.agi.command("NOOP", timeout=None))
        if app.lower() == "dial":
            self.state.final = "transferred"
            await self._hang_up_if_up()
            return True
        await self._after_queue(None, "")
        return True

    async def _follow_the_dialplan(self, why: str) -> None:
        """Out of async AGI with the caller on the line: the dialplan has them (the IVR
        watchdog queued them while the service or its AMI link was away). Nothing to drive,
        but their queue events still reach this session, so the case gets the call's real
        outcome at its end."""
        log.info("call %s: %s; the dialplan has the caller, following the call to its end",
                 self.info.uniqueid, why)
        self.state.ivr_path.append("dialplan")
        await self._hangup.wait()

    async def _hang_up_if_up(self) -> None:
        """The call is done (the agent hung up first, or the queue gave up): Queue() has
        returned into async AGI with the caller still on the line, so end the call rather
        than leave the caller parked in silence."""
        if self.state.hung_up or self._agi_ended:
            return
        try:
            await self.agi.hangup()
        except Exception as e:  # noqa: BLE001 - the caller may be gone already
            log.debug("call %s: hangup after the queue: %s", self.info.uniqueid, e)

    def _case_number_later(self, task: asyncio.Task[CaseView | None]) -> None:
        """The case was written after the caller joined the queue: put its number on the
        channel with AMI Setvar (async AGI is busy running Queue)."""
        if task.cancelled() or task.exception() is not None or self.state.hung_up:
            return
        case = task.result()
        if case is None:
            return
        setvar = asyncio.create_task(self.deps.link.action("Setvar", {
            "Channel": self.info.channel, "Variable": "HOTLINE_CASE", "Value": case.number}),
            name=f"case-number-{self.info.uniqueid}")
        self._background.add(setvar)
        setvar.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[object]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The channel may be gone by now; the case itself is written either way.
            log.debug("call %s: %s failed: %s", self.info.uniqueid, task.get_name(),
                      task.exception())

    async def _queue(self, decision: RouteDecision) -> None:
        s = self.state
        s.decision = decision
        s.ivr_path.append(f"route:{decision.group}")
        self._update(topic=s.topic, queue=decision.queue, ivr_path=list(s.ivr_path))
        variables: dict[str, str] = {}
        if s.case_number:
            variables["HOTLINE_CASE"] = s.case_number
        elif self._case_open is not None and not self._case_open.done():
            # The caller does not wait for the database: the number follows when written.
            self._case_open.add_done_callback(self._case_number_later)
        if s.topic:
            variables["HOTLINE_TOPIC"] = s.topic
        variables["QUEUESTATUS"] = ""
        if self._watchdog.stop():
            variables[WATCHDOG_VARIABLE] = "0"     # a queue and a talk may run for long
        variables.update(decision.channel_vars())
        await self._step(lambda: self._set_variables(variables))
        log.info("call %s: topic %s -> queue %s (%s)", self.info.uniqueid, s.topic or "-",
                 decision.queue, decision.reason)
        args = f"{decision.queue},,,,{self.deps.ivr.queue_timeout_s}"
        await self._after_queue(await self._run_queue(args), decision.queue)

    async def _run_queue(self, args: str) -> str | None:
        """Queue() over async AGI: its result, or None when it ended while the AMI link was
        down (the result is lost; QUEUESTATUS tells what happened, so the variables set
        before it clear the last one's: app_queue names a status only when nobody
        answered)."""
        try:
            result = await self._step(lambda: self._exec_queue(args))
        except _ResultLost:
            return None
        return result.result

    async def _exec_queue(self, args: str) -> AgiResult:
        try:
            return await self.agi.exec("Queue", args, timeout=None)
        except AgiResultLost:
            # Queue() ran (the flush after the reconnect proved it ended): never again.
            await self.deps.link.wait_up()
            raise _ResultLost from None

    async def _after_queue(self, result: str | None, queue: str) -> None:
        """Queue() returned (``result``; None: unseen). Settle the call: hang up a served
        caller, book a callback asked for with the exit key, else one more queue."""
        s = self.state
        if result is None:
            status = await self._step(lambda: self.agi.get_variable("QUEUESTATUS")) or ""
            unanswered = status in NO_ANSWER_STATUSES
            if s.agent is None and not unanswered and await self._left_with_callback_key():
                return
            # (The channel answered: the caller is still here, whatever QueueCallerAbandon
            # said; app_queue sends one on a timeout too.)
            if s.agent is not None or not unanswered:
                if s.agent is None:
                    s.final = "answered"      # a member answered while we were away
                await self._hang_up_if_up()
                return
        elif result == "-1" or s.hung_up or s.agent is not None:
            # Not QueueCallerAbandon: app_queue sends it when the Queue() timeout expires as
            # well, with the caller still on the line (result 0) and owed the default group.
            await self._hang_up_if_up()
            return
        elif await self._left_with_callback_key():
            return
        # The queue timed out with nobody answering: one more try in the default group,
        # with its own window (app_queue reads these each time Queue() starts).
        fallback = self.deps.router.default("queue timeout")
        if fallback.queue != queue:
            s.ivr_path.append(f"overflow:{fallback.group}")
            await self._step(lambda: self._set_variables(
                {"QUEUE_MIN_PENALTY": "", "QUEUE_MAX_PENALTY": "", "QUEUE_PRIO": "",
                 "QUEUESTATUS": "", **fallback.channel_vars()}))
            await self._run_queue(f"{fallback.queue},,,,{self.deps.ivr.queue_timeout_s}")
        await self._hang_up_if_up()

    async def _left_with_callback_key(self) -> bool:
        """app_queue's exit key (queues.conf ``context``): Queue() returned after a jump to
        the key's extension in the exit context. A call taken up after a restart has not
        been through a menu here: any menu's callback key counts."""
        menus = self.deps.ivr.menus
        names = [self._menu_name] if self._menu_name in menus else list(menus)
        waiting = [(n, w) for n in names if (w := menus[n].waiting) is not None]
        if not waiting:
            return False
        where = await self._step(lambda: self.agi.get_full_variable("${CONTEXT},${EXTEN}"))
        name, w = next(((n, w) for n, w in waiting
                        if where and queue_exit_key(where, w.callback_key)), ("", None))
        if w is None:
            return False
        self.state.ivr_path.append("wait:callback")
        await self.io.play([menus[name].sound_of(name, w.confirm)])
        return await self._booked_callback("from the queue")

    async def _booked_callback(self, where: str) -> bool:
        self.state.final = "callback"
        log.info("call %s: callback requested %s", self.info.uniqueid, where)
        await self.agi.hangup()
        return True
