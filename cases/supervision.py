"""Overdue cases and supervision leads (督办线索).

A lead is a case supervision should look at, with the reason:

* ``overdue``: still being handled (accepted … returned) past its deadline;
* ``reopened``: closed or answered, then reopened (an unsatisfied callback, a caller whose
  problem came back), and not closed again yet: the first handling did not work;
* ``repeat_complaint``: the newest of ``repeat_complaints`` or more complaints (投诉) from one
  caller (matched by keyed hash) within ``repeat_complaint_days``; the earlier ones are
  ``related``.

A case can be a lead for several reasons; it then appears once per reason.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select

from cases.codes import CaseType
from cases.core import StoreCore, aware
from cases.lifecycle import DEADLINE_STATES, OPEN_STATES
from cases.models import Case
from cases.schemas import CaseView, SupervisionLead

OVERDUE, REOPENED, REPEAT_COMPLAINT = "overdue", "reopened", "repeat_complaint"
_KIND_ORDER = {OVERDUE: 0, REOPENED: 1, REPEAT_COMPLAINT: 2}


def human_duration(d: timedelta) -> str:
    minutes = max(0, int(d.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


class SupervisionMixin(StoreCore):
    async def overdue(self, now: datetime | None = None, *, limit: int = 1000) -> list[CaseView]:
        """Cases still being handled whose deadline is before ``now`` (default: the store's
        clock), the longest overdue first."""
        at = aware("now", now) if now is not None else self._now()
        q = (select(Case)
             .where(Case.status.in_([s.value for s in DEADLINE_STATES]), Case.deadline < at)
             .order_by(Case.deadline, Case.id).limit(limit))
        async with self._reading("overdue") as s:
            return [self._view(c) for c in (await s.execute(q)).scalars()]

    async def supervision_leads(self, now: datetime | None = None) -> list[SupervisionLead]:
        """Every current lead (see the module docstring), grouped by kind, then by number."""
        at = aware("now", now) if now is not None else self._now()
        leads = [
            SupervisionLead(
                number=c.number, kind=OVERDUE,
                reason=(f"overdue by {human_duration(at - c.deadline)} (deadline "
                        f"{c.deadline.astimezone(self._tz):%Y-%m-%d %H:%M}, {c.status}, "
                        f"with {c.department or 'no department'})"))
            for c in await self.overdue(at) if c.deadline is not None
        ]
        leads += await self._reopened_leads()
        leads += await self._repeat_complaint_leads(at)
        return sorted(leads, key=lambda lead: (_KIND_ORDER[lead.kind], lead.number))

    async def _reopened_leads(self) -> list[SupervisionLead]:
        q = (select(Case.number, Case.reopen_count, Case.status)
             .where(Case.reopen_count > 0,
                    Case.status.in_([s.value for s in OPEN_STATES])))
        async with self._reading("supervision_leads") as s:
            rows = (await s.execute(q)).all()
        return [SupervisionLead(number=n, kind=REOPENED,
                                reason=f"reopened {k} time{'s' if k > 1 else ''}, now {st}")
                for n, k, st in rows]

    async def _repeat_complaint_leads(self, at: datetime) -> list[SupervisionLead]:
        rules = self._config.supervision
        since = at - timedelta(days=rules.repeat_complaint_days)
        q = (select(Case.caller_number_hash, Case.number)
             .where(Case.case_type == CaseType.COMPLAINT.value,
                    Case.caller_number_hash.is_not(None),
                    Case.created_at >= since, Case.created_at <= at)
             .order_by(Case.created_at, Case.id))
        async with self._reading("supervision_leads") as s:
            rows = (await s.execute(q)).all()
        by_caller: dict[str, list[str]] = defaultdict(list)
        for caller_hash, number in rows:
            by_caller[str(caller_hash)].append(number)
        return [
            SupervisionLead(
                number=numbers[-1], kind=REPEAT_COMPLAINT, related=tuple(numbers[:-1]),
                reason=(f"{len(numbers)} complaints from the same caller within "
                        f"{rules.repeat_complaint_days} days"))
            for numbers in by_caller.values() if len(numbers) >= rules.repeat_complaints
        ]
