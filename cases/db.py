"""Engine set-up and failure handling shared by the store's operations.

Kept apart from ``store.py`` because it is about the two databases' quirks, not about cases:

* SQLite: one writer at a time. Writers open with ``BEGIN IMMEDIATE`` so they take the write
  lock up front (a deferred transaction that reads and then writes can deadlock against another
  and fail at once instead of waiting), WAL lets readers go on meanwhile, and the busy timeout
  makes a writer from another process wait instead of failing. Within one store an asyncio lock
  queues writers before they even take a pooled connection, so 500 concurrent creates do not
  wake up as 500 threads polling a locked file.
* PostgreSQL: short connect timeout (asyncpg's default is 60 s, far longer than a caller
  waits), a command timeout (asyncpg's ``command_timeout``: without it a statement on a pooled
  connection whose server stopped answering waits for ever, and so does the request behind it),
  ``pool_pre_ping`` so a restarted server costs one reconnect rather than an error, and an
  optional schema through ``search_path``.
* Errors: whatever means "cannot be served now" becomes ``CaseStoreUnavailable`` (a command
  timeout too: asyncpg raises ``TimeoutError``, an ``OSError``); transient conflicts (SQLite
  busy, PostgreSQL serialization failure/deadlock) are retried first.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cases.errors import CaseStoreError, CaseStoreUnavailable

T = TypeVar("T")

WRITE_OPTION = "hotline_cases_write"
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
# connection exception, insufficient resources, operator intervention (shutdown, starting up),
# invalid authorization: the server cannot serve us now, whatever we send.
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "28"})
# The same for now, not for good: a read-only standby after a failover (25006), a lock held
# past lock_timeout (55P03) or an object in use (55006). The write waits, it is not dropped.
_UNAVAILABLE_SQLSTATES = frozenset({"25006", "55P03", "55006", "3D000"})

try:  # asyncpg raises its own classes while connecting, before SQLAlchemy wraps anything
    import asyncpg

    _DRIVER_UNAVAILABLE: tuple[type[BaseException], ...] = (
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.InvalidAuthorizationSpecificationError,
        asyncpg.InvalidCatalogNameError,
        asyncpg.CannotConnectNowError,
        asyncpg.TooManyConnectionsError,
    )
except ImportError:  # a SQLite-only installation
    _DRIVER_UNAVAILABLE = ()


@dataclass(frozen=True, slots=True)
class EngineInfo:
    engine: AsyncEngine
    dialect: str           # "sqlite" or "postgresql"
    sqlite_path: Path | None  # None: PostgreSQL or an in-memory SQLite database
    schema: str | None


def normalize_url(url: str) -> URL:
    """Accept the async URL, or the plain one and pick the async driver for it."""
    u = make_url(url)
    backend, driver = u.get_backend_name(), u.get_driver_name()
    if backend == "sqlite" and driver in ("aiosqlite", "pysqlite"):
        return u.set(drivername="sqlite+aiosqlite")
    if backend == "postgresql" and driver in ("asyncpg", "psycopg2"):
        return u.set(drivername="postgresql+asyncpg")
    raise ValueError(f"unsupported database URL {u.render_as_string(hide_password=True)!r}: "
                     "use sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db")


def check_target(url: str, schema: str | None) -> URL:
    """Validate the URL and schema without connecting: configuration errors surface at start."""
    u = normalize_url(url)
    if schema is not None:
        if u.get_backend_name() == "sqlite":
            raise ValueError("schema= is for PostgreSQL; SQLite has one schema per file")
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"bad schema name {schema!r}")
    return u


def build_engine(
    url: str, *, schema: str | None, connect_timeout_s: float, busy_timeout_s: float,
    command_timeout_s: float | None = None,
) -> EngineInfo:
    u = check_target(url, schema)
    if u.get_backend_name() == "sqlite":
        path = None if u.database in (None, "", ":memory:") else Path(u.database)
        engine = create_async_engine(u, connect_args={"timeout": busy_timeout_s})
        _sqlite_events(engine, wal=path is not None, busy_timeout_s=busy_timeout_s)
        return EngineInfo(engine, "sqlite", path, None)

    # The schema in the name tells an operator (and pg_terminate_backend) whose connections.
    server_settings = {"application_name": "hotline-cases"}
    if schema is not None:
        server_settings["search_path"] = schema
        server_settings["application_name"] = f"hotline-cases/{schema}"[:63]
    engine = create_async_engine(
        u,
        pool_pre_ping=True,
        connect_args={"timeout": connect_timeout_s, "command_timeout": command_timeout_s,
                      "server_settings": server_settings},
    )
    return EngineInfo(engine, "postgresql", None, schema)


def _sqlite_events(engine: AsyncEngine, *, wal: bool, busy_timeout_s: float) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take BEGIN out of the driver's hands so that _on_begin can choose the kind.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if wal:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _is_retryable(e: exc.DBAPIError) -> bool:
    orig = e.orig
    if getattr(orig, "sqlstate", None) in _RETRY_SQLSTATES:
        return True
    msg = str(orig).lower()
    return "database is locked" in msg or "database is busy" in msg


def _is_unavailable(e: BaseException) -> bool:
    if isinstance(e, exc.DBAPIError):
        sqlstate = str(getattr(e.orig, "sqlstate", None) or "")
        return (
            e.connection_invalidated
            or isinstance(e, exc.OperationalError | exc.InterfaceError)
            or sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES
            # (3D000: the database does not exist, yet or any more)
            or sqlstate in _UNAVAILABLE_SQLSTATES
        )
    return isinstance(e, (OSError, exc.TimeoutError, *_DRIVER_UNAVAILABLE))


@contextlib.asynccontextmanager
async def translate_errors(what: str) -> AsyncIterator[None]:
    """Turn driver failures into the store's error classes, naming the operation."""
    try:
        yield
    except CaseStoreError:
        raise
    except exc.IntegrityError as e:  # a constraint the store did not expect to hit: a bug
        raise CaseStoreError(f"{what}: integrity error: {e.orig}") from e
    except Exception as e:
        if _is_unavailable(e):
            raise CaseStoreUnavailable(f"{what}: database unavailable: {_short(e)}") from e
        if isinstance(e, exc.SQLAlchemyError):
            raise CaseStoreError(f"{what}: {_short(e)}") from e
        raise


def _short(e: BaseException) -> str:
    orig = getattr(e, "orig", None) or e
    return f"{type(orig).__name__}: {orig}".splitlines()[0][:300]


async def with_retry(
    what: str, op: Callable[[], Awaitable[T]], *, attempts: int = 5, base_delay_s: float = 0.02
) -> T:
    """Run ``op`` (one whole transaction) again when the database asks for it.

    Only transient conflicts are retried; the op must be safe to repeat, which it is because
    a failed transaction has been rolled back entirely.
    """
    for attempt in range(1, attempts + 1):
        async with translate_errors(what):
            try:
                return await op()
            except exc.DBAPIError as e:
                if attempt == attempts or not _is_retryable(e):
                    raise
        # Jitter so that retrying writers do not collide again in lock-step.
        await asyncio.sleep(base_delay_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable: the last attempt returns or raises")
