"""Archiver feeds re-read an overlap behind their checkpoint (issue #10, item 1)

Revision ID: 0008_feed_overlap
Revises: 0007_username_key
Create Date: 2026-11-30

``connectors.window_hours`` (24, never read) becomes ``overlap_hours``: how far behind its checkpoint each run
of an archiver feed starts reading, so a message that reaches the archiver after the run that covered its
timestamp is still fetched by a later run. Existing connectors get the default, 48 hours (the minimum).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008_feed_overlap'
down_revision: str | None = '0007_username_key'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('connectors') as batch_op:
        batch_op.alter_column('window_hours', new_column_name='overlap_hours', existing_type=sa.Integer(),
                              existing_nullable=False)
    op.execute(sa.text("UPDATE connectors SET overlap_hours = 48 WHERE overlap_hours < 48"))


def downgrade() -> None:
    with op.batch_alter_table('connectors') as batch_op:
        batch_op.alter_column('overlap_hours', new_column_name='window_hours', existing_type=sa.Integer(),
                              existing_nullable=False)
