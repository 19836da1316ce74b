"""Migration 0019 (voice) up and down, on both backends."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.conftest import migrate_to

TABLES = {"voice_sites", "voice_mediation_servers", "voice_gateways", "voice_trunks", "voice_tenant_configs",
          "voice_users"}


def test_migration_0019_adds_the_voice_tables_and_removes_them_going_down(blank_engine: Any) -> None:
    migrate_to(blank_engine, "0019_voice")
    assert set(sa.inspect(blank_engine).get_table_names()) >= TABLES
    migrate_to(blank_engine, "0018_trust_tokens", down=True)
    assert not TABLES & set(sa.inspect(blank_engine).get_table_names())
