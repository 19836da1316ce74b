"""Console sign-in: password accounts, sessions, OpenID providers, pending OIDC sign-ins (issue #12, item 3)

Revision ID: 0015_console_sign_in
Revises: 0014_token_principals
Create Date: 2026-11-30
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015_console_sign_in'
down_revision: str | None = '0014_token_principals'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('console_passwords',
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('failed_count', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_console_passwords_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_console_passwords_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_console_passwords'))
    )
    op.create_index('ix_console_passwords_tenant_id', 'console_passwords', ['tenant_id'], unique=False)
    op.create_table('console_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_console_sessions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_console_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_sessions'))
    )
    op.create_index('ix_console_sessions_tenant_user', 'console_sessions', ['tenant_id', 'user_id'], unique=False)
    op.create_index('ix_console_sessions_expires_at', 'console_sessions', ['expires_at'], unique=False)
    op.create_table('oidc_providers',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('issuer', sa.String(length=512), nullable=False),
    sa.Column('client_id', sa.String(length=256), nullable=False),
    sa.Column('client_secret', sa.Text(), nullable=False),
    sa.Column('claim', sa.String(length=64), nullable=False),
    sa.Column('match_attribute', sa.String(length=16), nullable=False),
    sa.Column('scopes', sa.String(length=512), nullable=False),
    sa.Column('display_name', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_oidc_providers_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_oidc_providers'))
    )
    op.create_table('oidc_logins',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('issuer', sa.String(length=512), nullable=False),
    sa.Column('client_id', sa.String(length=256), nullable=False),
    sa.Column('nonce', sa.String(length=128), nullable=False),
    sa.Column('code_verifier', sa.String(length=128), nullable=False),
    sa.Column('redirect_uri', sa.String(length=1024), nullable=False),
    sa.Column('next_path', sa.String(length=1024), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_oidc_logins_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oidc_logins'))
    )
    op.create_index('ix_oidc_logins_created_at', 'oidc_logins', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_oidc_logins_created_at', table_name='oidc_logins')
    op.drop_table('oidc_logins')
    op.drop_table('oidc_providers')
    op.drop_index('ix_console_sessions_expires_at', table_name='console_sessions')
    op.drop_index('ix_console_sessions_tenant_user', table_name='console_sessions')
    op.drop_table('console_sessions')
    op.drop_index('ix_console_passwords_tenant_id', table_name='console_passwords')
    op.drop_table('console_passwords')
