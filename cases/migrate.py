"""Bring a database to the newest schema with Alembic, on a connection the store holds.

Called by ``CaseStore.open`` inside its DDL transaction (and under its cross-node lock), so
nodes starting together migrate once, and a failed migration leaves nothing half-done on
PostgreSQL (transactional DDL) nor on SQLite (DDL is transactional there too).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"  # the schema the store created before it had migrations


def _config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def head() -> str:
    rev = ScriptDirectory.from_config(_config()).get_current_head()
    assert rev is not None, "no migration scripts found"
    return rev


def current(conn: Connection) -> str | None:
    """The revision the database is at (None: not under migrations yet)."""
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(conn: Connection) -> None:
    """Upgrade to head. A database from before migrations (tables, no ``alembic_version``) is
    first stamped with the baseline it matches, so its data is kept and upgraded."""
    if current(conn) == head():
        return  # the common case at every start: nothing to run
    cfg = _config(conn)
    insp = inspect(conn)
    if not insp.has_table("alembic_version") and insp.has_table("cases"):
        command.stamp(cfg, BASELINE)
    command.upgrade(cfg, "head")
