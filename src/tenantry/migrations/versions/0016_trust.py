"""Trust: partner applications, authorisation configuration and certificates, service-principal keys (issue #13)

Revision ID: 0016_trust
Revises: 0015_console_sign_in
Create Date: 2026-11-30
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016_trust'
down_revision: str | None = '0015_console_sign_in'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('trust_partner_apps',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('application_id', sa.String(length=36), nullable=False),
    sa.Column('realm', sa.String(length=256), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('linked_account', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['linked_account'], ['users.id'], name=op.f('fk_trust_partner_apps_linked_account_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_trust_partner_apps_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trust_partner_apps')),
    sa.UniqueConstraint('tenant_id', 'application_id', name=op.f('uq_trust_partner_apps_tenant_id_application_id')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_trust_partner_apps_tenant_id_name'))
    )
    op.create_table('trust_auth_configs',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('service_name', sa.String(length=36), nullable=False),
    sa.Column('realm', sa.String(length=256), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_trust_auth_configs_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_trust_auth_configs'))
    )
    op.create_table('trust_auth_certificates',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('certificate_pem', sa.Text(), nullable=False),
    sa.Column('private_key', sa.Text(), nullable=False),
    sa.Column('thumbprint', sa.String(length=40), nullable=False),
    sa.Column('thumbprint_sha256', sa.String(length=64), nullable=False),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
    sa.Column('not_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('effective_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_trust_auth_certificates_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trust_auth_certificates')),
    sa.UniqueConstraint('tenant_id', 'role', name=op.f('uq_trust_auth_certificates_tenant_id_role'))
    )
    op.create_table('trust_sp_keys',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('partner_id', sa.String(length=36), nullable=False),
    sa.Column('usage', sa.String(length=16), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('thumbprint', sa.String(length=40), nullable=False),
    sa.Column('thumbprint_sha256', sa.String(length=64), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['trust_partner_apps.id'], name=op.f('fk_trust_sp_keys_partner_id_trust_partner_apps'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_trust_sp_keys_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trust_sp_keys'))
    )
    op.create_index('ix_trust_sp_keys_partner_id', 'trust_sp_keys', ['partner_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_trust_sp_keys_partner_id', table_name='trust_sp_keys')
    op.drop_table('trust_sp_keys')
    op.drop_table('trust_auth_certificates')
    op.drop_table('trust_auth_configs')
    op.drop_table('trust_partner_apps')
