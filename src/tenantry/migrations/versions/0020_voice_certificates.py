"""Voice certificates: the tenant root CA and each gateway's certificate (issue #14)

Revision ID: 0020_voice_certificates
Revises: 0019_voice
Create Date: 2026-11-30
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0020_voice_certificates'
down_revision: str | None = '0019_voice'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('voice_root_cas',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('certificate_pem', sa.Text(), nullable=False),
    sa.Column('private_key', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_voice_root_cas_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_voice_root_cas'))
    )
    # A plain ADD COLUMN: a batch copy of voice_gateways would cascade into its trunks on SQLite.
    op.add_column('voice_gateways', sa.Column('certificate_pem', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('voice_gateways', 'certificate_pem')   # SQLite ≥ 3.35 drops a column in place
    op.drop_table('voice_root_cas')
