"""Alembic environment of the case store.

The store runs migrations itself (``cases.migrate``), on a connection it already holds inside
its DDL transaction, so this environment only supports that: the connection arrives in
``config.attributes["connection"]``. The ``alembic`` command line is not needed to deploy.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from cases.models import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise TypeError("cases migrations run through cases.migrate.upgrade(connection)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things: batch mode rebuilds the table when a revision needs it.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():  # joins the store's transaction: commits happen there
    context.run_migrations()
