"""Repeat callers: the same number on the same topic within a few days is one problem, again.

The new case is linked to the earlier one (``related_to``; to its master when the earlier case
was merged away) and its ``priority`` rises with the number of earlier cases, so the router can
send the caller to someone who sees the history. The urgency is left alone: it is the need's
own gravity and drives the deadline, a repeat call does not make a question an emergency.
Callers are matched by keyed hash only; the number itself is never compared or queried.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cases.codes import EventKind
from cases.core import StoreCore, aware
from cases.models import Case
from cases.schemas import CaseView


class RepeatMixin(StoreCore):
    async def repeat_of(
        self, caller_number: str, topic: str, *, at: datetime | None = None
    ) -> CaseView | None:
        """The case a call from ``caller_number`` about ``topic`` at ``at`` (default now)
        repeats, if any: the newest such case of the last ``repeat_window_days`` (or the case
        it was merged into). For the router, before the new case has its topic."""
        when = aware("at", at) if at is not None else self._now()
        async with self._reading("repeat_of") as s:
            earlier = await self._earlier(s, self._cipher.lookup_hash(caller_number), topic,
                                          when, exclude_id=None)
            if not earlier:
                return None
            target = await self._follow_merge(s, earlier[0])
            return self._view(target)

    async def _earlier(self, s: AsyncSession, caller_hash: str, topic: str, before: datetime,
                       *, exclude_id: int | None) -> list[Case]:
        window = timedelta(days=self._config.repeat_window_days)
        q = (select(Case)
             .where(Case.caller_number_hash == caller_hash, Case.topic == topic,
                    Case.created_at >= before - window, Case.created_at <= before)
             .order_by(Case.created_at.desc(), Case.id.desc()))
        if exclude_id is not None:
            q = q.where(Case.id != exclude_id)
        return list((await s.execute(q)).scalars())

    @staticmethod
    async def _follow_merge(s: AsyncSession, case: Case) -> Case:
        if case.merged_into is None:
            return case
        master = (await s.execute(select(Case).where(Case.number == case.merged_into))
                  ).scalar_one_or_none()
        return master or case  # merges never chain (see the lifecycle), one step suffices

    async def _link_repeat(self, s: AsyncSession, case: Case, actor: str, at: datetime) -> None:
        """Link ``case`` to its caller's earlier case on its topic (or unlink it when the
        topic changed to one without history); records a ``linked`` event on a change."""
        related: str | None = None
        count = 0
        if case.caller_number_hash is not None and case.topic is not None:
            earlier = await self._earlier(s, case.caller_number_hash, case.topic,
                                          case.created_at, exclude_id=case.id)
            if earlier:
                related = (await self._follow_merge(s, earlier[0])).number
                count = len(earlier)
        if (case.related_to, case.repeat_count) == (related, count):
            return
        case.related_to, case.repeat_count, case.priority = related, count, count
        case.updated_at = at
        self._event(s, case, EventKind.LINKED, actor, at,
                    {"related_to": related, "repeat_count": count, "topic": case.topic})
