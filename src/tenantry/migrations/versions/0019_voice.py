"""Voice (issue #14): PSTN sites, mediation servers and their accounts, gateways, trunks, the tenant's hybrid
configuration, users' voice settings

Revision ID: 0019_voice
Revises: 0018_trust_tokens
Create Date: 2026-11-30
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019_voice'
down_revision: str | None = '0018_trust_tokens'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('voice_sites',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('edge_fqdn', sa.String(length=253), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_voice_sites_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voice_sites')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_voice_sites_tenant_id_name'))
    )
    op.create_table('voice_tenant_configs',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('peer_destination', sa.String(length=253), nullable=True),
    sa.Column('use_on_prem_dial_plan', sa.Boolean(), nullable=False),
    sa.Column('shared_sip_address_space', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_voice_tenant_configs_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_voice_tenant_configs'))
    )
    op.create_table('voice_gateways',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('site_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=253), nullable=False),
    sa.Column('transport', sa.String(length=8), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['voice_sites.id'], name=op.f('fk_voice_gateways_site_id_voice_sites'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_voice_gateways_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voice_gateways')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_voice_gateways_tenant_id_name'))
    )
    with op.batch_alter_table('voice_gateways', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voice_gateways_site_id'), ['site_id'], unique=False)
    op.create_table('voice_mediation_servers',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('site_id', sa.String(length=36), nullable=False),
    sa.Column('fqdn', sa.String(length=253), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('account_id', sa.String(length=36), nullable=True),
    sa.Column('hybrid_fqdn', sa.String(length=253), nullable=True),
    sa.Column('access_proxy_fqdn', sa.String(length=253), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['users.id'], name=op.f('fk_voice_mediation_servers_account_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['site_id'], ['voice_sites.id'], name=op.f('fk_voice_mediation_servers_site_id_voice_sites'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_voice_mediation_servers_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voice_mediation_servers')),
    sa.UniqueConstraint('tenant_id', 'fqdn', name=op.f('uq_voice_mediation_servers_tenant_id_fqdn'))
    )
    with op.batch_alter_table('voice_mediation_servers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voice_mediation_servers_site_id'), ['site_id'], unique=False)
    op.create_table('voice_users',
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('enterprise_voice', sa.Boolean(), nullable=False),
    sa.Column('hosted_voicemail', sa.Boolean(), nullable=False),
    sa.Column('line_uri', sa.String(length=40), nullable=True),
    sa.Column('voice_policy', sa.String(length=64), nullable=True),
    sa.Column('routing_policy', sa.String(length=64), nullable=False),
    sa.Column('site_id', sa.String(length=36), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['voice_sites.id'], name=op.f('fk_voice_users_site_id_voice_sites'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_voice_users_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_voice_users_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_voice_users')),
    sa.UniqueConstraint('tenant_id', 'line_uri', name=op.f('uq_voice_users_tenant_id_line_uri'))
    )
    with op.batch_alter_table('voice_users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voice_users_site_id'), ['site_id'], unique=False)
    op.create_table('voice_trunks',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('gateway_id', sa.String(length=36), nullable=False),
    sa.Column('target', sa.String(length=253), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['gateway_id'], ['voice_gateways.id'], name=op.f('fk_voice_trunks_gateway_id_voice_gateways'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_voice_trunks_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voice_trunks')),
    sa.UniqueConstraint('gateway_id', 'target', name=op.f('uq_voice_trunks_gateway_id_target'))
    )
    with op.batch_alter_table('voice_trunks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voice_trunks_gateway_id'), ['gateway_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('voice_trunks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_voice_trunks_gateway_id'))
    op.drop_table('voice_trunks')
    with op.batch_alter_table('voice_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_voice_users_site_id'))
    op.drop_table('voice_users')
    with op.batch_alter_table('voice_mediation_servers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_voice_mediation_servers_site_id'))
    op.drop_table('voice_mediation_servers')
    with op.batch_alter_table('voice_gateways', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_voice_gateways_site_id'))
    op.drop_table('voice_gateways')
    op.drop_table('voice_tenant_configs')
    op.drop_table('voice_sites')
