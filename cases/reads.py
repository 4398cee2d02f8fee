"""Reading cases: by number or call, by day, by caller, by filters; and their timelines."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from cases.core import StoreCore, aware
from cases.errors import CaseNotFound
from cases.models import Case, CaseEvent
from cases.numbering import day_range
from cases.schemas import CaseEventView, CaseView


class ReadsMixin(StoreCore):
    async def get(self, number: str) -> CaseView | None:
        async with self._reading("get") as s:
            case = (await s.execute(select(Case).where(Case.number == number))).scalar_one_or_none()
            return None if case is None else self._view(case)

    async def get_by_call(self, node: str, call_id: str) -> CaseView | None:
        async with self._reading("get_by_call") as s:
            case = await self._by_call(s, node, call_id)
            return None if case is None else self._view(case)

    async def list_cases(
        self, day: date | None = None, *, limit: int = 100, offset: int = 0
    ) -> list[CaseView]:
        """Newest first; ``day`` is a centre-local calendar day (the number's date)."""
        q = select(Case).order_by(Case.number.desc()).limit(limit).offset(offset)
        if day is not None:
            q = q.where(Case.number.between(*day_range(day)))
        async with self._reading("list_cases") as s:
            return [self._view(c) for c in (await s.execute(q)).scalars()]

    async def find_cases(
        self,
        *,
        numbers: Collection[str] | None = None,
        channels: Collection[str] | None = None,
        topics: Collection[str] | None = None,
        statuses: Collection[str] | None = None,
        departments: Collection[str] | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[CaseView]:
        """Cases matching every filter given (each a set of accepted values), newest first
        (then by id, so that ``offset`` pages through a stable order).
        ``created_from`` is inclusive, ``created_to`` exclusive."""
        q = (select(Case).order_by(Case.created_at.desc(), Case.id.desc())
             .limit(limit).offset(offset))
        for column, values in ((Case.number, numbers), (Case.channel, channels),
                               (Case.topic, topics), (Case.status, statuses),
                               (Case.department, departments)):
            if values is not None:
                q = q.where(column.in_(list(values)))
        if created_from is not None:
            q = q.where(Case.created_at >= aware("created_from", created_from))
        if created_to is not None:
            q = q.where(Case.created_at < aware("created_to", created_to))
        async with self._reading("find_cases") as s:
            return [self._view(c) for c in (await s.execute(q)).scalars()]

    async def history_for_number(
        self, caller_number: str, *, days: int = 90, limit: int = 100
    ) -> list[CaseView]:
        """Cases from this caller in the last ``days`` days, newest first (repeat callers).
        Looked up by keyed hash: the database never sees the number being searched for."""
        since = self._now() - timedelta(days=days)
        q = (
            select(Case)
            .where(Case.caller_number_hash == self._cipher.lookup_hash(caller_number),
                   Case.created_at >= since)
            .order_by(Case.created_at.desc(), Case.id.desc())
            .limit(limit)
        )
        async with self._reading("history_for_number") as s:
            return [self._view(c) for c in (await s.execute(q)).scalars()]

    async def count(self, day: date | None = None) -> int:
        q = select(func.count()).select_from(Case)
        if day is not None:
            q = q.where(Case.number.between(*day_range(day)))
        async with self._reading("count") as s:
            return int((await s.execute(q)).scalar_one())

    async def timeline(self, number: str) -> list[CaseEventView]:
        """The case's events, oldest first."""
        q = (
            select(Case.number, CaseEvent)
            .join(CaseEvent, CaseEvent.case_id == Case.id)
            .where(Case.number == number)
            .order_by(CaseEvent.id)
        )
        async with self._reading("timeline") as s:
            rows = (await s.execute(q)).all()
            if not rows and (await s.execute(
                    select(Case.id).where(Case.number == number))).first() is None:
                raise CaseNotFound(f"no case {number}")
            return [CaseEventView(number=n, at=e.at, kind=e.kind, detail=e.detail, actor=e.actor)
                    for n, e in rows]
