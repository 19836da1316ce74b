"""user_values: the E.164 index holds only phone numbers (a partial index, issue #16)

Every indexed value of a user had an entry in ``ix_user_values_e164``, its ``e164`` NULL but for phone numbers:
fifteen of a typical user's sixteen entries, each on a page of its own (one per attribute), written by every
create. Only ``e164 = …`` and ``e164 IN (…)`` read the index, and both name a number, so the entries without
one are dropped (``WHERE e164 IS NOT NULL``, the same on SQLite and PostgreSQL). The upgrade rebuilds the index;
on PostgreSQL it blocks writes to user_values meanwhile (seconds at a hundred thousand users).

Revision ID: 0022_user_values_e164_partial
Revises: 0021_connector_run_heartbeat
Create Date: 2026-11-30
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0022_user_values_e164_partial'
down_revision: str | None = '0021_connector_run_heartbeat'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHERE = sa.text('e164 IS NOT NULL')


def upgrade() -> None:
    op.drop_index('ix_user_values_e164', table_name='user_values')
    op.create_index('ix_user_values_e164', 'user_values', ['tenant_id', 'attr', 'e164'], unique=False,
                    sqlite_where=_WHERE, postgresql_where=_WHERE)


def downgrade() -> None:
    op.drop_index('ix_user_values_e164', table_name='user_values')
    op.create_index('ix_user_values_e164', 'user_values', ['tenant_id', 'attr', 'e164'], unique=False)
