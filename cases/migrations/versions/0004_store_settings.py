"""The settings all nodes must agree on: the fingerprint of the caller-details key.

A node started with another secret key would write caller numbers no other node can read
(and could not read theirs); ``CaseStore.open`` compares its key's fingerprint with the one
stored here by the first node.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("store_settings")
