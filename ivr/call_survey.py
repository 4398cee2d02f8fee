"""Survey calls (回访): the centre calls a citizen back and asks for a score.

Part of ``CallSession`` (``ivr.session``), kept apart so each file has one concern. A call
without a called number is one the centre placed (a survey) or one taken up after a restart:
the channel's variables say which, and which menu the survey is in. The score lands on the
case (``ivr.menus.survey.apply_score``); a citizen who asks for a person is queued to the
default group.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from ivr.agi import AgiChannel
from ivr.ami.errors import AgiHangup
from ivr.call_state import CallInfo, CallState, SessionDeps
from ivr.menus.live_io import AgiCallIO
from ivr.menus.survey import (
    ACTOR,
    MENU_VARIABLE,
    SURVEY_VARIABLE,
    SurveyStore,
    ask_score,
)
from routing.router import RouteDecision

log = logging.getLogger("hotline.call")

T = TypeVar("T")


class SurveySteps:
    """The survey half of ``CallSession``; the attributes below are the session's."""

    info: CallInfo
    deps: SessionDeps
    state: CallState
    agi: AgiChannel
    io: AgiCallIO
    resumed: bool
    _dnid: str

    if TYPE_CHECKING:
        async def _step(self, op: Callable[[], Awaitable[T]]) -> T: ...
        async def _enter_menu(self, name: str) -> None: ...
        async def _queue(self, decision: RouteDecision) -> None: ...
        def _store(self) -> SurveyStore | None: ...

    async def _survey_call(self, resume_wait_s: float) -> bool:
        """Reads the channel's marks (and its called number, for the menu); True when this
        call was a survey, carried out here. ``resume_wait_s``: how long a resumed call's
        first command may wait behind the previous service's."""
        expression = (f"${{{SURVEY_VARIABLE}}}|${{{MENU_VARIABLE}}}|${{CALLERID(dnid)}}"
                      "|${EXTEN}")
        try:
            marks = await self._step(lambda: self.agi.get_full_variable(
                expression, timeout=resume_wait_s if self.resumed else -1.0)) or ""
        except AgiHangup:
            raise
        except Exception as e:  # noqa: BLE001 - unreadable variables: an inbound call
            # Not knowing is no reason to drop a caller: take it for an inbound call.
            log.warning("call %s: channel variables unreadable (%s); an inbound call",
                        self.info.uniqueid, e)
            return False
        survey, menu, dnid, exten = (marks.split("|") + ["", "", "", ""])[:4]
        self._dnid = exten if self.deps.ivr.lists_number(exten) else dnid
        if not survey:
            return False
        await self._survey(survey, menu)
        return True

    async def _survey(self, number: str, menu_name: str) -> None:
        s = self.state
        s.survey_of = number
        s.ivr_path.append(f"survey:{number}")
        ivr = self.deps.ivr
        name = menu_name if menu_name in ivr.menus else ivr.default_menu
        menu = ivr.menus.get(name)
        store = self._store()
        if menu is None or menu.survey is None or store is None:
            log.error("survey call %s for case %s: no survey menu or no case store; "
                      "hanging up", self.info.uniqueid, number)
            await self.agi.hangup()
            return
        await self._enter_menu(name)
        answer = await ask_score(self.io, menu.survey, lambda p: menu.sound_of(name, p),
                                 s.ivr_path, store.config.unsatisfied_below)
        if answer.score is not None:
            # Through the recorder: journaled and retried, so a database blip cannot lose
            # an unsatisfied citizen's complaint (the case would stay unreopened).
            self.deps.recorder.score(self.info.node, self.info.uniqueid, number, answer.score)
        if answer.human:
            try:
                await store.note_survey_to_agent(number, actor=ACTOR)
            except Exception as e:  # noqa: BLE001 - the citizen still gets the person
                log.error("survey of case %s: the hand-off to a person not recorded (%s: %s); "
                          "the scheduler may call again", number, type(e).__name__, e)
            await self._queue(self.deps.router.default("survey: the citizen asked for a person"))
            return
        s.final = "self_service"
        await self.agi.hangup()
