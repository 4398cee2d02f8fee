"""The 回访 survey placed by the service itself, for every case a department has replied to.

Every ``check_s`` (within the calling ``hours``), the replied cases whose reply is at least
``after_s`` old are called, oldest reply first, at most ``per_check`` per look. Each call is
claimed in the case store first (``CaseStore.claim_survey_call``: one locked write), so a
restart neither forgets nor repeats attempts, and two services on one store never both call
a citizen for the same attempt. Each call is followed to Asterisk's OriginateResponse: when
none of a look's calls could be made (refused, congestion, a dead trunk) the claims are
released and cost no attempt; a call whose end was lost with the AMI link counts, for it may
have rung. A citizen who did not give a score (no answer, busy, no valid key) is called again
``retry_s`` after the last attempt; ``retry_s`` after the last of ``attempts`` calls, or at
once when the caller's number was withheld, the case is closed without the callback, with
the reason, which is what supervision (督办) reviews. A citizen who asked for a person during
the survey was reached: no more survey calls (the agent takes it from there). Attempts count from the latest reply: a case
reopened and replied again is surveyed afresh. The answered call itself is the survey
session's (``ivr.session``): it records the score and revisits or reopens the case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cases import Action
from cases.errors import InvalidTransition
from cases.survey_store import SurveyClaim
from ivr.aio import cancel_and_wait
from ivr.menus.hours import OpeningHours
from ivr.menus.model import SurveyCallConfig
from ivr.menus.survey import ACTOR, Placed, SurveyCall, SurveyDialer

log = logging.getLogger("hotline.survey")

class ScheduleStore(Protocol):
    """What the scheduler reads and writes of ``cases.CaseStore``."""

    async def replied_due(self, before: datetime, *, limit: int = 100) -> list[Any]: ...
    async def claim_survey_call(self, number: str, *, actor: str, attempts: int,
                                retry_after: timedelta, now: datetime | None = None
                                ) -> SurveyClaim: ...
    async def release_survey_call(self, number: str, attempt: int, *, actor: str, why: str,
                                  now: datetime | None = None) -> None: ...
    async def transition(self, number: str, action: Any, *, actor: str,
                         reason: str | None = None) -> Any: ...


class SurveyScheduler:
    def __init__(self, store: ScheduleStore, dialer: SurveyDialer, cfg: SurveyCallConfig,
                 timezone: str, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
                 ) -> None:
        self._store = store
        self._dialer = dialer
        self._cfg = cfg
        self._hours = OpeningHours.of(cfg.hours, cfg.holidays, cfg.workdays, timezone)
        self._now = now
        self._task: asyncio.Task[None] | None = None
        # (case, reply) -> when its retry wait ends, as the last claim said: a look skips it
        # until then instead of taking a locked write to hear "not yet" again. Only a hint:
        # the claim still decides, so another service's calls are never missed.
        self._resting: dict[tuple[str, datetime | None], datetime] = {}

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="survey-scheduler")
            log.info("survey calls (回访) placed automatically: %s after the reply, within %s",
                     timedelta(seconds=self._cfg.after_s), ", ".join(self._cfg.hours))

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)   # not suppress(): see ivr.aio
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception as e:  # noqa: BLE001 - store or link down: try at the next look
                log.warning("survey calls: this look failed (%s); next in %.0f s", e,
                            self._cfg.check_s)
            await asyncio.sleep(self._cfg.check_s)

    async def check(self) -> list[str]:
        """One look: place the survey calls that are due; returns the cases whose citizen's
        phone was rung (answered or not)."""
        now = self._now()
        if not self._hours.is_open(now) or not self._dialer.ready:
            return []
        cfg = self._cfg
        due = await self._store.replied_due(now - timedelta(seconds=cfg.after_s),
                                            limit=max(1000, cfg.per_check * 20))
        self._resting = {k: t for k, t in self._resting.items() if t > now}
        ready: list[tuple[tuple[str, datetime | None], int, SurveyCall]] = []
        for case in due:
            if len(ready) >= cfg.per_check:
                break
            key = (case.number, case.replied_at)
            if key in self._resting:
                continue
            claim = await self._store.claim_survey_call(
                case.number, actor=ACTOR, attempts=cfg.attempts,
                retry_after=timedelta(seconds=cfg.retry_s), now=now)
            if claim.not_before is not None:
                self._resting[key] = claim.not_before
            if claim.exhausted:
                await self._close(case.number, f"回访 callback survey: no score after "
                                                f"{claim.made} calls")
                continue
            if claim.attempt is None:
                continue                      # called recently, or no longer replied
            try:
                call = await self._dialer.prepare(case.number)
            except Exception as e:  # noqa: BLE001 - this case only (an unreadable number)
                # Nothing was dialled: the claim must not cost the citizen an attempt, and
                # the look goes on, or the calls already claimed in it would not be placed.
                log.warning("survey of case %s: the call could not be prepared (%s: %s); "
                            "again in %.0f s", case.number, type(e).__name__, e,
                            cfg.retry_s)
                await self._release(case.number, claim.attempt, "the call could not be placed",
                                    now)
                self._resting[key] = now + timedelta(seconds=cfg.retry_s)
                continue
            except BaseException:
                await self._release(case.number, claim.attempt, "the call could not be placed",
                                    now)
                raise
            if isinstance(call, SurveyCall):
                ready.append((key, claim.attempt, call))
                continue
            await self._release(case.number, claim.attempt, call.value, now)
            if call is Placed.WITHHELD:
                await self._close(case.number, "回访 callback survey impossible: the caller's "
                                               "number is withheld")
        # The look's calls ring together (each waits for the citizen up to ring_timeout_s).
        # ``place`` never raises once it may have dialled, so a claim is kept for every call
        # that may have rung, and a citizen is never rung twice for one attempt.
        results = await asyncio.gather(*(self._dialer.place(c) for _, _, c in ready))
        failed = [(k, a, r) for (k, a, _), r in zip(ready, results, strict=True) if not r]
        if failed and len(failed) == len(ready):
            # Not one call got through: the trunk, the dial string or the AMI user's rights,
            # not the citizens. No attempt is charged; each waits retry_s (the next looks
            # would only hit the same wall), and the operator is told.
            log.error("survey calls: none of %d calls could be made (%s); check ivr.survey.dial "
                      "and the trunk, and the AMI user's originate right", len(ready),
                      ", ".join(sorted({r.value for _, _, r in failed})))
            for key, attempt, result in failed:
                await self._release(key[0], attempt, result.value, now)
                self._resting[key] = now + timedelta(seconds=cfg.retry_s)
        elif failed:
            # Others got through meanwhile: the line works, these numbers do not. Each call
            # counts, so a wrong number ends in a closed case rather than calls for ever.
            for key, _attempt, result in failed:
                log.warning("survey of case %s: %s; counted as an attempt", key[0],
                            result.value)
        return [k[0] for (k, _, _), r in zip(ready, results, strict=True) if r]

    async def _release(self, number: str, attempt: int, why: str, now: datetime) -> None:
        with contextlib.suppress(Exception):   # best effort: the claim then counts
            await self._store.release_survey_call(number, attempt, actor=ACTOR, why=why,
                                                  now=now)

    async def _close(self, number: str, reason: str) -> None:
        try:
            await self._store.transition(number, Action.CLOSE, actor=ACTOR, reason=reason)
        except InvalidTransition as e:
            # Someone moved the case meanwhile (closed it, reopened it): theirs stands.
            log.info("case %s not closed by the survey: %s", number, e)
            return
        log.info("case %s closed without the survey: %s", number, reason)
