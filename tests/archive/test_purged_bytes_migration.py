"""Migration 0023_purged_bytes: the bytes that earlier purges left behind are deleted, on both backends; bytes an
item or an export file points to stay."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from tenantry.archive.models import Blob, Folder, Item, Mailbox
from tenantry.connectors.models import Connector, ExportFile
from tests.conftest import migrate_to

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_upgrading_deletes_bytes_no_item_or_export_file_points_to(blank_engine: sa.Engine) -> None:
    engine = blank_engine
    migrate_to(engine, "0022_user_values_e164_partial")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO tenants (id, name, created_at) VALUES ('t1', 't1', :at)"), {"at": T0})
        conn.execute(sa.insert(Mailbox.__table__).values(id="m1", tenant_id="t1", user_id="u1", address="u1@x",
                                                         created_at=T0))
        conn.execute(sa.insert(Folder.__table__).values(id="f1", mailbox_id="m1", name="WhatsApp Archiver",
                                                        created_at=T0))
        conn.execute(sa.insert(Item.__table__).values(
            tenant_id="t1", mailbox_id="m1", folder_id="f1", message_id="kept@t", sha256="a" * 64, size=1,
            kind="chat", source="test", sent_at=T0, subject="", sender="", delivered_at=T0))
        conn.execute(sa.insert(Connector.__table__).values(
            id="c1", tenant_id="t1", name="c1", kind="whatsapp-export", status="enabled", created_by="u1",
            created_at=T0))
        conn.execute(sa.insert(ExportFile.__table__).values(
            id="e1", connector_id="c1", sha256="b" * 64, filename="chat.txt", owner_user_id="u1", received_at=T0))
        conn.execute(sa.insert(Blob.__table__), [
            {"sha256": d * 64, "size": 1, "data": d.encode()} for d in ("a", "b", "c", "d")])
    migrate_to(engine, "0023_purged_bytes")
    with engine.connect() as conn:
        left = set(conn.scalars(sa.text("SELECT sha256 FROM blobs")))
    assert left == {"a" * 64, "b" * 64}   # an item's and an export file's; "c" and "d" were purged messages'
    migrate_to(engine, "0022_user_values_e164_partial", down=True)
    with engine.connect() as conn:
        assert set(conn.scalars(sa.text("SELECT sha256 FROM blobs"))) == left
