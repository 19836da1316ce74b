"""Items are looked up by chat and time (issue #10, item 5: same-named groups)

Revision ID: 0012_items_chat_index
Revises: 0011_scim_request_log
Create Date: 2026-11-30

An export of a group is compared with what the archive holds under its subject before it is imported
(connectors/sources/chat_slots.py): the first and last message of a chat, and its messages in a stretch of
time. This index answers both without reading the tenant's other items.
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0012_items_chat_index'
down_revision: str | None = '0011_scim_request_log'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('items') as batch_op:
        batch_op.create_index('ix_items_chat_sent', ['tenant_id', 'chat_id', 'sent_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('items') as batch_op:
        batch_op.drop_index('ix_items_chat_sent')
