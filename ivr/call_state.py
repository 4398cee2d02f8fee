"""What a call session is given and what it knows: the call's identity from Asterisk, its
state as AMI events and the session's own steps write it, and the services it is wired to."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ivr.ami.link import AmiLink
from ivr.case_recorder import CaseRecorder
from ivr.config import IvrConfig
from ivr.menus.survey import SurveyStore
from ivr.speech_input import SpeechInput
from routing.router import RouteDecision, Router
from routing.topics import TopicCatalogue


def _utcnow() -> datetime:
    return datetime.now(UTC)


# CallInfo.running of a call out of async AGI for good: followed to its end, not driven.
FOLLOW_DIALPLAN = "(dialplan)"


@dataclass(frozen=True, slots=True)
class CallInfo:
    node: str
    channel: str
    uniqueid: str
    caller_num: str
    caller_name: str
    dnid: str
    locale: str
    # Taken up after a restart while running an application the last service started over
    # async AGI (Queue, Dial, AudioSocket): its name; "" for a call parked in AGI itself;
    # FOLLOW_DIALPLAN for a call the dialplan queued meanwhile (the IVR watchdog).
    running: str = ""


@dataclass(slots=True)
class CallState:
    """What the session knows; written by AMI events and by its own steps."""
    started_mono: float = field(default_factory=time.monotonic)
    case_number: str | None = None
    ivr_path: list[str] = field(default_factory=list)
    topic: str | None = None
    transcript: str | None = None
    live_transcript: str = ""
    menu: str | None = None           # the menu (hotline and language) the caller is in
    menu_outcome: str | None = None   # what the menu settled (MenuOutcome.kind)
    decision: RouteDecision | None = None
    queue_joined: str | None = None
    agent: str | None = None
    hold_time_s: float | None = None
    talk_time_s: float | None = None
    hung_up: bool = False
    emergency: str | None = None      # the emergency topic, if the call was one
    final: str | None = None          # an outcome the session settled itself (callback, ...)
    survey_of: str | None = None      # a survey call: the case it is about
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
    # The case store for status lookups and surveys; None: the recorder's store.
    cases: SurveyStore | None = None
    clock: Callable[[], datetime] = _utcnow   # opening hours
    # Routing group -> its queue, for menu actions that route to a group.
    group_queues: Mapping[str, str] = field(default_factory=dict)
