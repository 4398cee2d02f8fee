"""One call, from AsyncAGIStart to hangup: walk the caller's menu, open and fill the case,
queue the caller (or end the call the menu settled), follow the queue until the call ends.

Failure policy: whatever breaks (classifier, case store, a bad key, a menu step), the caller
is queued to the default group; a call is only ever ended by the caller, the agent, Asterisk,
or the menu once it has served the caller (status heard, message left, callback booked).

Menus (``ivr.menus``) decide what the caller needs; this module carries it out: routing, the
case record. Queueing the caller and settling the call when Queue() returns is
``ivr.call_queue``; the survey calls the centre places (回访) are ``ivr.call_survey``.

A command that answers "result=-1" usually means the caller hung up, but Asterisk says the
same of a live channel whose prompt is missing: without a Hangup event the call counts as
failed on our side (no callback owed), and the dialplan's fallback queues the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from cases.schemas import CallStart, CaseView
from ivr.agi import AgiChannel
from ivr.ami.errors import AgiHangup, AgiLeft, AgiResultLost, AmiDisconnected, AmiNotConnected
from ivr.ami.events import (
    AgentEvent,
    AmiEvent,
    AsyncAgiEnd,
    Hangup,
    QueueCallerAbandon,
    QueueCallerJoin,
)
from ivr.call_queue import QueueSteps
from ivr.call_state import CallInfo, CallState, SessionDeps
from ivr.call_survey import SurveySteps
from ivr.ivr_watchdog import VARIABLE as WATCHDOG_VARIABLE
from ivr.ivr_watchdog import IvrWatchdog
from ivr.menus.engine import (
    MENU_MARK,
    Defaults,
    MenuEngine,
    MenuOutcome,
    channel_language,
    menu_path,
)
from ivr.menus.io import ALL_KEYS as _ALL_KEYS
from ivr.menus.io import HUMAN_KEY as _HUMAN_KEY
from ivr.menus.live_io import AgiCallIO, StoreServices
from ivr.menus.survey import SurveyStore
from routing.router import RouteDecision
from routing.topics import Classification
from speech.capture import Utterance

log = logging.getLogger("hotline.call")

HUMAN_KEY = _HUMAN_KEY
ALL_KEYS = _ALL_KEYS
# How long the session follows its case's first write (in the background: the caller never
# waits for it) before going on without the number; the write itself goes on in the recorder.
CASE_OPEN_WAIT_S = 60.0
# A resumed call does wait, for the topic its case holds, but no longer than this.
RESUMED_CASE_WAIT_S = 2.0
# A call taken up after a restart may still be running a command (a prompt) queued by the
# previous service: the first command of ours waits behind it this long at most.
RESUME_WAIT_S = 120.0
# Asterisk also answers "result=-1" on a live channel (a prompt file missing in that
# language, a recording it cannot write): a real hangup shows its Hangup event within
# milliseconds, so without one after this long the caller is still there.
HANGUP_EVENT_WAIT_S = 2.0
T = TypeVar("T")


class CallSession(QueueSteps, SurveySteps):
    def __init__(self, info: CallInfo, deps: SessionDeps, *, resumed: bool = False) -> None:
        self.info = info
        self.deps = deps
        self.resumed = resumed
        self.state = CallState()
        self.agi = AgiChannel(deps.link, info.channel, command_timeout_s=deps.agi_timeout_s)
        self.finished = asyncio.Event()
        self._case_open: asyncio.Task[CaseView | None] | None = None
        self._background: set[asyncio.Task[object]] = set()   # cancelled when the call ends
        self._dnid = info.dnid
        self._menu_name = ""
        self._engine: MenuEngine | None = None
        self._gone = asyncio.Event()          # Hangup or AsyncAGIEnd seen: nothing to drive
        self._hangup = asyncio.Event()        # the call itself is over
        self._agi_ended = False
        self.io = AgiCallIO(self.agi, deps.link, call_id=info.uniqueid, step=self._step,
                            speech=deps.speech, speech_locale=deps.speech_locale,
                            locale=self._locale, messages_dir=deps.ivr.messages_dir,
                            on_partial=self._on_partial, on_heard=self._on_heard,
                            before_handoff=self._disarm)
        self._watchdog = IvrWatchdog(deps.link, info.channel, info.uniqueid,
                                     deps.ivr.watchdog_s)

    # ---- AMI events for this caller (called in arrival order by the registry) ---------
    def on_event(self, ev: AmiEvent) -> None:
        s = self.state
        if isinstance(ev, QueueCallerJoin):
            s.queue_joined = ev.queue
            s.ivr_path.append(f"queue:{ev.queue}")
        elif isinstance(ev, AgentEvent):
            if ev.name == "AgentConnect":
                s.agent = ev.member_name
                s.hold_time_s = float(ev.hold_time)
                self._update(agent=ev.member_name, queue=ev.queue, wait_s=float(ev.hold_time),
                             answered_at=datetime.now(UTC))
            elif ev.name == "AgentComplete":
                s.talk_time_s = float(ev.talk_time)
                s.hold_time_s = float(ev.hold_time)
        elif isinstance(ev, QueueCallerAbandon):
            # Its wait; not proof the caller left (app_queue also sends it on a timeout):
            # the Hangup event and Queue()'s result say that.
            s.hold_time_s = float(ev.hold_time)
        elif isinstance(ev, Hangup):
            s.hung_up = True
            self._gone.set()
            self._hangup.set()
        elif isinstance(ev, AsyncAgiEnd):
            self._agi_ended = True
            self._gone.set()

    def channel_gone(self) -> None:
        """The caller hung up unseen (while the AMI link was down)."""
        self.state.hung_up = True
        self._gone.set()
        self._hangup.set()

    # ---- the call script ---------------------------------------------------------------
    async def run(self) -> None:
        info = self.info
        handed_back = False
        try:
            log.info("call %s from %s on %s%s", info.uniqueid, _mask(info.caller_num),
                     info.channel, " (resumed)" if self.resumed else "")
            if info.running and await self._follow_running_app(info.running):
                return
            self._watchdog.start()
            if not self._dnid and await self._survey_call(RESUME_WAIT_S):
                return
            opening = self._open_case()
            if self.resumed:
                await asyncio.wait({opening}, timeout=RESUMED_CASE_WAIT_S)
            await self._carry_out(await self._walk_menu())
        except AgiHangup as e:
            await self._after_minus_one(e)
        except asyncio.CancelledError:
            # The service is stopping, not the call: the channel stays parked in Asterisk
            # and the next service instance resumes it, so no outcome is recorded here.
            log.info("call %s handed back to Asterisk (service stopping)", info.uniqueid)
            handed_back = True
            if self._case_open is not None and not self._case_open.done():
                self._case_open.cancel()
            for t in self._background:
                t.cancel()
            # No more pushes: should no service come back, the watchdog queues the caller.
            self._watchdog.stop()
            raise
        except Exception:
            log.exception("call %s: unexpected error; handing the caller to the dialplan's "
                          "default queue", info.uniqueid)
            self.state.final = "failed"
            await self._release()
        finally:
            if not handed_back:
                self._finish()

    def _open_case(self) -> asyncio.Task[CaseView | None]:
        """The case is written while the caller hears the greeting: the database is never on
        the caller's path (a resumed call needs its case's topic first). Idempotent per
        call, in the store too, so a resumed call keeps its one case."""
        if self._case_open is not None:
            return self._case_open
        info = self.info
        self._case_open = asyncio.create_task(self.deps.recorder.open(CallStart(
            node=info.node, call_id=info.uniqueid, channel=info.channel,
            caller_number=info.caller_num or None, caller_name=info.caller_name or None,
            dnid=self._dnid or None, locale=info.locale), wait_s=CASE_OPEN_WAIT_S),
            name=f"case-open-{info.uniqueid}")
        self._case_open.add_done_callback(self._case_opened)
        return self._case_open

    async def _after_minus_one(self, e: AgiHangup) -> None:
        """A command said the channel is gone ("result=-1"). Usually the caller hung up;
        but Asterisk says the same of a live channel whose prompt file is missing, and that
        caller must not be left parked in silence."""
        s = self.state
        # asyncio.timeout, not wait_for, which can lose a stopping service's cancellation.
        if isinstance(e, AgiLeft):
            # Async AGI is over: either the caller hung up (its Hangup follows AsyncAGIEnd)
            # or the dialplan took the call. Learnt after a reconnect, the channel was up.
            if not e.unseen:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(HANGUP_EVENT_WAIT_S):
                        await self._hangup.wait()
            if not s.hung_up:
                await self._follow_the_dialplan(str(e))
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(HANGUP_EVENT_WAIT_S):
                await self._gone.wait()
        if s.hung_up:
            return
        # No hangup: our step failed on Asterisk's side. The caller goes to the default
        # queue (the dialplan's fallback after async AGI), and the case says we failed.
        log.warning("call %s: %s, but the caller is still on the line (a prompt missing on "
                    "Asterisk?); handing the caller to the dialplan's default queue",
                    self.info.uniqueid, e)
        s.final = "failed"
        if not self._agi_ended:
            await self._release()

    async def _disarm(self) -> None:
        """The call leaves the IVR for a transfer: no watchdog from here on, or it would cut
        the conversation."""
        if self._watchdog.stop():
            await self._step(lambda: self.agi.set_variable(WATCHDOG_VARIABLE, "0"))

    async def _release(self) -> None:
        """End async AGI without hanging up: the generated dialplan then queues the caller to
        the default group (its fallback after AGI), so a bug here never strands a citizen."""
        self._watchdog.stop()               # the dialplan clears it after AGI
        try:
            await self.agi.command("ASYNCAGI BREAK")
        except Exception as e:  # noqa: BLE001 - the caller may be gone; nothing more to do
            log.warning("call %s: could not release the channel (%s)", self.info.uniqueid, e)

    async def _set_variables(self, variables: dict[str, str]) -> None:
        # Sent back to back: Asterisk runs a channel's AGI commands in order, so Queue (sent
        # after) sees them all, and the caller waits one round trip instead of one each.
        await asyncio.gather(*(self.agi.set_variable(n, v) for n, v in variables.items()))

    def _case_opened(self, task: asyncio.Task[CaseView | None]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        case = task.result()
        if case is not None:
            self.state.case_number = case.number
            if self.resumed and case.topic and self.state.topic is None:
                self.state.topic = case.topic
            if self.resumed:
                # The path before the restart: this session's steps follow it.
                self.state.ivr_path[:0] = [str(p) for p in case.ivr_path]

    # ---- the menu ------------------------------------------------------------------------
    def _locale(self) -> str:
        # The engine's menu changes when the caller picks another language.
        name = self._engine.menu_name if self._engine is not None else self._menu_name
        menu = self.deps.ivr.menus.get(name or self._menu_name)
        return menu.language if menu is not None else self.info.locale

    def _new_engine(self) -> MenuEngine:
        ivr = self.deps.ivr
        return MenuEngine(ivr.menus, self.deps.catalogue, StoreServices(self._store(),
                                                                     self.deps.clock),
                          Defaults(ivr.input_timeout_ms, ivr.max_attempts),
                          timezone=ivr.timezone or "UTC", trail=self.state.ivr_path,
                          call_id=self.info.uniqueid)

    async def _enter_menu(self, name: str) -> None:
        self._menu_name = self.state.menu = name
        language = self.deps.ivr.menus[name].language
        if language != self.info.locale:
            # Prompts, SAY DIGITS and app_queue's announcements follow the channel language.
            await self.io.set_var("CHANNEL(language)", channel_language(language))
            self._update(locale=language)

    async def _walk_menu(self) -> MenuOutcome:
        s = self.state
        if s.topic is not None:         # resumed: the case knows what the caller needs
            return MenuOutcome("route", self._menu_name, topic=s.topic, source="resumed")
        name = self.deps.ivr.menu_for(self._dnid)
        engine = self._engine = self._new_engine()
        try:
            await self._enter_menu(name)
            outcome = await engine.run(self.io, name)
        except (AgiHangup, asyncio.CancelledError):
            raise
        except Exception as e:  # noqa: BLE001 - any IVR failure: the default group
            log.warning("call %s: IVR step failed (%s: %s); routing to the default group",
                        self.info.uniqueid, type(e).__name__, e)
            return MenuOutcome("human", self._menu_name, reason="ivr failure")
        finally:
            if engine.menu_name and engine.menu_name != self._menu_name:
                self._menu_name = s.menu = engine.menu_name
                self._update(locale=self.deps.ivr.menus[engine.menu_name].language)
        s.menu_outcome = outcome.kind
        # The path's summary for the case and the demo's menu_paths.
        s.ivr_path.append(f"{MENU_MARK}{menu_path(outcome, s.ivr_path)}")
        return outcome

    async def _carry_out(self, o: MenuOutcome) -> None:
        s = self.state
        if o.topic is not None and o.kind in ("route", "transferred"):
            s.topic = o.topic
        if o.emergency:
            s.emergency = o.topic
            self._update(topic=o.topic, urgency="critical")
        if o.kind == "route" and o.topic is not None:
            c = Classification(o.topic, o.confidence, o.keywords, o.source)
            await self._queue(self.deps.router.route(c, caller_id=self.info.uniqueid))
        elif o.kind == "route" and o.group is not None:
            await self._queue(self._group(o.group, o.reason))
        elif o.kind == "route" or o.kind == "human":
            await self._queue(self.deps.router.default(o.reason or "caller asked for a person"))
        elif o.kind == "transferred":
            s.final = "transferred"
        else:
            if o.kind == "message" and o.recording is not None:
                r = o.recording
                s.transcript = r.transcript
                self._update(transcript=r.transcript, topic=r.topic,
                             topic_confidence=r.confidence if r.topic else None,
                             description=f"voice message ({r.seconds:.0f} s): {r.location}")
            s.final = "self_service" if o.kind == "done" else "callback"
            log.info("call %s: %s (%s)", self.info.uniqueid, o.kind, o.reason)
            await self.agi.hangup()

    def _group(self, name: str, reason: str) -> RouteDecision:
        queue = self.deps.group_queues.get(name)
        if queue is None:      # the configuration check makes sure it exists
            return self.deps.router.default(f"no group {name}")
        return RouteDecision(name, queue, reason)

    def _on_partial(self, text: str) -> None:
        self.state.live_transcript = text

    def _on_heard(self, utt: Utterance) -> None:
        self.state.transcript = utt.text
        self._update(transcript=utt.text or None,
                     topic_confidence=utt.confidence if utt.topic else None)

    # ---- plumbing --------------------------------------------------------------------------
    def _store(self) -> SurveyStore | None:
        if self.deps.cases is not None:
            return self.deps.cases
        store = self.deps.recorder.store
        return store if isinstance(store, SurveyStore) else None

    def _update(self, **changes: object) -> None:
        if self.state.survey_of is None:     # a survey call has no case of its own
            self.deps.recorder.update(self.info.node, self.info.uniqueid, **changes)

    async def _step(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run one AGI step; if the AMI link drops meanwhile, wait for it and run it again
        (the channel stays parked in async AGI on Asterisk's side)."""
        for _ in range(5):
            try:
                return await op()
            except (AgiResultLost, AmiDisconnected, AmiNotConnected) as e:
                log.info("call %s: AMI link lost during a step (%s); resuming when it returns",
                         self.info.uniqueid, type(e).__name__)
                await self.deps.link.wait_up()
        return await op()

    def _finish(self) -> None:
        opened = self._case_open
        # A resumed call knows its whole path only once its case was read back.
        path_known = not self.resumed or (
            opened is not None and opened.done() and not opened.cancelled()
            and opened.exception() is None and opened.result() is not None)
        # The open write itself lives on in the recorder; only the wait for it is dropped.
        if self._case_open is not None and not self._case_open.done():
            self._case_open.cancel()
        for t in self._background:
            t.cancel()
        self._watchdog.stop()
        s = self.state
        if s.final is not None and s.agent is None:
            s.outcome = s.final
        elif s.agent is not None:
            s.outcome = "answered"
        elif s.emergency is not None and s.queue_joined is None:
            s.outcome = "transferred"      # told to call 119/110, and hung up to do so
        else:
            s.outcome = "abandoned"
        if s.survey_of is None:
            if path_known:
                self.deps.recorder.update(self.info.node, self.info.uniqueid,
                                          ivr_path=list(s.ivr_path))
            self.deps.recorder.finish(self.info.node, self.info.uniqueid, s.outcome,
                                      datetime.now(UTC), wait_s=s.hold_time_s,
                                      talk_s=s.talk_time_s)
        log.info("call %s ended: %s%s", self.info.uniqueid, s.outcome,
                 f" by {s.agent} after {s.hold_time_s:.0f}s" if s.agent else "")
        self.finished.set()


def _mask(number: str) -> str:
    return number[:3] + "****" + number[-4:] if len(number) >= 8 else "***"
