"""Alembic migrations: an empty database upgrades to head, the result matches the models, and
a database created before migrations is adopted with its data."""

# Fixtures are imported from tests.cases_fixtures, and pytest injects them by parameter name:
# that is not a redefinition.
# ruff: noqa: F811

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from cases import CaseStatus
from cases.db import build_engine
from cases.migrate import _config, current, head
from cases.models import Base
from tests.cases_fixtures import Backend, backend, pg_url  # noqa: F401


async def on_connection(backend: Backend, fn: Callable[[Connection], Any]) -> Any:
    if backend.sqlite_path is not None:
        backend.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    info = build_engine(backend.url, schema=backend.schema, connect_timeout_s=5,
                        busy_timeout_s=5)
    try:
        async with info.engine.begin() as conn:
            if backend.schema is not None:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{backend.schema}"'))
            return await conn.run_sync(fn)
    finally:
        await info.engine.dispose()


async def test_empty_database_upgrades_to_head(backend: Backend) -> None:
    assert await on_connection(backend, current) is None
    async with backend.store() as store:
        assert await store.count() == 0
    assert await on_connection(backend, current) == head() == "0004"
    tables = await on_connection(backend, lambda c: set(inspect(c).get_table_names()))
    assert tables == {"alembic_version", "cases", "case_events", "case_counters",
                      "departments", "audit_log", "store_settings"}
    # The migrated schema is the models' schema: autogenerate finds nothing to add.
    diffs = await on_connection(
        backend, lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata))
    assert diffs == []
    async with backend.store():  # opening again is a no-op
        pass
    assert await on_connection(backend, current) == "0004"


async def test_database_from_before_migrations_is_adopted(backend: Backend) -> None:
    def foundation_only(conn: Connection) -> None:
        # What the store created with create_all before it had migrations: revision 0001's
        # tables, no alembic_version table, and a case in them.
        command.upgrade(_config(conn), "0001")
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text(
            "INSERT INTO cases (number, node, call_id, urgency, ivr_path, status, created_at,"
            " updated_at) VALUES ('20260310000001', 'n', 'c.1', 'normal', '[]', 'accepted',"
            " '2026-03-10 02:00:00', '2026-03-10 02:00:00')"))
        conn.execute(text("INSERT INTO case_counters (day, last) VALUES ('20260310', 1)"))

    await on_connection(backend, foundation_only)
    async with backend.store() as store:
        v = await store.get("20260310000001")
        assert v is not None and v.status == CaseStatus.ACCEPTED
        assert (v.version, v.reopen_count, v.priority, v.department) == (1, 0, 0, None)
    assert await on_connection(backend, current) == "0004"
