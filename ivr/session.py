"""One call, from AsyncAGIStart to hangup: greet, learn the need, open and fill the case,
queue the caller, follow the queue until the call ends.

Failure policy: whatever breaks (classifier, case store, a bad key), the caller is queued to
the default group; a call is only ever ended by the caller, the agent or Asterisk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from cases.schemas import CallStart
from ivr.agi import AgiChannel
from ivr.ami.errors import AgiHangup, AgiResultLost, AmiDisconnected, AmiNotConnected
from ivr.ami.events import AgentEvent, AmiEvent, Hangup, QueueCallerAbandon, QueueCallerJoin
from ivr.ami.link import AmiLink
from ivr.case_recorder import CaseRecorder
from ivr.config import IvrConfig
from ivr.speech_input import SpeechInput
from routing.router import RouteDecision, Router
from routing.topics import Classification, TopicCatalogue

log = logging.getLogger("hotline.call")

HUMAN_KEY = "0"
ALL_KEYS = "0123456789*#"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CallInfo:
    node: str
    channel: str
    uniqueid: str
    caller_num: str
    caller_name: str
    dnid: str
    locale: str


@dataclass(slots=True)
class CallState:
    """What the session knows; written by AMI events and by its own steps."""
    started_mono: float = field(default_factory=time.monotonic)
    case_number: str | None = None
    ivr_path: list[str] = field(default_factory=list)
    topic: str | None = None
    transcript: str | None = None
    live_transcript: str = ""
    decision: RouteDecision | None = None
    queue_joined: str | None = None
    agent: str | None = None
    hold_time_s: float | None = None
    talk_time_s: float | None = None
    abandoned: bool = False
    hung_up: bool = False
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class SessionDeps:
    link: AmiLink
    recorder: CaseRecorder
    catalogue: TopicCatalogue
    router: Router
    ivr: IvrConfig
    agi_timeout_s: float = 10.0
    speech: SpeechInput | None = None     # None: keys only (disabled or unavailable)
    speech_locale: str = ""


class CallSession:
    def __init__(self, info: CallInfo, deps: SessionDeps, *, resumed: bool = False) -> None:
        self.info = info
        self.deps = deps
        self.resumed = resumed
        self.state = CallState()
        self.agi = AgiChannel(deps.link, info.channel, command_timeout_s=deps.agi_timeout_s)
        self.finished = asyncio.Event()
        self._speech_failed = False

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
                self.deps.recorder.update(
                    self.info.node, self.info.uniqueid, agent=ev.member_name,
                    queue=ev.queue, wait_s=float(ev.hold_time),
                    answered_at=datetime.now(UTC))
            elif ev.name == "AgentComplete":
                s.talk_time_s = float(ev.talk_time)
                s.hold_time_s = float(ev.hold_time)
        elif isinstance(ev, QueueCallerAbandon):
            s.abandoned = True
            s.hold_time_s = float(ev.hold_time)
        elif isinstance(ev, Hangup):
            s.hung_up = True

    # ---- the call script ---------------------------------------------------------------
    async def run(self) -> None:
        info = self.info
        try:
            log.info("call %s from %s on %s%s", info.uniqueid, _mask(info.caller_num),
                     info.channel, " (resumed)" if self.resumed else "")
            case = await self.deps.recorder.open(CallStart(
                node=info.node, call_id=info.uniqueid, channel=info.channel,
                caller_number=info.caller_num or None, caller_name=info.caller_name or None,
                dnid=info.dnid or None, locale=info.locale), wait_s=2.0)
            if case is not None:
                self.state.case_number = case.number
                if self.resumed and case.topic:
                    self.state.topic = case.topic
            decision = await self._decide()
            await self._queue(decision)
        except AgiHangup:
            self.state.hung_up = True
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call %s: unexpected error; the caller stays with Asterisk",
                          info.uniqueid)
        finally:
            self._finish()

    async def _decide(self) -> RouteDecision:
        if self.state.topic is not None:
            return self.deps.router.route(Classification(self.state.topic, 1.0, (), "resumed"),
                                          caller_id=self.info.uniqueid)
        try:
            c = await self._ask_topic()
        except (AgiHangup, asyncio.CancelledError):
            raise
        except Exception as e:
            log.warning("call %s: IVR step failed (%s); routing to the default group",
                        self.info.uniqueid, e)
            return self.deps.router.default("ivr failure")
        if c is None:
            return self.deps.router.default("caller asked for a person")
        return self.deps.router.route(c, caller_id=self.info.uniqueid)

    async def _ask_topic(self) -> Classification | None:
        cfg = self.deps.ivr
        for attempt in range(1, cfg.max_attempts + 1):
            digits, heard = await self._listen_once()
            if heard is not None:
                self.state.ivr_path.append(f"greeting:speech:{heard.topic or '?'}")
                if heard.topic is not None:
                    self.state.topic = heard.topic
                    return heard
                continue
            if digits is None:
                self.state.ivr_path.append("greeting:no-input")
                continue
            digits = digits[0]
            self.state.ivr_path.append(f"greeting:key:{digits}")
            if digits == HUMAN_KEY:
                return None
            c = self.deps.catalogue.by_key(digits)
            if c.topic is not None:
                self.state.topic = c.topic
                return c
            log.info("call %s: key %r matches no topic (attempt %d)", self.info.uniqueid,
                     digits, attempt)
        return Classification(None, 0.0, (), "none")

    async def _listen_once(self) -> tuple[str | None, Classification | None]:
        """One greeting: keys always work; speech too when the call is in the model's
        language. Returns (keys pressed, what was heard)."""
        cfg = self.deps.ivr
        speech = self.deps.speech
        if speech is None or self._speech_failed or self.info.locale != self.deps.speech_locale:
            return await self._step(lambda: self.agi.get_data(
                cfg.greeting_prompt, cfg.input_timeout_ms, 1)), None
        key = await self._step(lambda: self.agi.stream_file(cfg.greeting_prompt, ALL_KEYS))
        if key is not None:
            return key, None
        try:
            utt = await speech.listen(self.agi, self.info.locale, self._on_partial)
        except (AgiHangup, asyncio.CancelledError):
            raise
        except Exception as e:
            # Vosk or AudioSocket broke: this call goes on with keys only.
            log.warning("call %s: speech unavailable (%s: %s); keys only",
                        self.info.uniqueid, type(e).__name__, e)
            self._speech_failed = True
            return await self._step(lambda: self.agi.get_data(
                cfg.greeting_prompt, cfg.input_timeout_ms, 1)), None
        if utt.ended_by == "hangup" and not utt.text:
            raise AgiHangup(f"{self.info.channel} hung up while speaking")
        if utt.digits:
            return utt.digits, None
        if utt.no_speech:
            return None, None
        self.state.transcript = utt.text
        self.deps.recorder.update(self.info.node, self.info.uniqueid,
                                  transcript=utt.text or None,
                                  topic_confidence=utt.confidence if utt.topic else None)
        return None, Classification(utt.topic, utt.confidence, utt.keywords, "speech")

    def _on_partial(self, text: str) -> None:
        self.state.live_transcript = text

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

    async def _queue(self, decision: RouteDecision) -> None:
        s = self.state
        s.decision = decision
        s.ivr_path.append(f"route:{decision.group}")
        self.deps.recorder.update(self.info.node, self.info.uniqueid, topic=s.topic,
                                  queue=decision.queue, ivr_path=list(s.ivr_path))
        if s.case_number:
            await self._step(lambda: self.agi.set_variable("HOTLINE_CASE", s.case_number or ""))
        if s.topic:
            await self._step(lambda: self.agi.set_variable("HOTLINE_TOPIC", s.topic or ""))
        for name, value in decision.channel_vars().items():
            await self._step(lambda n=name, v=value: self.agi.set_variable(n, v))
        log.info("call %s: topic %s -> queue %s (%s)", self.info.uniqueid, s.topic or "-",
                 decision.queue, decision.reason)
        args = f"{decision.queue},,,,{self.deps.ivr.queue_timeout_s}"
        result = await self._step(lambda: self.agi.exec("Queue", args, timeout=None))
        if result.result == "-1" or s.hung_up or s.agent is not None or s.abandoned:
            return
        # The queue timed out with nobody answering: one more try in the default group.
        fallback = self.deps.router.default("queue timeout")
        if fallback.queue != decision.queue:
            s.ivr_path.append(f"overflow:{fallback.group}")
            await self._step(lambda: self.agi.exec(
                "Queue", f"{fallback.queue},,,,{self.deps.ivr.queue_timeout_s}", timeout=None))
        if s.agent is None:
            await self.agi.hangup()

    def _finish(self) -> None:
        s = self.state
        s.outcome = "answered" if s.agent is not None else "abandoned"
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

