"""``CaseStore``: the case records (工单) that every call leaves, behind one async API.

The store owns its engine (no module-level state): build one per process from configuration,
``await open()`` at start, ``await close()`` at stop. Every method is one short transaction and
returns frozen views (``cases.schemas``), never ORM objects.

Failures the call path must survive arrive as ``CaseStoreUnavailable`` (see ``cases.errors``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic_core import to_jsonable_python
from sqlalchemy import exc, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cases.codes import CALLBACK_OUTCOMES, CaseStatus, EventKind, Outcome, Urgency
from cases.db import (
    WRITE_OPTION,
    EngineInfo,
    build_engine,
    check_target,
    translate_errors,
    with_retry,
)
from cases.errors import CaseNotFound, CaseStoreError
from cases.models import Base, Case, CaseEvent
from cases.numbering import allocate_number, day_range, local_day
from cases.privacy import NumberCipher, mask_number
from cases.schemas import CallStart, CaseChanges, CaseEventView, CaseView

T = TypeVar("T")


class _DuplicateCall(Exception):
    """Another writer opened the case for this call between our check and our insert."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    return value


class CaseStore:
    def __init__(
        self,
        url: str,
        *,
        secret_key: str,
        timezone: str = "Asia/Shanghai",
        schema: str | None = None,
        connect_timeout_s: float = 5.0,
        busy_timeout_s: float = 5.0,
        callback_within: timedelta = timedelta(minutes=30),
    ) -> None:
        """``schema`` (PostgreSQL only) keeps the tables in their own schema, created if missing.
        ``callback_within`` is how soon an abandoned caller is owed a call back (回拨)."""
        check_target(url, schema)  # a bad URL is a configuration error: fail now, not at a call
        try:
            self._tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {timezone!r}") from e
        self._url = url
        self._schema = schema
        self._connect_timeout_s = connect_timeout_s
        self._busy_timeout_s = busy_timeout_s
        self._callback_within = callback_within
        self._cipher = NumberCipher(secret_key)
        self._info: EngineInfo | None = None
        self._reads: async_sessionmaker[AsyncSession] | None = None
        self._writes: async_sessionmaker[AsyncSession] | None = None
        # SQLite admits one writer: queue ours here rather than on the file lock (see cases.db).
        self._write_lock = asyncio.Lock()

    # -- life cycle of the store itself ---------------------------------------------------

    async def open(self) -> None:
        """Connect and create the tables if missing. Idempotent."""
        if self._info is not None:
            return
        info = build_engine(self._url, schema=self._schema,
                            connect_timeout_s=self._connect_timeout_s,
                            busy_timeout_s=self._busy_timeout_s)
        # BEGIN IMMEDIATE on SQLite: a deferred transaction that reads the catalogue and then
        # writes fails at once (no busy wait) when another process created the tables meanwhile.
        ddl_engine = info.engine.execution_options(**{WRITE_OPTION: True})

        async def create_tables() -> None:
            async with ddl_engine.begin() as conn:
                if info.dialect == "postgresql":
                    # Nodes sharing one server may start together; CREATE … IF NOT EXISTS
                    # still races in the catalogue, so take turns (released at commit).
                    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                                       {"k": "hotline-cases-ddl"})
                if info.schema is not None:
                    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{info.schema}"'))
                await conn.run_sync(Base.metadata.create_all)

        try:
            if info.sqlite_path is not None:
                async with translate_errors("open"):
                    info.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            await with_retry("open", create_tables)
        except BaseException:
            await info.engine.dispose()
            raise
        self._info = info
        self._reads = async_sessionmaker(info.engine, expire_on_commit=False)
        self._writes = async_sessionmaker(
            info.engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    async def close(self) -> None:
        if self._info is not None:
            info, self._info = self._info, None
            self._reads = self._writes = None
            await info.engine.dispose()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def dialect(self) -> str:
        """"sqlite" or "postgresql" (after ``open``)."""
        return self._require_open().dialect

    # -- the call path ---------------------------------------------------------------------

    async def open_call_case(self, start: CallStart) -> CaseView:
        """The case of this call, created on first sight. Calling it again for the same
        (node, call_id), e.g. after an AMI reconnect, returns the existing case unchanged."""
        try:
            return await self._write("open_call_case", lambda s: self._open_in(s, start))
        except _DuplicateCall:
            # A concurrent writer won (PostgreSQL): its case is committed, ours rolled back
            # together with its number, so the sequence stays gap-free.
            found = await self.get_by_call(start.node, start.call_id)
            if found is None:
                raise CaseStoreError("open_call_case: conflicting insert but no case") from None
            return found

    async def _open_in(self, s: AsyncSession, start: CallStart) -> CaseView:
        existing = await self._by_call(s, start.node, start.call_id)
        if existing is not None:
            return self._view(existing)
        now = _utcnow()
        created_at = start.started_at.astimezone(UTC) if start.started_at else now
        number = await allocate_number(s, local_day(created_at, self._tz), self.dialect)
        plain = start.caller_number
        case = Case(
            number=number, node=start.node, call_id=start.call_id, channel=start.channel,
            caller_number_enc=self._cipher.encrypt(plain) if plain else None,
            caller_number_hash=self._cipher.lookup_hash(plain) if plain else None,
            caller_name=start.caller_name, dnid=start.dnid, locale=start.locale,
            urgency=Urgency.NORMAL.value, ivr_path=[], status=CaseStatus.ACCEPTED.value,
            created_at=created_at, updated_at=now,
        )
        s.add(case)
        try:
            await s.flush()
        except exc.IntegrityError as e:
            raise _DuplicateCall() from e
        # The caller number stays out of the timeline: events are read more widely than cases.
        self._event(s, case, EventKind.CREATED, "ivr", now, {
            "node": start.node, "call_id": start.call_id, "channel": start.channel,
            "dnid": start.dnid, "locale": start.locale,
        })
        return self._view(case)

    async def update_call_case(
        self, node: str, call_id: str, *, actor: str = "ivr", **changes: Any
    ) -> CaseView:
        """Set fields while the call goes on (see ``CaseChanges`` for names and types).

        Each field that really changes is one timeline event; setting a field to the value it
        has records nothing, so a retried update does not clutter the timeline."""
        values = CaseChanges.parse(changes)

        async def apply(s: AsyncSession) -> CaseView:
            case = await self._require_by_call(s, node, call_id)
            now = _utcnow()
            for field, value in values.items():
                if getattr(case, field) == value:
                    continue
                setattr(case, field, value)
                case.updated_at = now
                self._event(s, case, EventKind.CHANGED, actor, now,
                            {"field": field, "value": to_jsonable_python(value)})
            await s.flush()
            return self._view(case)

        return await self._write("update_call_case", apply)

    async def finish_call(
        self,
        node: str,
        call_id: str,
        outcome: Outcome | str,
        ended_at: datetime,
        wait_s: float | None = None,
        talk_s: float | None = None,
        *,
        actor: str = "ivr",
    ) -> CaseView:
        """Record how the call ended. An abandoned call (or a requested callback) leaves a
        callback task (回拨) on the timeline, due ``callback_within`` after the hang-up.

        The first finish wins: Asterisk reports a hang-up per channel and a reconnect can
        replay one, so later finishes of the same call return the case unchanged."""
        result = Outcome(outcome)
        _aware("ended_at", ended_at)
        for name, v in (("wait_s", wait_s), ("talk_s", talk_s)):
            if v is not None and v < 0:
                raise ValueError(f"{name} must be >= 0, got {v}")

        async def apply(s: AsyncSession) -> CaseView:
            case = await self._require_by_call(s, node, call_id)
            if case.ended_at is not None:
                return self._view(case)
            now = _utcnow()
            case.outcome, case.ended_at, case.updated_at = result.value, ended_at.astimezone(UTC), now
            if wait_s is not None:
                case.wait_s = float(wait_s)
            if talk_s is not None:
                case.talk_s = float(talk_s)
            self._event(s, case, EventKind.CALL_ENDED, actor, now, {
                "outcome": result.value, "ended_at": to_jsonable_python(case.ended_at),
                "wait_s": case.wait_s, "talk_s": case.talk_s,
            })
            if result in CALLBACK_OUTCOMES:
                due = ended_at.astimezone(UTC) + self._callback_within
                self._event(s, case, EventKind.CALLBACK_TASK, "system", now,
                            {"reason": result.value, "due": to_jsonable_python(due), "state": "open"})
            await s.flush()
            return self._view(case)

        return await self._write("finish_call", apply)

    # -- reading ---------------------------------------------------------------------------

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

    async def history_for_number(
        self, caller_number: str, *, days: int = 90, limit: int = 100
    ) -> list[CaseView]:
        """Cases from this caller in the last ``days`` days, newest first (repeat callers).
        Looked up by keyed hash: the database never sees the number being searched for."""
        since = _utcnow() - timedelta(days=days)
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

    # -- internals -------------------------------------------------------------------------

    def _require_open(self) -> EngineInfo:
        if self._info is None:
            raise RuntimeError("CaseStore is not open: await store.open() first")
        return self._info

    async def _write(self, what: str, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        info = self._require_open()
        assert self._writes is not None
        writes = self._writes
        lock = self._write_lock if info.dialect == "sqlite" else contextlib.nullcontext()

        async def attempt() -> T:
            async with lock, writes() as s, s.begin():
                return await fn(s)

        return await with_retry(what, attempt)

    @contextlib.asynccontextmanager
    async def _reading(self, what: str) -> AsyncIterator[AsyncSession]:
        info = self._require_open()
        assert self._reads is not None
        # An in-memory SQLite database is one shared connection: reads must queue as well.
        lock = (self._write_lock if info.dialect == "sqlite" and info.sqlite_path is None
                else contextlib.nullcontext())
        async with translate_errors(what), lock, self._reads() as s:
            yield s

    @staticmethod
    async def _by_call(s: AsyncSession, node: str, call_id: str) -> Case | None:
        # FOR UPDATE: on PostgreSQL two updates of one case queue instead of overwriting each
        # other's read; SQLite leaves the clause out (its write lock already serialises).
        q = select(Case).where(Case.node == node, Case.call_id == call_id).with_for_update()
        return (await s.execute(q)).scalar_one_or_none()

    async def _require_by_call(self, s: AsyncSession, node: str, call_id: str) -> Case:
        case = await self._by_call(s, node, call_id)
        if case is None:
            raise CaseNotFound(f"no case for call {call_id!r} on node {node!r}")
        return case

    @staticmethod
    def _event(s: AsyncSession, case: Case, kind: EventKind, actor: str, at: datetime,
               detail: Mapping[str, Any]) -> None:
        s.add(CaseEvent(case_id=case.id, at=at, kind=kind.value, detail=dict(detail), actor=actor))

    def _view(self, c: Case) -> CaseView:
        plain = self._cipher.decrypt(c.caller_number_enc) if c.caller_number_enc else None
        return CaseView(
            number=c.number, status=c.status, node=c.node, call_id=c.call_id, channel=c.channel,
            caller_masked=mask_number(plain), caller_number=plain, caller_name=c.caller_name,
            dnid=c.dnid, locale=c.locale, case_type=c.case_type, topic=c.topic,
            topic_confidence=c.topic_confidence, urgency=c.urgency, district=c.district,
            description=c.description, transcript=c.transcript, ivr_path=tuple(c.ivr_path or ()),
            queue=c.queue, agent=c.agent, wait_s=c.wait_s, talk_s=c.talk_s, outcome=c.outcome,
            created_at=c.created_at, updated_at=c.updated_at, answered_at=c.answered_at,
            ended_at=c.ended_at, deadline=c.deadline,
        )
