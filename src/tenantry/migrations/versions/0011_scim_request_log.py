"""scim_request_log: one row per inbound SCIM write, kept TENANTRY_SCIM_LOG_DAYS days (issue #10 item 15)

Revision ID: 0011_scim_request_log
Revises: 0010_app_roles
Create Date: 2026-11-30

A new table and its indexes only: nothing existing changes.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011_scim_request_log'
down_revision: str | None = '0010_app_roles'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('scim_request_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('bulk_index', sa.Integer(), nullable=True),
    sa.Column('token_id', sa.String(length=36), nullable=True),
    sa.Column('token_name', sa.String(length=128), nullable=True),
    sa.Column('client_ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=256), nullable=True),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('resource_type', sa.String(length=64), nullable=True),
    sa.Column('resource_id', sa.String(length=64), nullable=True),
    sa.Column('external_id', sa.String(length=512), nullable=True),
    sa.Column('user_name', sa.String(length=512), nullable=True),
    sa.Column('display_name', sa.String(length=512), nullable=True),
    sa.Column('operation', sa.String(length=512), nullable=True),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('scim_type', sa.String(length=32), nullable=True),
    sa.Column('detail', sa.String(length=1024), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_scim_request_log_tenant_id_tenants'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scim_request_log'))
    )
    with op.batch_alter_table('scim_request_log', schema=None) as batch_op:
        batch_op.create_index('ix_scim_request_log_tenant_at', ['tenant_id', 'at'], unique=False)
        batch_op.create_index('ix_scim_request_log_tenant_resource', ['tenant_id', 'resource_id'], unique=False)
        batch_op.create_index('ix_scim_request_log_at', ['at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('scim_request_log', schema=None) as batch_op:
        batch_op.drop_index('ix_scim_request_log_at')
        batch_op.drop_index('ix_scim_request_log_tenant_resource')
        batch_op.drop_index('ix_scim_request_log_tenant_at')
    op.drop_table('scim_request_log')
