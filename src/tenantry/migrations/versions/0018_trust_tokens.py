"""Trust tokens: used client-assertion jtis, voicemail greetings, one tenant per realm (issue #13)

Revision ID: 0018_trust_tokens
Revises: 0017_application_accounts
Create Date: 2026-11-30
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018_trust_tokens'
down_revision: str | None = '0017_application_accounts'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('trust_used_assertions',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('jti', sa.String(length=256), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_trust_used_assertions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'client_id', 'jti', name=op.f('pk_trust_used_assertions'))
    )
    op.create_index(op.f('ix_trust_used_assertions_expires_at'), 'trust_used_assertions', ['expires_at'], unique=False)
    op.create_table('trust_voicemail_greetings',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('content_type', sa.String(length=128), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=512), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_trust_voicemail_greetings_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_trust_voicemail_greetings_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'user_id', name=op.f('pk_trust_voicemail_greetings'))
    )
    with op.batch_alter_table('trust_auth_configs') as batch:
        batch.create_unique_constraint(batch.f('uq_trust_auth_configs_realm'), ['realm'])


def downgrade() -> None:
    with op.batch_alter_table('trust_auth_configs') as batch:
        batch.drop_constraint(batch.f('uq_trust_auth_configs_realm'), type_='unique')
    op.drop_table('trust_voicemail_greetings')
    op.drop_index(op.f('ix_trust_used_assertions_expires_at'), table_name='trust_used_assertions')
    op.drop_table('trust_used_assertions')
