"""Lifecycle, deadlines, departments, repeat callers, audit log, Open311 fields.

Only ADD COLUMN on ``cases`` (no constraint on an existing table), which SQLite does in place;
the new tables carry their own constraints.

Revision ID: 0002
Revises: 0001
Create Date: 2026-03-11
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)

_CASE_COLUMNS = (
    ("version", sa.Integer(), False, "1"),
    ("department", sa.String(64), True, None),
    ("deadline_from", _TIME, True, None),
    ("replied_at", _TIME, True, None),
    ("closed_at", _TIME, True, None),
    ("satisfaction", sa.Integer(), True, None),
    ("reopen_count", sa.Integer(), False, "0"),
    ("merged_into", sa.String(14), True, None),
    ("related_to", sa.String(14), True, None),
    ("repeat_count", sa.Integer(), False, "0"),
    ("priority", sa.Integer(), False, "0"),
    ("caller_email_enc", sa.LargeBinary(), True, None),
    ("address", sa.Text(), True, None),
    ("lat", sa.Float(), True, None),
    ("lon", sa.Float(), True, None),
    ("media_url", sa.String(1024), True, None),
)


def upgrade() -> None:
    for name, type_, nullable, default in _CASE_COLUMNS:
        op.add_column("cases", sa.Column(name, type_, nullable=nullable,
                                         server_default=default))
    op.create_index("ix_cases_deadline", "cases", ["deadline"])
    op.create_index("ix_cases_department", "cases", ["department"])

    op.create_table(
        "departments",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("parent_code", sa.String(64), sa.ForeignKey("departments.code")),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.create_index("ix_departments_parent", "departments", ["parent_code"])

    op.create_table(
        "audit_log",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("case_number", sa.String(14)),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_audit_log_case", "audit_log", ["case_number", "id"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("departments")
    op.drop_index("ix_cases_department", "cases")
    op.drop_index("ix_cases_deadline", "cases")
    with op.batch_alter_table("cases") as batch:
        for name, *_ in reversed(_CASE_COLUMNS):
            batch.drop_column(name)
