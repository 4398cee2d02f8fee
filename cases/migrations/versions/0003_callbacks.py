"""An index on the timeline's event kinds, for the callbacks owed (回拨).

``cases.callbacks`` finds every case's latest callback event across all cases; without this
index that is a scan of the whole timeline table at each look at the list.

Revision ID: 0003
Revises: 0002
Create Date: 2026-03-20
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_case_events_kind", "case_events", ["kind", "case_id"])


def downgrade() -> None:
    op.drop_index("ix_case_events_kind", "case_events")
