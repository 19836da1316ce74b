"""Connector runs: a heartbeat, so that a run is recovered only once its process has stopped (issue #16)

Revision ID: 0021_connector_run_heartbeat
Revises: 0020_voice_certificates
Create Date: 2026-11-30
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0021_connector_run_heartbeat'
down_revision: str | None = '0020_voice_certificates'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (nullable): runs written before it are judged by their start (runner.recover_interrupted).
    op.add_column('connector_runs', sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('connector_runs', 'heartbeat_at')   # SQLite ≥ 3.35 drops a column in place
