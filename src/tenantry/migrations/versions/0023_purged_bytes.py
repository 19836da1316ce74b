"""blobs: the bytes of messages purged before this version are deleted

Until now a purge (a delete of an unprotected item, retention, the expiry of Purges, a mailbox's removal) deleted
the item rows but kept their bytes in ``blobs`` for ever. A purge now deletes the bytes no item points to any more
(``compliance.drop_bytes``); this deletes those that earlier purges left: every blob that no item and no export
file (handed in before export files were kept on disk) points to. Nothing else is stored in ``blobs``. It reads
every blob's key once, and ``items`` by ``ix_items_sha256``. The downgrade cannot bring the bytes back, and does
nothing. Every process of an earlier version must be stopped first: their deliveries do not lock the bytes they
point an item at (docs/compliance.md).

Revision ID: 0023_purged_bytes
Revises: 0022_user_values_e164_partial
Create Date: 2026-12-01
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0023_purged_bytes'
down_revision: str | None = '0022_user_values_e164_partial'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.text(
        "DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM items WHERE items.sha256 = blobs.sha256) "
        "AND NOT EXISTS (SELECT 1 FROM connector_export_files f WHERE f.sha256 = blobs.sha256)"))


def downgrade() -> None:
    pass
