"""Every live call of one Asterisk node: sessions started on AsyncAGIStart, AMI events routed
to them by Uniqueid, and calls taken up again after the AMI link comes back.
"""

from __future__ import annotations

import asyncio
import logging

from ivr.ami.errors import AgiHangup, AgiResultLost
from ivr.ami.events import AmiEvent, AsyncAgiStart, ChannelEvent, CoreShowChannel
from ivr.ami.link import AmiLink
from ivr.session import CallInfo, CallSession, SessionDeps

log = logging.getLogger("hotline.calls")


class CallRegistry:
    def __init__(self, link: AmiLink, deps: SessionDeps, *, node: str, locale: str) -> None:
        self._link = link
        self._deps = deps
        self._node = node
        self._locale = locale
        self.sessions: dict[str, CallSession] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.started = 0
        self.resumed = 0
        link.add_listener(self._on_event)
        link.on_up(self.reconcile)

    # ---- events ------------------------------------------------------------------------
    def _on_event(self, ev: AmiEvent) -> None:
        if isinstance(ev, AsyncAgiStart):
            if ev.uniqueid not in self.sessions:
                env = ev.env
                dnid = env.get("agi_dnid", "")
                self._start(CallInfo(
                    node=self._node, channel=ev.channel, uniqueid=ev.uniqueid,
                    caller_num=ev.ref.caller_num or env.get("agi_callerid", ""),
                    caller_name=ev.ref.caller_name or env.get("agi_calleridname", ""),
                    dnid="" if dnid == "unknown" else dnid, locale=self._locale), False)
            return
        if isinstance(ev, ChannelEvent):
            session = self.sessions.get(ev.uniqueid)
            if session is not None:
                session.on_event(ev)

    def _start(self, info: CallInfo, resumed: bool) -> None:
        session = CallSession(info, self._deps, resumed=resumed)
        self.sessions[info.uniqueid] = session
        if resumed:
            self.resumed += 1
        else:
            self.started += 1
        task = asyncio.create_task(session.run(), name=f"call-{info.uniqueid}")
        self._tasks[info.uniqueid] = task
        task.add_done_callback(lambda _t, uid=info.uniqueid: self._ended(uid))

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
        for channel in self._link.agi_pending_channels():
            row = rows.get(channel)
            if row is None:
                self._link.fail_agi(channel, AgiHangup(f"{channel} ended while AMI was down"))
            elif row.parked_in_async_agi:
                self._link.fail_agi(channel, AgiResultLost(f"{channel}: result lost"))
        for row in rows.values():
            if row.parked_in_async_agi and row.uniqueid not in self.sessions:
                log.info("resuming call %s parked in async AGI on %s", row.uniqueid,
                         row.channel)
                self._start(CallInfo(node=self._node, channel=row.channel,
                                     uniqueid=row.uniqueid, caller_num=row.ref.caller_num,
                                     caller_name=row.ref.caller_name, dnid="",
                                     locale=self._locale), True)

    async def stop(self) -> None:
        for t in list(self._tasks.values()):
            t.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
