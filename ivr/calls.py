"""Every live call of one Asterisk node: sessions started on AsyncAGIStart, AMI events routed
to them by Uniqueid, and calls taken up again after the AMI link comes back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from ivr.ami.errors import AgiHangup, AgiResultLost
from ivr.ami.events import (
    TYPED_EVENTS,
    AmiEvent,
    AsyncAgiStart,
    ChannelEvent,
    CoreShowChannel,
)
from ivr.ami.link import AmiLink
from ivr.call_state import FOLLOW_DIALPLAN, CallInfo, SessionDeps
from ivr.session import CallSession

log = logging.getLogger("hotline.calls")

# Longest an AGI command already running on a parked channel (a prompt) may take to finish.
FLUSH_TIMEOUT_S = 120.0
# Extensions Asterisk sends a channel to by itself (absolute timeout, hangup, invalid, ...).
SPECIAL_EXTENSIONS = frozenset({"T", "t", "h", "i", "e", "a", "o"})


class CallRegistry:
    def __init__(self, link: AmiLink, deps: SessionDeps, *, node: str, locale: str,
                 agi_at: tuple[str, int] | None = None) -> None:
        self._link = link
        # (context, priority) of the dialplan's AGI(agi:async): a channel there showing
        # another application runs one we started with EXEC (Asterisk does not restore
        # "AGI" in the channel listing once an EXEC has run).
        self._agi_at = agi_at
        self.deps = deps
        self._node = node
        self._locale = locale
        self.sessions: dict[str, CallSession] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._helpers: set[asyncio.Task[None]] = set()
        self.started = 0
        self.resumed = 0
        link.add_listener(self._on_event, TYPED_EVENTS)
        link.on_up(self.reconcile)

    # ---- events ------------------------------------------------------------------------
    def _on_event(self, ev: AmiEvent) -> None:
        if isinstance(ev, AsyncAgiStart):
            if ev.uniqueid not in self.sessions:
                env = ev.env
                self._start(CallInfo(
                    node=self._node, channel=ev.channel, uniqueid=ev.uniqueid,
                    caller_num=ev.ref.caller_num or env.get("agi_callerid", ""),
                    caller_name=ev.ref.caller_name or env.get("agi_calleridname", ""),
                    dnid=self._called(env.get("agi_extension", ""), env.get("agi_dnid", "")),
                    locale=self._locale), False)
            return
        if isinstance(ev, ChannelEvent):
            session = self.sessions.get(ev.uniqueid)
            if session is not None:
                session.on_event(ev)

    def _called(self, extension: str, dnid: str) -> str:
        """The hotline number the caller dialled. The dialplan entry's extension is that
        number (``exten => 12345``), where the DNID may be missing (Local channels have none)
        or differ (an inbound context rewriting the number before its Goto)."""
        if self.deps.ivr.lists_number(extension):
            return extension
        return "" if dnid == "unknown" else dnid

    def _start(self, info: CallInfo, resumed: bool) -> None:
        session = CallSession(info, self.deps, resumed=resumed)
        self.sessions[info.uniqueid] = session
        if resumed:
            self.resumed += 1
        else:
            self.started += 1
        task = asyncio.create_task(session.run(), name=f"call-{info.uniqueid}")
        self._tasks[info.uniqueid] = task
        uid = info.uniqueid
        task.add_done_callback(lambda _t: self._ended(uid))

    def _ended(self, uniqueid: str) -> None:
        self.sessions.pop(uniqueid, None)
        self._tasks.pop(uniqueid, None)

    # ---- after every (re)connect -----------------------------------------------------
    async def reconcile(self) -> None:
        """Find what happened while the link was down. Commands whose results can no longer
        arrive are failed so their sessions repeat the step; calls parked in async AGI with
        no session (the service restarted) get one."""
        res = await self._link.action("CoreShowChannels")
        rows = {e.channel: e for e in res.events if isinstance(e, CoreShowChannel)}
        pending = self._link.agi_pending_channels()
        ours = pending | {s.info.channel for s in self.sessions.values()}
        for channel in ours:
            row = rows.get(channel)
            if row is None:
                self._gone(channel)
                self._link.fail_agi(channel, AgiHangup(f"{channel} ended while AMI was down"))
            elif row.parked_in_async_agi:
                # A command may still be running (GET DATA) or may have finished unseen.
                if channel in pending:
                    self._spawn(self._flush(channel), f"flush-{channel}")
            elif self._runs_our_exec(row):
                # Queue or Dial may run for as long as the conversation: wait it out.
                if channel in pending:
                    self._spawn(self._flush(channel, None), f"flush-{channel}")
            else:
                # Out of async AGI (the watchdog queued the caller meanwhile): no result can
                # come, and Asterisk would take a session's retried step without running it.
                log.info("%s left async AGI while AMI was down (%s at %s,%s,%d)", channel,
                         row.application or "-", row.context, row.exten, row.priority)
                self._link.agi_left(channel)
        for row in rows.values():
            if row.uniqueid in self.sessions:
                continue
            running = "" if row.parked_in_async_agi else row.application
            if self._queued_by_watchdog(row):
                running = FOLLOW_DIALPLAN
            if running == FOLLOW_DIALPLAN or row.parked_in_async_agi or self._runs_our_exec(row):
                log.info("resuming call %s %s on %s", row.uniqueid,
                         f"running {running}" if running else "parked in async AGI",
                         row.channel)
                self._start(CallInfo(node=self._node, channel=row.channel,
                                     uniqueid=row.uniqueid, caller_num=row.ref.caller_num,
                                     caller_name=row.ref.caller_name, dnid="",
                                     locale=self._locale, running=running), True)

    def _gone(self, channel: str) -> None:
        """The channel hung up while the link was down (its Hangup event is lost): tell its
        session before failing its commands, so the call ends as the caller ended it."""
        for session in self.sessions.values():
            if session.info.channel == channel:
                session.channel_gone()

    def _queued_by_watchdog(self, row: CoreShowChannel) -> bool:
        """In the IVR watchdog's T extension: an IVR call whose service went away."""
        return self._agi_at is not None and (row.context, row.exten) == (self._agi_at[0], "T")

    def _runs_our_exec(self, row: CoreShowChannel) -> bool:
        # Not an extension Asterisk jumps to by itself: the watchdog's T extension runs its
        # own Queue() at what may be the same priority as an entry's AGI.
        return (self._agi_at is not None and (row.context, row.priority) == self._agi_at
                and row.exten not in SPECIAL_EXTENSIONS
                and row.application not in ("", "AGI"))

    async def _flush(self, channel: str, timeout: float | None = FLUSH_TIMEOUT_S) -> None:
        """Commands run in order on a channel: once a NOOP queued now has run, any command
        queued before it that still has no result lost it while the link was down."""
        before = self._link.agi_pending(channel)
        try:
            await self._link.agi(channel, "NOOP", timeout=timeout)
        except AgiHangup:
            self._gone(channel)
            self._link.fail_agi(channel, AgiHangup(f"{channel} hung up"), only=before)
            return
        except Exception as e:  # noqa: BLE001 - any failure: the results are lost either way
            log.warning("could not settle AGI commands on %s: %s", channel, e)
        self._link.fail_agi(channel, AgiResultLost(f"{channel}: result lost"), only=before)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)

    async def stop(self) -> None:
        for t in [*self._tasks.values(), *self._helpers]:
            t.cancel()
        await asyncio.gather(*self._tasks.values(), *self._helpers, return_exceptions=True)
