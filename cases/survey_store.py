"""The 回访 survey calls' bookkeeping: which replied cases are due, and a claim per call.

The claim is one locked write (the case row is locked as for a transition), so two services
on one store, each with a scheduler, never both call a citizen for the same attempt: the
second finds the first's claim. A claim whose call could not be placed is released with a
``survey_call_failed`` event and does not count as an attempt. Attempts count from the latest
reply, so a case reopened and replied again is surveyed afresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cases.codes import CaseStatus, EventKind
from cases.core import StoreCore
from cases.errors import CaseNotFound
from cases.models import Case, CaseEvent
from cases.schemas import CaseView


@dataclass(frozen=True, slots=True)
class SurveyClaim:
    """What the scheduler may do about a case now."""

    attempt: int | None        # the attempt claimed (1, 2, ...); None: nothing to do now
    exhausted: bool = False    # every attempt was made: close the case without the callback
    made: int = 0              # attempts made since the latest reply (before this claim)
    not_before: datetime | None = None   # waiting out the retry: nothing to do before this


class SurveyMixin(StoreCore):
    async def replied_due(self, before: datetime, *, limit: int = 100) -> list[CaseView]:
        """Replied cases whose reply is older than ``before``, oldest reply first."""
        q = (select(Case).where(Case.status == CaseStatus.REPLIED.value)
             .where(Case.replied_at <= before).order_by(Case.replied_at, Case.id).limit(limit))
        async with self._reading("replied_due") as s:
            return [self._view(c) for c in (await s.execute(q)).scalars()]

    async def claim_survey_call(self, number: str, *, actor: str, attempts: int,
                                retry_after: timedelta, now: datetime | None = None
                                ) -> SurveyClaim:
        """Claim the next survey call of replied case ``number``: at most ``attempts`` since
        its latest reply, the last at least ``retry_after`` ago. ``now``: the caller's clock
        (the store's by default)."""
        at = now or self._now()

        async def apply(s: AsyncSession) -> SurveyClaim:
            case = (await self._lock_numbers(s, number)).get(number)
            if case is None:
                raise CaseNotFound(f"no case {number}")
            if case.status != CaseStatus.REPLIED.value or case.replied_at is None:
                return SurveyClaim(None)
            kinds = (EventKind.SURVEY_CALL.value, EventKind.SURVEY_CALL_FAILED.value,
                     EventKind.SURVEY_TO_AGENT.value)
            rows = (await s.execute(
                select(CaseEvent.kind, CaseEvent.at, CaseEvent.detail)
                .where(CaseEvent.case_id == case.id, CaseEvent.kind.in_(kinds),
                       CaseEvent.at >= case.replied_at)
                .order_by(CaseEvent.id))).all()
            if any(r.kind == EventKind.SURVEY_TO_AGENT.value for r in rows):
                # Reached, and handed to a person: the agent settles the case, no more calls.
                return SurveyClaim(None)
            failed = {r.detail.get("attempt") for r in rows
                      if r.kind == EventKind.SURVEY_CALL_FAILED.value}
            made = [r for r in rows if r.kind == EventKind.SURVEY_CALL.value
                    and r.detail.get("attempt") not in failed]
            rested = made[-1].at + retry_after if made else at
            if len(made) >= attempts:
                return SurveyClaim(None, exhausted=at >= rested, made=len(made),
                                   not_before=rested if at < rested else None)
            if at < rested:
                return SurveyClaim(None, made=len(made), not_before=rested)
            attempt = 1 + max((int(r.detail.get("attempt", 0)) for r in rows), default=0)
            self._event(s, case, EventKind.SURVEY_CALL, actor, at, {"attempt": attempt})
            return SurveyClaim(attempt, made=len(made))

        return await self._write("claim_survey_call", apply)

    async def release_survey_call(self, number: str, attempt: int, *, actor: str,
                                  why: str, now: datetime | None = None) -> None:
        """The claimed call was not placed: it does not count as an attempt."""

        async def apply(s: AsyncSession) -> None:
            case = (await self._lock_numbers(s, number)).get(number)
            if case is None:
                raise CaseNotFound(f"no case {number}")
            self._event(s, case, EventKind.SURVEY_CALL_FAILED, actor, now or self._now(),
                        {"attempt": attempt, "why": why})

        await self._write("release_survey_call", apply)

    async def note_survey_to_agent(self, number: str, *, actor: str,
                                   now: datetime | None = None) -> None:
        """The citizen answered the survey call and asked for a person: reached, so the
        scheduler calls no more (and never closes the case as unreached)."""

        async def apply(s: AsyncSession) -> None:
            case = (await self._lock_numbers(s, number)).get(number)
            if case is None:
                raise CaseNotFound(f"no case {number}")
            self._event(s, case, EventKind.SURVEY_TO_AGENT, actor, now or self._now(), {})

        await self._write("note_survey_to_agent", apply)
