"""Periodic work is claimed in the database, as connector runs and provisioning cycles are (issue #11)

Revision ID: 0013_periodic_work
Revises: 0012_items_chat_index
Create Date: 2026-11-30

The daily archive retention and SCIM-log sweep were timed in each scheduler's memory: every process with a
scheduler ran them at its start, and a restart ran them again. ``periodic_work`` holds each one's next time;
``core.schedule.claim_periodic`` hands it to one scheduler.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013_periodic_work'
down_revision: str | None = '0012_items_chat_index'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('periodic_work',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_periodic_work'))
    )


def downgrade() -> None:
    op.drop_table('periodic_work')
