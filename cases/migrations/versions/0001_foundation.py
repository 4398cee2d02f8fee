"""Foundation: cases, their timeline events and the daily number counters.

This is the schema the store created with ``create_all`` before it had migrations; an existing
database of that age is stamped with this revision and upgraded from here (``cases.migrate``).

Revision ID: 0001
Revises:
Create Date: 2026-03-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "case_counters",
        sa.Column("day", sa.String(8), primary_key=True),
        sa.Column("last", sa.Integer(), nullable=False),
    )
    op.create_table(
        "cases",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("number", sa.String(14), nullable=False, unique=True),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(128)),
        sa.Column("caller_number_enc", sa.LargeBinary()),
        sa.Column("caller_number_hash", sa.String(64)),
        sa.Column("caller_name", sa.String(128)),
        sa.Column("dnid", sa.String(64)),
        sa.Column("locale", sa.String(16)),
        sa.Column("case_type", sa.String(16)),
        sa.Column("topic", sa.String(64)),
        sa.Column("topic_confidence", sa.Float()),
        sa.Column("urgency", sa.String(16), nullable=False),
        sa.Column("district", sa.String(64)),
        sa.Column("description", sa.Text()),
        sa.Column("transcript", sa.Text()),
        sa.Column("ivr_path", _JSON, nullable=False),
        sa.Column("queue", sa.String(64)),
        sa.Column("agent", sa.String(64)),
        sa.Column("wait_s", sa.Float()),
        sa.Column("talk_s", sa.Float()),
        sa.Column("outcome", sa.String(16)),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("answered_at", _TIME),
        sa.Column("ended_at", _TIME),
        sa.Column("deadline", _TIME),
        sa.UniqueConstraint("node", "call_id", name="uq_cases_node_call"),
    )
    op.create_index("ix_cases_status", "cases", ["status"])
    op.create_index("ix_cases_caller_hash_created", "cases", ["caller_number_hash", "created_at"])
    op.create_index("ix_cases_created_at", "cases", ["created_at"])
    op.create_table(
        "case_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("case_id", _ID, sa.ForeignKey("cases.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", _JSON, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
    )
    op.create_index("ix_case_events_case_id", "case_events", ["case_id", "id"])


def downgrade() -> None:
    op.drop_table("case_events")
    op.drop_table("cases")
    op.drop_table("case_counters")
