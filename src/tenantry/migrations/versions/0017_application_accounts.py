"""Application accounts: users hidden from address lists, management roles assigned directly (issue #13 item 1)

Revision ID: 0017_application_accounts
Revises: 0016_trust
Create Date: 2026-11-30

Seed 002 step 2: the partner's application account is a mail user hidden from address lists
(``users.hidden_from_address_lists``, false for every existing user) that holds UserApplication and
ArchiveApplication directly (``management_role_assignments``), not through a role group. The column is
added and dropped in place (no batch copy of ``users``: see ``upgrade``).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017_application_accounts'
down_revision: str | None = '0016_trust'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE on both backends, never a batch copy: on SQLite a batch would drop and recreate
    # ``users``, and with foreign keys on that DROP cascades into every table that references users.
    op.add_column('users', sa.Column('hidden_from_address_lists', sa.Boolean(), server_default='0', nullable=False))
    op.create_table('management_role_assignments',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('role', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_management_role_assignments_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_management_role_assignments_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_management_role_assignments')),
    sa.UniqueConstraint('tenant_id', 'user_id', 'role', name=op.f('uq_management_role_assignments_tenant_id_user_id_role'))
    )
    op.create_index('ix_management_role_assignments_user_id', 'management_role_assignments', ['user_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_management_role_assignments_user_id', table_name='management_role_assignments')
    op.drop_table('management_role_assignments')
    op.drop_column('users', 'hidden_from_address_lists')   # SQLite ≥ 3.35 drops a column in place
