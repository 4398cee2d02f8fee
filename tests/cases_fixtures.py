"""Fixtures of the case store tests: one store per test on SQLite and on PostgreSQL.

Import them into a test module (``from tests.cases_fixtures import backend, store, ...``).

PostgreSQL is skipped only when it cannot be reached, with the reason printed loudly, and never
in CI: with ``CI`` set, an unreachable server fails the tests instead, so a broken CI database
cannot pass as a green run that silently tested SQLite alone. Each PostgreSQL test gets a fresh
schema, dropped afterwards, so tests are independent of each other and of other people's tests
sharing the ``test`` database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cases import CallStart, CaseStore, DepartmentKind, DepartmentSeed

SECRET = "test-secret-key-for-cases-0123456789"
PG_URL_ENV = "HOTLINE_TEST_PG_URL"
_PG_CANDIDATES = (
    "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
    "postgresql+asyncpg://root@127.0.0.1:5432/test",
)


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _probe(url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=3)
    await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A reachable PostgreSQL URL, or a loud skip (a failure when ``CI`` is set)."""
    explicit = os.environ.get(PG_URL_ENV)
    candidates = (explicit,) if explicit else _PG_CANDIDATES
    reasons = []
    for url in candidates:
        try:
            asyncio.run(_probe(url))
            return url
        except Exception as e:  # noqa: BLE001 - any failure to connect: try the next one
            reasons.append(f"{url}: {type(e).__name__}: {e}")
    msg = ("PostgreSQL UNREACHABLE, case store tests on PostgreSQL NOT RUN ("
           + "; ".join(reasons) + f"). Start it or set {PG_URL_ENV}.")
    if os.environ.get("CI"):
        pytest.fail(msg + " CI is set: an unreachable database fails the run.", pytrace=False)
    print(f"\n*** {msg} ***", file=sys.stderr)
    pytest.skip(msg)


@dataclass(frozen=True)
class Backend:
    """Where one test's store lives, plus raw access that bypasses the store."""

    name: str                 # "sqlite" or "postgresql"
    url: str
    schema: str | None        # PostgreSQL schema of this test
    sqlite_path: Path | None

    def store(self, **kw: Any) -> CaseStore:
        kw.setdefault("secret_key", SECRET)
        return CaseStore(self.url, schema=self.schema, **kw)

    def foreign_store(self) -> CaseStore:
        """A store with another secret key that skips the key check at open: it writes what
        a node started with the wrong key wrote before the store had the check (caller
        details the right key cannot read)."""
        s = self.store(secret_key="another-secret-key-0123456789")
        s._check_key = lambda conn: None  # type: ignore[method-assign]
        return s

    async def raw(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a raw SQL statement, as a database dump would see them."""
        if self.sqlite_path is not None:
            return await asyncio.to_thread(_sqlite_rows, self.sqlite_path, sql)
        conn = await asyncpg.connect(asyncpg_dsn(self.url),
                                     server_settings={"search_path": self.schema or "public"})
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    def file_bytes(self) -> bytes:
        """SQLite only: the database file and its WAL, byte for byte."""
        assert self.sqlite_path is not None
        return b"".join(p.read_bytes() for p in
                        (self.sqlite_path, self.sqlite_path.with_name(self.sqlite_path.name + "-wal"))
                        if p.exists())


def _sqlite_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as conn:
        rows = conn.execute(sql).fetchall()
        conn.commit()
        return rows


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "db" / "cases.db"  # parent missing on purpose: open() creates it
        yield Backend("sqlite", f"sqlite+aiosqlite:///{path}", None, path)
        return
    url: str = request.getfixturevalue("pg_url")
    schema = f"t_cases_{uuid.uuid4().hex[:12]}"
    yield Backend("postgresql", url, schema, None)
    asyncio.run(_drop_schema(url, schema))


async def _drop_schema(url: str, schema: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[CaseStore]:
    s = backend.store()
    await s.open()
    try:
        yield s
    finally:
        await s.close()


class FakeClock:
    """The store's ``clock``: a fixed time that tests move by hand (no wall-clock waits)."""

    def __init__(self, now: datetime = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)) -> None:
        self.now = now  # 10:00 on Tuesday 10 March 2026 in Shanghai

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


# A small tree: city › district › subdistrict, an agency and a water company under the city.
DEPARTMENTS = [
    DepartmentSeed(code="3100", name="上海市", kind=DepartmentKind.CITY),
    DepartmentSeed(code="310101", name="黄浦区", kind=DepartmentKind.COUNTY, parent="3100"),
    DepartmentSeed(code="310101001", name="南京东路街道", kind=DepartmentKind.TOWNSHIP,
                   parent="310101"),
    DepartmentSeed(code="housing", name="住建委", kind=DepartmentKind.AGENCY, parent="3100"),
    DepartmentSeed(code="water-co", name="城投水务", kind=DepartmentKind.WATER, parent="3100"),
    DepartmentSeed(code="old-office", name="撤销的办公室", kind=DepartmentKind.AGENCY,
                   parent="3100", active=False),
]


@pytest.fixture
async def clocked(backend: Backend) -> AsyncIterator[tuple[CaseStore, FakeClock]]:
    """A store on a fake clock, with the departments of ``DEPARTMENTS`` loaded."""
    clock = FakeClock()
    s = backend.store(clock=clock)
    await s.open()
    try:
        await s.load_departments(DEPARTMENTS)
        yield s, clock
    finally:
        await s.close()


def call_start(call_id: str, number: str | None = "13800138000",
               at: datetime | None = None) -> CallStart:
    return CallStart(node="node-a", call_id=call_id, caller_number=number, started_at=at)


class TcpProxy:
    """A loopback TCP forwarder that can be cut and restored: a database "outage" on demand
    without stopping the shared PostgreSQL server."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._stalled = False
        self.port = 0

    def stall(self) -> None:
        """The server stops answering without closing anything (a frozen host, a cut that
        sends no reset): open connections stay open and silent, new ones are accepted and
        never reach it."""
        self._stalled = True

    def resume(self) -> None:
        """Forward again. What was swallowed meanwhile is lost: connections that were
        mid-statement are broken, as after a real outage."""
        self._stalled = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.transport.abort()
            await self._server.wait_closed()
            self._server = None
        self._writers.clear()

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        server = self._server
        if self._stalled:
            self._writers.add(w)   # accepted, never answered; cut by stop()
            with contextlib.suppress(Exception):
                await r.read()
            self._writers.discard(w)
            w.transport.abort()
            return
        try:
            ur, uw = await asyncio.open_connection(*self._target)
        except OSError:
            w.transport.abort()
            return
        if self._server is not server or server is None:
            # Cut (or cut and restored) while this connection was being made: it belongs
            # to the outage, not to the restored service.
            w.transport.abort()
            uw.transport.abort()
            return
        self._writers |= {w, uw}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if self._stalled:
                        continue    # swallowed: nobody answers
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(r, uw), pipe(ur, w))
        self._writers -= {w, uw}


@pytest.fixture
async def pg_proxy(pg_url: str) -> AsyncIterator[TcpProxy]:
    from sqlalchemy.engine import make_url

    u = make_url(pg_url)
    proxy = TcpProxy(u.host or "127.0.0.1", u.port or 5432)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
