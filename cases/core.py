"""``StoreCore``: the engine, transactions, views and helpers the store's parts share.

``CaseStore`` (``cases.store``) is this core plus one mixin per concern (the call path,
reading, the lifecycle, departments, supervision, privacy, intake, analysis), so that each
module stays small. The store owns its engine (no module-level state): build one per process
from configuration, ``await open()`` at start, ``await close()`` at stop. Every method is one
short transaction and returns frozen views (``cases.schemas``), never ORM objects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic_core import to_jsonable_python
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from cases.codes import EventKind
from cases.config import CasesConfig
from cases.db import (
    WRITE_OPTION,
    EngineInfo,
    build_engine,
    check_target,
    translate_errors,
    with_retry,
)
from cases.errors import (
    CallerNumberUnreadable,
    CaseNotFound,
    CaseStoreNotOpen,
    ConcurrentUpdate,
    SecretKeyMismatch,
)
from cases.migrate import upgrade
from cases.models import Case, CaseEvent, StoreSetting
from cases.privacy import NumberCipher, mask_number
from cases.schemas import CaseView

T = TypeVar("T")
KEY_SETTING = "caller_key"
MISMATCH = ("database.secret_key: the database's caller details were encrypted with another "
            "key; start this node with the key the other nodes use")
Clock = Callable[[], datetime]
# The first moment at or after an aware time that lies within the centre's calling hours
# (``ivr.menus.hours.OpeningHours.next_open``).
NextOpen = Callable[[datetime], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    return value


def jsonable(value: Any) -> Any:
    return to_jsonable_python(value)


class StoreCore:
    def __init__(
        self,
        url: str,
        *,
        secret_key: str,
        timezone: str = "Asia/Shanghai",
        schema: str | None = None,
        connect_timeout_s: float = 5.0,
        busy_timeout_s: float = 5.0,
        command_timeout_s: float | None = 10.0,
        callback_within: timedelta = timedelta(minutes=30),
        calling_hours: NextOpen | None = None,
        config: CasesConfig | None = None,
        clock: Clock = utcnow,
    ) -> None:
        """``schema`` (PostgreSQL only) keeps the tables in their own schema, created if missing.
        ``callback_within`` is how soon an abandoned caller is owed a call back (回拨);
        ``calling_hours`` moves a due time that falls outside the hours the centre calls
        citizens to the next opening (None: calls at any hour). ``config`` holds deadlines, the repeat-caller window and supervision rules.
        ``clock`` returns the current aware time: tests pass a fixed one.
        ``command_timeout_s`` (PostgreSQL) bounds each statement's wait for the server's
        answer: a server that stops answering on an open pooled connection (a network cut
        without a reset, a frozen host) then costs ``CaseStoreUnavailable`` after that long,
        not a request that hangs forever; the connect timeout only covers new connections.
        It bounds the migrations in ``open`` too (and a wait for another node's), so it must
        exceed the longest statement the store runs; None waits for ever."""
        check_target(url, schema)  # a bad URL is a configuration error: fail now, not at a call
        try:
            self._tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {timezone!r}") from e
        self._url = url
        self._schema = schema
        self._connect_timeout_s = connect_timeout_s
        self._busy_timeout_s = busy_timeout_s
        if command_timeout_s is not None and not command_timeout_s > 0:
            raise ValueError(f"command_timeout_s must be > 0 (None: no limit), got "
                             f"{command_timeout_s!r}")
        self._command_timeout_s = command_timeout_s
        self._callback_within = callback_within
        self._calling_hours = calling_hours
        self._config = config or CasesConfig()
        self._clock = clock
        self._cipher = NumberCipher(secret_key)
        self._info: EngineInfo | None = None
        self._reads: async_sessionmaker[AsyncSession] | None = None
        self._writes: async_sessionmaker[AsyncSession] | None = None
        # SQLite admits one writer: queue ours here rather than on the file lock (see cases.db).
        self._write_lock = asyncio.Lock()

    # -- life cycle of the store itself ---------------------------------------------------

    async def open(self) -> None:
        """Connect and bring the schema to the newest revision (Alembic). Idempotent."""
        if self._info is not None:
            return
        info = build_engine(self._url, schema=self._schema,
                            connect_timeout_s=self._connect_timeout_s,
                            busy_timeout_s=self._busy_timeout_s,
                            command_timeout_s=self._command_timeout_s)
        # BEGIN IMMEDIATE on SQLite: a deferred transaction that reads the catalogue and then
        # writes fails at once (no busy wait) when another process migrated meanwhile.
        ddl_engine = info.engine.execution_options(**{WRITE_OPTION: True})

        async def migrate() -> None:
            async with ddl_engine.begin() as conn:
                if info.dialect == "postgresql":
                    # Nodes sharing one server may start together and would race to create
                    # the same tables: take turns (released at commit).
                    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                                       {"k": "hotline-cases-ddl"})
                if info.schema is not None:
                    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{info.schema}"'))
                await conn.run_sync(upgrade)
                # In the same transaction, under the same turn-taking: of two nodes with
                # different keys starting together on a new database, the second is refused.
                await conn.run_sync(self._check_key)

        try:
            if info.sqlite_path is not None:
                async with translate_errors("open"):
                    info.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            await with_retry("open", migrate)
        except BaseException:
            await info.engine.dispose()
            raise
        self._info = info
        self._reads = async_sessionmaker(info.engine, expire_on_commit=False)
        self._writes = async_sessionmaker(
            info.engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    def _check_key(self, conn: Connection) -> None:
        """Refuse a secret key other than the database's: a node started with its own key
        would write caller details no other node can read, and every list holding one of
        its cases would fail on the others. The first node to open the database records its
        key's fingerprint; a database from before that is checked against its newest
        encrypted caller details, and then records the key that reads them."""
        stored = conn.execute(select(StoreSetting.value)
                              .where(StoreSetting.name == KEY_SETTING)).scalar_one_or_none()
        if stored is None:
            self._check_against_data(conn)
            conn.execute(insert(StoreSetting).values(name=KEY_SETTING,
                                                     value=self._cipher.fingerprint))
        elif stored != self._cipher.fingerprint:
            raise SecretKeyMismatch(MISMATCH)

    def _check_against_data(self, conn: Connection) -> None:
        for column, decrypt in ((Case.caller_number_enc, self._cipher.decrypt),
                                (Case.caller_email_enc, self._cipher.decrypt_email)):
            blob = conn.execute(select(column).where(column.is_not(None))
                                .order_by(Case.id.desc()).limit(1)).scalar_one_or_none()
            if blob is None:
                continue
            try:
                decrypt(blob)
            except CallerNumberUnreadable as e:
                raise SecretKeyMismatch(MISMATCH) from e

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

    @property
    def config(self) -> CasesConfig:
        return self._config

    @property
    def timezone(self) -> ZoneInfo:
        return self._tz

    def now(self) -> datetime:
        """The store's clock (aware UTC): what its writes stamp, and "now" for its callers."""
        return self._now()

    # -- internals shared by the mixins -----------------------------------------------------

    def _now(self) -> datetime:
        return aware("clock()", self._clock()).astimezone(UTC)

    def _callback_due(self, since: datetime) -> datetime:
        """When a callback counted from ``since`` (the hang-up or the last unanswered
        attempt) falls due: ``callback_within`` later, or the next opening of the calling
        hours if that is outside them. Never earlier for a later ``since`` (the list's order
        and ``callback_counts`` rely on it)."""
        due = since.astimezone(UTC) + self._callback_within
        if self._calling_hours is not None:
            due = aware("calling_hours()", self._calling_hours(due)).astimezone(UTC)
        return due

    def _require_open(self) -> EngineInfo:
        if self._info is None:
            raise CaseStoreNotOpen("CaseStore is not open: await store.open() first")
        return self._info

    async def _write(self, what: str, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        info = self._require_open()
        assert self._writes is not None
        writes = self._writes
        lock = self._write_lock if info.dialect == "sqlite" else contextlib.nullcontext()

        async def attempt() -> T:
            async with lock, writes() as s, s.begin():
                try:
                    return await fn(s)
                except StaleDataError as e:
                    # Rows are locked before they are changed, so this means a writer that
                    # bypassed the store; refuse rather than overwrite.
                    raise ConcurrentUpdate(f"{what}: the case changed meanwhile") from e

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
    async def _lock_numbers(s: AsyncSession, *numbers: str) -> dict[str, Case]:
        """The cases with these numbers, row-locked in number order (a fixed order, so two
        transactions locking the same pair cannot deadlock). Missing numbers are absent."""
        q = (select(Case).where(Case.number.in_(sorted(set(numbers))))
             .order_by(Case.number).with_for_update())
        return {c.number: c for c in (await s.execute(q)).scalars()}

    async def _require_number(self, s: AsyncSession, number: str) -> Case:
        found = await self._lock_numbers(s, number)
        if number not in found:
            raise CaseNotFound(f"no case {number}")
        return found[number]

    @staticmethod
    def _event(s: AsyncSession, case: Case, kind: EventKind, actor: str, at: datetime,
               detail: Mapping[str, Any]) -> None:
        s.add(CaseEvent(case_id=case.id, at=at, kind=kind.value, detail=dict(detail), actor=actor))

    def _view(self, c: Case) -> CaseView:
        plain = self._cipher.decrypt(c.caller_number_enc) if c.caller_number_enc else None
        return CaseView(
            number=c.number, version=c.version, status=c.status, node=c.node, call_id=c.call_id,
            channel=c.channel, caller_masked=mask_number(plain), caller_name=c.caller_name,
            dnid=c.dnid, locale=c.locale, case_type=c.case_type, topic=c.topic,
            topic_confidence=c.topic_confidence, urgency=c.urgency, district=c.district,
            description=c.description, transcript=c.transcript, ivr_path=tuple(c.ivr_path or ()),
            queue=c.queue, agent=c.agent, wait_s=c.wait_s, talk_s=c.talk_s, outcome=c.outcome,
            created_at=c.created_at, updated_at=c.updated_at, answered_at=c.answered_at,
            ended_at=c.ended_at, deadline=c.deadline, deadline_from=c.deadline_from,
            department=c.department, replied_at=c.replied_at, closed_at=c.closed_at,
            satisfaction=c.satisfaction, reopen_count=c.reopen_count or 0,
            merged_into=c.merged_into, related_to=c.related_to,
            repeat_count=c.repeat_count or 0, priority=c.priority or 0, address=c.address,
            lat=c.lat, lon=c.lon, media_url=c.media_url,
        )

    def _set_deadline(self, s: AsyncSession, case: Case, start: datetime, actor: str,
                      at: datetime, *, record: bool = True) -> None:
        """(Re)compute the case's deadline from its type and urgency, counted from ``start``;
        a change is one ``deadline_set`` event (unless ``record`` is off, at creation, where
        the created event carries it)."""
        due, rule = self._config.deadlines.deadline(case.case_type, case.urgency, start,
                                                    self._tz)
        if case.deadline == due and case.deadline_from == start:
            return
        case.deadline, case.deadline_from = due, start
        if record:
            self._event(s, case, EventKind.DEADLINE_SET, actor, at, {
                "deadline": jsonable(due), "rule": rule, "from": jsonable(start)})
