"""An admin token is issued to an administrator: api_tokens.user_id (issue #12)

Revision ID: 0014_token_principals
Revises: 0013_periodic_work
Create Date: 2026-11-30

Admin tokens carried a tenant and a scope, no identity. Each is now issued to a directory user of its tenant,
whose roles it carries. Tokens issued before (user_id NULL) are given to the tenant's first administrator when
the server starts (``app.bootstrap``); until then they are refused, saying so. No foreign key: a token keeps
naming the user it was issued to after the user is deleted (and is refused from then on).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014_token_principals'
down_revision: str | None = '0013_periodic_work'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('api_tokens') as batch:
        batch.add_column(sa.Column('user_id', sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_tokens') as batch:
        batch.drop_column('user_id')
