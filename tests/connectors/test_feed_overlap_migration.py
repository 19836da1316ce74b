"""Migration 0008_feed_overlap: existing connectors get the 48-hour overlap, on both backends, and it reverses."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from tests.conftest import migrate_to

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def add_connector(conn: sa.Connection, cid: str, window_hours: int) -> None:
    conn.execute(sa.text(
        "INSERT INTO connectors (id, tenant_id, name, kind, status, created_by, created_at, source_config, "
        "target_config, use_directory_mobiles, outsider_domain, max_item_bytes, run_at, window_hours, backfill_days,"
        " failures_in_a_row) VALUES (:id, 't1', :id, 'archiver-feed', 'enabled', 'u', :at, '{}', '{}', TRUE, "
        "'whatsapp.invalid', 1000, '02:00', :wh, 30, 0)"), {"id": cid, "at": T0, "wh": window_hours})


def test_existing_connectors_get_a_48_hour_overlap_and_longer_ones_are_kept(blank_engine: sa.Engine) -> None:
    engine = blank_engine
    migrate_to(engine, "0007_username_key")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO tenants (id, name, created_at) VALUES ('t1', 't1', :at)"), {"at": T0})
        add_connector(conn, "old-default", 24)
        add_connector(conn, "wide", 120)
    migrate_to(engine, "0008_feed_overlap")
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT id, overlap_hours FROM connectors")).all())
    assert rows == {"old-default": 48, "wide": 120}
    migrate_to(engine, "0007_username_key", down=True)
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT id, window_hours FROM connectors")).all())
    assert rows == {"old-default": 48, "wide": 120}
