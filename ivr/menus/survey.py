"""The callback survey (回访): after a case was handled, the centre calls the citizen and asks
for a 1-5 satisfaction key; an unsatisfied score reopens the case.

* ``SurveyDialer.call(case)`` places the call with AMI Originate and follows it to Asterisk's
  OriginateResponse: answered, not taken by the citizen (no answer, busy, rejected: the
  attempt counts), or not made at all (congestion, a dead trunk: it does not). The answered
  call runs the
  configured dialplan location (``ivr.survey.context``/``exten``), which parks it in
  ``AGI(agi:async)`` like an inbound call; the channel variables ``HOTLINE_SURVEY`` (the case
  number) and ``HOTLINE_MENU`` tell the session it is a survey.
* ``ask_score`` is the caller's side (intro, the 1-5 question, thanks or apology).
* ``apply_score`` writes the result through the case lifecycle: a replied case is revisited
  with the score (the lifecycle reopens it below ``cases.unsatisfied_below``); a closed or
  revisited case is reopened when the score is low. A satisfied score on an already closed case
  has no field to go to yet and is only logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from ivr.ami.errors import AmiError, AmiNotConnected
from ivr.ami.link import AmiLink
from ivr.ami.replies import ActionResult
from ivr.menus.io import HUMAN_KEY, CallIO
from ivr.menus.model import SurveyCallConfig, SurveyConfig

log = logging.getLogger("hotline.survey")

SURVEY_VARIABLE = "HOTLINE_SURVEY"
MENU_VARIABLE = "HOTLINE_MENU"
SCORES = "12345"
ACTOR = "ivr-survey"


@dataclass(frozen=True, slots=True)
class SurveyAnswer:
    score: int | None                # None: no valid key
    human: bool = False              # the citizen pressed 0


@runtime_checkable
class SurveyStore(Protocol):
    """What the IVR needs of ``cases.CaseStore`` (status lookup, surveys)."""

    @property
    def config(self) -> Any: ...     # ``CasesConfig``: ``unsatisfied_below``

    async def get(self, number: str) -> Any: ...
    async def transition(self, number: str, action: Any, *, actor: str,
                         reason: str | None = None, satisfaction: int | None = None
                         ) -> Any: ...
    async def reveal_number(self, number: str, *, actor: str, reason: str) -> str | None: ...
    async def note_survey_to_agent(self, number: str, *, actor: str) -> None: ...


async def ask_score(io: CallIO, cfg: SurveyConfig, sound: Callable[[str], str],
                    trail: list[str], unsatisfied_below: int) -> SurveyAnswer:
    await io.play([sound(cfg.intro)])
    for _ in range(cfg.attempts):
        key = await io.ask(sound(cfg.ask), cfg.timeout_ms, 1)
        if key is None:
            trail.append("survey:no-input")
            continue
        trail.append(f"survey:key:{key}")
        if key == HUMAN_KEY:
            return SurveyAnswer(None, human=True)
        if key in SCORES:
            score = int(key)
            await io.play([sound(cfg.sorry if score < unsatisfied_below else cfg.thanks)])
            return SurveyAnswer(score)
    return SurveyAnswer(None)


async def apply_score(store: SurveyStore, number: str, score: int) -> str:
    """Record ``score`` for case ``number``; returns what was done (for the log)."""
    from cases import Action  # the store's vocabulary; imported here to keep config light

    case = await store.get(number)
    if case is None:
        return "no such case"
    status = str(case.status)
    low = score < store.config.unsatisfied_below
    reason = f"回访 callback survey: {score}/5"
    if status == "replied":
        after = await store.transition(number, Action.REVISIT, actor=ACTOR, reason=reason,
                                       satisfaction=score)
        return f"revisited -> {after.status}"
    if low and status in ("closed", "revisited"):
        after = await store.transition(number, Action.REOPEN, actor=ACTOR, reason=reason)
        return f"reopened -> {after.status}"
    # Nowhere to store a score of a case in this state (see the module docstring).
    return f"score {score} not stored: case is {status}"


class Placed(Enum):
    """What became of a survey call. True when the citizen's phone was (or may have been)
    rung: the attempt counts."""

    PLACED = "answered"
    NO_ANSWER = "the citizen did not take the call"      # no answer, busy, rejected
    UNKNOWN = "the call's outcome was lost with the AMI link"
    NO_CASE = "no such case"
    WITHHELD = "the caller's number is withheld"
    REFUSED = "Originate refused"
    FAILED = "the call could not be made"                # congestion, no route, bad channel

    def __bool__(self) -> bool:
        return self in (Placed.PLACED, Placed.NO_ANSWER, Placed.UNKNOWN)


# OriginateResponse Reason (AST_CONTROL_*) of a call that reached the citizen's phone but was
# not taken: 1 hung up (rejected), 3 ringing until the timeout, 5 busy. The others (0 a
# failure, 8 congestion) say the call never got that far: the line or the trunk is at fault.
_CITIZEN_REASONS = frozenset({1, 3, 5})


@dataclass(frozen=True, slots=True)
class SurveyCall:
    """A survey call ready to be placed (``SurveyDialer.prepare``)."""

    case: str
    fields: dict[str, str | list[str]]
    menu: str


class SurveyDialer:
    """Places survey calls. Built by the composition root with the store and the AMI links
    of the centre's Asterisks, in order of preference: a call goes out through the first
    whose link is up, so the surveys go on while one Asterisk is down (the answered call's
    session runs on the node that placed it, as any call's does)."""

    def __init__(self, links: Sequence[AmiLink], store: SurveyStore, cfg: SurveyCallConfig,
                 menu_for: Callable[[str], str]) -> None:
        self._links = list(links)
        if not self._links:
            raise ValueError("a survey dialer needs at least one AMI link")
        self._store = store
        self._cfg = cfg
        self._menu_for = menu_for

    @property
    def ready(self) -> bool:
        """An AMI link is up: a call placed now would not fail for want of one."""
        return any(link.is_up for link in self._links)

    def _link(self) -> AmiLink:
        return next((link for link in self._links if link.is_up), self._links[0])

    async def call(self, number: str) -> Placed:
        """``prepare`` then ``place``: the survey call of case ``number``, followed until
        Asterisk says how it went (answered: the score arrives on the call's session)."""
        ready = await self.prepare(number)
        return ready if isinstance(ready, Placed) else await self.place(ready)

    async def prepare(self, number: str) -> SurveyCall | Placed:
        """Everything before dialling (the case, the citizen's number). Nothing is sent:
        a failure here (it may raise) costs the citizen nothing."""
        case = await self._store.get(number)
        if case is None:
            log.warning("survey of case %s: no such case", number)
            return Placed.NO_CASE
        plain = await self._store.reveal_number(number, actor=ACTOR,
                                                reason="回访 callback survey call")
        if not plain:
            log.info("survey of case %s: the caller's number is withheld", number)
            return Placed.WITHHELD
        cfg = self._cfg
        menu = cfg.menu or self._menu_for(case.dnid or "")
        fields: dict[str, str | list[str]] = {
            "Channel": cfg.dial.format(number=plain), "Context": cfg.context,
            "Exten": cfg.exten, "Priority": "1", "Timeout": str(cfg.ring_timeout_s * 1000),
            "CallerID": cfg.caller_id,
            "Variable": [f"{SURVEY_VARIABLE}={number}", f"{MENU_VARIABLE}={menu}"],
        }
        return SurveyCall(number, fields, menu)

    async def place(self, call: SurveyCall) -> Placed:
        """Dial, and wait for Asterisk's OriginateResponse. Never raises once the action may
        have been sent (only cancellation goes through): a call whose end is unknown may
        have rung, and counts (``Placed.UNKNOWN``), so the citizen is not rung twice."""
        number = call.case
        link = self._link()
        if len(self._links) > 1:
            log.info("survey of case %s: dialling through %s", number, link.name)
        try:
            res = await link.originate(call.fields, answer_timeout_s=self._cfg.ring_timeout_s)
        except AmiNotConnected as e:
            log.warning("survey of case %s: not placed, AMI link down (%s)", number, e)
            return Placed.FAILED
        except AmiError as e:
            log.warning("survey of case %s: the call's outcome is unknown (%s); it counts as "
                        "an attempt", number, e)
            return Placed.UNKNOWN
        if isinstance(res, ActionResult):
            log.warning("survey of case %s: Originate refused: %s", number, res.message)
            return Placed.REFUSED
        if res.response.lower() == "success":
            log.info("survey of case %s: the citizen answered (menu %s)", number, call.menu)
            return Placed.PLACED
        if res.reason in _CITIZEN_REASONS:
            log.info("survey of case %s: the citizen did not take the call (reason %d)",
                     number, res.reason)
            return Placed.NO_ANSWER
        # The dial string without the citizen's number, which stays out of the logs.
        log.warning("survey of case %s: the call could not be made (OriginateResponse "
                    "reason %d, dial string %s)", number, res.reason, self._cfg.dial)
        return Placed.FAILED
