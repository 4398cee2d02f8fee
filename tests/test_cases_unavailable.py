"""An unreachable database surfaces as CaseStoreUnavailable, and the store recovers after."""

# Fixtures are imported from tests.cases_fixtures, and pytest injects them by parameter name:
# that is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from cases import CallStart, CaseStore, CaseStoreError, CaseStoreUnavailable
from tests.cases_fixtures import (  # noqa: F401
    SECRET,
    TcpProxy,
    asyncpg_dsn,
    backend,
    closed_port,
    pg_proxy,
    pg_url,
)

T0 = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)


async def test_unreachable_postgresql() -> None:
    store = CaseStore(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/test",
                      secret_key=SECRET, connect_timeout_s=2)
    with pytest.raises(CaseStoreUnavailable) as err:
        await store.open()
    assert isinstance(err.value.__cause__, OSError)
    assert isinstance(err.value, CaseStoreError)  # one base class for defensive callers
    await store.close()


async def test_missing_postgresql_database(pg_url: str) -> None:
    url = pg_url.rsplit("/", 1)[0] + "/no_such_database_for_cases"
    with pytest.raises(CaseStoreUnavailable, match="does not exist"):
        await CaseStore(url, secret_key=SECRET).open()


async def test_sqlite_path_that_cannot_exist(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the database folder should be")
    store = CaseStore(f"sqlite+aiosqlite:///{blocker}/cases.db", secret_key=SECRET)
    with pytest.raises(CaseStoreUnavailable):
        await store.open()


async def test_outage_then_recovery(pg_proxy: TcpProxy, pg_url: str) -> None:
    """The server goes away mid-service (cut at the TCP level) and comes back."""
    from sqlalchemy.engine import make_url

    url = make_url(pg_url).set(host="127.0.0.1", port=pg_proxy.port)
    schema = f"t_cases_outage_{uuid.uuid4().hex[:12]}"
    store = CaseStore(url.render_as_string(hide_password=False), secret_key=SECRET,
                      schema=schema, connect_timeout_s=2)
    try:
        await store.open()
        first = await store.open_call_case(CallStart(call_id="o.1", started_at=T0))

        await pg_proxy.stop()
        with pytest.raises(CaseStoreUnavailable):
            await store.open_call_case(CallStart(call_id="o.2", started_at=T0))
        with pytest.raises(CaseStoreUnavailable):
            await store.get(first.number)
        with pytest.raises(CaseStoreUnavailable):
            await store.update_call_case("default", "o.1", topic="x")

        await pg_proxy.start()  # same port: the server is back
        again = await store.open_call_case(CallStart(call_id="o.2", started_at=T0))
        assert again.number == "20260310000002"  # the failed attempt left no gap
        assert await store.count() == 2
    finally:
        await store.close()
        conn = await asyncpg.connect(asyncpg_dsn(pg_url))
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def test_killed_connections_are_replaced(pg_url: str) -> None:
    """A server restart kills pooled connections; the next call must not fail for it."""
    schema = f"t_cases_kill_{uuid.uuid4().hex[:12]}"
    store = CaseStore(pg_url, secret_key=SECRET, schema=schema)
    try:
        await store.open()
        await store.open_call_case(CallStart(call_id="k.1", started_at=T0))
        conn = await asyncpg.connect(asyncpg_dsn(pg_url))
        try:
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1", f"hotline-cases/{schema}")
        finally:
            await conn.close()
        assert killed >= 1
        assert (await store.open_call_case(CallStart(call_id="k.2", started_at=T0))).number \
            == "20260310000002"
    finally:
        await store.close()
        conn = await asyncpg.connect(asyncpg_dsn(pg_url))
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def test_a_server_that_stops_answering_is_unavailable_not_a_hang(
        pg_proxy: TcpProxy, pg_url: str) -> None:
    """The server stops answering on the pool's open connections (no reset, no close): each
    operation gives up after the command timeout with CaseStoreUnavailable, instead of
    waiting for ever; when the server answers again, so does the store."""
    from sqlalchemy.engine import make_url

    url = make_url(pg_url).set(host="127.0.0.1", port=pg_proxy.port)
    schema = f"t_cases_stall_{uuid.uuid4().hex[:12]}"
    store = CaseStore(url.render_as_string(hide_password=False), secret_key=SECRET,
                      schema=schema, connect_timeout_s=0.5, command_timeout_s=0.5)
    try:
        await store.open()
        first = await store.open_call_case(CallStart(call_id="s.1", started_at=T0))

        pg_proxy.stall()
        # A guard so that the hang this test is about fails it instead of blocking the run;
        # the store gives up long before.
        async with asyncio.timeout(20):
            with pytest.raises(CaseStoreUnavailable, match="TimeoutError"):
                await store.get(first.number)
            with pytest.raises(CaseStoreUnavailable):
                await store.update_call_case("default", "s.1", topic="water")
            with pytest.raises(CaseStoreUnavailable):
                await store.open_call_case(CallStart(call_id="s.2", started_at=T0))

        pg_proxy.resume()
        again = await store.open_call_case(CallStart(call_id="s.2", started_at=T0))
        assert again.number == "20260310000002"   # nothing was half-written meanwhile
        after = await store.get(first.number)
        assert after is not None and after.topic is None
    finally:
        await store.close()
        conn = await asyncpg.connect(asyncpg_dsn(pg_url))
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


def test_the_command_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="command_timeout_s"):
        CaseStore("sqlite+aiosqlite:///x.db", secret_key=SECRET, command_timeout_s=0)
